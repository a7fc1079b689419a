package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/fetch/fetchtest"
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

// TestResolveSetsOtherExtension: a set named with an extension that is
// not the file there is (sets=etc.tar.xz where the default release, 9.3,
// has etc.tgz) is told the name that finds it, not a fetch: smolvmm fetch
// etc was advised, fetched etc.tgz (or found it in the cache already),
// and the next mkimg said the same, looking for etc.tar.xz alone.
func TestResolveSetsOtherExtension(t *testing.T) {
	etc := []byte("etc set")
	for _, tc := range []struct {
		name   string
		sets   []string
		cached bool // etc.tgz in the cache, not only in its SHA512
		local  bool // sets/etc.tgz
		want   []string
		avoid  []string
	}{
		{"in the cache", []string{"etc.tar.xz"}, true, false,
			[]string{`set "etc.tar.xz": no etc.tar.xz in`, "sets=etc would read CACHE/etc.tgz: name the set etc"},
			[]string{"smolvmm fetch"}},
		{"in sets/", []string{"etc.tar.xz"}, false, true,
			[]string{"sets=etc would read " + filepath.Join("sets", "etc.tgz") + ": name the set etc"},
			[]string{"smolvmm fetch"}},
		{"listed by the release only", []string{"etc.tar.xz"}, false, false,
			[]string{"the default release (NetBSD " + fetch.DefaultVersion + ") has etc.tgz, not etc.tar.xz: name the set etc (sets=etc) and fetch it (smolvmm fetch etc)"},
			nil},
		{"the release's own name", []string{"etc.tgz"}, false, false,
			[]string{`set "etc.tgz": no etc.tgz in`, "(smolvmm fetch etc)"},
			[]string{"sets=etc", "not etc.tgz"}},
		{"with another set to fetch", []string{"etc.tar.xz", "base"}, true, false,
			[]string{`sets "etc.tar.xz", "base": `, "(smolvmm fetch base)", "sets=etc would read CACHE/etc.tgz: name the set etc"},
			[]string{"fetch base etc", "fetch etc"}},
		{"both found under other names", []string{"etc.tar.xz", "rescue.tar"}, true, false,
			[]string{`sets "etc.tar.xz", "rescue.tar": `, "sets=etc would read CACHE/etc.tgz: name the set etc", "sets=rescue would read rescue.tgz: name the set rescue"},
			[]string{"smolvmm fetch", "fetch the sets"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inSetDir(t) // rescue.tgz, and an empty cache
			cache := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "smolvmm", fetch.DefaultVersion, fetch.DefaultArch, "sets")
			if err := os.MkdirAll(cache, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(cache, "SHA512"), fetchtest.DigestFile(map[string][]byte{"etc.tgz": etc, "base.tgz": []byte("base")}), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.cached {
				if err := os.WriteFile(filepath.Join(cache, "etc.tgz"), etc, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.local {
				if err := os.Mkdir("sets", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join("sets", "etc.tgz"), etc, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := resolveSets(nil, tc.sets, "")
			if err == nil {
				t.Fatalf("resolveSets = %q, want an error", got)
			}
			msg := strings.ReplaceAll(err.Error(), cache, "CACHE")
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			for _, a := range tc.avoid {
				if strings.Contains(msg, a) {
					t.Errorf("%q says %q", msg, a)
				}
			}
		})
	}
}
