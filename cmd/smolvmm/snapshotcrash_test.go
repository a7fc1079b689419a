package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// TestCLISnapshotCrashBeforeReady: a --snapshot run whose guest crashed
// (a triple fault) warned that it "never became ready" and advised
// readiness markers, which would not have helped, and said the file "is
// as it was" of one that did not exist. The warning now says the guest
// crashed before it became ready, without that advice, and that no file
// was written where there was none; a guest that ended by itself unready
// keeps the advice.
func TestCLISnapshotCrashBeforeReady(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bad := guests.ForTest(t, "bad")
	for _, tt := range []struct {
		name   string
		words  string
		old    bool // an empty file at the path before the run
		status int
		want   string
		advice bool
	}{
		{"crash, no file", "triplefault-silent", false, 2, ": the guest crashed before it became ready, so no snapshot was taken and no file was written\n", false},
		{"crash, a file", "triplefault-silent", true, 2, ": the guest crashed before it became ready, so no snapshot was taken and the file is as it was\n", false},
		{"halt, no file", "halt", false, 0, ": the guest never became ready, so no snapshot was taken and no file was written (mark readiness", true},
		{"halt, a file", "halt", true, 0, ": the guest never became ready, so no snapshot was taken and the file is as it was (mark readiness", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			snap := filepath.Join(t.TempDir(), "s.snap")
			if tt.old {
				if err := os.WriteFile(snap, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, stderr, status := runCLI(t, "run", "-k", bad, "-m", "16", "--net", "none", "-a", tt.words, "--snapshot", snap)
			want := "smolvmm run: warning: --snapshot " + snap + tt.want
			if status != tt.status || !strings.Contains(stderr, want) || strings.Contains(stderr, "mark readiness") != tt.advice {
				t.Fatalf("status %d, stderr:\n%s\nwant %d and %q, readiness advice %v", status, stderr, tt.status, want, tt.advice)
			}
			if _, err := os.Stat(snap); os.IsNotExist(err) == tt.old {
				t.Errorf("stat %s after the run: %v; want it there only if it was before", snap, err)
			}
		})
	}
}
