package fstree_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// member is a tar entry of a regular file holding size bytes, each
// 4 KiB run of which is fill for its first used bytes and zeros after.
type member struct {
	name       string
	size, used int64
}

// fillReader reads size bytes: in each 4 KiB run, used bytes of 'A',
// then zeros.
type fillReader struct{ off, size, used int64 }

func (r *fillReader) Read(p []byte) (int, error) {
	if r.off == r.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.size-r.off)]
	for i := range p {
		p[i] = 0
		if (r.off+int64(i))%4096 < r.used {
			p[i] = 'A'
		}
	}
	r.off += int64(len(p))
	return len(p), nil
}

// writeMembers writes ms as a tar stream to w.
func writeMembers(w io.Writer, ms ...member) error {
	tw := tar.NewWriter(w)
	for _, m := range ms {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: m.name, Mode: 0644, Size: m.size}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, &fillReader{size: m.size, used: m.used}); err != nil {
			return err
		}
	}
	return tw.Close()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestDataLimits: a tree's RoomLimit and DataLimit stop the read of a
// set as soon as the files it holds and the one being read pass them,
// and not before: the room counts each 1 KiB block holding data (what
// it takes at least in an image), the data the 4 KiB runs kept; a file
// a later entry replaces no longer counts. Without them a set's data
// had no bound but 4 GiB a file: three 1 GiB members of a 458 KiB
// .tar.xz took 5.5 GB and 39 s before the image found itself too small.
func TestDataLimits(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name       string
		room, data int64 // the tree's limits
		members    []member
		refused    bool  // with a *LimitError
		room2      bool  // its Room
		readAtMost int64 // of the tar stream, when refused
	}{
		{name: "room exactly the limit", room: 16 * mib, members: []member{{"a", 8 * mib, 4096}, {"b", 8 * mib, 4096}}},
		{name: "a block past the room", room: 16 * mib, members: []member{{"a", 8 * mib, 4096}, {"b", 8*mib + 1, 4096}}, refused: true, room2: true},
		{name: "bomb: 3 members of 256 MiB for 16 MiB of room", room: 16 * mib, members: []member{{"a1", 256 * mib, 4096}, {"a2", 256 * mib, 4096}, {"a3", 256 * mib, 4096}}, refused: true, room2: true, readAtMost: 17 * mib},
		// One byte of data in each 4 KiB takes one 1 KiB block.
		{name: "sparse data takes a block per 4 KiB", room: 16 * mib, members: []member{{"s", 64 * mib, 1}}},
		{name: "sparse data past the room", room: 16 * mib, members: []member{{"s", 64*mib + 4096, 1}}, refused: true, room2: true},
		// ... but keeps 4 KiB in memory for each.
		{name: "sparse data past the data limit", data: 16 * mib, members: []member{{"s", 64 * mib, 1}}, refused: true, readAtMost: 17 * mib},
		{name: "replaced files do not count", room: 16 * mib, members: []member{{"a", 12 * mib, 4096}, {"a", 12 * mib, 4096}, {"a", 12 * mib, 4096}}},
		{name: "no limits", members: []member{{"a", 64 * mib, 4096}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Streamed: the reader stops reading, the writer stops.
			pr, pw := io.Pipe()
			done := make(chan struct{})
			go func() {
				pw.CloseWithError(writeMembers(pw, tt.members...))
				close(done)
			}()
			defer func() { pr.Close(); <-done }()
			tr := fstree.New()
			tr.RoomLimit, tr.DataLimit = tt.room, tt.data
			in := &countingReader{r: pr}
			err := tr.AddTar(in, "set.tar")
			var le *fstree.LimitError
			if !tt.refused {
				if err != nil {
					t.Fatalf("AddTar: %v, want the set read", err)
				}
				return
			}
			if !errors.As(err, &le) || le.Room != tt.room2 {
				t.Fatalf("AddTar: %v, want a *LimitError (Room %v)", err, tt.room2)
			}
			if limit := max(tt.room, tt.data); le.Limit != limit || le.Have <= limit {
				t.Errorf("LimitError %+v: want Limit %d and Have above it", *le, limit)
			}
			if tt.readAtMost > 0 && in.n > tt.readAtMost {
				t.Errorf("read %d bytes of the set before refusing it, want at most %d", in.n, tt.readAtMost)
			}
		})
	}
}

// TestBombBoundedAllocation: a set of three 256 MiB members of data is
// refused, for a tree that may take 16 MiB of room, having allocated a
// few times that (the data kept grows by doubling), not the 768 MiB.
func TestBombBoundedAllocation(t *testing.T) {
	var set bytes.Buffer
	if err := writeMembers(&set, member{"a1", 256 << 20, 4096}, member{"a2", 256 << 20, 4096}, member{"a3", 256 << 20, 4096}); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tr := fstree.New()
	tr.RoomLimit = 16 << 20
	err := tr.AddTar(bytes.NewReader(set.Bytes()), "bomb.tar")
	runtime.ReadMemStats(&after)
	var le *fstree.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("AddTar: %v, want a *LimitError", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 96<<20 {
		t.Errorf("refusing the set allocated %d MiB, want under 96", alloc>>20)
	}
}

// TestDataLimitDirectory: a directory set is held to the limits too,
// within a file.
func TestDataLimitDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a", "b"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, &fillReader{size: 12 << 20, used: 4096}); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	tests := []struct {
		room    int64
		refused bool
	}{{24 << 20, false}, {24<<20 - 1, true}, {8 << 20, true}}
	for _, tt := range tests {
		tr := fstree.New()
		tr.RoomLimit = tt.room
		err := tr.AddDir(dir)
		var le *fstree.LimitError
		if got := errors.As(err, &le); got != tt.refused {
			t.Errorf("room %d: AddDir: %v, want refused %v", tt.room, err, tt.refused)
		}
		if tt.room == 8<<20 && le != nil && le.Have > 9<<20 {
			t.Errorf("room %d: refused having read %d bytes of a 12 MiB file, want it refused within the file", tt.room, le.Have)
		}
	}
}
