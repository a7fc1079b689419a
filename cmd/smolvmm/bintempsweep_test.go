package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSweepBinTemps: a binary directory left by a run that ended without
// its cleanup is removed by the next run; one a live run holds, one just
// made, and others' files are kept.
func TestSweepBinTemps(t *testing.T) {
	parent := t.TempDir()
	old := time.Now().Add(-time.Hour)
	mk := func(name string, mtime time.Time) string {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "smolvmm"), []byte("binary"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	left := mk("smolvmm-cli111", old)
	held := mk("smolvmm-cli222", old)
	fresh := mk("smolvmm-cli333", time.Now())
	other := mk("smolvmm-clients", old)
	bare := mk("smolvmm-cli", old)
	f, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	sweepBinTemps(parent, "smolvmm-cli", time.Now().Add(-binTempSweepAge))
	for _, tc := range []struct {
		dir  string
		kept bool
	}{{left, false}, {held, true}, {fresh, true}, {other, true}, {bare, true}} {
		_, err := os.Stat(tc.dir)
		if kept := err == nil; kept != tc.kept {
			t.Errorf("%s: kept %v, want %v", filepath.Base(tc.dir), kept, tc.kept)
		}
	}
}
