package netback

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// TestHubBusyBeforeHello: a hub that refuses a connection at once
// (RefusedBusy) writes its answer and closes the connection, often before
// the hello arrives. Join read that answer when its write failed, but
// HubVMs, the bench's question, failed on the write with a bare EPIPE
// naming the hub's temporary bind path ("query: write unix @->/tmp/...:
// write: broken pipe"). Both now say the hub refused, and why. The
// check of the hub's user, made between the dial and the hello, waits
// here for the hub to have closed the connection.
func TestHubBusyBeforeHello(t *testing.T) {
	withPendingLimits(t, 0, 0)
	useHubDir(t, testsock.Dir(t))
	sock, err := HubSocket("n")
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHub(HubConfig{Socket: sock, Logf: func(string, ...any) {}}, hubHooks{
		peerUID: func(net.Conn) (int, error) { return 2000, nil }, // no exempt user
		self:    func() int { return 1000 },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	defer func(f func(net.Conn) (int, error)) { hubPeerUID = f }(hubPeerUID)
	hubPeerUID = func(c net.Conn) (int, error) {
		raw, err := c.(syscall.Conn).SyscallConn()
		if err != nil {
			return -1, err
		}
		var perr error
		if err := raw.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
			for {
				n, err := unix.Poll(fds, 5000)
				if errors.Is(err, unix.EINTR) {
					continue
				}
				if err == nil && n == 0 {
					err = errors.New("the hub did not close the connection within 5 s")
				}
				perr = err
				return
			}
		}); err != nil {
			return -1, err
		}
		return os.Geteuid(), perr
	}
	tests := []struct {
		name string
		ask  func() error
	}{
		{"HubVMs", func() error { _, err := HubVMs(sock); return err }},
		{"Join", func() error {
			j, err := JoinWith(sock, net.HardwareAddr{0x52, 0x54, 0, 0, 0x10, 1}, nil, JoinOptions{})
			if j != nil {
				j.Close()
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ask()
			var re *RefusedError
			if !errors.As(err, &re) || re.Reason != RefusedBusy || !strings.Contains(re.Message, "handshake is not over") {
				t.Fatalf("%v, want the hub's refusal as busy", err)
			}
		})
	}
}
