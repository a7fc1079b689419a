package netback_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
	"github.com/smolvmm/smolvmm/sandbox"
)

// TestForwardLinkLocalPeerUnderSeccomp: a forwarded port, under the
// filter smolvmm installs for --net user (or, on a shared network, the one
// smolvmm net installs, the hub opening the port when the VM joins), takes a connection or datagram
// from the host's IPv6 link-local address (a peer with a zone, which the
// net package names by asking netlink, which the filter refuses) and
// proxies it, or, when it listens on IPv4 only (0.0.0.0), refuses it;
// either way the process goes on, and proxies a loopback client's bytes
// after it.
func TestForwardLinkLocalPeerUnderSeccomp(t *testing.T) {
	ll := hostLinkLocal(t)
	type test struct {
		proto, host string
		linkLocal   bool // the forward is reachable from ll
		hub         bool // on a shared network, the child its hub
	}
	var tests []test
	for _, hub := range []bool{false, true} {
		tests = append(tests, test{"tcp", "[::]", true, hub}, test{"tcp", "0.0.0.0", false, hub},
			test{"udp", "[::]", true, hub}, test{"udp", "0.0.0.0", false, hub})
	}
	for _, tt := range tests {
		name := tt.proto + " " + tt.host
		if tt.hub {
			name = "shared " + name
		}
		t.Run(name, func(t *testing.T) {
			port := testsock.Port(t)
			fwd := fmt.Sprintf("%s:%s:%d:7", tt.proto, tt.host, port)
			dir := testsock.Dir(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "NETBACK_SANDBOX_CHILD=linklocal", "NETBACK_FORWARD="+fwd)
			if tt.hub {
				cmd.Env = append(cmd.Env, "NETBACK_HUB_DIR="+dir)
			}
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			sc := bufio.NewScanner(stdout)
			for sc.Scan() && sc.Text() != "ready" {
				fmt.Fprintln(&out, sc.Text())
			}
			// The rest of the output, read while the parent talks to it.
			rest := make(chan struct{})
			go func() {
				for sc.Scan() {
					fmt.Fprintln(&out, sc.Text())
				}
				close(rest)
			}()

			if tt.hub {
				// The VM joins the child's network with the forward.
				f, err := netback.ParseForward(fwd)
				if err != nil {
					t.Fatal(err)
				}
				j, err := netback.Join(filepath.Join(dir, "net.sock"), guestMAC, []netback.Forward{f})
				if err != nil {
					t.Fatalf("join: %v; child's output:\n%s", err, out.String())
				}
				g, err := stackguest.New(j, stackguest.Config{MAC: guestMAC, Addr: netip.PrefixFrom(j.Addr(), 24), Gateway: netback.UserGateway, Silent: true})
				if err != nil {
					j.Close()
					t.Fatal(err)
				}
				defer g.Close()
				if msg := echoOnGuest(g, f); msg != "" {
					t.Fatal(msg)
				}
			}
			got, err := exchange(tt.proto, netip.AddrPortFrom(ll, 0), netip.AddrPortFrom(ll, port), "hello")
			if tt.linkLocal && (err != nil || got != "hello") {
				t.Errorf("from %s: answer %q, %v; want %q", ll, got, err, "hello")
			}
			if !tt.linkLocal && !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("from %s to an IPv4 forward: answer %q, %v; want connection refused", ll, got, err)
			}
			loop := netip.MustParseAddr("127.0.0.1")
			if got, err := exchange(tt.proto, netip.AddrPortFrom(loop, 0), netip.AddrPortFrom(loop, port), "again"); err != nil || got != "again" {
				t.Errorf("from %s after %s: answer %q, %v; want %q", loop, ll, got, err, "again")
			}
			stdin.Close()
			<-rest
			if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "alive\n") {
				t.Errorf("sandboxed child: %v; output:\n%s%s", err, out.String(), stderr.String())
			}
		})
	}
}

// hostLinkLocal is an IPv6 link-local address of an interface of the
// host that is up, with its zone; the test is skipped where there is none.
func hostLinkLocal(t *testing.T) netip.Addr {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
					return ip.WithZone(ifc.Name)
				}
			}
		}
	}
	t.Skip("no interface that is up has an IPv6 link-local address")
	return netip.Addr{}
}

// exchange sends msg from local to the forward at remote and returns the
// answer: over TCP, what comes back once the sender's half is closed;
// over UDP, the first datagram back.
func exchange(proto string, local, remote netip.AddrPort, msg string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	var c net.Conn
	var err error
	if proto == "tcp" {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Deadline: deadline}
		c, err = d.Dial("tcp", remote.String())
	} else {
		c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(local), net.UDPAddrFromAddrPort(remote))
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err != nil {
			return "", err
		}
		b, err := io.ReadAll(c)
		return string(b), err
	}
	b := make([]byte, 100)
	n, err := c.Read(b)
	return string(b[:n]), err
}

// echoOnGuest has g echo on f's guest port: over TCP all it reads, then
// end of stream; over UDP each datagram. Not "" says why it cannot.
func echoOnGuest(g *stackguest.Guest, f netback.Forward) string {
	if f.Proto == "tcp" {
		ln, err := g.ListenTCP(f.GuestPort)
		if err != nil {
			return err.Error()
		}
		go serveEcho(ln)
		return ""
	}
	pc, err := g.ListenUDP(f.GuestPort)
	if err != nil {
		return err.Error()
	}
	go func() {
		b := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			pc.WriteTo(b[:n], from)
		}
	}()
	return ""
}

// linkLocalChild starts a user network with the forward $NETBACK_FORWARD
// to a guest echoing on port 7 (echoOnGuest), or with $NETBACK_HUB_DIR a
// shared network's hub there (net.sock) that a VM joins with it later,
// installs the filter smolvmm installs for either, says "ready", and
// says "alive" once its standard input ends.
func linkLocalChild() int {
	fail := func(format string, a ...any) int {
		fmt.Printf(format+"\n", a...)
		return 3
	}
	if dir := os.Getenv("NETBACK_HUB_DIR"); dir != "" {
		// Left open at the end: its close removes the socket file,
		// which smolvmm net's broker does, outside the filter.
		// Contained, as smolvmm net's: what it reads at a join (the
		// first unprivileged port) it reads through a descriptor opened
		// now, the lease file through its writer.
		if _, err := netback.NewHub(netback.HubConfig{Socket: filepath.Join(dir, "net.sock"), Contained: true,
			WriteLeases: func([]byte) error { return nil }}); err != nil {
			return fail("hub: %v", err)
		}
		// As smolvmm net does before its filter: net's first TCP
		// listener asks the kernel about MPTCP and the backlog.
		if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
			ln.Close()
		}
		if _, err := sandbox.Install(sandbox.Filter{Sockets: true, Listen: true, Truncate: true, Prefix: "child: "}); err != nil {
			return fail("install: %v", err)
		}
	} else {
		f, err := netback.ParseForward(os.Getenv("NETBACK_FORWARD"))
		if err != nil {
			return fail("%v", err)
		}
		u, err := netback.NewUser(guestMAC, []netback.Forward{f})
		if err != nil {
			return fail("NewUser: %v", err)
		}
		g, err := stackguest.New(u, stackguest.Config{MAC: guestMAC, Addr: netip.PrefixFrom(netback.UserGuest, 24), Gateway: netback.UserGateway})
		if err != nil {
			return fail("guest: %v", err)
		}
		defer g.Close()
		if msg := echoOnGuest(g, f); msg != "" {
			return fail("%s", msg)
		}
		if _, err := sandbox.Install(sandbox.Filter{Sockets: true, Prefix: "child: "}); err != nil {
			return fail("install: %v", err)
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	fmt.Println("alive")
	return 0
}
