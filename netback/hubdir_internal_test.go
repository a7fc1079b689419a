package netback

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// testGID is a group the test may give files: any as root, else its own.
func testGID() int {
	if os.Geteuid() == 0 {
		return 4242
	}
	return os.Getgid()
}

// checkAccess fails unless path has mode and, when gid > 0, group gid.
func checkAccess(t *testing.T, path string, mode os.FileMode, gid int) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
	}
	if g := int(st.Sys().(*syscall.Stat_t).Gid); gid > 0 && g != gid {
		t.Errorf("%s: group %d, want %d", path, g, gid)
	}
}

// The default runtime directory and its parent are created mode 0711;
// existing ones are never narrowed, only stripped of group and world
// write access.
func TestPrepareRuntimeDir(t *testing.T) {
	tests := []struct {
		existing os.FileMode // 0: none
		want     os.FileMode
	}{
		{0, 0o711}, {0o700, 0o711}, {0o750, 0o751}, {0o755, 0o755}, {0o711, 0o711}, {0o777, 0o755}, {0o770, 0o751},
	}
	for _, tt := range tests {
		dir := filepath.Join(testsock.Dir(t), "smolvmm", "net")
		if tt.existing != 0 {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{dir, filepath.Dir(dir)} {
				if err := os.Chmod(d, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := prepareRuntimeDir(dir); err != nil {
			t.Fatal(err)
		}
		checkAccess(t, dir, tt.want, 0)
		checkAccess(t, filepath.Dir(dir), tt.want, 0)
	}
	if os.Geteuid() != 0 {
		return
	}
	// Made first by somebody else (anybody can, under /tmp).
	dir := filepath.Join(testsock.Dir(t), "smolvmm", "net")
	if err := prepareRuntimeDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(filepath.Dir(dir), 4243, -1); err != nil {
		t.Fatal(err)
	}
	// It said "remove it", which the user may not in a sticky /tmp:
	// what to do is the command's to say.
	if err := prepareRuntimeDir(dir); !errors.Is(err, ErrRuntimeDirForeign) || !strings.Contains(err.Error(), "belongs to uid 4243") || strings.Contains(err.Error(), "remove it") {
		t.Errorf("a runtime directory of another user: %v, want it refused as ErrRuntimeDirForeign, saying whose it is and no advice", err)
	}
}

// A symlink or other file at the runtime directory's path, or its
// parent's, is refused; as another user's (ErrRuntimeDirForeign, with its
// owner) when another user put it there, as a directory of theirs is: it
// was said only to be no directory, and the command gave no advice.
func TestPrepareRuntimeDirNotDir(t *testing.T) {
	const other = 4243
	tests := []struct {
		name    string
		parent  bool // planted at the parent's path, else the directory's
		file    bool // a regular file, else a symlink to a directory
		owner   int  // -1: this user
		foreign bool
		said    string // after the path
	}{
		{"own symlink", false, false, -1, false, " is not a directory"},
		{"own file, parent", true, true, -1, false, " is not a directory"},
		{"another's symlink", false, false, other, true, " is a symlink, not a directory, and belongs to uid 4243, not to this user"},
		{"another's symlink, parent", true, false, other, true, " is a symlink, not a directory, and belongs to uid 4243, not to this user"},
		{"another's file, parent", true, true, other, true, " is a regular file, not a directory, and belongs to uid 4243, not to this user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.owner >= 0 && os.Geteuid() != 0 {
				t.Skip("giving a file to another user takes root")
			}
			base := testsock.Dir(t)
			dir := filepath.Join(base, "smolvmm", "net")
			path := dir
			if tt.parent {
				path = filepath.Dir(dir)
			} else if err := os.Mkdir(filepath.Dir(dir), 0o711); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(base, "elsewhere")
			if err := os.Mkdir(target, 0o711); err != nil {
				t.Fatal(err)
			}
			if tt.file {
				if err := os.WriteFile(path, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			if tt.owner >= 0 {
				if err := os.Lchown(path, tt.owner, -1); err != nil {
					t.Fatal(err)
				}
			}
			err := prepareRuntimeDir(dir)
			if err == nil || errors.Is(err, ErrRuntimeDirForeign) != tt.foreign || !strings.Contains(err.Error(), path+tt.said) {
				t.Errorf("%v; want an error saying %q, ErrRuntimeDirForeign %v", err, path+tt.said, tt.foreign)
			}
		})
	}
}

// With a group, the socket is the group's too (0660); without, its
// owner's only.
func TestHubSocketGroup(t *testing.T) {
	for _, gid := range []int{0, testGID()} {
		sock := filepath.Join(testsock.Dir(t), "net.sock")
		h, err := NewHub(HubConfig{Socket: sock, Group: gid})
		if err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o600)
		if gid > 0 {
			mode = 0o660
		}
		checkAccess(t, sock, mode, gid)
		h.Close()
	}
}

// Only the default runtime directory is created: the directory of any
// other socket must exist (a mistyped path is an error, not a new tree).
func TestHubSocketDirMissing(t *testing.T) {
	missing := filepath.Join(testsock.Dir(t), "nonexist", "dir")
	_, err := NewHub(HubConfig{Socket: filepath.Join(missing, "x.sock")})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a socket in a missing directory: %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); err == nil {
		t.Errorf("NewHub made %s", filepath.Dir(missing))
	}
}

// Nobody can connect to a socket before its access is set, whatever the
// umask: when it is bound (its mode the umask's) nothing is at its path
// yet, and its directory there is its owner's only. It was bound in place,
// 0777 less the umask until it was given its mode, in a directory others
// may now pass through.
func TestHubSocketBoundPrivately(t *testing.T) {
	sock := filepath.Join(testsock.Dir(t), "n.sock")
	var checked bool
	h, err := newHub(HubConfig{Socket: sock}, hubHooks{bound: func(path string) {
		checked = true
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the socket's path when bound: %v, want nothing there", err)
		}
		if path == sock {
			return
		}
		checkAccess(t, filepath.Dir(path), 0o700, 0)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Error("bound was not called")
	}
	checkAccess(t, sock, 0o600, 0)
	// Nothing is left of the private directory, and Close removes the
	// socket (its lock file stays, as the lease file's).
	h.Close()
	left, err := os.ReadDir(filepath.Dir(sock))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		if e.Name() != "n.leases" && e.Name() != "n.leases.lock" && e.Name() != "n.sock.lock" {
			t.Errorf("left in the socket's directory: %s", e.Name())
		}
	}
}

// A hub never takes over the socket of another that started meanwhile:
// a listener put at the socket's path while a hub is between binding and
// putting its socket in place (a process that takes no lock of the
// directory: another hub waits for it) keeps its socket and the hub
// fails; and started together, exactly one of them runs. Before, the
// socket was renamed into place over any other, and the first hub ran
// on, unreachable.
func TestHubSocketNotTakenOver(t *testing.T) {
	t.Run("between bind and place", func(t *testing.T) {
		sock := filepath.Join(testsock.Dir(t), "n.sock")
		var other *net.UnixListener
		first, err := newHub(HubConfig{Socket: sock}, hubHooks{bound: func(string) {
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
			if err != nil {
				t.Errorf("the other listener: %v", err)
				return
			}
			other = ln
		}})
		if other == nil {
			t.Fatal("no other listener")
		}
		defer other.Close()
		if err == nil {
			first.Close()
			t.Fatal("the hub started over another listener")
		}
		if !errors.Is(err, ErrHubRunning) {
			t.Errorf("the hub: %v, want ErrHubRunning", err)
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("the other listener's socket: %v", err)
		}
		c.Close()
	})
	t.Run("together", func(t *testing.T) {
		for round := 0; round < 10; round++ {
			sock := filepath.Join(testsock.Dir(t), "n.sock")
			hubs, errs := startHubsTogether(sock)
			started := 0
			for i, h := range hubs {
				if errs[i] == nil {
					started++
					defer h.Close()
				}
			}
			if started != 1 {
				t.Fatalf("round %d: %d hubs started on one socket (%v)", round, started, errs)
			}
		}
	})
}

// Close removes the hub's socket, not one that replaced it.
func TestHubCloseLeavesOthersSocket(t *testing.T) {
	sock := filepath.Join(testsock.Dir(t), "n.sock")
	first, err := NewHub(HubConfig{Socket: sock})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	// Leases of its own: the first one's are locked.
	second, err := NewHub(HubConfig{Socket: sock, Leases: filepath.Join(filepath.Dir(sock), "second.leases")})
	if err != nil {
		first.Close()
		t.Fatal(err)
	}
	defer second.Close()
	first.Close()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("the second hub's socket after the first's Close: %v", err)
	}
	c.Close()
}
