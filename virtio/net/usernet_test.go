package net

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	stdnet "net"
	"net/netip"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// freePort returns a host TCP port that was free a moment ago.
func freePort(t testing.TB) uint16 {
	t.Helper()
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*stdnet.TCPAddr).Port)
}

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
	t.Cleanup(func() { r.pd.Close() })
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
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		h := sha256.New()
		n, _ := io.Copy(h, c)
		fmt.Fprintf(c, "got %d bytes sha256 %x", n, h.Sum(nil))
	}()
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

// benchTCP sends b.N chunks over the connection dial makes to the listener
// and counts the time until the receiver has them all.
func benchTCP(b *testing.B, ln stdnet.Listener, dial func() (stdnet.Conn, error)) {
	const chunk = 64 << 10
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	c, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	n := <-got
	b.StopTimer()
	if n != int64(b.N)*chunk {
		b.Fatalf("receiver got %d bytes, want %d", n, int64(b.N)*chunk)
	}
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
		benchTCP(b, ln, func() (stdnet.Conn, error) { return stdnet.Dial("tcp", ln.Addr().String()) })
	})
	b.Run("forward+virtio-net", func(b *testing.B) {
		g, _, port := guestBehindDevice(b)
		ln, err := g.ListenTCP(80)
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		benchTCP(b, ln, func() (stdnet.Conn, error) { return stdnet.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)) })
	})
}
