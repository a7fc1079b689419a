package filekind

import (
	"io/fs"
	"testing"
)

func TestOf(t *testing.T) {
	for _, tt := range []struct {
		mode fs.FileMode
		want string
	}{
		{0o644, "a regular file"},
		{fs.ModeDir | 0o755, "a directory"},
		{fs.ModeDevice | fs.ModeCharDevice | 0o666, "a character device"},
		{fs.ModeDevice | 0o660, "a block device"},
		{fs.ModeNamedPipe | 0o600, "a FIFO"},
		{fs.ModeSocket | 0o777, "a socket"},
		{fs.ModeSymlink | 0o777, "a symlink"},
		{fs.ModeIrregular, "an irregular file"},
	} {
		if got := Of(tt.mode); got != tt.want {
			t.Errorf("Of(%v) = %q, want %q", tt.mode, got, tt.want)
		}
	}
}
