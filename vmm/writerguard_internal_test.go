package vmm

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/snapshot"
)

// Writers that panic in one of the methods snapshot.WriteMeta calls.
type (
	okWrite     struct{}
	panicWrite  struct{}
	panicSeek   struct{ okWrite }
	panicStat   struct{ okWrite }
	panicConn   struct{ okWrite }
	panicRaw    struct{ okWrite }
	panicRawCon struct{}
)

func (okWrite) Write(p []byte) (int, error)             { return len(p), nil }
func (panicWrite) Write([]byte) (int, error)            { panic("write broke") }
func (panicSeek) Seek(int64, int) (int64, error)        { panic("seek broke") }
func (panicStat) Seek(int64, int) (int64, error)        { return 0, nil }
func (panicStat) Stat() (os.FileInfo, error)            { panic("stat broke") }
func (panicConn) SyscallConn() (syscall.RawConn, error) { panic("conn broke") }
func (panicRaw) SyscallConn() (syscall.RawConn, error)  { return panicRawCon{}, nil }
func (panicRawCon) Control(func(uintptr)) error         { panic("control broke") }
func (panicRawCon) Read(func(uintptr) bool) error       { return nil }
func (panicRawCon) Write(func(uintptr) bool) error      { return nil }

// TestWriterGuard: a panic in any call WriteMeta makes into the
// caller's writer (Write, Seek, Stat, SyscallConn, its RawConn's
// Control) is a *WriterPanicError with the writer's value; a panic of
// smolvmm's own, in WriteMeta's code or in the function it gives the
// writer's RawConn, goes on.
func TestWriterGuard(t *testing.T) {
	m := &Machine{gmem: guestmem.New(make([]byte, 4096))}
	mem := make([]byte, snapshot.PageSize)
	mem[0] = 1
	write := func(w io.Writer) func() (int64, error) {
		return func() (int64, error) { return snapshot.WriteMeta(guardWriter(w), snapshot.Meta{}, nil, mem, nil) }
	}
	for _, tc := range []struct {
		name   string
		fn     func() (int64, error)
		writer any // the WriterPanicError's value, or nil
		own    any // the panic that goes on, or nil
	}{
		{"Write", write(panicWrite{}), "write broke", nil},
		{"Seek", write(panicSeek{}), "seek broke", nil},
		{"Stat", write(panicStat{}), "stat broke", nil},
		{"SyscallConn", write(panicConn{}), "conn broke", nil},
		{"RawConn Control", write(panicRaw{}), "control broke", nil},
		{"smolvmm's own", func() (int64, error) { panic("smolvmm bug") }, nil, "smolvmm bug"},
		{"smolvmm's own after a write", func() (int64, error) {
			guardWriter(okWrite{}).Write([]byte("x"))
			panic("smolvmm bug")
		}, nil, "smolvmm bug"},
		{"smolvmm's own in a RawConn callback", func() (int64, error) {
			f, err := os.Create(filepath.Join(t.TempDir(), "snap"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rc, err := guardWriter(f).(syscall.Conn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			return 0, rc.Control(func(uintptr) { panic("callback bug") })
		}, nil, "callback bug"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p any
			var err error
			func() {
				defer func() { p = recover() }()
				_, err = m.writerGuard(tc.fn)
			}()
			if p != tc.own {
				t.Fatalf("panic %v; want %v", p, tc.own)
			}
			if tc.writer == nil {
				return
			}
			var wp *WriterPanicError
			if !errors.As(err, &wp) || wp.Value != tc.writer || len(wp.Stack) == 0 {
				t.Fatalf("err = %v; want a *WriterPanicError of %q with a stack", err, tc.writer)
			}
		})
	}
}

// TestGuardWriterMethods: the guarded writer has the methods WriteMeta
// looks for exactly when the writer does, so a file keeps its holes and
// its O_APPEND check.
func TestGuardWriterMethods(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "snap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		name             string
		w                io.Writer
		seek, stat, conn bool
	}{
		{"file", f, true, true, true},
		{"plain writer", okWrite{}, false, false, false},
		{"seeker", panicSeek{}, true, false, false},
		{"seeker with Stat", panicStat{}, true, true, false},
		{"conn", panicConn{}, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := guardWriter(tc.w)
			_, seek := g.(io.Seeker)
			_, stat := g.(statWriter)
			_, conn := g.(syscall.Conn)
			if seek != tc.seek || stat != tc.stat || conn != tc.conn {
				t.Errorf("Seek %v, Stat %v, SyscallConn %v; want %v, %v, %v", seek, stat, conn, tc.seek, tc.stat, tc.conn)
			}
		})
	}
}
