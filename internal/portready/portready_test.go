package portready

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/portready/portreadytest"
)

func TestProbe(t *testing.T) {
	closed := portreadytest.Refusing(t)
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
			if tt.ready && !ok {
				at, ok = probeUntilReady(tt.addr)
			}
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

// TestProber: a Prober reports a port that answers once, with a connect
// time inside its run; one that is never ready is probed again and again
// and never reported; Stop returns after the goroutine, and may be called
// twice.
func TestProber(t *testing.T) {
	tests := []struct {
		name  string
		serve func(net.Conn)
		ready bool
	}{
		{"answers", func(c net.Conn) { c.Write([]byte("SSH-2.0\r\n")); c.Close() }, true},
		{"accepted then closed", func(c net.Conn) { c.Close() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conns := make(chan struct{}, 100)
			addr := portreadytest.Serve(t, func(c net.Conn) {
				select {
				case conns <- struct{}{}:
				default:
				}
				tt.serve(c)
			})
			found := make(chan time.Time, 10)
			before := time.Now()
			p := Start([]string{addr}, time.Millisecond, func(at time.Time) { found <- at })
			if tt.ready {
				select {
				case at := <-found:
					if at.Before(before) || time.Since(at) < 0 {
						t.Errorf("ready at %v, outside the probe (started %v)", at, before)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("no ready port reported in 10 s")
				}
			} else {
				for range 3 { // probed again after a refusal
					<-conns
				}
			}
			p.Stop()
			p.Stop()
			close(found)
			if n := len(found); n != 0 {
				t.Errorf("%d more ready reports after the first (or one for a port never ready)", n)
			}
		})
	}
}

// TestProberStopsAtOnce: Stop on a Prober whose address refuses returns
// without a report.
func TestProberStopsAtOnce(t *testing.T) {
	// Not a closed listener's port, which another test's listener could
	// take again before the probe and hold like a ready port.
	reported := false
	p := Start([]string{portreadytest.Refusing(t)}, time.Hour, func(time.Time) { reported = true })
	p.Stop()
	if reported {
		t.Error("a closed port was reported ready")
	}
}

// TestStartDialing: a dialing Prober connects again after each connection,
// whatever its peer does, until until reports true; one whose until holds
// from the start never connects.
func TestStartDialing(t *testing.T) {
	serve := func() (string, chan struct{}) {
		conns := make(chan struct{}, 100)
		return portreadytest.Serve(t, func(c net.Conn) {
			select {
			case conns <- struct{}{}:
			default:
			}
			c.Write([]byte("SSH-2.0\r\n")) // ready for Probe: no matter here
			c.Close()
		}), conns
	}
	addr, conns := serve()
	var stop atomic.Bool
	p := StartDialing([]string{addr}, time.Millisecond, stop.Load)
	for range 3 { // connects again after an answer
		<-conns
	}
	stop.Store(true)
	p.Stop() // returns whether until or Stop ended it; twice too
	p.Stop()

	addr, conns = serve()
	q := StartDialing([]string{addr}, time.Millisecond, func() bool { return true })
	<-q.finished // ended by until alone
	q.Stop()
	if len(conns) != 0 {
		t.Error("a Prober whose until holds from the start connected")
	}
}

// TestResolve: an address is resolved once into IP addresses with their
// port, so that probes dial no name: an IP address as it is, without a
// lookup, an unspecified one too; an empty host (":8080") as the
// loopback addresses, without a lookup (which refused ""); a name as its
// lookup answers, in that order; a service name as its port. A lookup
// that fails or finds nothing is an error.
func TestResolve(t *testing.T) {
	lookupErr := errors.New("no such host")
	tests := []struct {
		name   string
		addr   string
		ips    []netip.Addr
		err    error
		want   []string
		looked bool // the lookup was asked
		bad    bool
	}{
		{"IPv4", "127.0.0.1:8080", nil, nil, []string{"127.0.0.1:8080"}, false, false},
		{"IPv6", "[::1]:8080", nil, nil, []string{"[::1]:8080"}, false, false},
		{"name", "localhost:8080", []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}, nil,
			[]string{"[::1]:8080", "127.0.0.1:8080"}, true, false},
		{"mapped IPv4", "host:22", []netip.Addr{netip.MustParseAddr("::ffff:10.0.0.1")}, nil, []string{"10.0.0.1:22"}, true, false},
		{"service", "localhost:http", []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil, []string{"127.0.0.1:80"}, true, false},
		{"unresolvable", "nonexistent.invalid:80", nil, lookupErr, nil, true, true},
		{"no address", "empty:80", nil, nil, nil, true, true},
		{"no port", "localhost", nil, nil, nil, false, true},
		// An empty host is the local system, as net.Dial takes it: a
		// lookup of "" would fail.
		{"empty host", ":8080", nil, lookupErr, []string{"127.0.0.1:8080", "[::1]:8080"}, false, false},
		{"empty host, service", ":http", nil, lookupErr, []string{"127.0.0.1:80", "[::1]:80"}, false, false},
		{"unspecified IPv4", "0.0.0.0:80", nil, lookupErr, []string{"0.0.0.0:80"}, false, false},
		{"unspecified IPv6", "[::]:80", nil, lookupErr, []string{"[::]:80"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			looked := false
			got, err := Resolve(context.Background(), tt.addr, func(_ context.Context, network, host string) ([]netip.Addr, error) {
				looked = true
				if want, _, _ := net.SplitHostPort(tt.addr); host != want || network != "ip" {
					t.Errorf("looked up %s %q, want ip %q", network, host, want)
				}
				return tt.ips, tt.err
			})
			if looked != tt.looked {
				t.Errorf("lookup asked: %v, want %v", looked, tt.looked)
			}
			if tt.bad {
				if err == nil {
					t.Fatalf("Resolve = %v, want an error", got)
				}
				if tt.err != nil && !errors.Is(err, tt.err) {
					t.Errorf("Resolve error %v does not wrap the lookup's %v", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestResolveLocalhost: the system's resolver gives localhost as IP
// addresses, which a dial uses without a lookup (none of the resolver's
// goroutines or system calls while probing).
func TestResolveLocalhost(t *testing.T) {
	addrs, err := Resolve(context.Background(), "localhost:8080", nil)
	if err != nil || len(addrs) == 0 {
		t.Fatalf("Resolve(localhost) = %q, %v", addrs, err)
	}
	for _, a := range addrs {
		if _, err := netip.ParseAddrPort(a); err != nil {
			t.Errorf("Resolve(localhost) gave %q, no IP address and port: %v", a, err)
		}
	}
}

// TestProbeTriesEachAddress: a probe of several addresses (a name's) is
// ready when a later one answers though an earlier one refuses, as a
// dial of the name would be.
func TestProbeTriesEachAddress(t *testing.T) {
	closed := portreadytest.Refusing(t)
	greeter := portreadytest.Greeter(t, "SSH-2.0\r\n")
	if _, ok := probeUntilReady(closed, greeter); !ok {
		t.Error("Probe of a refusing address, then an answering one: not ready")
	}
	if _, ok := Probe(closed, closed); ok {
		t.Error("Probe of two refusing addresses: ready")
	}
}

// TestSplitAddr: an address a probe could connect to is split into its
// host and port number (a service name's too); one without a port, or
// whose port is 0, out of range or an unknown service, is refused, as
// vmm refuses such a Config.ReadyAddr.
func TestSplitAddr(t *testing.T) {
	tests := []struct {
		addr     string
		wantHost string
		wantPort uint16
		wantErr  string
	}{
		{"127.0.0.1:8080", "127.0.0.1", 8080, ""},
		{"[::1]:22", "::1", 22, ""},
		{":8080", "", 8080, ""},
		{"localhost:http", "localhost", 80, ""},
		{"localhost", "", 0, "missing port in address"},
		{"127.0.0.1:0", "", 0, "port 0"},
		{"127.0.0.1:65536", "", 0, "invalid port"},
		{"127.0.0.1:no-such-service", "", 0, "unknown port"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			host, port, err := SplitAddr(tt.addr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SplitAddr(%q) = %q, %d, %v; want an error saying %q", tt.addr, host, port, err, tt.wantErr)
				}
				return
			}
			if err != nil || host != tt.wantHost || port != tt.wantPort {
				t.Errorf("SplitAddr(%q) = %q, %d, %v; want %q, %d", tt.addr, host, port, err, tt.wantHost, tt.wantPort)
			}
		})
	}
}

// probeUntilReady probes addrs up to 50 times until one is ready: a
// connect gives up after dialTimeout, which a loaded host (or a process
// just started on one) can outlast though the port listens, as Wait
// would probe again; a port that refuses stays not ready.
func probeUntilReady(addrs ...string) (time.Time, bool) {
	for i := 0; ; i++ {
		if at, ok := Probe(addrs...); ok || i == 49 {
			return at, ok
		}
	}
}
