package netback_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// synFrame is an Ethernet/IPv4/TCP SYN from src:sport (srcMAC) to
// dst:dport (dstMAC).
func synFrame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, sport, dport uint16) []byte {
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], 1000)
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	s, d := src.As4(), dst.As4()
	pseudo := append(append(append([]byte{}, s[:]...), d[:]...), 0, 6, 0, 20)
	binary.BigEndian.PutUint16(tcp[16:], ipChecksum(append(pseudo, tcp...)))
	return ipv4Frame(dstMAC, srcMAC, src, dst, 6, tcp) // frames_test.go
}

// joinRawAt joins a raw VM and returns it with the address the hub
// leased it.
func joinRawAt(t *testing.T, h *netback.Hub, mac net.HardwareAddr) (*rawVM, netip.Addr) {
	t.Helper()
	c, status, body := rawHello(t, h.Socket(), 1, []byte(`{"mac":"`+mac.String()+`"}`))
	if status != 0 {
		t.Fatalf("raw join: status %d %s", status, body)
	}
	t.Cleanup(func() { c.Close() })
	var ans struct{ Addr string }
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatalf("raw join's answer %q: %v", body, err)
	}
	addr, err := netip.ParseAddr(ans.Addr)
	if err != nil {
		t.Fatalf("raw join's answer %q: %v", body, err)
	}
	return &rawVM{c: c, mac: mac}, addr
}

// answerARP reads a raw VM's frames until its connection closes,
// answering the ARP requests for ip (the gateway asks before it sends
// its SYN-ACKs) and dropping the rest: the SYN-ACKs go unanswered.
func answerARP(c net.Conn, mac net.HardwareAddr, ip netip.Addr) {
	answerARPNoting(c, mac, ip, nil)
}

// answerARPNoting is answerARP that tells synACK, when set, the
// destination port of each SYN-ACK the raw VM is sent (those sent again
// too).
func answerARPNoting(c net.Conn, mac net.HardwareAddr, ip netip.Addr, synACK func(port uint16)) {
	var h [4]byte
	for {
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return
		}
		f := make([]byte, binary.BigEndian.Uint32(h[:]))
		if _, err := io.ReadFull(c, f); err != nil {
			return
		}
		if synACK != nil && len(f) >= 54 && f[12] == 8 && f[13] == 0 && f[23] == 6 && f[14] == 0x45 && f[47]&0x12 == 0x12 {
			synACK(binary.BigEndian.Uint16(f[36:38]))
		}
		if len(f) < 42 || f[12] != 8 || f[13] != 6 || f[21] != 1 || netip.AddrFrom4([4]byte(f[38:42])) != ip {
			continue
		}
		a := ip.As4()
		r := make([]byte, 4+42)
		binary.BigEndian.PutUint32(r, 42)
		copy(r[4:10], f[6:12])
		copy(r[10:16], mac)
		r[16], r[17] = 8, 6
		copy(r[18:24], []byte{0, 1, 8, 0, 6, 4})
		r[25] = 2 // reply
		copy(r[26:32], mac)
		copy(r[32:36], a[:])
		copy(r[36:42], f[22:28])
		copy(r[42:46], f[28:32])
		if _, err := c.Write(r); err != nil {
			return
		}
	}
}

// sendSYNs sends k SYNs of new connections from r at addr to the
// gateway's port, from source ports first, first+1...
func sendSYNs(t *testing.T, r *rawVM, addr netip.Addr, port, first uint16, k int) {
	t.Helper()
	var b []byte
	for i := range k {
		f := synFrame(netback.UserGatewayMAC, r.mac, addr, netback.UserGateway, first+uint16(i), port)
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	if _, err := r.c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// VMs that send SYNs to a host service and never finish the handshake
// (SYN-ACKs unanswered) hold up their own connections only: another VM
// of the hub connects through the NAT at once while they go on. They
// filled the gateway's one table of connections being set up (4096, for
// every VM), each for gVisor's 127 s of SYN-ACK retransmissions: the
// other VM's connection timed out, nothing counted or logged. Each VM's
// unfinished handshakes are bounded now (its further SYNs dropped and
// counted as held back, the VM logged once), and so are the host
// connections the flood holds.
func TestHubSYNFloodLeavesOthersConnecting(t *testing.T) {
	var logged lockedLog
	h, err := netback.NewHub(netback.HubConfig{
		Socket: filepath.Join(testsock.Dir(t), "net.sock"),
		Logf:   func(format string, args ...any) { fmt.Fprintf(&logged, format+"\n", args...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	port := echoTCP(t)

	const flooders = 3
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	var addrs []netip.Addr
	sent := make(chan struct{}, flooders)
	for i := range flooders {
		r, addr := joinRawAt(t, h, testMAC(byte(1+i)))
		addrs = append(addrs, addr)
		go answerARP(r.c, r.mac, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A new connection's SYN every 100 µs or so, until the
			// test ends: far more than a VM's bound, and than the
			// table's 4096 across the VMs within 2 s. No faster than
			// the gateway takes them (floodPace): the frames behind
			// them wait for those ahead.
			for k := 0; ctx.Err() == nil; k++ {
				floodPace(ctx, h, r.c)
				f := synFrame(netback.UserGatewayMAC, r.mac, addr, netback.UserGateway, uint16(1024+k%60000), port)
				var l [4]byte
				binary.BigEndian.PutUint32(l[:], uint32(len(f)))
				if _, err := r.c.Write(append(l[:], f...)); err != nil {
					return
				}
				if k == 8000 {
					sent <- struct{}{}
				}
				if k%16 == 15 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	for range flooders {
		<-sent
	}
	// Within the SYN-ACKs' first retransmission (1 s), the flood going
	// on: the table stays full of the VMs' handshakes for 127 s.
	maxConns := uint64(flooders * netback.NATSetupPerGuest)
	if n := h.Stats().NATConns; n > maxConns {
		t.Errorf("the flooding VMs hold %d connections to the host, want at most %d (%d each: dials and handshakes not finished)", n, maxConns, netback.NATSetupPerGuest)
	}

	g, _ := joinGuest(t, h, testMAC(9))
	dctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	c, err := g.DialTCP(dctx, netip.AddrPortFrom(netback.UserGateway, port))
	if err != nil {
		t.Fatalf("another VM's connection to the host during the flood: %v after %v (stats %+v)", err, time.Since(start), h.Stats())
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo through the NAT during the flood: %q, %v", got, err)
	}

	if s := h.Stats(); s.NATHeldConns == 0 {
		t.Errorf("no connection counted as held back: %+v", s)
	}
	stop()
	wg.Wait()
	for _, a := range addrs {
		want := fmt.Sprintf("NAT: the VM at %s has %d TCP handshakes it has not finished", a, netback.NATHandshakesPerGuest)
		if n := strings.Count(logged.String(), want); n != 1 {
			t.Errorf("%q logged %d times, want once; log:\n%s", want, n, logged.String())
		}
	}
}

// floodPace waits, until ctx ends, while the hub's gateway has more than
// a few frames waiting or c more than a few unread by the hub: a flooding
// VM's ARP replies come on c behind its SYNs, and the gateway's queue is
// every VM's. Flooded as fast as they could write, a loaded host's
// gateway (-race, -cpu 1) read a VM's ARP reply after the 3 s its
// resolution waits: that failure ended the VM's handshakes (host
// unreachable), and its note was logged a second time as they filled
// again; other VMs' frames waited behind the flood as long.
func floodPace(ctx context.Context, h *netback.Hub, c net.Conn) {
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return
	}
	unread := func() (n int) {
		raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
		return n
	}
	for ctx.Err() == nil && (netback.HubGatewayQueued(h) > 64 || unread() > 32<<10) {
		time.Sleep(time.Millisecond)
	}
}

// A guest that answers its SYN-ACKs opens as many connections as it
// likes through the NAT: the bound of its handshakes not finished counts
// each only until the guest's ACK. 200 connections of the single VM of a
// user network, opened 16 at once (its dials' bound, 4 to each of 4
// services) and all open together, each echoes. (More at once than the
// dials' bounds wait for a dial to end: TestNATManyConnectionsAtOnce.)
func TestUserNATManyConnections(t *testing.T) {
	g, u := startGuestOn(t)
	var ports []uint16
	for range 4 {
		ports = append(ports, echoTCP(t))
	}
	const conns, workers = 200, 16
	next := make(chan int)
	go func() {
		for i := range conns {
			next <- i
		}
		close(next)
	}()
	var mu sync.Mutex
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, ports[w%len(ports)]))
				cancel()
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					continue
				}
				mu.Lock()
				open = append(open, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := u.Stats(); s.NATConns != conns || s.NATRefusedConns != 0 {
		t.Errorf("%d connections through the NAT, %d refused; want %d, none", s.NATConns, s.NATRefusedConns, conns)
	}
	echoEach(t, open)
}

// echoEach fails t unless each of conns echoes its number.
func echoEach(t *testing.T, conns []net.Conn) {
	t.Helper()
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := fmt.Sprintf("%03d", i)
		got := make([]byte, len(msg))
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("connection %d: echo %q, %v", i, got, err)
		}
	}
}
