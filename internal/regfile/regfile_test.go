package regfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	sparse := filepath.Join(dir, "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse GiB: refused by its size, before a byte is read.
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		path  string
		limit int64
		want  error
	}{
		{"regular", small, 6, nil},
		{"too large", small, 5, ErrTooLarge},
		{"sparse GiB", sparse, 512 << 20, ErrTooLarge},
		{"FIFO without writer", fifo, 1 << 20, ErrNotRegular},
		{"character device", "/dev/zero", 1 << 20, ErrNotRegular},
		{"directory", dir, 1 << 20, ErrNotRegular},
		{"missing", filepath.Join(dir, "none"), 1 << 20, os.ErrNotExist},
	}
	for _, tt := range tests {
		data, err := ReadFile(tt.path, tt.limit)
		if tt.want == nil {
			if err != nil || string(data) != "kernel" {
				t.Errorf("%s: got %q, %v", tt.name, data, err)
			}
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestTooLargeInMiB: a refused size is said in MiB, as -m and the documentation
// (docs/commands.md) count, not in bytes ("629145600 bytes, more than the 536870912").
func TestTooLargeInMiB(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		size, limit int64
		want        string
	}{
		{600 << 20, 512 << 20, " is 600 MiB, more than the 512 MiB allowed"},
		{200<<20 + 1<<19, 64 << 20, " is 200.5 MiB, more than the 64 MiB allowed"},
		{64<<20 + 1, 64 << 20, " is 64 MiB and 1 byte, more than the 64 MiB allowed"},
		{2000, 1000, " is 2000 bytes, more than the 1000 bytes allowed"},
	} {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, tt.size); err != nil {
			t.Fatal(err)
		}
		_, err := ReadFile(p, tt.limit)
		if !errors.Is(err, ErrTooLarge) || err.Error() != p+tt.want {
			t.Errorf("ReadFile(%d bytes, limit %d) = %v, want %q", tt.size, tt.limit, err, p+tt.want)
		}
	}
}
