package netback

import "time"

// NATSYNWait is natSYNWait; NATSYNWaitsPerGuest and
// NATSYNWaitsPerService are natSYNWaitsPerGuest and
// natSYNWaitsPerService.
const (
	NATSYNWait            = natSYNWait
	NATSYNWaitsPerGuest   = natSYNWaitsPerGuest
	NATSYNWaitsPerService = natSYNWaitsPerService
)

// SetSYNWait sets how long at most a guest's SYN beyond its dials waits
// for one to end, until the returned function restores it.
func SetSYNWait(d time.Duration) (restore func()) {
	old := synWaitTest.Swap(int64(d))
	return func() { synWaitTest.Store(old) }
}

// HubSYNWaits is how many of the guests' SYNs h's NAT has waiting for a
// dial or handshake to end.
func HubSYNWaits(h *Hub) int {
	n := h.gw.nat
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for _, c := range n.guests {
		k += c.waits
	}
	return k
}
