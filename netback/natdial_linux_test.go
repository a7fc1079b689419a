package netback_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// A guest whose connections to services hang in their dial on the host
// (a service that is down and drops SYNs, which a program retrying with
// a short timeout keeps trying) still connects at once to another
// service: the dials to one destination hold only part of its dials
// (NATDialsPerService at once), and its SYNs beyond them, waiting for a
// dial to end, only part of its waits (NATSYNWaitsPerService, and
// NATSYNWaitsPerGuest in all); beyond those a SYN is dropped at once,
// for the guest to send again, and counted as delayed.
func TestNATDialsPerService(t *testing.T) {
	// The SYNs wait as long as the test, so that their count holds.
	defer netback.SetSYNWait(time.Minute)()
	tests := []struct {
		name        string
		services    int // hanging, each given tries connections at once
		tries       int
		dials       int
		waits, held int
	}{
		{"a few", 1, 2 * netback.NATDialsPerGuest, netback.NATDialsPerService, 2*netback.NATDialsPerGuest - netback.NATDialsPerService, 0},
		{"beyond the service's waits", 1, 200, netback.NATDialsPerService, netback.NATSYNWaitsPerService, 200 - netback.NATDialsPerService - netback.NATSYNWaitsPerService},
		{"beyond the guest's waits", 2, 150, 2 * netback.NATDialsPerService, netback.NATSYNWaitsPerGuest, 300 - 2*netback.NATDialsPerService - netback.NATSYNWaitsPerGuest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hang []uint16
			for range tt.services {
				hang = append(hang, hangingPort(t))
			}
			echo := echoTCP(t)
			h := startHub(t, testsock.Dir(t))
			g, _ := joinGuest(t, h, testMAC(1))

			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			for _, port := range hang {
				for range tt.tries {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, port)); err == nil {
							c.Close()
						}
					}()
				}
			}
			waitFor(t, fmt.Sprintf("%d SYNs waiting and %d dropped", tt.waits, tt.held), func() bool {
				return netback.HubSYNWaits(h) == tt.waits && h.Stats().NATHeldConns == uint64(tt.held)
			})
			if s := h.Stats(); s.NATConns != uint64(tt.dials) || s.NATRefusedConns != 0 {
				t.Fatalf("%d connections dialled, %d refused, want %d and none", s.NATConns, s.NATRefusedConns, tt.dials)
			}

			ectx, ecancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ecancel()
			c, err := g.DialTCP(ectx, netip.AddrPortFrom(netback.UserGateway, echo))
			if err != nil {
				t.Fatalf("to another service, while its dials to others hang: %v", err)
			}
			defer c.Close()
			if err := echoes(c, "other"); err != nil {
				t.Fatal(err)
			}
			if s, w := h.Stats(), netback.HubSYNWaits(h); s.NATConns != uint64(tt.dials+1) || s.NATHeldConns != uint64(tt.held) || w != tt.waits {
				t.Errorf("with the other connection: %d connections, %d delayed, %d SYNs waiting; want %d, %d, %d", s.NATConns, s.NATHeldConns, w, tt.dials+1, tt.held, tt.waits)
			}
		})
	}
}

// A dial on the host ends when its guest stops sending the connection's
// SYN (it gave up: a program's connect timeout, and the guest says
// nothing when it closes a connection not yet made), not after
// natDialTimeout: a program retrying services that drop SYNs does not
// keep its guest's dials; a guest still sending its SYN keeps its dial.
func TestNATDialEndsWhenGuestGivesUp(t *testing.T) {
	tests := []struct {
		name string
		// silence is the NAT's natSYNSilence.
		silence time.Duration
		dials   int
		// gaveUp: the guest gives up once its dials are all under
		// way, else it tries for 20 s.
		gaveUp bool
	}{
		{"gives up", 1500 * time.Millisecond, netback.NATDialsPerGuest, true},
		// gVisor sends its SYN again after 1 s, then 2 s, then 4 s:
		// the silence outlasts the first two gaps by 1.5 s and more
		// (a loaded host's delays, under -race, shifted one SYN by
		// the 0.5 s a silence of 1.5 s left over the 1 s gap), and
		// only three times the second gap (6 s) outlasts the third.
		{"keeps trying", 3500 * time.Millisecond, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer netback.SetSYNSilence(tt.silence)()
			var hang []uint16
			for range netback.NATDialsPerGuest / netback.NATDialsPerService {
				hang = append(hang, hangingPort(t))
			}
			echo := echoTCP(t)
			h := startHub(t, testsock.Dir(t))
			g, _ := joinGuest(t, h, testMAC(1))
			var wg sync.WaitGroup
			defer wg.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for i := range tt.dials {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if c, err := g.DialTCP(ctx, netip.AddrPortFrom(netback.UserGateway, hang[i%len(hang)])); err == nil {
						c.Close()
					}
				}()
			}
			waitFor(t, "the guest's dials", func() bool { return h.Stats().NATConns == uint64(tt.dials) })
			if !tt.gaveUp {
				waitFor(t, "the dial's watch", func() bool { return len(netback.HubDialGaps(h)) == tt.dials })
				// Its SYNs come 1, 3 and 7 s after the first: a
				// gap of 4 s is the fourth, and the dial outlived
				// the silence before it, as the guest kept trying.
				// Waited for 20 s: 7 s of them are the backoff's.
				ended := false
				for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
					gaps := netback.HubDialGaps(h)
					if ended = len(gaps) != tt.dials; ended || gaps[0] >= 3*time.Second {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("timed out waiting for the guest's fourth SYN, or the dial's end (gaps %v)", gaps)
					}
				}
				if n := h.Stats().NATConns; ended || n != uint64(tt.dials) {
					t.Fatalf("the dial of a guest still sending its SYN ended (%d dials, want %d)", n, tt.dials)
				}
				return
			}
			// Given up once all are seen, not after a time: a
			// loaded host's guest had not sent every SYN within
			// 300 ms, its dials never all under way.
			cancel()
			waitFor(t, "the dials of a guest that gave up to end", func() bool { return h.Stats().NATConns == 0 })
			ectx, ecancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ecancel()
			c, err := g.DialTCP(ectx, netip.AddrPortFrom(netback.UserGateway, echo))
			if err != nil {
				t.Fatalf("after the guest gave up its dials: %v", err)
			}
			defer c.Close()
			if err := echoes(c, "again"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A connection whose SYNs were held back while its guest had its most
// dials to the service, admitted late in the guest's backoff (its next
// SYN seconds away), keeps its dial while the guest keeps sending the
// SYN, and is counted once as delayed, not as refused, however many of
// its SYNs were dropped.
func TestNATDialAdmittedLate(t *testing.T) {
	// gVisor sends its SYN again after 1 s, then 2 s, 4 s, 8 s: the
	// silence outlasts the first gap by 2.5 s, where 1.5 s left a
	// loaded host's delays 0.5 s before a dial that kept trying ended.
	defer netback.SetSYNSilence(3500 * time.Millisecond)()
	hang := hangingPort(t)
	h := startHub(t, testsock.Dir(t))
	g, _ := joinGuest(t, h, testMAC(1))
	dest := netip.AddrPortFrom(netback.UserGateway, hang)
	var wg sync.WaitGroup
	defer wg.Wait()
	long, cancelLong := context.WithCancel(context.Background())
	defer cancelLong()
	short, cancelShort := context.WithCancel(context.Background())
	defer cancelShort()
	for i := range netback.NATDialsPerService {
		ctx := long
		if i == 0 {
			ctx = short
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := g.DialTCP(ctx, dest); err == nil {
				c.Close()
			}
		}()
	}
	// All four dials' ports: a connection is counted at its admission,
	// its dial's port only once its watch begins, and a port missed here
	// would pass the wait for a new one below at once.
	var first []uint16
	waitFor(t, "the dials to the service", func() bool {
		first = netback.HubDialPorts(h)
		return h.Stats().NATConns == netback.NATDialsPerService && len(first) == netback.NATDialsPerService
	})
	late := make(chan error, 1)
	go func() {
		c, err := g.DialTCP(long, dest)
		if err == nil {
			c.Close()
		}
		late <- err
	}()
	waitFor(t, "the fifth connection's SYN to be held back", func() bool { return h.Stats().NATHeldConns > 0 })
	// The first program gives up at its second SYN, 1 s after its first
	// (every dial's gap shows it), 2 s before its third: its dial ends
	// after the silence, the fifth connection's SYNs come 1, 3 and 7 s
	// after its first (gVisor's backoff), and it is admitted at the
	// fourth, its next 8 s away (at the third, 4 s, were the first
	// program's dial to end within that SYN's wait). A
	// fixed 2 s sleep gave up 50 ms before the third SYN: a loaded
	// host's delay let it come, the dial lived 6 s more, and the fifth
	// was admitted only at its SYN 15 s after its first.
	waitFor(t, "the second SYN of every dial", func() bool {
		gaps := netback.HubDialGaps(h)
		return len(gaps) == netback.NATDialsPerService && !slices.Contains(gaps, 0)
	})
	cancelShort()
	// Seen by the dials' ports, not by their count falling and rising
	// again: a dial that ends while the fifth's SYN waits (its end in
	// one of the SYN's waits, as the load shifts them) has it admitted
	// at once, and the count, 4, 5 for a moment, then 4, never fell.
	// Within 20 s: the fifth's SYN 15 s after its first, should the
	// first program's third come before it gives up after all.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		now := netback.HubDialPorts(h)
		if len(now) == netback.NATDialsPerService && slices.ContainsFunc(now, func(p uint16) bool { return !slices.Contains(first, p) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the first program's dial to end and the fifth's to begin (dials' ports %v, first %v)", now, first)
		}
	}
	// Its dial's watch began with no gap: its next SYN, 4 or 8 s away,
	// gives it one, and so the dial outlived the wait for it.
	deadline := time.After(20 * time.Second)
	for next := false; !next; {
		select {
		case err := <-late:
			t.Fatalf("the fifth connection, its guest still sending its SYN, ended: %v", err)
		case <-deadline:
			t.Fatalf("no SYN again within 20 s on every dial (gaps %v)", netback.HubDialGaps(h))
		case <-time.After(5 * time.Millisecond):
		}
		gaps := netback.HubDialGaps(h)
		next = len(gaps) == netback.NATDialsPerService && !slices.Contains(gaps, 0)
	}
	if n := h.Stats().NATConns; n != netback.NATDialsPerService {
		t.Errorf("%d dials, want %d", n, netback.NATDialsPerService)
	}
	s := h.Stats()
	if s.NATHeldConns != 1 || s.NATRefusedConns != 0 {
		t.Errorf("counted %d delayed and %d refused, want 1 and 0", s.NATHeldConns, s.NATRefusedConns)
	}
}
