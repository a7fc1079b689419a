package service

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// TestLayered reads a file system laid over another: upper's files win,
// a directory both have lists both, and a name upper has as a file hides
// what lower has below that name.
func TestLayered(t *testing.T) {
	l := layered{
		upper: fstest.MapFS{
			"basicrc":     {Data: []byte("mine")},
			"extra":       {Data: []byte("extra")},
			".kshrc":      {Data: []byte("ksh")},
			"both/up":     {Data: []byte("up")},
			"both/same":   {Data: []byte("upper same")},
			"shadow":      {Data: []byte("a file")},
			"link":        {Data: []byte("basicrc"), Mode: fs.ModeSymlink},
			"only-up/.x":  {Data: []byte("x")},
			"both/deep/a": {Data: []byte("up deep")},
		},
		lower: fstest.MapFS{
			"basicrc":     {Data: []byte("builtin")},
			"lowrc":       {Data: []byte("low")},
			"both/low":    {Data: []byte("low")},
			"both/same":   {Data: []byte("lower same")},
			"shadow/b":    {Data: []byte("hidden")},
			"link":        {Data: []byte("lower link")},
			"both/deep/b": {Data: []byte("low deep")},
			"only-low/c":  {Data: []byte("c")},
		},
	}
	for _, tc := range []struct{ path, want string }{
		{"basicrc", "mine"},
		{"extra", "extra"},
		{".kshrc", "ksh"},
		{"lowrc", "low"},
		{"both/up", "up"},
		{"both/low", "low"},
		{"both/same", "upper same"},
		{"both/deep/a", "up deep"},
		{"both/deep/b", "low deep"},
		{"only-up/.x", "x"},
		{"only-low/c", "c"},
		{"shadow", "a file"},
		{"shadow/b", "error"},
		{"nosuch", "error"},
		{"../x", "error"},
	} {
		got, err := fs.ReadFile(l, tc.path)
		if err != nil {
			got = []byte("error")
		}
		if string(got) != tc.want {
			t.Errorf("ReadFile(%q) = %q (%v), want %q", tc.path, got, err, tc.want)
		}
	}
	if target, err := fs.ReadLink(l, "link"); err != nil || target != "basicrc" {
		t.Errorf("ReadLink(link) = %q, %v: want upper's basicrc", target, err)
	}
	var walked []string
	err := fs.WalkDir(l, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			p += "/"
		}
		walked = append(walked, p)
		return nil
	})
	want := "./ .kshrc basicrc both/ both/deep/ both/deep/a both/deep/b both/low both/same both/up extra link lowrc only-low/ only-low/c only-up/ only-up/.x shadow"
	if got := strings.Join(walked, " "); err != nil || got != want {
		t.Errorf("walk: %s (%v)\nwant  %s", got, err, want)
	}
	// Open of a directory of both lists both, in parts too.
	f, err := l.Open("both")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	for {
		es, err := f.(fs.ReadDirFile).ReadDir(2)
		for _, e := range es {
			names = append(names, e.Name())
		}
		if err != nil {
			break
		}
	}
	if got := strings.Join(names, " "); got != "deep low same up" {
		t.Errorf("Open(both).ReadDir: %s, want deep low same up", got)
	}
	if err := fstest.TestFS(l, "basicrc", "both/low", "both/up", "lowrc", "only-low/c"); err != nil {
		t.Error(err)
	}
}
