package vmm_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// splitDev is an MMIO device that counts the bytes written to it and
// answers each byte read with its offset's low 8 bits.
type splitDev struct{ written atomic.Int64 }

func (d *splitDev) Read(off uint64, data []byte) {
	for i := range data {
		data[i] = byte(off + uint64(i))
	}
}

func (d *splitDev) Write(_ uint64, data []byte) { d.written.Add(int64(len(data))) }

// TestSnapshotSplitMMIO snapshots, many times, a guest whose every access
// straddles a page boundary: KVM splits each into two MMIO exits, and the
// KVM_RUN that completes an instruction before a snapshot may stop at the
// second. It must be served there, not left for the next KVM_RUN to
// complete with stale data: every byte written reaches the device, every
// read gets the device's answer.
func TestSnapshotSplitMMIO(t *testing.T) {
	needKVM(t)
	kernel := guest(t, "frag")
	const n = 100000
	for _, tc := range []struct {
		name, append string
		snapshots    int
		want         func(out string, d *splitDev) error
	}{
		{"writes", "", 0, wantWritten(n)},
		{"writes with snapshots", "", 400, wantWritten(n)},
		{"reads", "read", 0, wantRead(n)},
		{"reads with snapshots", "read", 400, wantRead(n)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out guests.Console
			m, err := vmm.New(vmm.Config{Kernel: kernel, Append: fmt.Sprintf("n=%d %s", n, tc.append), MemoryMiB: 32, Console: &out, Log: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			d := &splitDev{}
			if err := m.MMIOBus().Register("split", 0x10000000, 0x2000, d); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			var rerr error
			wg.Add(1)
			go func() { defer wg.Done(); _, rerr = m.Run(ctx) }()
			taken := 0
			for range tc.snapshots {
				time.Sleep(2 * time.Millisecond)
				if _, err := m.Snapshot(io.Discard); err != nil {
					break // the guest ended
				}
				taken++
			}
			wg.Wait()
			if rerr != nil {
				t.Fatalf("Run: %v\nconsole:\n%s", rerr, out.String())
			}
			if tc.snapshots > 0 && taken < 10 {
				t.Logf("only %d snapshots taken before the guest ended", taken)
			}
			if err := tc.want(out.String(), d); err != nil {
				t.Errorf("%v (after %d snapshots)\nconsole:\n%s", err, taken, out.String())
			}
		})
	}
}

func wantWritten(n int) func(string, *splitDev) error {
	return func(out string, d *splitDev) error {
		if !strings.Contains(out, fmt.Sprintf("frag: writes %d", n)) {
			return fmt.Errorf("guest did not finish its writes")
		}
		if got := d.written.Load(); got != int64(4*n) {
			return fmt.Errorf("device got %d bytes written, want %d", got, 4*n)
		}
		return nil
	}
}

func wantRead(n int) func(string, *splitDev) error {
	return func(out string, _ *splitDev) error {
		if want := fmt.Sprintf("frag: reads %d bad 0 ", n); !strings.Contains(out, want) {
			return fmt.Errorf("guest console lacks %q: reads got wrong values", want)
		}
		return nil
	}
}
