package netback_test

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// closedUDPPort is a host loopback port nothing listens on (testsock.Port:
// below the ephemeral range, where no other process's socket takes it
// meanwhile, as it could a closed port-0 socket's port).
func closedUDPPort(t *testing.T) uint16 { return testsock.Port(t) }

// dialGateway is a UDP socket of guest g (at addr, port from) to the
// gateway's port to (the host's loopback).
func dialGateway(t *testing.T, g *stackguest.Guest, addr netip.Addr, from, to uint16) *gonet.UDPConn {
	t.Helper()
	c, err := gonet.DialUDP(g.Stack, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addr.As4()), Port: from},
		&tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netback.UserGateway.As4()), Port: to}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// One VM of a hub flooding closed host ports with UDP does not use up
// the ICMP port unreachables of the others. Before, every refusal came
// out of the gateway stack's one ICMP limiter (1000 a second, bursts of
// 50), which a VM with hundreds of flows to a closed port drained: its
// neighbour's datagram to a closed port then drew no refusal, and its
// socket waited out its timeout. Each VM now has a budget of its own.
//
// The flood is paced (floodPerTick a millisecond), not a loop without
// pause, which under the race detector on two busy cores took a core of
// its own and at times had the hub drop the flooding VM. The other VM's datagrams wait in the gateway's queue
// behind up to a queue's worth (1024 frames) of the flood's, which
// takes seconds to drain on a loaded machine under the race detector:
// each refusal may take refusalWait. Each round's refusals come at
// once, so with the one shared limiter drained some would surely be
// missing.
func TestNATPortUnreachableFloodSparesOthers(t *testing.T) {
	const (
		// floodPerTick datagrams a millisecond: three times the shared
		// limiter's rate, so that it would be drained.
		floodPerTick = 3
		// perRound is the other VM's datagrams at once: within its
		// own burst of 10 refusals (natICMPBurst).
		perRound = 8
		rounds   = 3
		// refusalWait only turns a refusal that never comes into a
		// failure rather than a hang.
		refusalWait = 20 * time.Second
	)
	h := startHub(t, testsock.Dir(t))
	ga, ja := joinGuest(t, h, testMAC(1))
	gb, jb := joinGuest(t, h, testMAC(2))
	port := closedUDPPort(t)
	var flood []*gonet.UDPConn
	for i := range 800 {
		c := dialGateway(t, ga, ja.Addr(), uint16(40000+i), port)
		defer c.Close()
		flood = append(flood, c)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for next := 0; ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range floodPerTick {
				_, _ = flood[next].Write([]byte("x"))
				next = (next + 1) % len(flood)
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	time.Sleep(500 * time.Millisecond) // the flood under way

	for r := range rounds {
		closed := closedUDPPort(t)
		var conns []*gonet.UDPConn
		for i := range perRound {
			c := dialGateway(t, gb, jb.Addr(), uint16(32000+r*perRound+i), closed)
			defer c.Close()
			conns = append(conns, c)
		}
		for _, c := range conns {
			if _, err := c.Write([]byte("anyone there?")); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(refusalWait)
		for i, c := range conns {
			// gonet's read waits for a datagram, not an error: it is
			// read again until the refusal is there.
			var err error
			for {
				c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				_, err = c.Read(make([]byte, 100))
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() || time.Now().After(deadline) {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), "refused") {
				t.Errorf("round %d, datagram %d of the other VM while one flooded: read %v, want the connection refused", r, i, err)
			}
		}
		// The other VM's budget tops up (100 a second) for the next
		// round.
		time.Sleep(100 * time.Millisecond)
	}
}
