//go:build linux && amd64

package sandbox

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestFilterReadFiles: with ReadFiles, openat opens for reading only,
// whatever else its flags say (close-on-exec, no symlink, non-blocking,
// a directory); an open to write, create, empty or append to a file, or
// a temporary file, is trapped (refused in a cgo build), as every open
// is without ReadFiles. Only the low half of the flags counts: the
// kernel reads an int.
func TestFilterReadFiles(t *testing.T) {
	const at = unix.AT_FDCWD & 0xffffffff
	for _, tt := range []struct {
		name      string
		readFiles bool
		nr        int
		flags     uint64
		want      uint32
	}{
		{"read", true, unix.SYS_OPENAT, unix.O_RDONLY, retAllow},
		{"read, close-on-exec", true, unix.SYS_OPENAT, unix.O_RDONLY | unix.O_CLOEXEC, retAllow},
		{"read, no symlink, non-blocking, no tty", true, unix.SYS_OPENAT, unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC, retAllow},
		{"read a directory", true, unix.SYS_OPENAT, unix.O_DIRECTORY | unix.O_CLOEXEC, retAllow},
		{"read, high half set", true, unix.SYS_OPENAT, 0xffffffff00000000 | unix.O_CLOEXEC, retAllow},
		{"write", true, unix.SYS_OPENAT, unix.O_WRONLY | unix.O_CLOEXEC, openatVerdict},
		{"read and write", true, unix.SYS_OPENAT, unix.O_RDWR, openatVerdict},
		{"access mode 3", true, unix.SYS_OPENAT, unix.O_WRONLY | unix.O_RDWR, openatVerdict},
		{"create", true, unix.SYS_OPENAT, unix.O_RDONLY | unix.O_CREAT, openatVerdict},
		{"create exclusive", true, unix.SYS_OPENAT, unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_CLOEXEC, openatVerdict},
		{"truncate", true, unix.SYS_OPENAT, unix.O_RDONLY | unix.O_TRUNC, openatVerdict},
		{"append", true, unix.SYS_OPENAT, unix.O_RDONLY | unix.O_APPEND, openatVerdict},
		{"temporary file", true, unix.SYS_OPENAT, unix.O_TMPFILE | unix.O_RDWR, openatVerdict},
		{"temporary file's bit alone", true, unix.SYS_OPENAT, unix.O_TMPFILE &^ unix.O_DIRECTORY, openatVerdict},
		{"read without ReadFiles", false, unix.SYS_OPENAT, unix.O_RDONLY | unix.O_CLOEXEC, openatVerdict},
		{"openat2", true, unix.SYS_OPENAT2, 0, retTrap},
		{"open", true, unix.SYS_OPEN, unix.O_RDONLY, retTrap},
		{"fstat", true, unix.SYS_FSTAT, 0, retAllow},
		{"read(2)", true, unix.SYS_READ, 0, retAllow},
		{"close", true, unix.SYS_CLOSE, 0, retAllow},
		{"newfstatat by name", true, unix.SYS_NEWFSTATAT, 0, retTrap},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := verdict(t, Filter{ReadFiles: tt.readFiles}, auditArchX8664, tt.nr, at, 0x1000, tt.flags, 0o644) // sandbox_test.go
			if got != tt.want {
				t.Errorf("verdict %#x, want %#x", got, tt.want)
			}
		})
	}
}

// TestFilterReadFilesAndRenameDir: a broker's filter with both a
// renaming directory and ReadFiles assembles (one rule per call) and
// keeps both: newfstatat in the directory, read-only opens anywhere.
func TestFilterReadFilesAndRenameDir(t *testing.T) {
	f := Filter{RenameDir: 4, ReadFiles: true}
	for _, quiet := range []bool{false, true} {
		vm := rulesVM(t, f.rules(1, quiet)) // tree_test.go
		refused := uint32(retTrap)
		if quiet {
			refused = retErrno | uint32(unix.EACCES)
		}
		for _, c := range []struct {
			nr   int
			args []uint64
			want uint32
		}{
			{unix.SYS_NEWFSTATAT, []uint64{4, 0, 0, 0}, retAllow},
			{unix.SYS_OPENAT, []uint64{4, 0, unix.O_RDONLY | unix.O_CLOEXEC}, retAllow},
			{unix.SYS_OPENAT, []uint64{4, 0, unix.O_WRONLY | unix.O_CREAT | unix.O_CLOEXEC}, refused},
		} {
			got, err := vm.Run(seccompData(auditArchX8664, c.nr, c.args...))
			if err != nil {
				t.Fatal(err)
			}
			if uint32(got) != c.want {
				t.Errorf("cgo %v: call %d%v: verdict %#x, want %#x", quiet, c.nr, c.args, got, c.want)
			}
		}
	}
}
