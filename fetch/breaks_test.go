package fetch

import (
	"bytes"
	"context"
	"testing"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// TestFetchResumesEveryBreakWithProgress: a mirror that cuts every
// transfer after 9000 bytes made the run give up after four transfers,
// though each got further; the run now resumes while each gets further,
// and the kernel (96,000 bytes) arrives after ten breaks.
func TestFetchResumesEveryBreakWithProgress(t *testing.T) {
	srv, f := setup(t)
	kpath := fetchtest.KernelPath("9.3", "i386", KernelName)
	srv.SetFault(kpath, fetchtest.Fault{TruncateAt: 9000})
	rel, err := f.Fetch(context.Background(), "9.3", "i386")
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if rel.Kernel.Breaks != 10 {
		t.Errorf("%d breaks, want 10", rel.Kernel.Breaks)
	}
	if !hasRequest(srv, kpath, "bytes=90000-") {
		t.Errorf("no request resuming from 90000: %v", srv.Requests())
	}
	if !bytes.Equal(mustRead(t, rel.Kernel.Path), testKernel) {
		t.Error("the kernel differs from the served one")
	}
}
