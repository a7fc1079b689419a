package fetch

import (
	"errors"
	"fmt"
	"strings"
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
		// A query or fragment was glued into every file's URL
		// (".../NetBSD?x=1/NetBSD-9.3/...").
		{"mirror with query", "http://m/pub/NetBSD?x=1", DefaultVersion, DefaultArch, nil, true},
		{"mirror with empty query", "http://m/pub/NetBSD?", DefaultVersion, DefaultArch, nil, true},
		{"mirror with fragment", "http://m/pub/NetBSD#top", DefaultVersion, DefaultArch, nil, true},
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
			if strings.ContainsAny(tc.mirror, "?#") && !strings.Contains(fmt.Sprint(err), "a mirror URL names a directory") {
				t.Errorf("Check: %v, want it to say a mirror URL names a directory", err)
			}
		})
	}
}
