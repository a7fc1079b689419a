package netback

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// closedConn reports whether pipe end c was closed: only then does
// setting its deadline fail, and without waiting.
func closedConn(c net.Conn) bool {
	return errors.Is(c.SetDeadline(time.Time{}), io.ErrClosedPipe)
}

// closeAll closes what is recorded and not what was removed (remove
// closes that itself); a connection added afterwards is refused.
func TestConnSet(t *testing.T) {
	var s connSet
	kept, _ := net.Pipe()
	removed, _ := net.Pipe()
	for _, c := range []net.Conn{kept, removed} {
		if !s.add(c) {
			t.Fatal("add before closeAll refused")
		}
	}
	s.remove(removed)
	if !closedConn(removed) {
		t.Error("remove left the connection open")
	}
	if s.isClosed() {
		t.Error("closed before closeAll")
	}
	s.closeAll()
	if !closedConn(kept) || !s.isClosed() {
		t.Error("closeAll left a recorded connection open")
	}
	late, _ := net.Pipe()
	if s.add(late) {
		t.Error("add after closeAll accepted")
	}
}
