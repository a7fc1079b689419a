package netback

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// Only a dial refused (ECONNREFUSED) makes a socket file stale; a file
// gone meanwhile (ENOENT) is nothing to remove; any other failure is an
// error that says it was left. Before, every failed dial made the file
// stale, and a live hub's socket was removed.
func TestStaleSocket(t *testing.T) {
	const path = "/x/n.sock"
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errno)}
	}
	tests := []struct {
		name  string
		err   error
		stale bool
		said  string // what the error says; "" for none
	}{
		{name: "refused", err: opErr(syscall.ECONNREFUSED), stale: true},
		{name: "gone", err: opErr(syscall.ENOENT)},
		{name: "permission denied", err: opErr(syscall.EACCES), said: "shared network: /x/n.sock: cannot tell whether a network listens on it, so it is left: dial unix: connect: permission denied"},
		{name: "queue full", err: opErr(syscall.EAGAIN), said: "so it is left: dial unix: connect: resource temporarily unavailable"},
		{name: "timeout", err: &net.OpError{Op: "dial", Net: "unix", Err: os.ErrDeadlineExceeded}, said: "so it is left: dial unix: i/o timeout"},
		{name: "other", err: errors.New("odd"), said: "so it is left: odd"},
	}
	for _, tt := range tests {
		stale, err := staleSocket(path, tt.err)
		if stale != tt.stale {
			t.Errorf("%s: stale %v, want %v", tt.name, stale, tt.stale)
		}
		switch {
		case tt.said == "" && err != nil:
			t.Errorf("%s: %v, want no error", tt.name, err)
		case tt.said != "" && (err == nil || !strings.Contains(err.Error(), tt.said) || !errors.Is(err, tt.err)):
			t.Errorf("%s: %v, want an error wrapping the dial's, saying %q", tt.name, err, tt.said)
		}
	}
}

// A live listener whose queue is full refuses a dial with EAGAIN, not
// ECONNREFUSED: a hub starting beside it reports that and leaves its
// socket. Before, the socket of the busy hub was removed, and it ran on
// unreachable. (Another user's hub, EACCES, is the same case; root, as
// the tests run, is never refused so.)
func TestNewHubLeavesBusySocket(t *testing.T) {
	sock := filepath.Join(testsock.Dir(t), "n.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	// Fill its queue: no one accepts.
	for i := 0; ; i++ {
		c, err := net.Dial("unix", sock)
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil || i == 64 {
			t.Fatalf("filling the queue, dial %d: %v", i, err)
		}
		defer c.Close()
	}
	h, err := NewHub(HubConfig{Socket: sock})
	if err == nil {
		h.Close()
		t.Fatal("a hub started over a busy one")
	}
	if want := fmt.Sprintf("%s: cannot tell whether a network listens on it, so it is left", sock); !errors.Is(err, syscall.EAGAIN) || !strings.Contains(err.Error(), want) {
		t.Errorf("NewHub: %v; want EAGAIN saying %q", err, want)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("the busy listener's socket: %v", err)
	}
}

// Two hubs started together over a stale socket file: exactly one runs,
// reachable on its socket, the other says a network runs there. Before,
// the second one's check of the stale file could come after the first
// had replaced it, and it removed the first's live socket: the first ran
// on with no socket (about 1 start in 10).
func TestHubsStartTogetherOnStaleSocket(t *testing.T) {
	dir := testsock.Dir(t)
	sock := filepath.Join(dir, "n.sock")
	for round := 0; round < 50; round++ {
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close() // a hub that died left it
		hubs, errs := startHubsTogether(sock)
		var running *Hub
		for i, h := range hubs {
			switch {
			case errs[i] == nil && running == nil:
				running = h
			case errs[i] == nil:
				h.Close()
				t.Errorf("round %d: both hubs started", round)
			case !errors.Is(errs[i], ErrHubRunning):
				t.Errorf("round %d: the hub that lost: %v, want ErrHubRunning", round, errs[i])
			}
		}
		if running == nil {
			t.Fatalf("round %d: no hub started: %v", round, errs)
		}
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		} else {
			t.Errorf("round %d: the running hub's socket: %v", round, err)
		}
		running.Close()
	}
}

// Another user's live hub in a directory open to all, whose socket this
// user may not connect to (EACCES), keeps its socket. Root is never
// refused so: as root, the hub starts on a thread whose filesystem uid is
// nobody's, which takes root's permission overrides from it alone.
func TestNewHubLeavesSocketDenied(t *testing.T) {
	dir, err := os.MkdirTemp("", "hubdenied")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "n.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chmod(sock, 0); err != nil {
		t.Fatal(err)
	}
	h, err := newHubAsNobody(HubConfig{Socket: sock})
	if err == nil {
		h.Close()
		t.Fatal("a hub started over a live one")
	}
	if !errors.Is(err, syscall.EACCES) || !strings.Contains(err.Error(), "so it is left") {
		t.Errorf("NewHub: %v; want EACCES saying the socket is left", err)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("the live listener's socket: %v", err)
	}
}

// newHubAsNobody runs NewHub as it is, or as root on a thread of its own
// whose filesystem uid is 65534 (setfsuid acts on the calling thread
// only). The thread is never unlocked, so it ends with its goroutine and
// no other goroutine runs with that uid.
func newHubAsNobody(cfg HubConfig) (*Hub, error) {
	if os.Geteuid() != 0 {
		return NewHub(cfg)
	}
	type result struct {
		h   *Hub
		err error
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread()
		if _, _, errno := syscall.RawSyscall(syscall.SYS_SETFSUID, 65534, 0, 0); errno != 0 {
			done <- result{err: fmt.Errorf("setfsuid: %w", errno)}
			return
		}
		h, err := NewHub(cfg)
		done <- result{h, err}
	}()
	r := <-done
	return r.h, r.err
}

// startHubsTogether starts two hubs on sock at once, and returns each
// one's hub and error.
func startHubsTogether(sock string) ([]*Hub, []error) {
	hubs := make([]*Hub, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range hubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hubs[i], errs[i] = NewHub(HubConfig{Socket: sock})
		}()
	}
	wg.Wait()
	return hubs, errs
}
