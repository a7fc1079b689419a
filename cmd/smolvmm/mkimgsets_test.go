package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/fetch"
)

// TestResolveSetsNamesEveryMissing: of a service's sets, every one found
// nowhere is named, and the advice fetches them all: mkimg -s base named
// only base (smolvmm fetch base), and the next mkimg then etc.
func TestResolveSetsNamesEveryMissing(t *testing.T) {
	inSetDir(t) // rescue.tgz, and an empty cache
	tests := []struct {
		name  string
		sets  []string
		arch  string
		want  []string
		avoid string
	}{
		{"two of three", []string{"base", "rescue", "etc"}, "", []string{`smolvmm mkimg: sets "base", "etc": no base.tgz or base.tar.xz, nor etc.tgz or etc.tar.xz, in the current directory, in sets/ or in `,
			`, and no directory base or etc in the current directory or in sets/: pass -x PATH,..., or fetch the sets first (smolvmm fetch base etc)`}, "rescue"},
		// A set named as its archive is looked for as that file alone,
		// and fetched by its name (fetch picks the release's extension).
		{"named with extensions", []string{"games.tgz", "base.tar.xz"}, "", []string{`sets "games.tgz", "base.tar.xz": no games.tgz, nor base.tar.xz, in the current directory`,
			"no directory games.tgz or base.tar.xz in", "(smolvmm fetch games base)"}, "NAME"},
		{"named twice", []string{"base", "etc", "base"}, "", []string{`sets "base", "etc": no base.tgz or base.tar.xz, nor etc.tgz or etc.tar.xz, in`, "(smolvmm fetch base etc)"}, "fetch base etc base"},
		{"named twice, once as its archive", []string{"base", "base.tgz"}, "", []string{`sets "base", "base.tgz": no base.tgz or base.tar.xz, nor base.tgz, in`, "(smolvmm fetch base)"}, "fetch base base"},
		{"one named twice", []string{"etc", "etc"}, "", []string{`set "etc": no etc.tgz or etc.tar.xz in the current directory`, "(smolvmm fetch etc)"}, `sets "`},
		{"one as its archive", []string{"etc.tar.xz"}, "", []string{`set "etc.tar.xz": no etc.tar.xz in the current directory`, "(smolvmm fetch etc)"}, "fetch etc.tar.xz"},
		{"another port", []string{"base", "etc", "comp"}, "amd64", []string{`sets "base", "etc", "comp": `, filepath.Join(fetch.DefaultVersion, "amd64", "sets"), "(smolvmm fetch --arch amd64 base etc comp)"}, ""},
		{"one", []string{"rescue", "etc"}, "", []string{`set "etc": no etc.tgz or etc.tar.xz in the current directory`, "(smolvmm fetch etc)"}, `sets "`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveSets(nil, tt.sets, tt.arch)
			if err == nil {
				t.Fatalf("resolveSets = %q, want an error", got)
			}
			msg := "smolvmm mkimg: " + err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			if tt.avoid != "" && strings.Contains(msg, tt.avoid) {
				t.Errorf("%q names %q", msg, tt.avoid)
			}
		})
	}
}
