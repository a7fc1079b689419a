package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/snapshot"
)

// TestCLIRestoreRefusedJoinsNoNetwork: a restore refused (its -d ,ro
// against the snapshot's read-write disk, its disk in use, its memory
// damaged) leaves no lease on the shared network it was given and no VM in
// the network's log: it joins only once the restore has succeeded. Before,
// the card joined the network first, and each refusal left a lease for
// its --mac. A restore that succeeds joins. The disk in use is advised a
// copy, not the boot's ",ro in both", which a restore of a read-write
// snapshot would refuse.
func TestCLIRestoreRefusedJoinsNoNetwork(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := testsock.Dir(t)
	snap, disk := filepath.Join(dir, "c.snap"), filepath.Join(dir, "d.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, status := runCLI(t, "run", "-k", guests.ForTest(t, "counter"), "-m", "16", "-a", "n=3 at=1",
		"-d", disk, "--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, stderr:\n%s", status, stderr)
	}
	f, err := snapshot.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	memOff := int64(f.Header.MemOff)
	f.Close()
	damaged := damagedCopy(t, snap, filepath.Join(dir, "damaged.snap"), memOff+1<<20+100, true)

	sock, leases := filepath.Join(dir, "n.sock"), filepath.Join(dir, "n.leases")
	var logMu sync.Mutex
	var log strings.Builder
	h, err := netback.NewHub(netback.HubConfig{Socket: sock, Leases: leases, Logf: func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(&log, format+"\n", args...)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	tests := []struct {
		name   string
		snap   string
		args   []string
		lock   bool
		status int
		want   string
		joins  bool
	}{
		{"read-only -d", snap, []string{"-d", disk + ",ro"}, false, 2, "read-only", false},
		{"disk in use", snap, nil, true, 1, "(stop that VM, or give this restore a copy of the image, cp IMAGE COPY, with -d COPY", false},
		{"memory damaged", damaged, nil, false, 1, "memory section's CRC-32C", false},
		{"restored", snap, nil, false, 1, "", true},
	}
	for i, tt := range tests {
		mac := fmt.Sprintf("52:54:00:7e:00:%02x", i+1)
		t.Run(tt.name, func(t *testing.T) {
			if tt.lock {
				lf, err := os.Open(disk)
				if err != nil {
					t.Fatal(err)
				}
				defer lf.Close()
				if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
					t.Fatal(err)
				}
			}
			args := append([]string{"run", "--restore", tt.snap, "--net", "user:" + sock, "--mac", mac}, tt.args...)
			out, stderr, status := runCLI(t, args...)
			if status != tt.status || !strings.Contains(stderr, tt.want) {
				t.Fatalf("status %d, output %q, stderr %q; want %d and %q", status, out, stderr, tt.status, tt.want)
			}
		})
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	leased, err := os.ReadFile(leases)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		mac := fmt.Sprintf("52:54:00:7e:00:%02x", i+1)
		if joined := strings.Contains(log.String(), mac); joined != tt.joins {
			t.Errorf("%s: the network's log names %s: %v, want %v; log:\n%s", tt.name, mac, joined, tt.joins, log.String())
		}
		if lease := strings.Contains(string(leased), mac); lease != tt.joins {
			t.Errorf("%s: a lease for %s: %v, want %v; lease file:\n%s", tt.name, mac, lease, tt.joins, leased)
		}
	}
}
