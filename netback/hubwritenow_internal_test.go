package netback

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

// writeNow, with which the accept loop answers a connection it refuses at
// once, writes in one non-blocking try: a new socket's empty buffer takes
// the whole answer, however late the writer runs (a write deadline of 50
// ms, expired on a loaded host, closed refused connections without their
// answer); a full one is an error at once, never a wait that holds up the
// accept loop.
func TestWriteNow(t *testing.T) {
	answer := bytes.Repeat([]byte("busy"), 64)
	for _, tt := range []struct {
		name string
		full bool // the peer reads nothing until its buffer is full
		err  error
	}{
		{name: "empty buffer"},
		{name: "full buffer", full: true, err: syscall.EAGAIN},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := unixPair(t, tt.full)
			// A full buffer's write would wait for ever: the test's
			// timeout, not this one's failure, would say so.
			n, err := writeNow{a}.Write(answer)
			if !errors.Is(err, tt.err) || (err == nil) != (n == len(answer)) {
				t.Fatalf("writeNow: %d bytes, %v; want %v", n, err, tt.err)
			}
			if tt.err != nil {
				return
			}
			a.Close()
			got, err := io.ReadAll(b)
			if err != nil || !bytes.Equal(got, answer) {
				t.Errorf("the peer read %q, %v; want the whole answer, %d bytes", got, err, len(answer))
			}
		})
	}
}

// TestWriteNowNoDescriptor: a connection with no descriptor is an error,
// not a panic.
func TestWriteNowNoDescriptor(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if n, err := (writeNow{a}).Write([]byte("x")); err == nil || n != 0 {
		t.Errorf("writeNow on a pipe: %d bytes, %v; want an error", n, err)
	}
}

// unixPair is a connected pair of Unix stream sockets, as a hub's accepted
// connection and its VM's; with full, the first one's buffer is filled
// first (the second reads nothing).
func unixPair(t *testing.T, full bool) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; full; i++ {
		_, err := syscall.Write(fds[0], make([]byte, 64<<10))
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil || i == 1<<10 {
			t.Fatalf("filling a socket's buffer, write %d: %v", i, err)
		}
	}
	conns := make([]*net.UnixConn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
		t.Cleanup(func() { c.Close() })
	}
	return conns[0], conns[1]
}
