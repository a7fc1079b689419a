package vmm_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/virtio"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
	"github.com/smolvmm/smolvmm/vmm"
)

// linkUser is a user network whose link the test takes down, as a shared
// network's goes down while its daemon is gone (vnet.LinkBackend).
type linkUser struct {
	vnet.Backend
	virtiotest.Link
}

func linkUserNIC(t *testing.T, mac net.HardwareAddr) (virtio.Device, *linkUser) {
	t.Helper()
	back, err := netback.Open("user", nil, mac)
	if err != nil {
		t.Fatal(err)
	}
	lb := &linkUser{Backend: back}
	nic, err := vnet.New(lb, mac)
	if err != nil {
		back.Close()
		t.Fatal(err)
	}
	return nic, lb
}

// TestRestoreTellsLink: a guest snapshotted while its network card's link
// was down is told, once restored, to read the link's status again (a
// configuration-change interrupt): its driver last saw the snapshot's
// link, and NetBSD's vioif, which sends nothing while it thinks the link
// down, reads the status only then. Before, the restored card said
// LINK_UP unseen, and the guest never sent again. So it is whatever the
// restored card's backend: a snapshot of a shared network's guest
// (--net user:NAME) restored onto the built-in user network, whose link
// cannot change, was not told ("config-change 0").
func TestRestoreTellsLink(t *testing.T) {
	needKVM(t)
	a := net.HardwareAddr{0x52, 0x54, 0x00, 0xaa, 0x00, 0x07}
	path := filepath.Join(t.TempDir(), "vnet.snap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	nic, lb := linkUserNIC(t, a)
	lb.Set(false)
	var snapErr error
	out, e, err := boot(t, vmm.Config{Kernel: guest(t, "vnet"), Append: "clone", MemoryMiB: 16,
		Devices: []virtio.Device{nic}, SnapshotOnReady: f, SnapshotExit: true,
		OnSnapshot: func(_ vmm.SnapshotInfo, err error) { snapErr = err }}, 30*time.Second)
	f.Close()
	if err != nil || e.Reason != vmm.ExitSnapshot || snapErr != nil {
		t.Fatalf("snapshot run: exit %+v, %v, snapshot %v; output:\n%s", e, err, snapErr, out)
	}
	wantLines(t, out, "vnet: link status 0x0\r\n")

	for _, tc := range []struct {
		name string
		card func() virtio.Device
	}{
		{"a network whose link changes", func() virtio.Device { nic, _ := linkUserNIC(t, a); return nic }},
		{"the built-in user network", func() virtio.Device { return userNIC(t, a) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var con guests.Console
			m, err := vmm.Restore(vmm.Config{Console: &con, Devices: []virtio.Device{tc.card()}}, path)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e, err := m.Run(ctx)
			out := con.String()
			if err != nil || e.Reason != vmm.ExitDebug || e.Code != 0 {
				t.Fatalf("Run = %+v, %v; output:\n%s", e, err, out)
			}
			wantLines(t, out, "vnet: after ready mac 52:54:00:aa:00:07 config-change 1\r\n", "vnet: ok\r\n")
		})
	}
}
