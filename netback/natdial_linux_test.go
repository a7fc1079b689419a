package netback_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// A guest whose connections to one service hang in their dial on the
// host (a service that is down and drops SYNs, which a program retrying
// with a short timeout keeps trying) still connects at once to another
// service: the dials to one destination hold only part of its dials.
func TestNATDialsPerService(t *testing.T) {
	hang := hangingPort(t)
	echo := echoTCP(t)
	h := startHub(t, testsock.Dir(t))
	g, _ := joinGuest(t, h, testMAC(1))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 2 * netback.NATDialsPerGuest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, hang)); err == nil {
				c.Close()
			}
		}()
	}
	waitFor(t, "the guest's SYNs beyond its dials to the service to be dropped", func() bool { return h.Stats().NATRefusedConns > 0 })

	ectx, ecancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ecancel()
	c, err := g.DialTCP(ectx, netip.AddrPortFrom(netback.UserGateway, echo))
	if err != nil {
		t.Fatalf("to another service, while its dials to one hang: %v", err)
	}
	defer c.Close()
	if err := echoes(c, "other"); err != nil {
		t.Fatal(err)
	}
}
