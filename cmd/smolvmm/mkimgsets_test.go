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
		{"two of three", []string{"base", "rescue", "etc"}, "", []string{`smolvmm mkimg: sets "base", "etc": no NAME.tgz or NAME.tar.xz in the current directory, in sets/ or in `,
			`: pass -x PATH,..., or fetch the sets first (smolvmm fetch base etc)`}, "rescue"},
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
