package netback_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/smolvmm/smolvmm/internal/portready/portreadytest"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
	"github.com/smolvmm/smolvmm/sandbox"
)

// The fake nameserver of the sandboxed child: a loopback address of its
// own, port 53 (resolv.conf has no port), which needs root.
const sandboxNameserver = "127.53.0.1"

func TestMain(m *testing.M) {
	switch os.Getenv("NETBACK_SANDBOX_CHILD") {
	case "":
	case "join":
		os.Exit(joinChild())
	case "forward":
		os.Exit(forwardChild())
	case "dial":
		os.Exit(dialChild())
	case "nat":
		os.Exit(natChild())
	case "zoned":
		os.Exit(zonedChild())
	case "linklocal":
		os.Exit(linkLocalChild()) // fwdlinklocal_test.go
	case "fdhub":
		os.Exit(fdHubChild()) // hubfd_test.go
	default:
		os.Exit(sandboxChild())
	}
	os.Exit(m.Run())
}

// TestUserNetworkUnderSeccomp: once sandbox's filter is installed (with
// sockets, as smolvmm installs it for --net user), the user network still
// answers DNS from the nameservers it read at start, still carries a
// guest's TCP connection to the host and a forwarded port to the guest: nothing on those paths opens a file
// or makes another refused call (which would end the child with
// sandbox.ExitStatus and the call's name).
func TestUserNetworkUnderSeccomp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the fake nameserver needs port 53: run as root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NETBACK_SANDBOX_CHILD=1", "NETBACK_SANDBOX_DIR="+testsock.Dir(t),
		fmt.Sprintf("NETBACK_SANDBOX_FORWARD_PORT=%d", testsock.Port(t)))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dns vm.test. = 192.0.2.99\n") || !strings.Contains(string(out), "tcp echo ok\n") ||
		!strings.Contains(string(out), "forward ok\n") {
		t.Errorf("sandboxed child: %v; output:\n%s", err, out)
	}
}

func sandboxChild() int {
	fail := func(format string, a ...any) int {
		fmt.Printf(format+"\n", a...)
		return 3
	}
	// Before the filter: the nameserver, its resolv.conf, the network,
	// the guest and a host service for the guest to reach.
	pc, err := net.ListenPacket("udp", sandboxNameserver+":53")
	if err != nil {
		return fail("nameserver: %v", err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if rr, err := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.99"); err == nil {
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})}
	// The server sets its socket's options (IP_PKTINFO) before it says it
	// has started: wait, so that the filter below never sees that call.
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	conf := filepath.Join(os.Getenv("NETBACK_SANDBOX_DIR"), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver "+sandboxNameserver+"\n"), 0o644); err != nil {
		return fail("%v", err)
	}
	*netback.ResolvConfPath = conf
	// The parent's testsock.Port: below the ephemeral range, where no
	// other process's connection takes it before the forward listens.
	fport, err := strconv.ParseUint(os.Getenv("NETBACK_SANDBOX_FORWARD_PORT"), 10, 16)
	if err != nil {
		return fail("forward port: %v", err)
	}
	u, err := netback.NewUser(guestMAC, []netback.Forward{{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: uint16(fport), GuestPort: 80}})
	if err != nil {
		return fail("NewUser: %v", err)
	}
	g, err := stackguest.New(u, stackguest.Config{MAC: guestMAC, Addr: netip.PrefixFrom(netback.UserGuest, 24), Gateway: netback.UserGateway})
	if err != nil {
		return fail("guest: %v", err)
	}
	gln, err := g.ListenTCP(80)
	if err != nil {
		return fail("guest listen: %v", err)
	}
	go stackguest.EchoSum(gln)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail("listen: %v", err)
	}
	go serveEcho(ln)

	if _, err := sandbox.Install(sandbox.Filter{Sockets: true, Prefix: "child: "}); err != nil {
		return fail("install: %v", err)
	}

	// DNS from the guest to 10.0.2.3.
	pcg, err := gonet.DialUDP(g.Stack, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netback.UserDNS.As4()), Port: 53}, ipv4.ProtocolNumber)
	if err != nil {
		return fail("guest UDP: %v", err)
	}
	q := new(dns.Msg)
	q.SetQuestion("vm.test.", dns.TypeA)
	wire, _ := q.Pack()
	pcg.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := pcg.Write(wire); err != nil {
		return fail("guest DNS query: %v", err)
	}
	buf := make([]byte, 1500)
	n, err := pcg.Read(buf)
	if err != nil {
		return fail("guest DNS answer: %v", err)
	}
	var r dns.Msg
	if err := r.Unpack(buf[:n]); err != nil || len(r.Answer) != 1 {
		return fail("guest DNS answer %v: %v", r.Answer, err)
	}
	fmt.Printf("dns vm.test. = %s\n", r.Answer[0].(*dns.A).A)

	// A TCP connection from the guest to the host's loopback (10.0.2.2).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port))
	if err != nil {
		return fail("guest TCP: %v", err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return fail("guest TCP write: %v", err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		return fail("guest TCP echo %q: %v", got, err)
	}
	fmt.Println("tcp echo ok")

	// A forwarded host port (-p) to the guest's port 80.
	fc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", fport))
	if err != nil {
		return fail("forward dial: %v", err)
	}
	fc.SetDeadline(time.Now().Add(10 * time.Second))
	fc.Write([]byte("hello"))
	fc.(*net.TCPConn).CloseWrite()
	sum, err := io.ReadAll(fc)
	if err != nil || !strings.HasPrefix(string(sum), "got 5 bytes sha256 ") {
		return fail("forward answer %q: %v", sum, err)
	}
	fmt.Println("forward ok")
	return 0
}

// TestJoinReconnectsUnderSeccomp: a VM on a shared network, under the
// seccomp filter smolvmm installs for it (Unix sockets only: no IP socket),
// reconnects when its hub is restarted and its traffic flows again; the
// child would die with sandbox.ExitStatus at a refused call. The network
// is in the runtime directory where names lead (HubDir), so that each
// rejoin checks whose it is (SO_PEERCRED, with what Join found out before
// the filter: no stat, no geteuid).
func TestJoinReconnectsUnderSeccomp(t *testing.T) {
	runtime := testsock.Dir(t)
	dir := filepath.Join(runtime, "smolvmm", "net")
	if os.Geteuid() == 0 {
		t.Cleanup(netback.SetRootHubDir(dir))
	} else {
		t.Setenv("XDG_RUNTIME_DIR", runtime)
	}
	h := startHub(t, dir)
	if filepath.Dir(h.Socket()) != netback.HubDir() {
		t.Fatalf("the hub's socket %s is not in HubDir %s", h.Socket(), netback.HubDir())
	}
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go serveEcho(echo)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NETBACK_SANDBOX_CHILD=join", "NETBACK_HUB="+h.Socket(),
		"NETBACK_ECHO="+echo.Addr().String(), "NETBACK_ROOT_HUBDIR="+dir)
	var out strings.Builder
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, pw), &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	// Restart the hub once the child runs under its filter.
	sc := bufio.NewScanner(pr)
	for sc.Scan() && sc.Text() != "filter on, tcp echo ok" {
	}
	h.Close()
	startHub(t, dir)
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil || !strings.Contains(out.String(), "reconnected, tcp echo ok\n") {
		t.Errorf("sandboxed child: %v; output:\n%s", err, out.String())
	}
}

// joinChild joins the hub at $NETBACK_HUB, installs the filter, echoes
// through the gateway to $NETBACK_ECHO, and after the parent restarts the
// hub waits for the reconnection and echoes again.
func joinChild() int {
	fail := func(format string, a ...any) int {
		fmt.Printf(format+"\n", a...)
		return 3
	}
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x5e, 0xcc, 0x01}
	netback.SetRootHubDir(os.Getenv("NETBACK_ROOT_HUBDIR"))
	j, err := netback.Join(os.Getenv("NETBACK_HUB"), mac, nil)
	if err != nil {
		return fail("join: %v", err)
	}
	g, err := stackguest.New(j, stackguest.Config{MAC: mac, Addr: netip.PrefixFrom(j.Addr(), 24), Gateway: netback.UserGateway})
	if err != nil {
		return fail("guest: %v", err)
	}
	defer g.Close()
	if _, err := sandbox.Install(sandbox.Filter{UnixSockets: true, Prefix: "child: "}); err != nil {
		return fail("install: %v", err)
	}
	port, _ := strconv.Atoi(os.Getenv("NETBACK_ECHO")[strings.LastIndexByte(os.Getenv("NETBACK_ECHO"), ':')+1:])
	echo := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, uint16(port)))
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write([]byte("ping"))
		got := make([]byte, 4)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
			return fmt.Errorf("echo %q: %v", got, err)
		}
		return nil
	}
	if err := echo(); err != nil {
		return fail("first echo: %v", err)
	}
	fmt.Println("filter on, tcp echo ok")
	deadline := time.Now().Add(20 * time.Second)
	for j.Connects() < 2 {
		if time.Now().After(deadline) {
			_, lastErr := j.Connected()
			return fail("no reconnection: %v", lastErr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := echo(); err != nil {
		return fail("echo after reconnecting: %v", err)
	}
	fmt.Println("reconnected, tcp echo ok")
	return 0
}

// TestNATDialUnderSeccomp: a guest's connection to a closed host port,
// under the filter smolvmm installs for --net user, is refused (the
// guest gets a reset) whatever GODEBUG asks of MPTCP: the NAT's dial makes
// no call the filter refuses (MPTCP's first dial probes the kernel with
// bind and uname).
func TestNATDialUnderSeccomp(t *testing.T) {
	_, port, _ := net.SplitHostPort(portreadytest.Refusing(t))
	closed, _ := strconv.Atoi(port)
	for _, godebug := range []string{"multipathtcp=0", "multipathtcp=1", "multipathtcp=3"} {
		t.Run(godebug, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "NETBACK_SANDBOX_CHILD=nat", "NETBACK_PORT="+strconv.Itoa(closed), "GODEBUG="+godebug)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "nat dial refused\n") || !strings.Contains(string(out), "nat udp echo ok\n") {
				t.Errorf("sandboxed child: %v; output:\n%s", err, out)
			}
		})
	}
}

// natChild starts a user network and its guest, installs the filter, and
// has the guest connect to the host's port $NETBACK_PORT through the
// gateway, and exchange a datagram with a host UDP echo through it (a
// flow's sockets wait for a datagram with the poller and read it
// themselves).
func natChild() int {
	fail := func(format string, a ...any) int {
		fmt.Printf(format+"\n", a...)
		return 3
	}
	u, err := netback.NewUser(guestMAC, nil)
	if err != nil {
		return fail("NewUser: %v", err)
	}
	g, err := stackguest.New(u, stackguest.Config{MAC: guestMAC, Addr: netip.PrefixFrom(netback.UserGuest, 24), Gateway: netback.UserGateway})
	if err != nil {
		return fail("guest: %v", err)
	}
	echo, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return fail("UDP echo: %v", err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			k, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(buf[:k], from)
		}
	}()
	if _, err := sandbox.Install(sandbox.Filter{Sockets: true, Prefix: "child: "}); err != nil {
		return fail("install: %v", err)
	}
	uc, err := gonet.DialUDP(g.Stack, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netback.UserGateway.As4()), Port: uint16(echo.LocalAddr().(*net.UDPAddr).Port)}, ipv4.ProtocolNumber)
	if err != nil {
		return fail("guest UDP: %v", err)
	}
	uc.SetDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 16)
	if _, err := uc.Write([]byte("ping")); err != nil {
		return fail("guest UDP write: %v", err)
	}
	if k, err := uc.Read(got); err != nil || string(got[:k]) != "ping" {
		return fail("guest UDP echo: %q, %v", got[:k], err)
	}
	fmt.Println("nat udp echo ok")
	port, _ := strconv.Atoi(os.Getenv("NETBACK_PORT"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, uint16(port)))
	if err == nil {
		c.Close()
		return fail("the guest connected to a closed port")
	}
	fmt.Println("nat dial refused")
	return 0
}

// TestZonedNameserverUnderSeccomp: a nameserver with a zone in
// resolv.conf (NetworkManager writes "nameserver fe80::1%wlp2s0") is asked
// under the filter smolvmm installs for --net user: its zone was turned
// into an interface index before, and nothing asks netlink (which the
// filter refuses) again. One that cannot answer fails the query; ::1 with
// a zone (which the kernel ignores there) answers over UDP, and over TCP
// after a truncated answer.
func TestZonedNameserverUnderSeccomp(t *testing.T) {
	pc, ln, err := testsock.Listeners(t, "::1")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp && strings.HasPrefix(q.Question[0].Name, "big.") {
			m.Truncated = true
		} else if rr, err := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.99"); err == nil {
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	udp, tcp := &dns.Server{PacketConn: pc, Handler: handler}, &dns.Server{Listener: ln, Handler: handler}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	defer udp.Shutdown()
	defer tcp.Shutdown()
	tests := []struct {
		name, server, query, want string
	}{
		{"link-local, no answer", "", "vm.test.", "query failed: "},
		{"udp", fmt.Sprintf("[::1%%lo]:%d", port), "vm.test.", "vm.test. = [192.0.2.99]\n"},
		{"tcp after truncation", fmt.Sprintf("[::1%%lo]:%d", port), "big.test.", "big.test. = [192.0.2.99]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "resolv.conf")
			if err := os.WriteFile(conf, []byte("nameserver fe80::1%lo\noptions timeout:1 attempts:1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "NETBACK_SANDBOX_CHILD=zoned", "NETBACK_RESOLV_CONF="+conf,
				"NETBACK_NAMESERVER="+tt.server, "NETBACK_QUERY="+tt.query)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), tt.want) {
				t.Errorf("sandboxed child: %v; output:\n%s\nwant %q", err, out, tt.want)
			}
		})
	}
}

// zonedChild reads $NETBACK_RESOLV_CONF (or asks $NETBACK_NAMESERVER) as
// a user network starts, installs the filter, and asks for
// $NETBACK_QUERY's addresses.
func zonedChild() int {
	*netback.ResolvConfPath = os.Getenv("NETBACK_RESOLV_CONF")
	if s := os.Getenv("NETBACK_NAMESERVER"); s != "" {
		netback.SetNameservers([]string{s}, 5*time.Second)
	}
	query := netback.NewHostQuery()
	if _, err := sandbox.Install(sandbox.Filter{Sockets: true, Prefix: "child: "}); err != nil {
		fmt.Printf("install: %v\n", err)
		return 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name := os.Getenv("NETBACK_QUERY")
	addrs, err := query(ctx, name)
	if err != nil {
		fmt.Printf("query failed: %v\n", err)
		return 0
	}
	fmt.Printf("%s = %v\n", name, addrs)
	return 0
}
