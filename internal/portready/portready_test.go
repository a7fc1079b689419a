package portready

import (
	"net"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/portready/portreadytest"
)

func TestProbe(t *testing.T) {
	closed := func() string { // a port nobody listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		return ln.Addr().String()
	}()
	tests := []struct {
		name  string
		addr  string
		ready bool
	}{
		{"nothing listens", closed, false},
		// What a forwarder does when the guest refuses: accept, then close.
		{"accepted then closed", portreadytest.Serve(t, func(c net.Conn) { c.Close() }), false},
		{"answers", portreadytest.Serve(t, func(c net.Conn) { c.Write([]byte("SSH-2.0\r\n")); time.Sleep(time.Second); c.Close() }), true},
		{"holds the connection", portreadytest.Serve(t, func(c net.Conn) { time.Sleep(3 * Hold); c.Close() }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			at, ok := Probe(tt.addr)
			if ok != tt.ready {
				t.Fatalf("Probe = %v, want %v", ok, tt.ready)
			}
			if ok && (at.Before(before) || time.Since(at) < 0) {
				t.Errorf("ready at %v, outside the probe (started %v)", at, before)
			}
		})
	}
}

func TestWaitGivesUp(t *testing.T) {
	done := make(chan struct{})
	close(done)
	if _, ok := Wait(portreadytest.Serve(t, func(c net.Conn) { c.Close() }), time.Millisecond, done); ok {
		t.Fatal("Wait reported a port ready that never was")
	}
}
