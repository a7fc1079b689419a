package netback

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// startDials are the ways a VM's command dials a shared network: Join (run
// --net user:NAME) and HubPID (up's and bench's probe before any work),
// each returning the dial's error.
var startDials = []struct {
	name string
	dial func(socket string) error
}{
	{"Join", func(socket string) error {
		j, err := Join(socket, net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}, nil)
		if err == nil {
			j.Close()
		}
		return err
	}},
	{"HubPID", func(socket string) error {
		pid, err := HubPID(socket)
		if err == nil && pid != os.Getpid() {
			return fmt.Errorf("HubPID %d; want this process's, %d", pid, os.Getpid())
		}
		return err
	}},
}

// setHubStart sets hubStartSleep, hubStartWaitFor and hubStartGraceFor
// (zero: left as they are) for the test.
func setHubStart(t *testing.T, sleep func(time.Duration), wait, grace time.Duration) {
	t.Helper()
	oldSleep, oldWait, oldGrace := hubStartSleep, hubStartWaitFor, hubStartGraceFor
	t.Cleanup(func() { hubStartSleep, hubStartWaitFor, hubStartGraceFor = oldSleep, oldWait, oldGrace })
	if sleep != nil {
		hubStartSleep = sleep
	}
	if wait != 0 {
		hubStartWaitFor = wait
	}
	if grace != 0 {
		hubStartGraceFor = grace
	}
}

// TestDialWaitsForStartingHub: a VM started together with its network
// (smolvmm net --name web &, then at once smolvmm run --net user:web, as
// the README and docs/network.md show) found nothing on the socket yet and failed with
// "shared network is not running", 3 starts in 12. A dial that finds
// nothing while a hub's start holds the socket's lock (HoldHubStart, as
// smolvmm net does from its start until it listens) waits for the hub.
func TestDialWaitsForStartingHub(t *testing.T) {
	for _, d := range startDials {
		t.Run(d.name, func(t *testing.T) {
			sock := filepath.Join(testsock.Dir(t), "n.sock")
			release, err := HoldHubStart(sock)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			// The first wait between dials: the dial found nothing.
			waiting := make(chan struct{})
			var once sync.Once
			setHubStart(t, func(d time.Duration) {
				once.Do(func() { close(waiting) })
				time.Sleep(d)
			}, 0, 0)
			done := make(chan error, 1)
			go func() { done <- d.dial(sock) }()
			select {
			case <-waiting:
			case err := <-done:
				t.Fatalf("%s before the hub listened: %v; want it to wait for the hub starting", d.name, err)
			}
			h, err := NewHub(HubConfig{Socket: sock})
			release()
			if err != nil {
				t.Fatalf("NewHub under the held start: %v", err)
			}
			defer h.Close()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s once the hub listened: %v", d.name, err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%s still waiting 20 s after the hub listened", d.name)
			}
		})
	}
}

// TestDialNoHubFailsAtOnce: with no hub starting, a dial that finds
// nothing on the socket fails with ErrNoHub as before the wait for a
// starting hub, within the grace, not the start's wait: no socket file,
// a stale one (refused), or a lock file that nobody holds (a hub that
// stopped); and, where a hub's start holds the lock and never listens,
// it gives up after hubStartWaitFor.
func TestDialNoHubFailsAtOnce(t *testing.T) {
	tests := []struct {
		name string
		// prepare readies the socket's directory; held: a hub's start
		// holds the lock, and the dial waits hubStartWaitFor.
		prepare func(t *testing.T, sock string)
		held    bool
		errno   unix.Errno
	}{
		{"no socket", func(*testing.T, string) {}, false, unix.ENOENT},
		{"stale socket", func(t *testing.T, sock string) {
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			ln.Close()
		}, false, unix.ECONNREFUSED},
		{"lock free", func(t *testing.T, sock string) {
			if err := os.WriteFile(socketLock(sock), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, false, unix.ENOENT},
		{"start held, never listening", func(t *testing.T, sock string) {
			release, err := HoldHubStart(sock)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(release)
		}, true, unix.ENOENT},
	}
	const wait = 400 * time.Millisecond
	setHubStart(t, nil, wait, 50*time.Millisecond)
	for _, tt := range tests {
		for _, d := range startDials {
			t.Run(tt.name+"/"+d.name, func(t *testing.T) {
				sock := filepath.Join(testsock.Dir(t), "n.sock")
				tt.prepare(t, sock)
				start := time.Now()
				err := d.dial(sock)
				took := time.Since(start)
				if !errors.Is(err, ErrNoHub) || !errors.Is(err, tt.errno) {
					t.Fatalf("%s: %v; want ErrNoHub, with %v", d.name, err, tt.errno)
				}
				if want := "shared network is not running: nothing answers on " + sock + ": "; !strings.HasPrefix(err.Error(), want) {
					t.Errorf("%s: %q; want it to start %q", d.name, err, want)
				}
				switch {
				case tt.held && took < wait:
					t.Errorf("%s failed after %v while a hub's start held the lock; want it to wait %v", d.name, took, wait)
				case !tt.held && took >= wait:
					t.Errorf("%s failed after %v with no hub starting; want it to fail within the grace, %v", d.name, took, hubStartGraceFor)
				}
			})
		}
	}
}

// TestHoldHubStart: the held start is the one NewHub uses in this process
// (NewHub's own flock would have waited for it, and failed after
// socketLockWait), is taken once per socket, and, released, is free for
// another hub.
func TestHoldHubStart(t *testing.T) {
	sock := filepath.Join(testsock.Dir(t), "n.sock")
	release, err := HoldHubStart(sock)
	if err != nil {
		t.Fatal(err)
	}
	if !hubStarting(sock) {
		t.Errorf("the held start is not seen as a hub starting")
	}
	if r, err := HoldHubStart(sock); err == nil {
		r()
		t.Errorf("HoldHubStart twice for one socket succeeded")
	}
	start := time.Now()
	h, err := NewHub(HubConfig{Socket: sock})
	if err != nil {
		t.Fatalf("NewHub under the held start: %v", err)
	}
	if took := time.Since(start); took >= socketLockWait {
		t.Errorf("NewHub took %v: it waited for its own process's lock", took)
	}
	release()
	release() // a second call does nothing
	if hubStarting(sock) {
		t.Errorf("a released start is still seen as a hub starting")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h, err = NewHub(HubConfig{Socket: sock})
	if err != nil {
		t.Fatalf("NewHub after the start was released: %v", err)
	}
	h.Close()
}
