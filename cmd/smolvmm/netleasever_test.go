package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// A lease file a newer smolvmm wrote (a version above 2) is refused,
// status 1, saying so and what to do, and left as it was: read as this
// version's, its next save would drop the fields this one does not know,
// such as a MAC's owner. Before, a file of version 2 was refused as if
// mistyped ("want 1 (correct it, or remove it to start afresh)"), and
// the builds before "uid" read its files as theirs and dropped it.
func TestNetLeaseFileNewer(t *testing.T) {
	dir := testsock.Dir(t)
	leases := filepath.Join(dir, "n.leases")
	const content = `{"version":3,"leases":[{"mac":"52:54:00:00:00:0b","addr":"10.0.2.15","owner":{"uid":65534}}]}`
	if err := os.WriteFile(leases, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// Refused at start; one that starts instead runs until killed: a
	// failure, not a hang of the test.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, smolvmmBin(t), "net", "--socket", filepath.Join(dir, "n.sock"), "--leases", leases).CombinedOutput()
	want := "smolvmm net: shared network: lease file " + leases + `: lease file of a newer layout: field "version" is 3, and 2 is the newest known here` +
		" (a newer smolvmm wrote it: run that smolvmm, or move the file away to start afresh, losing its leases)\n"
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || string(out) != want {
		t.Errorf("net: %v, output\n%q\nwant status 1 and\n%q", err, out, want)
	}
	if b, err := os.ReadFile(leases); err != nil || string(b) != content {
		t.Errorf("lease file now %q (%v), want it as it was", b, err)
	}
}
