package imagebuilder

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestPostinstReadsChangedOnly runs postinst scripts over a tree and
// counts the staged files read back: every one was (a build with a
// script took twice the memory and four times as long as one without).
// Now a file whose status is as staged (same inode, status change time,
// modification time and size) keeps its node unread; one a script
// wrote, also with its size and time put back (touch -r), moved or
// chmod-ed, has a new status change time, which no unprivileged process
// can set, and is read.
func TestPostinstReadsChangedOnly(t *testing.T) {
	const mtime = 1600000000
	for _, tc := range []struct {
		name, script string
		read         []string          // the staged files read back, sorted
		want         map[string]string // content after the step
	}{
		{"left alone", "cat etc/a etc/b etc/c >/dev/null\n", nil,
			map[string]string{"etc/a": "alpha", "etc/b": "bravo", "etc/c": "charlie"}},
		{"written, size and time put back", "printf BRAVO > etc/b && touch -r etc/c etc/b\n", []string{"etc/b"},
			map[string]string{"etc/a": "alpha", "etc/b": "BRAVO", "etc/c": "charlie"}},
		{"chmod-ed", "chmod 0600 etc/c\n", []string{"etc/c"},
			map[string]string{"etc/a": "alpha", "etc/b": "bravo", "etc/c": "charlie"}},
		{"hard link written", "printf ALPHA > etc/alink && touch -r etc/c etc/alink\n", []string{"etc/a"},
			map[string]string{"etc/a": "ALPHA", "etc/alink": "ALPHA", "etc/b": "bravo"}},
		{"renamed", "mv etc/b etc/b2\n", []string{"etc/b2"},
			map[string]string{"etc/a": "alpha", "etc/b2": "bravo"}},
		{"new file", "echo new > etc/new\n", []string{"etc/new"},
			map[string]string{"etc/a": "alpha", "etc/new": "new\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			orig := map[string]*fstree.Node{}
			for p, s := range map[string]string{"etc/a": "alpha", "etc/b": "bravo", "etc/c": "charlie"} {
				n := fstree.NewFile(0o644, []byte(s))
				n.Mtime = mtime
				if err := tr.Put(p, n); err != nil {
					t.Fatal(err)
				}
				orig[p] = n
			}
			if err := tr.Link("etc/alink", "etc/a"); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var read []string
			readingStaged = func(p string) {
				mu.Lock()
				defer mu.Unlock()
				read = append(read, p)
			}
			defer func() { readingStaged = nil }()
			if err := RunPostinst(context.Background(), tr, scriptService(t, tc.script), nil); err != nil {
				t.Fatal(err)
			}
			slices.Sort(read)
			if !slices.Equal(read, tc.read) {
				t.Errorf("staged files read back: %q, want %q", read, tc.read)
			}
			for p, s := range tc.want {
				n, err := tr.Get(p)
				if err != nil {
					t.Fatal(err)
				}
				if got := string(n.Content()); got != s {
					t.Errorf("%s holds %q, want %q", p, got, s)
				}
				if on := orig[p]; on != nil && !slices.Contains(tc.read, p) && n != on {
					t.Errorf("%s: a new node for the unchanged file", p)
				}
			}
			for _, p := range []string{"etc/a", "etc/c"} {
				n, err := tr.Get(p)
				if err != nil {
					t.Fatal(err)
				}
				mode := uint16(0o644)
				if p == "etc/c" && tc.name == "chmod-ed" {
					mode = 0o600
				}
				if n.Perm != mode || n.Mtime != mtime {
					t.Errorf("%s has mode %#o and mtime %d, want %#o and %d", p, n.Perm, n.Mtime, mode, mtime)
				}
			}
		})
	}
}
