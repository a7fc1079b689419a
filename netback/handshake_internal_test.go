package netback

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// A handshake that fails names the socket the VM dialled, not the
// temporary path the hub's socket was bound at before it was linked into
// place, which the kernel gives as the peer's address (it said "read unix
// @->/run/smolvmm/net/.s3332223371/s: i/o timeout").
func TestHandshakeErrorNamesTheSocket(t *testing.T) {
	dir := testsock.Dir(t)
	bound := filepath.Join(dir, ".s123", "s")
	if err := os.Mkdir(filepath.Dir(bound), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", bound)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	socket := filepath.Join(dir, "net.sock")
	if err := os.Link(bound, socket); err != nil {
		t.Fatal(err)
	}
	// A hub that reads a byte of the hello and closes: the VM's read of
	// its answer is reset.
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Read(make([]byte, 1))
		c.Close()
	}()
	_, err = Join(socket, net.HardwareAddr{0x52, 0x54, 0x00, 0x01, 0x02, 0x03}, nil)
	<-done
	if want := "shared network " + socket + ": handshake: read: connection reset by peer"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q: the socket dialled, not %s", err, want, bound)
	}
}

// A handshake's error, by itself: the system call and its error, and a
// timeout says how long, still matching os.ErrDeadlineExceeded.
func TestHandshakeError(t *testing.T) {
	addr := &net.UnixAddr{Name: "/run/smolvmm/net/.s1/s", Net: "unix"}
	tests := []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "read", Net: "unix", Addr: addr, Err: os.ErrDeadlineExceeded},
			"shared network /run/smolvmm/net/a.sock: handshake: read: i/o timeout (no answer within 5s: the network's process is stopped, overloaded, or cannot accept; see its log)"},
		{&net.OpError{Op: "write", Net: "unix", Addr: addr, Err: os.NewSyscallError("write", syscall.EPIPE)}, "shared network /run/smolvmm/net/a.sock: handshake: write: broken pipe"},
		{&net.OpError{Op: "read", Net: "unix", Addr: addr, Err: errors.New("odd")}, "shared network /run/smolvmm/net/a.sock: handshake: read: odd"},
		{errors.New("EOF"), "shared network /run/smolvmm/net/a.sock: handshake: EOF"},
	}
	for _, tt := range tests {
		err := handshakeError("/run/smolvmm/net/a.sock", tt.err)
		if err.Error() != tt.want {
			t.Errorf("%v: %q, want %q", tt.err, err, tt.want)
		}
	}
	if err := handshakeError("s", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%v does not match os.ErrDeadlineExceeded", err)
	}
}
