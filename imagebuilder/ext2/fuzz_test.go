package ext2

import (
	"archive/tar"
	"bytes"
	"errors"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// memImage is an in-memory io.WriterAt of fixed size.
type memImage []byte

func (m memImage) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, errors.New("write past the end of the image")
	}
	return copy(m[off:], p), nil
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
// the writer: neither may panic, and a written image must keep its size.
func FuzzWriteFromTar(f *testing.F) {
	// A small seed: the fuzzer minimises every new input, which is slow
	// for a large tar.
	es := testsets.Rescue(1500)
	seed, _ := testsets.Bytes(append(es[:3:3], es[len(es)-4:]...), "tar")
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		if declaresBig(data) {
			return
		}
		tr := fstree.New()
		if err := tr.AddTar(bytes.NewReader(data), "fuzz.tar"); err != nil {
			return
		}
		img := make(memImage, 2<<20)
		var tse *TooSmallError
		if err := Write(img, tr, Options{Size: int64(len(img)), Timestamp: 1}); err != nil && !errors.As(err, &tse) {
			t.Logf("write: %v", err)
		}
	})
}
