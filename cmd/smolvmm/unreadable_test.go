package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

var (
	openBinOnce sync.Once
	openBin     string
	openBinErr  error
)

// asUnprivileged is a command running smolvmm with args as a user for
// whom a file of mode 000 is unreadable: nobody when the test runs as
// root (as CI does), the test's own user otherwise. The binary is copied
// where nobody may run it.
func asUnprivileged(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	bin := smolvmmBin(t)
	if os.Geteuid() != 0 {
		return exec.Command(bin, args...)
	}
	nobody := nobodyUser(t) // contain_test.go
	openBinOnce.Do(func() {
		dir, err := binTempDir("smolvmm-testbin-nobody")
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		if err == nil {
			openBin = filepath.Join(dir, "smolvmm")
			err = copyFile(bin, openBin)
		}
		openBinErr = err
	})
	if openBinErr != nil {
		t.Fatal(openBinErr)
	}
	cmd := exec.Command(openBin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(nobody.UID), Gid: uint32(nobody.GID), Groups: []uint32{}}}
	return cmd
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// openTempDir is a temporary directory every user may look into (mode
// 0755, its parent too) or, with writable, write to (mode 0777). It is in a
// socketDir: tests listen on sockets in it.
func openTempDir(t *testing.T, writable bool) string {
	t.Helper()
	dir := filepath.Join(testsock.Dir(t), "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o755)
	if writable {
		mode = 0o777
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
	}
	// Chmod, not the umask, decides a writable one's mode.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runStatus runs cmd and returns its status and standard error.
func runStatus(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// TestDataUnreadable: a file or directory of mkimg --data that the user
// may not read is refused by the scan, before any image is written, with
// what cannot be read and what to do. A file was reported only when the
// build reached it, and as a change: "data/secret changed while the image
// was built (it was a regular file when scanned): open data/secret:
// permission denied"; a directory as "reading data/sub: open data/sub:
// permission denied".
func TestDataUnreadable(t *testing.T) {
	const advice = " cannot be read: permission denied (make it readable by the user smolvmm runs as, with chmod, or move it out of the directory given with --data or --share)"
	tests := []struct {
		name string
		path string // made unreadable, below the data directory
		mode os.FileMode
		want string // stderr, after "smolvmm mkimg: " and the data directory
	}{
		{"file", "secret", 0, "file %s/secret" + advice},
		{"directory", "sub", 0, "directory %s/sub" + advice},
		{"directory, not searchable", "sub", 0o644, "directory %s/sub" + advice},
		{"the data directory", ".", 0, "directory %s" + advice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, out := openTempDir(t, false), openTempDir(t, true)
			if err := os.Mkdir(filepath.Join(data, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"secret", "sub/f", "z"} {
				if err := os.WriteFile(filepath.Join(data, f), []byte("data\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(data, tt.path)
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(p, 0o755)
			mkimgRefusedAsNobody(t, out, strings.ReplaceAll(tt.want, "%s", data), "--data", data, "-i", filepath.Join(out, "d.img"))
		})
	}
}

// TestSetDirUnreadable: a directory set the user may not read is refused
// as an entry of it is, naming it and saying what to do. The set's own
// directory was "set D: reading D: open D: permission denied", with no
// advice, then "set D: directory D cannot be read", naming it twice.
func TestSetDirUnreadable(t *testing.T) {
	const advice = " cannot be read: permission denied (a directory given with -x is read with the permissions of the user smolvmm runs as: build as root, or give -x the set's archive (.tgz, .tar.xz) instead)"
	tests := []struct {
		name string
		path string // made unreadable, below the set
		mode os.FileMode
		want string // stderr after "smolvmm mkimg: ", %s the set
	}{
		{"the set's directory", ".", 0, "set directory %s" + advice},
		{"the set's directory, search only", ".", 0o111, "set directory %s" + advice},
		{"a file in it", "etc/secret", 0, "set %s: file %s/etc/secret" + advice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, out := filepath.Join(openTempDir(t, false), "set"), openTempDir(t, true)
			if err := os.MkdirAll(filepath.Join(set, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(set, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(set, "etc/secret"), []byte("x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(set, tt.path)
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(p, 0o755)
			mkimgRefusedAsNobody(t, out, strings.ReplaceAll(tt.want, "%s", set), "-x", set, "-i", filepath.Join(out, "s.img"))
		})
	}
}

// TestServiceUnreadable: a part of a --service-dir service the user may
// not read is refused naming its host path, with what to do. They were
// "service my in D: openat my: permission denied" and "service my: openat
// etc/priv: permission denied", a path relative to the service, with no
// advice.
func TestServiceUnreadable(t *testing.T) {
	const advice = " cannot be read: permission denied (a directory given with --service-dir is read with the permissions of the user smolvmm runs as: make it readable by that user, with chmod, or build as root)"
	tests := []struct {
		name string
		path string // made unreadable, below the --service-dir directory
		want string // stderr after "smolvmm mkimg: ", %s the --service-dir directory
	}{
		{"the service's directory", "my", "service my: directory %s/my" + advice},
		{"a file of its etc/", "my/etc/priv", "service my: file %s/my/etc/priv" + advice},
		{"its etc/", "my/etc", "service %[1]s/my: directory %[1]s/my/etc" + advice},
		{"the directory given", ".", "service directory: directory %s" + advice},
		{"a common file", "common/priv", "common files: file %s/common/priv" + advice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top, out := openTempDir(t, false), openTempDir(t, true)
			set, svcs := filepath.Join(top, "set"), filepath.Join(top, "svcs")
			for _, d := range []string{"set/etc", "svcs/my/etc", "svcs/common"} {
				if err := os.MkdirAll(filepath.Join(top, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for f, c := range map[string]string{"set/etc/motd": "hi\n", "svcs/my/etc/rc": "sh\n", "svcs/my/etc/priv": "x\n", "svcs/common/priv": "x\n"} {
				if err := os.WriteFile(filepath.Join(top, f), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// Chmod, not the umask, decides what nobody may read.
			if err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				return os.Chmod(p, d.Type().Perm()|0o755)
			}); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(svcs, tt.path)
			if err := os.Chmod(p, 0); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(p, 0o755)
			mkimgRefusedAsNobody(t, out, fmt.Sprintf(tt.want, svcs), "-x", set, "--service-dir", svcs, "-s", "my", "-i", filepath.Join(out, "s.img"))
		})
	}
}

// mkimgRefusedAsNobody runs mkimg with args as an unprivileged user
// (asUnprivileged), which must fail, status 1, saying only want, and leave
// nothing in out.
func mkimgRefusedAsNobody(t *testing.T, out, want string, args ...string) {
	t.Helper()
	code, stderr := runStatus(t, asUnprivileged(t, append([]string{"mkimg"}, args...)...))
	if want = "smolvmm mkimg: " + want + "\n"; code != 1 || stderr != want {
		t.Errorf("status %d, stderr:\n%s\nwant status 1 and\n%s", code, stderr, want)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("left in %s: %v", out, left)
	}
}
