package netback_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// countingTCP is a host service that reads each connection until it
// ends, and counts the connections open.
func countingTCP(t *testing.T) (port uint16, open *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	open = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open.Add(1)
			go func() {
				defer open.Add(-1)
				defer c.Close()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port), open
}

// A VM started again at its address (the same MAC) gets a table of SYNs
// being handled of its own, not its last runs': those kept their
// handshakes left unfinished (SYN-ACKs unanswered) in the address's one
// table for up to 127 s, while each new run's count started from none,
// and from the fifth run the table was full: every SYN was dropped,
// neither counted nor logged, and the VM could not connect for two
// minutes. Each run here sends 100 SYNs to a host service that answers
// and never ACKs: 64 have their handshake started (the bound of a VM's),
// the rest are dropped; the run after five connects at once, and the
// host's side of the ended runs' handshakes is closed as each ends, not
// held 127 s (320 host connections for five).
func TestHubRejoinedVMGetsFreshSYNTable(t *testing.T) {
	h := startHub(t, testsock.Dir(t))
	port, hostOpen := countingTCP(t)
	mac := testMAC(1)
	const runs, syns = 5, 100
	for run := range runs {
		waitFor(t, "the VM's last run to leave", func() bool { return h.Stats().VMs == 0 })
		r, addr := joinRawAt(t, h, mac)
		// Ports of the run's own: an earlier run's SYN-ACKs sent
		// again come to this one, and a connection's SYN is counted
		// as dropped once.
		first := uint16(1024 + run*syns)
		var mu sync.Mutex
		acked := map[uint16]bool{}
		go answerARPNoting(r.c, r.mac, addr, func(p uint16) {
			if p >= first && p < first+syns {
				mu.Lock()
				acked[p] = true
				mu.Unlock()
			}
		})
		before := h.Stats() // the earlier runs' handshakes not over
		admitted := func() uint64 { return h.Stats().NATConns - before.NATConns }
		answered := func() uint64 {
			mu.Lock()
			defer mu.Unlock()
			return uint64(len(acked))
		}
		// Up to the handshakes' bound, as many SYNs at a time as the
		// service's dials, each batch once the last has its handshakes
		// started; then the rest at once. Sent all at once, the SYNs
		// beyond the dials waited for one to end for natSYNWait
		// (0.9 s) only, and a loaded host's dials (-race, -cpu 1)
		// took longer: 34 of 100 were admitted, the rest dropped.
		for sent := 0; sent < syns; {
			k := netback.NATDialsPerService
			if sent >= netback.NATHandshakesPerGuest {
				k = syns - sent
			}
			sendSYNs(t, r, addr, port, first+uint16(sent), k)
			sent += k
			waitFor(t, "each SYN of the run admitted or dropped (counted)", func() bool {
				return admitted()+h.Stats().NATHeldConns-before.NATHeldConns == uint64(sent)
			})
			waitFor(t, "a SYN-ACK for each admitted", func() bool { return answered() == admitted() })
		}
		// Its handshakes, and those whose dial was under way as they
		// reached their bound.
		if n := admitted(); n < netback.NATHandshakesPerGuest || n > netback.NATSetupPerGuest {
			t.Fatalf("run %d: %d of %d SYNs admitted, want %d to %d", run, n, syns, netback.NATHandshakesPerGuest, netback.NATSetupPerGuest)
		}
		// The last run's were closed as this one joined.
		waitFor(t, "the host service to have the run's connections only", func() bool {
			return uint64(hostOpen.Load()) == admitted()
		})
		r.c.Close()
	}

	waitFor(t, "the VM's last run to leave", func() bool { return h.Stats().VMs == 0 })
	g, _ := joinGuest(t, h, mac)
	echo := echoTCP(t)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, echo))
		cancel()
		if err != nil {
			t.Fatalf("the VM started again after %d runs: connection %d: %v (stats %+v)", runs, i, err, h.Stats())
		}
		defer c.Close()
		if err := echoes(c, "after the runs"); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	waitFor(t, "the ended runs' host connections to close", func() bool { return hostOpen.Load() == 0 })
}
