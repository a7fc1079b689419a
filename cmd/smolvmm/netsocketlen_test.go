package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/netback"
)

// TestHubSocketTooLong: a network name whose socket in the default
// runtime directory is too long for a Unix socket's address is refused
// before any work, status 1, by net and by the commands that join it,
// saying what to shorten; run and up said only "connect: invalid
// argument" once the VM was built. A path given too long (--socket,
// --net user:PATH) is the flag's mistake, status 2, for all alike.
func TestHubSocketTooLong(t *testing.T) {
	// The default runtime directory is under XDG_RUNTIME_DIR for all but
	// root, whose is /run/smolvmm/net: as root, the commands run as
	// another user.
	exe, dir := smolvmmBin(t), t.TempDir()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		dir, exe, _ = binForOthers(t)
		cred = &syscall.Credential{Uid: 61237, Gid: 65534, Groups: []uint32{}} // no one's; nogroup
	}
	kernel := filepath.Join(dir, "spin")
	k := make([]byte, 48)
	magic, flags := uint32(0x1BADB002), uint32(0x00010003)
	for i, v := range []uint32{magic, flags, -(magic + flags), 0x100000, 0x100000, 0, 0x101000, 0x100020} {
		binary.LittleEndian.PutUint32(k[4*i:], v)
	}
	k[32], k[33] = 0xEB, 0xFE // jmp .
	if err := os.WriteFile(kernel, k, 0o644); err != nil {
		t.Fatal(err)
	}
	runtime := filepath.Join(dir, strings.Repeat("r", 80))
	sock := filepath.Join(runtime, "smolvmm", "net", "web.sock")
	if len(sock) <= netback.MaxSocketPath {
		t.Fatalf("%s: %d bytes, not too long", sock, len(sock))
	}
	long := filepath.Join(dir, strings.Repeat("p", netback.MaxSocketPath))
	tooLong := func(flag string) string {
		return fmt.Sprintf("%s: its socket %s is %d bytes long; a Unix socket's path has at most %d: give the network a shorter name, or set XDG_RUNTIME_DIR to a shorter directory of your own", flag, sock, len(sock), netback.MaxSocketPath)
	}
	pathTooLong := fmt.Sprintf("--net user:%s: the path is %d bytes long; a Unix socket's path has at most %d: give a shorter one", long, len(long), netback.MaxSocketPath)
	tests := []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"net --name", []string{"net", "--name", "web"}, 1, tooLong("--name web")},
		{"run user:NAME", []string{"run", "-k", kernel, "-m", "16", "--net", "user:web"}, 1, tooLong("--net user:web")},
		{"up user:NAME", []string{"up", "--net", "user:web", "rescue"}, 1, tooLong("--net user:web")},
		{"run user:PATH", []string{"run", "-k", kernel, "-m", "16", "--net", "user:" + long}, 2, pathTooLong},
		{"up user:PATH", []string{"up", "--net", "user:" + long, "rescue"}, 2, pathTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, tt.args...)
			cmd.Dir = dir
			var env []string
			for _, e := range os.Environ() {
				if !strings.HasPrefix(e, "XDG_RUNTIME_DIR=") && !strings.HasPrefix(e, "HOME=") {
					env = append(env, e)
				}
			}
			cmd.Env = append(env, "XDG_RUNTIME_DIR="+runtime, "HOME="+dir)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != tt.status || !strings.Contains(string(out), tt.want) || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
				t.Errorf("%q: %v, output %q; want status %d and one line with %q", tt.args, err, out, tt.status, tt.want)
			}
			if _, err := os.Stat(runtime); err == nil {
				t.Errorf("%q made the runtime directory %s", tt.args, runtime)
			}
		})
	}
}
