package net

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	stdnet "net"
	"net/netip"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// freePort returns a host TCP port free until a forward listens on it:
// testsock's, below the ephemeral range another test's connect or
// listener could take it from.
func freePort(t testing.TB) uint16 { return testsock.Port(t) }

// guestBehindDevice runs the user network with one forward to guest port
// 80, the virtio-net device on it, a driver shim on the device and a
// netstack guest at 10.0.2.15 on the shim: the whole path a real guest's
// traffic takes, minus KVM.
func guestBehindDevice(t testing.TB) (*stackguest.Guest, *rig, uint16) {
	t.Helper()
	port := freePort(t)
	u, err := netback.NewUser(testMAC, []netback.Forward{
		{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: port, GuestPort: 80}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRigOn(t, u)
	shim := newDriverShim(r)
	g, err := stackguest.New(shim, stackguest.Config{MAC: testMAC,
		Addr: netip.PrefixFrom(netback.UserGuest, 24), Gateway: netback.UserGateway})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, r, port
}

func TestForwardedPortThroughDevice(t *testing.T) {
	g, r, port := guestBehindDevice(t)
	ln, err := g.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go stackguest.EchoSum(ln)
	c, err := stdnet.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	data := make([]byte, 1<<20)
	rand.Read(data)
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	c.(*stdnet.TCPConn).CloseWrite()
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("got %d bytes sha256 %x", len(data), sha256.Sum256(data)); string(reply) != want {
		t.Fatalf("guest replied %q, want %q", reply, want)
	}
	st := r.dev.Stats()
	if st.RxFrames == 0 || st.TxFrames == 0 || st.RxBadChains != 0 || st.TxBadChains != 0 || st.TxErrors != 0 {
		t.Errorf("device stats %+v", st)
	}
	t.Logf("device stats %+v", st)
}

// BenchmarkTCPHostToGuest compares a host-to-guest TCP transfer through a
// forwarded port, the user network, the virtio-net device and a driver on
// fake guest memory, with plain loopback (the ceiling).
func BenchmarkTCPHostToGuest(b *testing.B) {
	b.Run("loopback", func(b *testing.B) {
		ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		stackguest.BenchTCP(b, ln, func() (stdnet.Conn, error) { return stdnet.Dial("tcp", ln.Addr().String()) })
	})
	b.Run("forward+virtio-net", func(b *testing.B) {
		g, _, port := guestBehindDevice(b)
		ln, err := g.ListenTCP(80)
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		stackguest.BenchTCP(b, ln, func() (stdnet.Conn, error) { return stdnet.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)) })
	})
}

// TestARPThroughDevice is what the project's ARP test guest does under
// smolvmm run --net user: a raw ARP request for the gateway goes out of the
// transmit queue, and the gateway's reply arrives in a receive buffer.
func TestARPThroughDevice(t *testing.T) {
	u, err := netback.NewUser(testMAC, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newRigOn(t, u)
	shim := newDriverShim(r)
	defer shim.Close()
	req := make([]byte, 42)
	copy(req, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(req[6:], testMAC)
	copy(req[12:], []byte{0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1})
	copy(req[22:], testMAC)
	copy(req[28:], []byte{10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2})
	if err := shim.WriteFrame(req); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, netback.MaxFrameSize)
	timer := time.AfterFunc(10*time.Second, func() { shim.Close() }) // ends a blocked ReadFrame
	defer timer.Stop()
	for {
		n, err := shim.ReadFrame(buf)
		if err != nil {
			t.Fatalf("no ARP reply through the device within 10s: %v", err)
		}
		f := buf[:n]
		if n < 42 || f[12] != 0x08 || f[13] != 0x06 || f[21] != 2 {
			continue // not an ARP reply
		}
		if !bytes.Equal(f[22:28], netback.UserGatewayMAC) || !bytes.Equal(f[28:32], []byte{10, 0, 2, 2}) ||
			!bytes.Equal(f[0:6], testMAC) {
			t.Fatalf("ARP reply % x: want 10.0.2.2 at %s, sent to %x", f[:42], netback.UserGatewayMAC, testMAC)
		}
		return
	}
}
