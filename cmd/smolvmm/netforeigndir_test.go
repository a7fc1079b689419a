package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNetRuntimeDirForeign: another user made /tmp/smolvmm-UID first (as
// anybody may under /tmp); the network said "remove it", which its user
// may not in a sticky /tmp (EPERM). It says whose it is, and what its user
// can do: a runtime directory or a socket of their own, or ask that user
// or root. The same for a symlink or a file made there: those were said
// only to be no directory, without whose they were or what to do.
func TestNetRuntimeDirForeign(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the network as one user in a directory another made")
	}
	const uid = 61237 // no one's
	tests := []struct {
		name string
		make func(path string) error
		what string // how the message names it, after its path
	}{
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }, ""},
		{"symlink", func(p string) error { return os.Symlink("/", p) }, " is a symlink, not a directory, and"},
		{"dangling symlink", func(p string) error { return os.Symlink("/nonexistent-smolvmm", p) }, " is a symlink, not a directory, and"},
		{"file", func(p string) error { return os.WriteFile(p, nil, 0o644) }, " is a regular file, not a directory, and"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, exe, tmp := binForOthers(t)
			// The user's directory in /tmp, made by root.
			foreign := filepath.Join(tmp, fmt.Sprintf("smolvmm-%d", uid))
			if err := tt.make(foreign); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "net", "--name", "web")
			cmd.Dir = dir
			var env []string
			for _, e := range os.Environ() {
				if !strings.HasPrefix(e, "XDG_RUNTIME_DIR=") && !strings.HasPrefix(e, "TMPDIR=") {
					env = append(env, e)
				}
			}
			cmd.Env = append(env, "TMPDIR="+tmp)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: 65534}}
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			want := []string{
				fmt.Sprintf("runtime directory is another user's: %s%s belongs to uid 0, not to this user (uid %d)", foreign, tt.what, uid),
				"set XDG_RUNTIME_DIR to a directory of your own, give --socket in a directory of your own, or ask that user or root to remove it",
			}
			for _, w := range want {
				if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), w) {
					t.Errorf("net as uid %d: %v, output %q; want status 1 saying %q", uid, err, out, w)
				}
			}
			if strings.Contains(string(out), ": remove it") {
				t.Errorf("output %q tells the user to remove a directory they may not", out)
			}
		})
	}
}

// binForOthers copies the smolvmm binary where other users may run it
// (the test's is in a directory of root's alone): exe in dir (0755), and
// tmp in it, sticky and open to all as /tmp is.
func binForOthers(t *testing.T) (dir, exe, tmp string) {
	t.Helper()
	dir, err := binTempDir("smolvmm-testbin-others")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(smolvmmBin(t))
	if err != nil {
		t.Fatal(err)
	}
	exe, tmp = filepath.Join(dir, "smolvmm"), filepath.Join(dir, "tmp")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{dir: 0o755, exe: 0o755, tmp: 0o777 | os.ModeSticky} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir, exe, tmp
}
