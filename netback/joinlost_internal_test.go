package netback

import (
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

// A connection's errors are said without its addresses, which name the
// hub's socket as it was bound (a temporary path, gone since), still
// wrapping what they wrap.
func TestConnError(t *testing.T) {
	tmp := &net.UnixAddr{Name: "/tmp/sn/.s414201771/s", Net: "unix"}
	tests := []struct {
		err  error
		want string
		is   error
	}{
		{&net.OpError{Op: "read", Net: "unix", Addr: tmp, Err: os.NewSyscallError("read", syscall.ECONNRESET)}, "read: connection reset by peer", syscall.ECONNRESET},
		{&net.OpError{Op: "write", Net: "unix", Source: tmp, Addr: tmp, Err: os.NewSyscallError("write", syscall.EPIPE)}, "write: broken pipe", syscall.EPIPE},
		{&net.OpError{Op: "read", Net: "unix", Addr: tmp, Err: os.ErrDeadlineExceeded}, "read: i/o timeout", os.ErrDeadlineExceeded},
		{io.EOF, "EOF", io.EOF},
	}
	for _, tt := range tests {
		got := connError(tt.err)
		if got.Error() != tt.want || !errors.Is(got, tt.is) {
			t.Errorf("%v: %q (wrapping %v: %v), want %q", tt.err, got, tt.is, errors.Is(got, tt.is), tt.want)
		}
	}
}

// The notice that a VM lost its network names the network, not the
// address its connection had: a network that went away with frames of
// the VM unread reset the connection, and the notice read "lost (read
// unix @->/tmp/sn/.s414201771/s: read: connection reset by peer)".
func TestJoinedLostNamesNoAddress(t *testing.T) {
	notef, noted := lineRecorder()
	logf, logged := lineRecorder()
	_, ln, conn, j := joinFakeHub(t, JoinOptions{Name: "web", Notef: notef, Logf: logf})
	defer j.Close()
	ln.Close() // no rejoin to wait for
	// Unread by the fake hub as it closes: the VM's read is reset.
	if err := j.WriteFrame(make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	if j.sent.Load() != 1 {
		t.Fatal("the frame was not sent")
	}
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for len(noted()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the lost connection was not noticed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	want := "shared network web lost (read: connection reset by peer); the VM is offline until it rejoins"
	if got := noted(); got[0] != want {
		t.Errorf("notice %q, want %q", got[0], want)
	}
	wantLog := "shared network web lost: read: connection reset by peer; reconnecting"
	if got := logged(); !slices.Contains(got, wantLog) {
		t.Errorf("log %q, want %q in it", got, wantLog)
	}
	if _, err := j.Connected(); !errors.Is(err, syscall.ECONNRESET) || err.Error() != "read: connection reset by peer" {
		t.Errorf("Connected's error %v, want read: connection reset by peer", err)
	}
}
