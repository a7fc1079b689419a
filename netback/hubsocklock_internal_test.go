package netback

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// TestHubSocketLockNotOthers: a hub's start took the flock of its socket's
// directory, which any user who may read the directory can hold through a
// read-only descriptor (flock -x DIR sleep 30): the network failed to
// start ("its directory ... has been locked for 5s"). It locks a file of
// its own, mode 0600, beside the socket: a lock held on the directory
// does not hold it up, and a lock file another user owns (who could hold
// it) or a symbolic link is refused, saying so.
func TestHubSocketLockNotOthers(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, sock string)
		wantErr string
	}{
		{"directory locked by another process", func(t *testing.T, sock string) {
			fd, err := unix.Open(filepath.Dir(sock), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(fd) })
			if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"lock file left 0644", func(t *testing.T, sock string) {
			if err := os.WriteFile(socketLock(sock), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(socketLock(sock), 0o644); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"lock file a symbolic link", func(t *testing.T, sock string) {
			if err := os.Symlink("elsewhere", socketLock(sock)); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link"},
		{"lock file another user's", func(t *testing.T, sock string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a file to another user")
			}
			if err := os.WriteFile(socketLock(sock), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(socketLock(sock), 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "belongs to uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(testsock.Dir(t), "n.sock")
			tt.prepare(t, sock)
			start := time.Now()
			h, err := NewHub(HubConfig{Socket: sock})
			if tt.wantErr != "" {
				if err == nil {
					h.Close()
					t.Fatalf("NewHub started; want an error saying %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewHub: %v; want it to say %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewHub: %v", err)
			}
			defer h.Close()
			if d := time.Since(start); d > socketLockWait/2 {
				t.Errorf("NewHub took %v", d)
			}
			checkAccess(t, socketLock(sock), 0o600, 0)
		})
	}
}
