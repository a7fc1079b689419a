package main

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestSnapshotStatePerRun: two runs in one process do not share --snapshot
// state: the second neither reports the first's failed Ctrl-A s snapshots
// in its closing warning nor has the first's (closed) target for Ctrl-A s
// and the seccomp filter's rename directory.
func TestSnapshotStatePerRun(t *testing.T) {
	dir := t.TempDir()
	type result struct {
		run  *snapRun
		done error
	}
	// runOnce parses a run command line and sets up its snapshot, failing
	// as many Ctrl-A s snapshots as fails says, and ends it.
	runOnce := func(fails int, args ...string) result {
		t.Helper()
		var r result
		cmd := runCommand()
		cmd.Action = func(c *cli.Context) error {
			var cfg vmm.Config
			run, done, err := setupSnapshot(c, &cfg)
			if err != nil {
				return err
			}
			for range fails {
				run.failures.add(errors.New("the snapshot failed"))
			}
			r = result{run, done()}
			return nil
		}
		app := newApp([]*cli.Command{cmd})
		app.ExitErrHandler = func(*cli.Context, error) {}
		if err := app.Run(append([]string{"smolvmm", "run", "-k", "x", "--net", "none"}, args...)); err != nil {
			t.Fatalf("run %q: %v", args, err)
		}
		return r
	}
	for _, tc := range []struct {
		name         string
		second       []string
		wantTarget   bool
		wantAttempts int
	}{
		{"second with --snapshot", []string{"--snapshot", filepath.Join(dir, "b.snap")}, true, 0},
		{"second without", nil, false, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := runOnce(2, "--snapshot", filepath.Join(dir, "a.snap"))
			var ns *noSnapshotError
			if !errors.As(first.done, &ns) || ns.attempts != 2 {
				t.Fatalf("the first run's end: %v; want a noSnapshotError of 2 attempts", first.done)
			}
			second := runOnce(0, tc.second...)
			if got := second.run.target != nil; got != tc.wantTarget || second.run.target == first.run.target {
				t.Errorf("the second run's target %p (the first's %p); want one: %v, and not the first's", second.run.target, first.run.target, tc.wantTarget)
			}
			if n, last := second.run.failures.get(); n != 0 || last != nil {
				t.Errorf("the second run starts with %d failed snapshots (%v); want none", n, last)
			}
			if tc.wantAttempts < 0 {
				return
			}
			ns = nil
			if !errors.As(second.done, &ns) || ns.attempts != tc.wantAttempts {
				t.Errorf("the second run's end: %v; want a noSnapshotError of %d attempts", second.done, tc.wantAttempts)
			}
		})
	}
}
