package netback_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// The SYNs a hub's VMs have waiting for a dial or handshake to end are
// bounded by user and in all, as their relays are (TestHubNATBudget):
// each VM's own bound (160) let one user's VMs hold half a GiB of
// goroutines waiting, a hub's 1 GiB. Beyond, a SYN is dropped at once
// and counted as delayed. A hub of 12 waits here: 6 for one user, 9 for
// the users but root together. Each VM starts 64 handshakes it never
// finishes (its bound), then sends 36 SYNs, which wait while the hub
// has room.
func TestHubSYNWaitBudget(t *testing.T) {
	defer netback.SetSYNWait(time.Minute)() // no wait ends but by the VM's end
	defer netback.SetNATHubWaits(12)()
	defer netback.SetHubNATGrace(time.Millisecond)()
	var uid atomic.Int64
	h, err := netback.NewHubWithUsers(netback.HubConfig{Socket: filepath.Join(testsock.Dir(t), "n.sock"), Logf: t.Logf},
		func() int { return int(uid.Load()) }, 4096)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	port := echoTCP(t)
	const later = 36
	vms := map[byte]*rawVM{}

	steps := []struct {
		name  string
		uid   int
		mac   byte
		end   []byte // the VMs that leave first
		waits int    // the hub's SYNs waiting after
	}{
		{name: "uid 5001's first VM: its user's 6", uid: 5001, mac: 1, waits: 6},
		{name: "uid 5001's second VM: none, its user's are taken", uid: 5001, mac: 2, waits: 6},
		{name: "uid 5002's VM: 3, the users' 9 together", uid: 5002, mac: 3, waits: 9},
		{name: "root's VM: 3, the network's 12", uid: 0, mac: 4, waits: 12},
		{name: "uid 5003's VM: none", uid: 5003, mac: 5, waits: 12},
		{name: "uid 5001's VM once its others left: 6 again", uid: 5001, mac: 6, end: []byte{1, 2}, waits: 12},
	}
	for _, st := range steps {
		for _, m := range st.end {
			vms[m].c.Close()
		}
		if len(st.end) != 0 {
			waitFor(t, st.name+": the VMs' waits to end", func() bool { return netback.HubBudgetWaits(h) == 6 })
		}
		uid.Store(int64(st.uid))
		r, addr := joinRawAt(t, h, testMAC(st.mac))
		vms[st.mac] = r
		var mu sync.Mutex
		acked := map[uint16]bool{}
		go answerARPNoting(r.c, r.mac, addr, func(p uint16) {
			mu.Lock()
			acked[p] = true
			mu.Unlock()
		})
		answered := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(acked)
		}
		// Four at a time, as many as it dials to one service: none
		// waits.
		for k := 0; k < netback.NATHandshakesPerGuest; k += netback.NATDialsPerService {
			sendSYNs(t, r, addr, port, uint16(1024+k), netback.NATDialsPerService)
			waitFor(t, fmt.Sprintf("%s: its handshake %d to start", st.name, k), func() bool {
				return answered() == k+netback.NATDialsPerService
			})
		}
		before := h.Stats().NATHeldConns
		waits := netback.HubBudgetWaits(h)
		sendSYNs(t, r, addr, port, 2048, later)
		dropped := uint64(later - (st.waits - waits))
		waitFor(t, st.name, func() bool {
			return netback.HubSYNWaits(h) == st.waits && h.Stats().NATHeldConns-before == dropped
		})
		if got := netback.HubBudgetWaits(h); got != st.waits {
			t.Fatalf("%s: the budget counts %d SYNs waiting, want %d", st.name, got, st.waits)
		}
	}
	for _, r := range vms {
		r.c.Close()
	}
	waitFor(t, "every wait to end with its VM", func() bool { return netback.HubBudgetWaits(h) == 0 })
}
