package netback_test

import (
	"net"
	"runtime"
	"testing"

	"github.com/smolvmm/smolvmm/netback"
)

// TestClosedUserNetworkKeepsNothing opens and closes user networks and
// counts the heap objects left: a closed network used to keep its two DNS
// read-deadline timers (and their closures) pending for a day, about six
// objects per network for an embedder that makes one per VM.
func TestClosedUserNetworkKeepsNothing(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	open := func(n int) {
		for i := 0; i < n; i++ {
			u, err := netback.NewUser(mac, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := u.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	heapObjects := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapObjects
	}
	open(5) // package state made on first use is not a leak
	before := heapObjects()
	const n = 400
	open(n)
	after := heapObjects()
	perNetwork := (float64(after) - float64(before)) / n
	if perNetwork > 1 {
		t.Errorf("%d user networks opened and closed left %d heap objects (%.2f per network), want under 1 per network", n, after-before, perNetwork)
	}
}
