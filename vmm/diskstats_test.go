package vmm_test

import (
	"context"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestDiskStats: DiskStats counts, per disk of Config.Disks and in their
// order, the writes the guest made: the vblk guest writes one sector of
// its first disk, and nothing of the second; a read-only first disk
// refuses the write, which is not counted.
func TestDiskStats(t *testing.T) {
	needKVM(t)
	kernel := guest(t, "vblk")
	for _, tt := range []struct {
		name string
		ro   bool
		want []blk.Stats
	}{
		{"written", false, []blk.Stats{{Writes: 1, BytesWritten: 512}, {}}},
		{"read-only", true, []blk.Stats{{}, {}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			first, _ := diskImage(t)
			second, _ := diskImage(t)
			var out guests.Console
			m, err := vmm.New(vmm.Config{Kernel: kernel, Append: "seq=3", MemoryMiB: 32, Console: &out, Log: &guests.Console{},
				Disks: []blk.Spec{{Path: first, Options: blk.Options{ReadOnly: tt.ro}}, {Path: second}}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			e, err := m.Run(ctx)
			wantDebugExit(t, e, err, 0)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			got := m.DiskStats() // after Close, as a caller reads them at the end
			if len(got) != len(tt.want) {
				t.Fatalf("DiskStats() = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("disk %d: %+v, want %+v; console:\n%s", i, got[i], tt.want[i], out.String())
				}
			}
		})
	}
}
