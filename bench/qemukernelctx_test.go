package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// TestQEMUKernelContextCancelled: a gzipped kernel's decompression for QEMU stops
// once ctx has ended, with ctx's error and no file left in dir (bench,
// signalled while it wrote one, left it in TMPDIR).
func TestQEMUKernelContextCancelled(t *testing.T) {
	src := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(guests.Demo)
	zw.Close()
	kernel := filepath.Join(src, "demo.elf.gz")
	if err := os.WriteFile(kernel, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := QEMUKernelContext(ctx, kernel, dir); !errors.Is(err, context.Canceled) {
		t.Errorf("QEMUKernelContext with its context ended: %q, %v; want context.Canceled", got, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left in dir: %v", left)
	}
	// The write's own file, made and then removed.
	out := filepath.Join(dir, "k.elf")
	if err := writeFileCtx(ctx, out, guests.Demo); !errors.Is(err, context.Canceled) {
		t.Errorf("writeFileCtx with its context ended: %v; want context.Canceled", err)
	}
	if _, err := os.Lstat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left after a cancelled write (%v)", out, err)
	}
}

// cancelWriter ends its context on its first write.
type cancelWriter struct {
	cancel context.CancelFunc
	bytes.Buffer
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.cancel()
	return w.Buffer.Write(p)
}

// TestWriteChunks: the write stops at the first chunk after ctx ends, not
// at the end of the data.
func TestWriteChunks(t *testing.T) {
	data := bytes.Repeat([]byte{0xa5}, 3*writeChunk+1)
	tests := []struct {
		name   string
		cancel bool
		want   int
		err    error
	}{
		{"whole", false, len(data), nil},
		{"stopped after the first chunk", true, writeChunk, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := &cancelWriter{cancel: func() {}}
			if tt.cancel {
				w.cancel = cancel
			}
			err := writeChunks(ctx, w, data)
			if !errors.Is(err, tt.err) || err != nil && tt.err == nil || w.Len() != tt.want {
				t.Errorf("wrote %d bytes, %v; want %d, %v", w.Len(), err, tt.want, tt.err)
			}
		})
	}
}
