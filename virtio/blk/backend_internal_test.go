package blk

import (
	"bytes"
	"io"
	"testing"

	"golang.org/x/sys/unix"
)

// TestVectorIO checks the retry loop around preadv/pwritev: short
// transfers continue where they stopped, EINTR is retried, a transfer of
// nothing is an error rather than a loop.
func TestVectorIO(t *testing.T) {
	src := []byte("0123456789abcdef")
	for _, tc := range []struct {
		name    string
		steps   []int // bytes moved per call; -1 = EINTR
		wantErr error
	}{
		{"one call", []int{16}, nil},
		{"short transfers", []int{3, 5, 1, 7}, nil},
		{"EINTR", []int{-1, 16}, nil},
		{"end of file", []int{4, 0}, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, c := make([]byte, 4), make([]byte, 0), make([]byte, 12)
			bufs := [][]byte{b, a, b, c}
			pos, call := int64(0), 0
			n, err := vectorIO(bufs, 0, func(v [][]byte, off int64) (int, error) {
				if off != pos {
					t.Fatalf("call at offset %d, want %d", off, pos)
				}
				step := tc.steps[call]
				call++
				if step < 0 {
					return 0, unix.EINTR
				}
				moved := 0
				for _, p := range v {
					k := copy(p, src[off+int64(moved):off+int64(step)])
					moved += k
					if moved == step {
						break
					}
				}
				pos += int64(step)
				return step, nil
			})
			if err != tc.wantErr {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err == nil && (n != 16 || !bytes.Equal(append(a, c...), src)) {
				t.Fatalf("n %d, data %q", n, append(a, c...))
			}
		})
	}
}
