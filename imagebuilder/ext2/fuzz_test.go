package ext2

import (
	"archive/tar"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// memImage is an in-memory io.WriterAt that, like a file, grows when
// written past its end: the fuzzer checks its size after Write.
type memImage struct{ b []byte }

func (m *memImage) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("write at a negative offset")
	}
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

// declaresBig tells whether a tar stream names a member over 1 MiB: such
// members are valid but slow to expand, and would starve the fuzzer.
func declaresBig(data []byte) bool {
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			return false
		}
		if h.Size > 1<<20 {
			return true
		}
	}
}

// FuzzWriteFromTar feeds arbitrary tar streams through the set reader and
// the writer: neither may panic, a written image must keep its size, and
// Write may refuse a tree only as too big for the image (*TooSmallError)
// or as holding what ext2 cannot store (*ContentError). A tar the set
// reader refuses is bad input and ends the case.
func FuzzWriteFromTar(f *testing.F) {
	// A small seed: the fuzzer minimises every new input, which is slow
	// for a large tar.
	es := testsets.Rescue(1500)
	seed, _ := testsets.Bytes(append(es[:3:3], es[len(es)-4:]...), "tar")
	f.Add(seed)
	// Trees refused whatever the size: a regular file as lost+found (by
	// Write), a symlink whose target is longer than NetBSD follows (by
	// the set reader, and by Write for a tree built without it).
	for _, h := range []tar.Header{
		{Typeflag: tar.TypeReg, Name: "./lost+found", Mode: 0o644},
		{Typeflag: tar.TypeSymlink, Name: "./long", Linkname: strings.Repeat("t/", 600), Mode: 0o777},
	} {
		var b bytes.Buffer
		w := tar.NewWriter(&b)
		h.Format = tar.FormatPAX
		if err := w.WriteHeader(&h); err != nil {
			f.Fatal(err)
		}
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if declaresBig(data) {
			return
		}
		tr := fstree.New()
		if err := tr.AddTar(bytes.NewReader(data), "fuzz.tar"); err != nil {
			return
		}
		const size = 2 << 20
		img := &memImage{b: make([]byte, size)}
		err := Write(img, tr, Options{Size: size, Timestamp: 1})
		var tse *TooSmallError
		var ce *ContentError
		if err != nil && !errors.As(err, &tse) && !errors.As(err, &ce) {
			t.Fatalf("write: %v", err)
		}
		if len(img.b) != size {
			t.Fatalf("the image is %d bytes after Write (err %v), want the %d it was made with", len(img.b), err, size)
		}
	})
}
