package fstree_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// doneAfter is a context that is done (Canceled) from its n+1th Err call
// on: cancelled at a known point of a read, whatever the timing.
type doneAfter struct {
	context.Context
	n, calls int
}

func (c *doneAfter) Err() error {
	c.calls++
	if c.calls > c.n {
		return context.Canceled
	}
	return nil
}

// TestAddDirContextCancel: a directory set stops being read once its
// context is done, before the next entry or the next chunk of a large
// file, with the context's error. AddDir took no context: an interrupted
// build went on reading the whole directory.
func TestAddDirContextCancel(t *testing.T) {
	dir := t.TempDir()
	const files = 20
	for i := range files {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The first entry: 64 chunks of data, read in ReadChunk units.
	big := bytes.Repeat([]byte{1}, 64*fstree.ReadChunk)
	if err := os.WriteFile(filepath.Join(dir, "a-big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		n    int // Err calls answered nil
	}{
		{"done before", 0},
		{"done in the big file", 3},
		{"done after the big file", 70},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := &doneAfter{Context: context.Background(), n: tt.n}
			tr := fstree.New()
			err := tr.AddDirContext(ctx, dir)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("AddDirContext = %v, want context.Canceled", err)
			}
			read := 0
			for _, name := range tr.Root.Names() {
				if name != "a-big" {
					read++
				}
			}
			if read == files {
				t.Errorf("all %d files read after the context was done", files)
			}
			if _, err := tr.Get("a-big"); (err == nil) != (tt.n > 64) {
				t.Errorf("a-big in the tree: %v, want %v", err == nil, tt.n > 64)
			}
			if ctx.calls > tt.n+1 {
				t.Errorf("context asked %d times after it was done", ctx.calls-tt.n-1)
			}
		})
	}
}
