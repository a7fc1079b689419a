package vmm_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
	"github.com/smolvmm/smolvmm/vmm"
)

// userNIC is a network card with address mac on its own user network,
// which leases the guest's address (10.0.2.15) to mac.
func userNIC(t *testing.T, mac net.HardwareAddr) virtio.Device {
	t.Helper()
	back, err := netback.Open("user", nil, mac)
	if err != nil {
		t.Fatal(err)
	}
	nic, err := vnet.New(back, mac)
	if err != nil {
		back.Close()
		t.Fatal(err)
	}
	return nic
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

var offerRE = regexp.MustCompile(`vnet: dhcp offer ([0-9.]+) for ([0-9a-f:]+)\r\n`)

// offers maps each address the guest asked DHCP for to the one offered.
func offers(out string) map[string]string {
	m := map[string]string{}
	for _, o := range offerRE.FindAllStringSubmatch(out, -1) {
		m[o[2]] = o[1]
	}
	return m
}

// TestRestoreNewMAC snapshots the vnet guest, its driver live, with
// address A, and restores it: with A; as a clone with B (WithMAC), whose
// configuration space then shows B and whose user network leases the
// guest's address to B, the guest getting a configuration change
// interrupt; and refusals of the cards and addresses that do not fit. The
// snapshot file is the same after all of them. vnet's driver negotiates
// STATUS, so a restore with A interrupts it too, to read the link again
// (TestRestoreTellsLink).
func TestRestoreNewMAC(t *testing.T) {
	needKVM(t)
	a := net.HardwareAddr{0x52, 0x54, 0x00, 0xaa, 0x00, 0x01}
	b := net.HardwareAddr{0x52, 0x54, 0x00, 0xbb, 0x00, 0x02}
	c := net.HardwareAddr{0x52, 0x54, 0x00, 0xcc, 0x00, 0x03}
	path := filepath.Join(t.TempDir(), "vnet.snap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var snapErr error
	out, e, err := boot(t, vmm.Config{Kernel: guest(t, "vnet"), Append: "clone", MemoryMiB: 16,
		Devices: []virtio.Device{userNIC(t, a)}, SnapshotOnReady: f, SnapshotExit: true,
		OnSnapshot: func(_ vmm.SnapshotInfo, err error) { snapErr = err }}, 30*time.Second)
	f.Close()
	if err != nil || e.Reason != vmm.ExitSnapshot || snapErr != nil {
		t.Fatalf("snapshot run: exit %+v, %v, snapshot %v; output:\n%s", e, err, snapErr, out)
	}
	if mac, err := vmm.SnapshotMAC(path); err != nil || mac.String() != a.String() {
		t.Fatalf("SnapshotMAC = %v, %v; want %s", mac, err, a)
	}
	// The header says it too: the CLI chooses the restore's network
	// from the header alone.
	hf, err := snapshot.OpenHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	hf.Close()
	if want := (snapshot.NIC{Present: true, MAC: [6]byte(a)}); hf.Header.NIC != want {
		t.Fatalf("header's network card %+v, want %+v", hf.Header.NIC, want)
	}
	sum := fileSum(t, path)

	tests := []struct {
		name    string
		card    net.HardwareAddr
		opts    []vmm.RestoreOption
		want    []string          // lines
		offers  map[string]string // address asked for -> offered ("!" + address: anything else)
		err     error
		errText string
	}{
		{name: "the snapshot's address", card: a,
			want:   []string{"vnet: after ready mac 52:54:00:aa:00:01 config-change 1\r\n", "vnet: ok\r\n"},
			offers: map[string]string{a.String(): "10.0.2.15"}},
		{name: "a clone with another", card: b, opts: []vmm.RestoreOption{vmm.WithMAC(b)},
			want: []string{"vnet: after ready mac 52:54:00:bb:00:02 config-change 1\r\n", "vnet: ok\r\n"},
			// The driver's address from its attach is no longer the
			// guest's: its DHCP renew would get another address.
			offers: map[string]string{b.String(): "10.0.2.15", a.String(): "!10.0.2.15"}},
		{name: "another card without WithMAC", card: b, err: vmm.ErrMACChanged,
			errText: "the card has 52:54:00:bb:00:02, the snapshot's guest 52:54:00:aa:00:01"},
		{name: "WithMAC, the card has a third", card: c, opts: []vmm.RestoreOption{vmm.WithMAC(b)}, err: vmm.ErrMACChanged,
			errText: "the card has 52:54:00:cc:00:03, the clone's address is 52:54:00:bb:00:02"},
		{name: "multicast address", card: b, opts: []vmm.RestoreOption{vmm.WithMAC(net.HardwareAddr{1, 0, 0x5e, 0, 0, 1})}, err: vmm.ErrConfig,
			errText: "multicast"},
		{name: "short address", card: b, opts: []vmm.RestoreOption{vmm.WithMAC(net.HardwareAddr{0x52, 0x54})}, err: vmm.ErrConfig,
			errText: "has 2 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var con guests.Console
			m, err := vmm.Restore(vmm.Config{Console: &con, Devices: []virtio.Device{userNIC(t, tt.card)}}, path, tt.opts...)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Restore = %v, want %v with %q", err, tt.err, tt.errText)
				}
				// The address is WithMAC's to give: Config has no MAC.
				var ve *vmm.Error
				if !errors.As(err, &ve) || ve.Field != "WithMAC" {
					t.Errorf("Restore = %#v, want a vmm.Error with Field WithMAC", err)
				}
				return
			}
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
			wantLines(t, out, tt.want...)
			got := offers(out)
			for mac, want := range tt.offers {
				if not, ok := strings.CutPrefix(want, "!"); ok {
					if got[mac] == "" || got[mac] == not {
						t.Errorf("DHCP offered %q to %s, want an address other than %s; output:\n%s", got[mac], mac, not, out)
					}
				} else if got[mac] != want {
					t.Errorf("DHCP offered %q to %s, want %s; output:\n%s", got[mac], mac, want, out)
				}
			}
		})
	}
	if fileSum(t, path) != sum {
		t.Error("the snapshot file changed")
	}
}

// TestRestoreAfterDriverMACWrite: a guest's driver writing an address no
// card can have (all zero, which a snapshot's header would read back as
// "none recorded", or multicast) leaves the card its address, so the
// snapshot records it and a restore given the card the header names (as
// `run --restore` does without --mac) succeeds.
func TestRestoreAfterDriverMACWrite(t *testing.T) {
	needKVM(t)
	a := net.HardwareAddr{0x52, 0x54, 0x00, 0xaa, 0x00, 0x01}
	for _, tc := range []struct {
		name  string
		write net.HardwareAddr
	}{
		{"all zero", net.HardwareAddr{0, 0, 0, 0, 0, 0}},
		{"multicast", net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nic := userNIC(t, a)
			m, err := vmm.New(vmm.Config{Kernel: "spin", KernelImage: spinner(), MemoryMiB: 16, Devices: []virtio.Device{nic}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			nic.WriteConfig(0, tc.write) // as the transport passes a driver's write
			path := snapshotFile(t, m)   // memhole_test.go
			mac, err := vmm.SnapshotMAC(path)
			if err != nil || mac.String() != a.String() {
				t.Fatalf("SnapshotMAC = %v, %v; want the card's %s", mac, err, a)
			}
			r, err := vmm.Restore(vmm.Config{Devices: []virtio.Device{userNIC(t, mac)}}, path)
			if err != nil {
				t.Fatalf("restore with the snapshot's address: %v", err)
			}
			r.Close()
		})
	}
}
