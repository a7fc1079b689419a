package netback_test

import (
	"os"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/netback"
)

// TestHubNATGraceOutlastsRejoinGrace: with the NAT grace at its own
// length (not a test's), a VM that rejoins well after the lease rejoin
// grace has passed still finds its NAT connection relayed. The two graces
// are for different waits: a starting hub holds leases for seconds, while
// a VM the hub dropped may take longer to read again and rejoin.
func TestHubNATGraceOutlastsRejoinGrace(t *testing.T) {
	const rejoinGrace = 200 * time.Millisecond
	defer netback.SetHubRejoinGrace(rejoinGrace)()
	v := natVM(t)
	h, mac, j := v.h, v.mac, v.j
	// The socket moved away, the dropped VM's rejoins find no hub until
	// it is back.
	sock, away := h.Socket(), h.Socket()+".away"
	if err := os.Rename(sock, away); err != nil {
		t.Fatal(err)
	}
	var key [6]byte
	copy(key[:], mac)
	if !netback.HubDropVM(h, key) {
		t.Fatal("no such VM")
	}
	waitFor(t, "the VM to leave", func() bool { return h.Stats().VMs == 0 })
	time.Sleep(4 * rejoinGrace)
	if err := os.Rename(away, sock); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the VM to rejoin", func() bool { return j.Connects() == 2 && h.Stats().VMs == 1 })
	if err := echoes(v.c, "after"); err != nil {
		t.Errorf("the NAT connection after the VM rejoined %v after it left: %v", 4*rejoinGrace, err)
	}
}
