package fetch

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, mirror, version, arch string
		sets                        []string
		bad                         bool
	}{
		{"defaults", "", DefaultVersion, DefaultArch, nil, false},
		{"sets", "http://m/pub", "10.1", "amd64", []string{"rescue", "base"}, false},
		{"ftp mirror", "ftp://x/", DefaultVersion, DefaultArch, nil, true},
		{"mirror without host", "http:///pub", DefaultVersion, DefaultArch, nil, true},
		{"version escapes", "", "../../etc", DefaultArch, nil, true},
		{"empty version", "", "", DefaultArch, nil, true},
		{"arch with slash", "", DefaultVersion, "i386/x", nil, true},
		{"set with query", "", DefaultVersion, DefaultArch, []string{"rescue?x"}, true},
		{"set dot-dot", "", DefaultVersion, DefaultArch, []string{".."}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := (&Fetcher{Mirror: tc.mirror, Cache: t.TempDir()}).Check(tc.version, tc.arch, tc.sets...)
			if tc.bad != errors.Is(err, ErrBadArgument) || (err != nil) != tc.bad {
				t.Fatalf("Check: %v, want bad=%v", err, tc.bad)
			}
		})
	}
}
