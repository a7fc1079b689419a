package netback_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// testMAC is the MAC of test VM i.
func testMAC(i byte) net.HardwareAddr { return net.HardwareAddr{0x52, 0x54, 0x00, 0xab, 0x00, i} }

// startHub runs a hub on a socket in dir (its leases next to it).
func startHub(t testing.TB, dir string) *netback.Hub {
	t.Helper()
	cfg := netback.HubConfig{Socket: filepath.Join(dir, "net.sock")}
	if _, ok := t.(*testing.T); ok {
		cfg.Logf = t.Logf // benchmarks run too often to log
	}
	h, err := netback.NewHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// joinGuest joins a netstack guest with MAC mac to the hub at its leased
// address.
func joinGuest(t testing.TB, h *netback.Hub, mac net.HardwareAddr, forwards ...netback.Forward) (*stackguest.Guest, *netback.Joined) {
	t.Helper()
	j, err := netback.Join(h.Socket(), mac, forwards)
	if err != nil {
		t.Fatal(err)
	}
	g, err := stackguest.New(j, stackguest.Config{MAC: mac, Addr: netip.PrefixFrom(j.Addr(), 24), Gateway: netback.UserGateway})
	if err != nil {
		j.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, j
}

// sendSum sends n random bytes from g to addr (an EchoSum server) and
// checks the answer.
func sendSum(t *testing.T, g *stackguest.Guest, addr netip.AddrPort, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := g.DialTCP(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	data := make([]byte, n)
	rand.Read(data)
	go func() {
		c.Write(data)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	want := fmt.Sprintf("got %d bytes sha256 %x", n, sha256.Sum256(data))
	if err != nil || string(got) != want {
		t.Fatalf("%s answered %q, %v; want %q", addr, got, err, want)
	}
}

// Two guests on one hub get distinct addresses, in order from 10.0.2.15,
// and reach each other by address over TCP.
func TestHubGuestsReachEachOther(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	a, ja := joinGuest(t, h, testMAC(1))
	b, jb := joinGuest(t, h, testMAC(2))
	if ja.Addr().String() != "10.0.2.15" || jb.Addr().String() != "10.0.2.16" {
		t.Fatalf("leases %s and %s, want 10.0.2.15 and 10.0.2.16", ja.Addr(), jb.Addr())
	}
	ln, err := a.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go stackguest.EchoSum(ln)
	sendSum(t, b, netip.AddrPortFrom(ja.Addr(), 80), 1<<20)
	if s := h.Stats(); s.VMs != 2 || s.Spoofed != 0 {
		t.Errorf("hub stats %+v: want 2 VMs, nothing spoofed", s)
	}
}

// Leases are per MAC, kept across a restart of the hub, whatever order
// the MACs come back in; the lease file is the documented JSON.
func TestHubLeasesSurviveRestart(t *testing.T) {
	dir := testsock.Dir(t)
	h := startHub(t, dir)
	want := map[string]string{}
	for i := byte(1); i <= 3; i++ {
		j, err := netback.Join(h.Socket(), testMAC(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		want[testMAC(i).String()] = j.Addr().String()
		j.Close()
	}
	if len(map[string]bool{want[testMAC(1).String()]: true, want[testMAC(2).String()]: true, want[testMAC(3).String()]: true}) != 3 {
		t.Fatalf("leases %v are not distinct", want)
	}
	h.Close()
	b, err := os.ReadFile(filepath.Join(dir, "net.leases"))
	if err != nil {
		t.Fatal(err)
	}
	var lf struct {
		Version int
		Leases  []struct{ MAC, Addr string }
	}
	if err := json.Unmarshal(b, &lf); err != nil || lf.Version != 2 || len(lf.Leases) != 3 {
		t.Fatalf("lease file %s: %v", b, err)
	}
	h2 := startHub(t, dir)
	for _, i := range []byte{3, 1, 4, 2} {
		j, err := netback.Join(h2.Socket(), testMAC(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := j.Addr().String()
		j.Close()
		if w, ok := want[testMAC(i).String()]; ok && got != w {
			t.Errorf("MAC %s: %s after the restart, %s before", testMAC(i), got, w)
		}
		if i == 4 && got != "10.0.2.18" {
			t.Errorf("new MAC %s got %s, want the next free address 10.0.2.18", testMAC(i), got)
		}
	}
}

// hostAnswer reads what a forwarded host port answers.
func hostAnswer(t *testing.T, port uint16) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("port %d: %v", port, err)
	}
	return string(b)
}

// serveName answers every connection on the guest's port 80 with name.
func serveName(t *testing.T, g *stackguest.Guest, name string) {
	ln, err := g.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptEach(ln, func(c net.Conn) { _, _ = c.Write([]byte(name)) })
}

// Each VM's forwards reach that VM; they stop when it leaves; another VM
// asking for a host port already forwarded is refused, with the reason.
func TestHubForwardsPerVM(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	pa, pb := freePort(t, "tcp"), freePort(t, "tcp")
	fwd := func(p uint16) netback.Forward {
		return netback.Forward{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: p, GuestPort: 80}
	}
	a, ja := joinGuest(t, h, testMAC(1), fwd(pa))
	b, _ := joinGuest(t, h, testMAC(2), fwd(pb))
	serveName(t, a, "vm a")
	serveName(t, b, "vm b")
	if got := hostAnswer(t, pa); got != "vm a" {
		t.Errorf("port %d answered %q, want vm a", pa, got)
	}
	if got := hostAnswer(t, pb); got != "vm b" {
		t.Errorf("port %d answered %q, want vm b", pb, got)
	}
	_, err := netback.Join(h.Socket(), testMAC(3), []netback.Forward{fwd(pb)})
	var re *netback.RefusedError
	// Named by the hub, which knows the VM: before, the bind's failure
	// told the VM to stop "the program using it".
	if want := fmt.Sprintf("host port tcp %d is forwarded already, by the VM of MAC %s (%s)", pb, testMAC(2), "10.0.2.16"); !errors.As(err, &re) || re.Reason != netback.RefusedForward || !strings.Contains(err.Error(), want) {
		t.Errorf("a third VM asking for port %d: %v; want a forward refusal saying %q", pb, err, want)
	}
	a.Close()
	if ja.Connects() != 1 {
		t.Errorf("Connects = %d", ja.Connects())
	}
	// The hub removes the forward when it sees the VM leave: the port is
	// free once a new VM can take it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := netback.Join(h.Socket(), testMAC(4), []netback.Forward{fwd(pa)})
		if err == nil {
			j.Close()
			break
		}
		if !errors.Is(err, netback.ErrRefused) || time.Now().After(deadline) {
			t.Fatalf("port %d after its VM left: %v", pa, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A second connection with a connected VM's MAC is refused, and the first
// one keeps working.
func TestHubRefusesDuplicateMAC(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	a, ja := joinGuest(t, h, testMAC(1))
	_, err := netback.Join(h.Socket(), testMAC(1), nil)
	var re *netback.RefusedError
	// The reason code and the fact: the VM's side (smolvmm's
	// backendError) says what to give instead.
	if !errors.As(err, &re) || re.Reason != netback.RefusedDuplicateMAC || !strings.HasSuffix(err.Error(), "a VM with MAC "+testMAC(1).String()+" is connected already") {
		t.Fatalf("duplicate MAC: %v; want a RefusedDuplicateMAC naming the MAC, without advice", err)
	}
	b, _ := joinGuest(t, h, testMAC(2))
	ln, err := a.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	go stackguest.EchoSum(ln)
	sendSum(t, b, netip.AddrPortFrom(ja.Addr(), 80), 4096)
}

// Changed holds a token once a VM has joined (before its Join returns),
// once the lease file that join changed is written (not before), and
// once a VM has left; none after a refused join or a query.
func TestHubChanged(t *testing.T) {
	saving, gate := make(chan struct{}), make(chan struct{})
	first := make(chan struct{}, 1)
	first <- struct{}{}
	h, err := netback.NewHubWithSave(netback.HubConfig{Socket: filepath.Join(testsock.Dir(t), "net.sock"), Logf: t.Logf}, func(save func() error) error {
		select {
		case <-first: // the first save waits for the test
			saving <- struct{}{}
			<-gate
		default:
		}
		return save()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	pending := func() bool {
		select {
		case <-h.Changed():
			return true
		default:
			return false
		}
	}
	if pending() {
		t.Fatal("a change before any VM joined")
	}
	j, err := netback.Join(h.Socket(), testMAC(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pending() {
		t.Fatal("no change after a VM joined")
	}
	<-saving
	if _, err := netback.Join(h.Socket(), testMAC(1), nil); err == nil {
		t.Fatal("a duplicate MAC joined")
	}
	if n, err := netback.HubVMs(h.Socket()); err != nil || n != 1 {
		t.Fatalf("query: %d VMs, %v; want 1", n, err)
	}
	if pending() {
		t.Fatal("a change while the join's lease file was being written, after a refused join and a query")
	}
	close(gate)
	<-h.Changed() // the lease file written
	j.Close()
	<-h.Changed()
	if n := h.Stats().VMs; n != 0 {
		t.Fatalf("%d VMs joined after the change of the only one leaving", n)
	}
}

// Join says the hub is not running, for a missing socket and for one a
// dead hub left behind; NewHub replaces the latter but not a live hub's.
func TestJoinWithoutHub(t *testing.T) {
	dir := testsock.Dir(t)
	sock := filepath.Join(dir, "net.sock")
	if _, err := netback.Join(sock, testMAC(1), nil); !errors.Is(err, netback.ErrNoHub) {
		t.Errorf("no socket: %v, want ErrNoHub", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := netback.Join(sock, testMAC(1), nil); !errors.Is(err, netback.ErrNoHub) {
		t.Errorf("stale socket: %v, want ErrNoHub", err)
	}
	h := startHub(t, dir)
	if _, err := netback.NewHub(netback.HubConfig{Socket: sock}); !errors.Is(err, netback.ErrHubRunning) {
		t.Errorf("second hub on a live socket: %v, want ErrHubRunning", err)
	}
	j, err := netback.Join(h.Socket(), testMAC(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// When the hub goes away the guests keep running (their frames are
// dropped and counted); when it is back they reconnect, with the same
// addresses and forwards, and traffic flows again.
func TestHubRestartReconnects(t *testing.T) {
	dir := testsock.Dir(t)
	h := startHub(t, dir)
	port := freePort(t, "tcp")
	a, ja := joinGuest(t, h, testMAC(1), netback.Forward{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: port, GuestPort: 80})
	b, jb := joinGuest(t, h, testMAC(2))
	serveName(t, a, "vm a")
	if got := hostAnswer(t, port); got != "vm a" {
		t.Fatalf("forward answered %q", got)
	}
	h.Close()
	waitFor(t, "the guests to see the hub gone", func() bool {
		ca, _ := ja.Connected()
		cb, _ := jb.Connected()
		return !ca && !cb
	})
	frame := make([]byte, 60)
	copy(frame, "\xff\xff\xff\xff\xff\xff")
	copy(frame[6:], testMAC(2))
	before := jb.Stats().Unsent
	if err := jb.WriteFrame(frame); err != nil || jb.Stats().Unsent != before+1 {
		t.Errorf("a frame while the hub is away: %v, Unsent %d -> %d; want it dropped and counted", err, before, jb.Stats().Unsent)
	}
	h2 := startHub(t, dir)
	waitFor(t, "both guests to reconnect", func() bool { return ja.Connects() == 2 && jb.Connects() == 2 })
	if h2.Stats().VMs != 2 || ja.Addr().String() != "10.0.2.15" || jb.Addr().String() != "10.0.2.16" {
		t.Fatalf("after the restart: %d VMs, addresses %s and %s", h2.Stats().VMs, ja.Addr(), jb.Addr())
	}
	if got := hostAnswer(t, port); got != "vm a" {
		t.Errorf("forward after the restart answered %q", got)
	}
	ln, err := a.ListenTCP(81)
	if err != nil {
		t.Fatal(err)
	}
	go stackguest.EchoSum(ln)
	sendSum(t, b, netip.AddrPortFrom(ja.Addr(), 81), 256<<10)
}

// rawVM is a hand-made client of the hub's protocol.
type rawVM struct {
	c   net.Conn
	mac net.HardwareAddr
}

// rawHello sends a hello of the given version and body and returns the
// answer's status and body ("" status -1 when the hub closed instead).
func rawHello(t *testing.T, sock string, version byte, body []byte) (net.Conn, int, string) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hdr := []byte{'S', 'M', 'V', 'N', version, 0, 0, 0}
	binary.BigEndian.PutUint16(hdr[6:], uint16(len(body)))
	c.Write(append(hdr, body...))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var ans [8]byte
	if _, err := io.ReadFull(c, ans[:]); err != nil {
		return c, -1, ""
	}
	b := make([]byte, binary.BigEndian.Uint16(ans[6:]))
	io.ReadFull(c, b)
	c.SetDeadline(time.Time{})
	return c, int(ans[5]), string(b)
}

func joinRaw(t *testing.T, h *netback.Hub, mac net.HardwareAddr) *rawVM {
	t.Helper()
	c, status, body := rawHello(t, h.Socket(), 1, []byte(`{"mac":"`+mac.String()+`"}`))
	if status != 0 {
		t.Fatalf("raw join: status %d %s", status, body)
	}
	t.Cleanup(func() { c.Close() })
	return &rawVM{c: c, mac: mac}
}

func (r *rawVM) send(t *testing.T, frame []byte) {
	t.Helper()
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(frame)))
	if _, err := r.c.Write(append(h[:], frame...)); err != nil {
		t.Fatal(err)
	}
}

func (r *rawVM) recv(t *testing.T) []byte {
	t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [4]byte
	if _, err := io.ReadFull(r.c, h[:]); err != nil {
		t.Fatal(err)
	}
	f := make([]byte, binary.BigEndian.Uint32(h[:]))
	if _, err := io.ReadFull(r.c, f); err != nil {
		t.Fatal(err)
	}
	return f
}

// ethFrame is a frame from src to dst of type typ with payload.
func ethFrame(dst, src net.HardwareAddr, typ uint16, payload []byte) []byte {
	f := append(append(append([]byte{}, dst...), src...), byte(typ>>8), byte(typ))
	return append(f, payload...)
}

// ipv4From is a minimal UDP packet (no payload) from src to dst.
func ipv4From(src, dst string) []byte {
	h := make([]byte, 28)
	h[0], h[8], h[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(h[2:], 28)
	binary.BigEndian.PutUint16(h[20:], 1000)
	binary.BigEndian.PutUint16(h[22:], 9)
	binary.BigEndian.PutUint16(h[24:], 8)
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	return h
}

// arpReply claims that ip is at mac.
func arpReply(mac net.HardwareAddr, ip string, to net.HardwareAddr) []byte {
	a := []byte{0, 1, 8, 0, 6, 4, 0, 2}
	a = append(a, mac...)
	i := netip.MustParseAddr(ip).As4()
	a = append(a, i[:]...)
	a = append(a, to...)
	return append(a, 10, 0, 2, 15)
}

// A VM cannot send as another: frames whose source MAC, IPv4 source or
// ARP sender is not its own are dropped (and counted); VLAN tags too. Its
// own frames pass, in order.
func TestHubDropsSpoofedFrames(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	victim := joinRaw(t, h, testMAC(1)) // 10.0.2.15
	bad := joinRaw(t, h, testMAC(2))    // 10.0.2.16
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	spoofed := [][]byte{
		ethFrame(bcast, testMAC(1), 0x0800, ipv4From("10.0.2.15", "10.0.2.255")),      // the victim's MAC
		ethFrame(victim.mac, testMAC(2), 0x0800, ipv4From("10.0.2.15", "10.0.2.15")),  // the victim's address
		ethFrame(bcast, testMAC(2), 0x0806, arpReply(testMAC(2), "10.0.2.15", bcast)), // ARP: "10.0.2.15 is at bad"
		ethFrame(bcast, testMAC(2), 0x0806, arpReply(testMAC(1), "10.0.2.16", bcast)), // ARP naming the victim's MAC
		ethFrame(bcast, testMAC(2), 0x8100, make([]byte, 46)),                         // VLAN-tagged
		ethFrame(victim.mac, testMAC(2), 0x0800, []byte{0x45}),                        // IPv4 too short to check
	}
	for _, f := range spoofed {
		bad.send(t, f)
	}
	own := ethFrame(victim.mac, testMAC(2), 0x0800, ipv4From("10.0.2.16", "10.0.2.15"))
	bad.send(t, own)
	arp := ethFrame(bcast, testMAC(2), 0x0806, arpReply(testMAC(2), "10.0.2.16", bcast))
	bad.send(t, arp)
	for _, want := range [][]byte{own, arp} {
		if got := victim.recv(t); !bytes.Equal(got, want) {
			t.Fatalf("victim received % x,\nwant % x", got, want)
		}
	}
	if s := h.Stats(); s.Spoofed != uint64(len(spoofed)) {
		t.Errorf("Spoofed = %d, want %d", s.Spoofed, len(spoofed))
	}
}

// Hostile handshakes and frames end that connection only: the hub goes
// on serving the others.
func TestHubHostileConnections(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	a, ja := joinGuest(t, h, testMAC(1))
	b, _ := joinGuest(t, h, testMAC(2))
	ln, err := a.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	refusals := []struct {
		name    string
		version byte
		body    string
		status  int // -1: closed without an answer
		want    string
	}{
		{"version 2", 2, `{"mac":"52:54:00:00:00:09"}`, int(netback.RefusedVersion), "version 1"},
		{"not JSON", 1, `{"mac":`, -1, ""},
		{"bad MAC", 1, `{"mac":"zz"}`, int(netback.RefusedMalformed), "MAC"},
		{"multicast MAC", 1, `{"mac":"01:00:5e:00:00:01"}`, int(netback.RefusedMalformed), "multicast"},
		{"the gateway's MAC", 1, `{"mac":"5a:94:ef:e4:0c:dd"}`, int(netback.RefusedMalformed), "gateway"},
		{"bad forward", 1, `{"mac":"52:54:00:00:00:09","forwards":["sctp:1:2"]}`, int(netback.RefusedMalformed), "sctp"},
		{"too many forwards", 1, `{"mac":"52:54:00:00:00:09","forwards":[` + strings.Repeat(`"1:1",`, 64) + `"1:1"]}`, int(netback.RefusedMalformed), "at most 64"},
		{"a connected MAC", 1, `{"mac":"` + testMAC(1).String() + `"}`, int(netback.RefusedDuplicateMAC), "connected already"},
	}
	for _, r := range refusals {
		c, status, body := rawHello(t, h.Socket(), r.version, []byte(r.body))
		c.Close()
		if status != r.status || !strings.Contains(body, r.want) {
			t.Errorf("%s: status %d %q, want %d with %q", r.name, status, body, r.status, r.want)
		}
	}
	// Byte streams that are no handshake, or frames out of bounds.
	garbage := [][]byte{
		[]byte("GET / HTTP/1.0\r\n\r\n"),
		{'S', 'M', 'V', 'N', 1, 0, 0xff, 0xff}, // a body over the limit
	}
	for _, g := range garbage {
		c, err := net.Dial("unix", h.Socket())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(g)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%q: the hub answered %d bytes, want the connection closed", g, n)
		}
		c.Close()
	}
	for _, length := range []uint32{0, 13, netback.MaxFrameSize + 1, 0xffffffff} {
		r := joinRaw(t, h, testMAC(9))
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], length)
		r.c.Write(hdr[:])
		r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			// Broadcasts may arrive first; then the hub must hang up.
			if _, err := r.c.Read(make([]byte, 4096)); err != nil {
				break
			}
		}
		r.c.Close()
		waitFor(t, "the hub to drop the bad VM", func() bool { return h.Stats().VMs == 2 })
	}
	go stackguest.EchoSum(ln)
	sendSum(t, b, netip.AddrPortFrom(ja.Addr(), 80), 64<<10)
}

// stream sends total random bytes from a to b's port over TCP; progress
// closes once b has received a quarter, result gives "N sha256" of what b
// received, and want is what it must be.
func stream(t *testing.T, a, b *stackguest.Guest, bAddr netip.Addr, port uint16, total int) (progress chan struct{}, result chan string, want string, conn net.Conn) {
	t.Helper()
	ln, err := b.ListenTCP(port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	progress, result = make(chan struct{}), make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			result <- err.Error()
			return
		}
		defer c.Close()
		hs := sha256.New()
		buf := make([]byte, 64<<10)
		n, signalled := 0, false
		for {
			m, err := c.Read(buf)
			hs.Write(buf[:m])
			n += m
			if n >= total/4 && !signalled {
				close(progress)
				signalled = true
			}
			if err != nil {
				break
			}
		}
		result <- fmt.Sprintf("%d %x", n, hs.Sum(nil))
	}()
	data := make([]byte, total)
	rand.Read(data)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := a.DialTCP(ctx, netip.AddrPortFrom(bAddr, port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		c.Write(data)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	select {
	case <-progress:
	case <-time.After(30 * time.Second):
		t.Fatal("no progress")
	}
	return progress, result, fmt.Sprintf("%d %x", total, sha256.Sum256(data)), c
}

// Under load: while one guest streams to another, a third VM is killed
// (its connection cut mid-frame): the stream goes on and arrives whole.
// Then the hub itself is restarted under another stream: the guests
// reconnect and new connections between them carry data whole (the
// stream cut by the restart is TCP's to recover, on its own timers).
func TestHubFaultsUnderLoad(t *testing.T) {
	dir := testsock.Dir(t)
	h := startHub(t, dir)
	a, ja := joinGuest(t, h, testMAC(1))
	b, jb := joinGuest(t, h, testMAC(2))
	victim := joinRaw(t, h, testMAC(3))
	_, result, want, _ := stream(t, a, b, jb.Addr(), 80, 4<<20)
	victim.c.Write([]byte{0, 0, 0x05, 0xdc, 0xff, 0xff}) // half a frame, then gone
	victim.c.Close()
	select {
	case got := <-result:
		if got != want {
			t.Fatalf("receiver got %s, want %s", got, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream stopped when another VM was killed")
	}

	_, _, _, c := stream(t, a, b, jb.Addr(), 81, 4<<20)
	h.Close()
	startHub(t, dir)
	waitFor(t, "both guests to reconnect", func() bool { return ja.Connects() == 2 && jb.Connects() == 2 })
	c.Close()
	ln, err := a.ListenTCP(82)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go stackguest.EchoSum(ln)
	sendSum(t, b, netip.AddrPortFrom(ja.Addr(), 82), 1<<20)
}

// dhcpOffer sends a DISCOVER through j and returns the hub's OFFER.
func dhcpOffer(t *testing.T, j *netback.Joined, mac net.HardwareAddr) *dhcpv4.DHCPv4 {
	t.Helper()
	d, err := dhcpv4.NewDiscovery(mac)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.WriteFrame(udpBroadcast(mac, 68, 67, d.ToBytes())); err != nil {
		t.Fatal(err)
	}
	var offer *dhcpv4.DHCPv4
	readUntil(t, j, "DHCP offer", func(f []byte) bool {
		if len(f) <= 42 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[23] != 17 || binary.BigEndian.Uint16(f[36:]) != 68 {
			return false
		}
		r, err := dhcpv4.FromBytes(f[42:])
		if err != nil || r.TransactionID != d.TransactionID {
			return false
		}
		offer = r
		return true
	})
	return offer
}

// DHCP through the hub offers each MAC the address its handshake was
// answered with, distinct per MAC, the same after the hub restarts
// (whatever order the VMs come back in), with the gateway and DNS server
// of the single-VM network.
func TestHubDHCP(t *testing.T) {
	dir := testsock.Dir(t)
	want := map[string]string{}
	for round, order := range [][]byte{{1, 2}, {2, 1}} {
		h, err := netback.NewHub(netback.HubConfig{Socket: filepath.Join(dir, "net.sock")})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range order {
			j, err := netback.Join(h.Socket(), testMAC(i), nil)
			if err != nil {
				t.Fatal(err)
			}
			o := dhcpOffer(t, j, testMAC(i))
			j.Close()
			got := o.YourIPAddr.String()
			if got != j.Addr().String() || o.MessageType() != dhcpv4.MessageTypeOffer || ipsString(o.Router()) != "10.0.2.2" || ipsString(o.DNS()) != "10.0.2.3" {
				t.Errorf("round %d MAC %s: %s offer of %s router %v DNS %v; the handshake said %s", round, testMAC(i), o.MessageType(), got, o.Router(), o.DNS(), j.Addr())
			}
			if round == 0 {
				want[testMAC(i).String()] = got
			} else if got != want[testMAC(i).String()] {
				t.Errorf("MAC %s: %s after the restart, %s before", testMAC(i), got, want[testMAC(i).String()])
			}
		}
		h.Close()
	}
	if want[testMAC(1).String()] == want[testMAC(2).String()] {
		t.Errorf("both MACs were offered %s", want[testMAC(1).String()])
	}
}

// A VM whose forwarded host port another program took while the hub was
// away is refused when it reconnects, and stops trying: Failed, with the
// refusal naming the port; a VM without forwards reconnects.
func TestHubRestartPortTaken(t *testing.T) {
	dir := testsock.Dir(t)
	h := startHub(t, dir)
	port := freePort(t, "tcp")
	ja, err := netback.Join(h.Socket(), testMAC(1), []netback.Forward{{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: port, GuestPort: 80}})
	if err != nil {
		t.Fatal(err)
	}
	defer ja.Close()
	jb, err := netback.Join(h.Socket(), testMAC(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer jb.Close()
	h.Close()
	taken, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	startHub(t, dir)
	select {
	case <-ja.Failed():
	case <-time.After(20 * time.Second):
		t.Fatal("the VM whose port is taken is still reconnecting")
	}
	var re *netback.RefusedError
	if err := ja.Err(); !errors.As(err, &re) || re.Reason != netback.RefusedForward || !strings.Contains(err.Error(), fmt.Sprint(port)) {
		t.Errorf("Err() = %v, want a forward refusal naming port %d", err, port)
	}
	waitFor(t, "the other VM to reconnect", func() bool { return jb.Connects() == 2 })
}

// A VM's shared network backend says, once each, when it loses the
// network, when it first fails to rejoin, and when it has rejoined (not
// once per attempt), and nothing
// when it is closed.
func TestJoinLogsLossAndRejoin(t *testing.T) {
	dir := testsock.Dir(t)
	h := startHub(t, dir)
	var mu sync.Mutex
	var logged []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, fmt.Sprintf(format, args...))
	}
	lines := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), logged...)
	}
	j, err := netback.JoinWith(h.Socket(), testMAC(1), nil, netback.JoinOptions{Name: "web", Logf: logf})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var want []string
	// Down until a redial has failed: the loss is logged, and the first
	// failed attempt (the others fail the same way, and are not).
	failed := func() {
		var err error
		waitFor(t, "a failed reconnection", func() bool {
			_, err = j.Connected()
			return errors.Is(err, netback.ErrNoHub)
		})
		want = append(want, "shared network web lost: EOF; reconnecting", fmt.Sprintf("shared network web: cannot rejoin: %v; still trying", err))
	}
	for round := range 2 {
		h.Close()
		failed()
		h = startHub(t, dir)
		waitFor(t, "the reconnection", func() bool { return j.Connects() == uint64(round+2) })
		want = append(want, "rejoined web as 10.0.2.15")
	}
	h.Close()
	failed()
	waitFor(t, "the loss to be logged", func() bool { return len(lines()) == len(want) })
	j.Close()
	if got := lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// HubPID names the hub's process (here, the test's), and the hub takes
// the probe quietly: it is no VM failing its handshake.
func TestHubPID(t *testing.T) {
	dir := testsock.Dir(t)
	var mu sync.Mutex
	var logged []string
	h, err := netback.NewHub(netback.HubConfig{Socket: filepath.Join(dir, "net.sock"), Logf: func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, fmt.Sprintf(format, args...))
	}})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := netback.HubPID(h.Socket())
	if err != nil || pid != os.Getpid() {
		t.Errorf("HubPID: %d, %v; want %d", pid, err, os.Getpid())
	}
	// A client that connects and says nothing is cut off by Close: no
	// VM's fault either (CI saw "handshake: ... use of closed network
	// connection" logged when Close came before the probe's EOF).
	silent, err := net.Dial("unix", h.Socket())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	h.Close() // waits for the connections to be served
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 0 {
		t.Errorf("the hub logged the probe: %q", logged)
	}
	if _, err := netback.HubPID(h.Socket()); !errors.Is(err, netback.ErrNoHub) {
		t.Errorf("HubPID with no hub: %v, want ErrNoHub", err)
	}
}
