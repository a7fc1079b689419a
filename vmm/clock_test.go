package vmm_test

import (
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestRestoreClocks: the guest's clocks across a snapshot that lies on
// disk for a second before its restore. The RTC, which follows the host's
// wall clock, reads the time of the restore. The TSC goes on from the
// value the snapshot saw, neither backwards nor jumping by the time on
// disk (guest time stands still while the VM is on disk, as in
// Firecracker); this machine's software KVM ignores the TSC a VMM sets
// (its guests read a TSC that runs near the host's from their first
// instruction), so that half is checked on the nested-KVM rig
// (TestNetBSDSnapshot) and skipped here.
func TestRestoreClocks(t *testing.T) {
	const onDisk = time.Second
	path, before, after := snapshotCounter(t, vmm.Config{}, "clock")
	orig, err := guests.ParseCounterClock(before, after)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(onDisk) // the condition under test: time passing with the VM on disk
	restoring := time.Now().UTC()
	out, e, err := restoreRun(t, vmm.Config{}, path)
	restored := time.Now().UTC()
	wantDebugExit(t, e, err, 0)
	got, err := guests.ParseCounterClock(before, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("rtc", func(t *testing.T) {
		// One-second resolution, read during the restored run (which a
		// loaded host may make long).
		if got.RTC.Before(restoring.Add(-time.Second)) || got.RTC.After(restored.Add(time.Second)) {
			t.Errorf("restored guest's RTC reads %v, the host's clock %v to %v during its run: want the host's time", got.RTC, restoring, restored)
		}
		if !got.RTC.After(orig.RTC) {
			t.Errorf("restored guest's RTC reads %v, not later than the snapshotted run's %v", got.RTC, orig.RTC)
		}
	})
	t.Run("tsc", func(t *testing.T) {
		// The guest ran well under a second before its snapshot point: a
		// TSC that reads more has not been virtualised from 0.
		if up := orig.TSCDuration(orig.Before); up > time.Minute {
			t.Skipf("this KVM gives guests a TSC that reads %v at their start (not 0) and ignores the TSC a VMM sets: the TSC's restore is checked on the nested-KVM rig (TestNetBSDSnapshot)", up.Round(time.Second))
		}
		checkRestoredTSC(t, orig, got, onDisk)
	})
}

// checkRestoredTSC: the restored guest saw the snapshot's TSC before its
// snapshot point, and after it a TSC that went on from there by much less
// than the time the snapshot lay on disk.
func checkRestoredTSC(t *testing.T, orig, got guests.CounterClock, onDisk time.Duration) {
	t.Helper()
	if got.Before != orig.Before {
		t.Fatalf("restored guest's TSC before the snapshot point %#x, the snapshotted run's %#x: not the same guest state", got.Before, orig.Before)
	}
	jump := got.Across()
	t.Logf("TSC %.2f GHz; across the snapshot point: %v in the snapshotted run, %v restored after %v on disk",
		float64(got.TSCPerPIT)*guests.PITHz/65535/1e9, orig.Across(), jump, onDisk)
	if jump <= 0 {
		t.Errorf("restored guest's TSC went from %#x to %#x across the restore: backwards", got.Before, got.After)
	}
	if jump > onDisk/4 {
		t.Errorf("restored guest's TSC jumped %v across the restore (%#x to %#x), the snapshot lay %v on disk: want it to go on from the snapshot's value", jump, got.Before, got.After, onDisk)
	}
}
