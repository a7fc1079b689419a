package imagebuilder

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/internal/hostdir"
)

// TestDataOpenError: an entry the copy cannot open is a change since the
// scan only when it is one (another kind of file there, or none); a
// permission refused is said as that, and any other fault as itself.
// Every open error was "X changed while the image was built (it was a
// regular file when scanned): open X: ...".
func TestDataOpenError(t *testing.T) {
	perr := func(e syscall.Errno) error { return &os.PathError{Op: "open", Path: "d/f", Err: e} }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"now a FIFO", &hostdir.KindError{Path: "d/f", Mode: fs.ModeNamedPipe}, "d/f changed while the image was built (it was a regular file when scanned): it is now a FIFO"},
		{"gone", perr(syscall.ENOENT), "d/f changed while the image was built (it was a regular file when scanned): open d/f: no such file or directory"},
		{"unreadable", perr(syscall.EACCES), "file d/f cannot be read: permission denied"},
		{"descriptors", perr(syscall.EMFILE), "open d/f: too many open files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := openError("d/f", 0, tt.err)
			if err.Error() != tt.want {
				t.Errorf("got  %q\nwant %q", err, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
		})
	}
}
