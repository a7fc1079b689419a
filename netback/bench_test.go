package netback_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// BenchmarkTCP compares TCP transfers over the user network with plain
// loopback (the ceiling): host to a netstack guest through a forwarded
// port, the guest to the host's loopback through the gateway (NAT), and
// one guest to another through a shared network's hub (each guest's
// frames cross a Unix socket to the hub's switch and another to the
// other guest, as between two VMs on "smolvmm net").
func BenchmarkTCP(b *testing.B) {
	b.Run("loopback", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		stackguest.BenchTCP(b, ln, func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) })
	})
	b.Run("host-to-guest-forward", func(b *testing.B) {
		port := freePort(b, "tcp")
		g, u := startGuestOn(b, netback.Forward{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: port, GuestPort: 80})
		ln, err := g.ListenTCP(80)
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		stackguest.BenchTCP(b, ln, func() (net.Conn, error) { return net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)) })
		b.ReportMetric(float64(u.Stats().Dropped), "drops")
	})
	b.Run("guest-to-host-nat", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		g := startGuest(b)
		port := uint16(ln.Addr().(*net.TCPAddr).Port)
		stackguest.BenchTCP(b, ln, func() (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port))
		})
	})
	b.Run("guest-to-guest-shared", func(b *testing.B) {
		h := startHub(b, testsock.Dir(b))
		src, _ := joinGuest(b, h, testMAC(1))
		dst, jd := joinGuest(b, h, testMAC(2))
		ln, err := dst.ListenTCP(80)
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		stackguest.BenchTCP(b, ln, func() (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return src.DialTCP(ctx, netip.AddrPortFrom(jd.Addr(), 80))
		})
		b.ReportMetric(float64(h.Stats().Dropped+jd.Stats().Dropped), "drops")
	})
}
