package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// A network that a group's members join is said, in its start line, by
// its socket's path: another user's --net user:NAME reads NAME in their
// own runtime directory.
func TestNetJoinValue(t *testing.T) {
	sock := filepath.Join(netback.HubDir(), "web.sock")
	tests := []struct {
		name     string
		bySocket bool
		group    bool
		want     string
	}{
		{"--name", false, false, "web"},
		{"--name --group", false, true, sock},
		{"--socket", true, false, sock},
		{"--socket --group", true, true, sock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := joinValue("web", tt.bySocket, tt.group, sock); got != tt.want {
				t.Errorf("joinValue = %q, want %q", got, tt.want)
			}
		})
	}
}

// run's --net user:NAME, with no network NAME of this user's but root's
// socket of that name there, says how to join root's.
func TestNoHubErrorRootSocket(t *testing.T) {
	dir := testsock.Dir(t)
	old := rootHubDirFor
	rootHubDirFor = func() string { return dir }
	defer func() { rootHubDirFor = old }()
	ln, err := net.Listen("unix", filepath.Join(dir, "web.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tests := []struct {
		spec, want, not string
	}{
		{"user:web", "join it with --net user:" + filepath.Join(dir, "web.sock"), ""},
		{"user:other", "start it with: smolvmm net --name other", "join it with"},
		{"user:" + filepath.Join(dir, "x.sock"), "start it with: smolvmm net --socket ", "join it with"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			msg := noHubError(tt.spec, netback.ErrNoHub).Error()
			if !strings.Contains(msg, tt.want) || tt.not != "" && strings.Contains(msg, tt.not) {
				t.Errorf("noHubError(%s) = %q, want %q, without %q", tt.spec, msg, tt.want, tt.not)
			}
			if !errors.Is(noHubError(tt.spec, netback.ErrNoHub), netback.ErrNoHub) {
				t.Error("ErrNoHub not wrapped")
			}
		})
	}
}

// run's --net user:PATH, with a file of another kind at PATH, says what
// is there: the start line it gave, smolvmm net --socket PATH, is
// refused for such a file.
func TestNoHubErrorNotASocket(t *testing.T) {
	dir := t.TempDir()
	file, fifo := filepath.Join(dir, "file"), filepath.Join(dir, "fifo")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	const notRunning = ": shared network is not running; "
	tests := []struct{ path, want string }{
		{file, "--net user:" + file + notRunning + file + " is a regular file, not a socket, and smolvmm net would not replace it: give the path of a running network's socket"},
		{fifo, "--net user:" + fifo + notRunning + fifo + " is a FIFO, not a socket, and smolvmm net would not replace it: give the path of a running network's socket"},
		{dir, "--net user:" + dir + notRunning + dir + " is a directory, not a socket, and smolvmm net would not replace it: give the path of a network's socket, such as " +
			filepath.Join(dir, "net.sock") + ", started with: smolvmm net --socket " + filepath.Join(dir, "net.sock")},
		{filepath.Join(dir, "none.sock"), "--net user:" + filepath.Join(dir, "none.sock") + notRunning + "start it with: smolvmm net --socket " + filepath.Join(dir, "none.sock")},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			err := noHubError("user:"+tt.path, netback.ErrNoHub)
			if err.Error() != tt.want || !errors.Is(err, netback.ErrNoHub) {
				t.Errorf("noHubError = %q, want %q, wrapping ErrNoHub", err, tt.want)
			}
		})
	}
}

// run's --net user:PATH with a relative PATH is told to start the network
// with its absolute path: one written from ~ (a directory named ~ in the
// working directory) would be expanded by the shell, and any relative one
// names another socket from another directory.
func TestNoHubErrorAbsolutePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, sub := range []string{"~", "d"} {
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const notRunning = ": shared network is not running; "
	tests := []struct{ path, want string }{
		{"~/x.sock", "--net user:~/x.sock" + notRunning + "start it with: smolvmm net --socket " + filepath.Join(dir, "~/x.sock")},
		{"./x.sock", "--net user:./x.sock" + notRunning + "start it with: smolvmm net --socket " + filepath.Join(dir, "x.sock")},
		{"d", "--net user:d" + notRunning + "start it with: smolvmm net --name d"},
		{"d/", "--net user:d/" + notRunning + "d/ is a directory, not a socket, and smolvmm net would not replace it: give the path of a network's socket, such as " +
			filepath.Join(dir, "d/net.sock") + ", started with: smolvmm net --socket " + filepath.Join(dir, "d/net.sock")},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			err := noHubError("user:"+tt.path, netback.ErrNoHub)
			if err.Error() != tt.want || !errors.Is(err, netback.ErrNoHub) {
				t.Errorf("noHubError = %q, want %q, wrapping ErrNoHub", err, tt.want)
			}
		})
	}
}

// A network that its name led to but that is another user's is said
// with what to do: of a directory another user made, remove it or use a
// runtime directory of this user's; of another user's process listening
// in this user's directory, close the directory to others.
func TestForeignHubAdvice(t *testing.T) {
	const sock = "/tmp/smolvmm-1000/net/web.sock"
	tests := []struct {
		path, want string
	}{
		{"/tmp/smolvmm-1000", "another user may have made /tmp/smolvmm-1000 to receive this user's VMs: have root remove it, or set XDG_RUNTIME_DIR"},
		{"/tmp/smolvmm-1000/net", "another user may have made /tmp/smolvmm-1000/net to receive"},
		{sock, "another user's process listens in this user's directory /tmp/smolvmm-1000/net: make sure no other user may write it"},
	}
	for _, tt := range tests {
		if got := foreignHubAdvice(&netback.ForeignHubError{Socket: sock, Path: tt.path, UID: 4321, Self: 1000}); !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.path, got, tt.want)
		}
	}
}
