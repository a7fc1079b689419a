package netback_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// hangingPort is a host TCP port whose connections hang: a listener with
// a backlog of 0 that never accepts, its queue filled by one connection,
// so that Linux drops further SYNs and the dials wait.
func hangingPort(t *testing.T) uint16 {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(sa.(*syscall.SockaddrInet4).Port)
	c, err := net.Dial("tcp", netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return port
}

// A guest whose connections hang in their dial on the host (to several
// services, each at its NATDialsPerService) holds at most
// NATDialsPerGuest of the hub's dials (its further SYNs are dropped and
// counted): another guest's connection is made at once, not held back
// until those dials time out.
func TestHubNATDialsPerGuest(t *testing.T) {
	var hang []uint16
	for range 2 * netback.NATDialsPerGuest / netback.NATDialsPerService {
		hang = append(hang, hangingPort(t))
	}
	echo := echoTCP(t)
	h := startHub(t, testsock.Dir(t))
	a, _ := joinGuest(t, h, testMAC(1))
	b, _ := joinGuest(t, h, testMAC(2))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range 2 * netback.NATDialsPerGuest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := a.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, hang[i%len(hang)])); err == nil {
				c.Close()
			}
		}()
	}
	waitFor(t, "guest a's SYNs beyond its dials to be dropped", func() bool { return h.Stats().NATHeldConns > 0 })

	bctx, bcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer bcancel()
	c, err := b.DialTCP(bctx, netip.AddrPortFrom(netback.UserGateway, echo))
	if err != nil {
		t.Fatalf("guest b, while guest a's dials hang: %v", err)
	}
	defer c.Close()
	if err := echoes(c, "b"); err != nil {
		t.Fatal(err)
	}
}
