package vmm_test

import (
	"regexp"
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestRestoreMTRRs: the MTRRs the counter guest set before its snapshot
// read the same after the restore. KVM_GET_MSR_INDEX_LIST names none of
// them, and a restore left them 0: NetBSD, which sets MTRRdefType at
// every boot, would have found its memory types gone.
func TestRestoreMTRRs(t *testing.T) {
	path, _, after := snapshotCounter(t, vmm.Config{}, "mtrr")
	line := regexp.MustCompile(`counter: (mtrr [^\r\n]*|no mtrr)`)
	orig := line.FindString(after)
	if orig == "" {
		t.Fatalf("the snapshotted run printed no MTRR line:\n%s", after)
	}
	if orig == "counter: no mtrr" {
		t.Skip("this KVM gives the vCPU no MTRRs")
	}
	const want = "counter: mtrr 2ff=c06 200=6 201=f8000800 250=606060606060606 268=505050505050505"
	if orig != want {
		t.Fatalf("the snapshotted run read its MTRRs back as %q, want %q", orig, want)
	}
	out, e, err := restoreRun(t, vmm.Config{}, path)
	wantDebugExit(t, e, err, 0)
	if got := line.FindString(out); got != want {
		t.Errorf("the restored guest reads its MTRRs as %q, want the snapshot's %q", got, want)
	}
}
