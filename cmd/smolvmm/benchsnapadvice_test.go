package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
)

// TestRestoreAdviceNamesTheSnapshotWriter: a file bench --restore refuses
// was advised "give --restore a file written by --snapshot", a flag bench
// has not: run and up write snapshots. run, which has it, keeps its
// advice.
func TestRestoreAdviceNamesTheSnapshotWriter(t *testing.T) {
	dir := t.TempDir()
	notSnap := filepath.Join(dir, "rescue.tgz")
	if err := os.WriteFile(notSnap, gzipBytes(make([]byte, 4096)), 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.snap")
	if err := os.WriteFile(short, []byte(snapshot.Magic), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cmd  []string
		file string
		want string // the advice, ending the line
	}{
		{[]string{"run"}, notSnap, " (give --restore a file written by --snapshot)"},
		{[]string{"bench", "-n", "1"}, notSnap, " (give --restore a file written by run or up --snapshot)"},
		{[]string{"run"}, short, " (give --restore a whole file written by --snapshot)"},
		{[]string{"bench", "-n", "1"}, short, " (give --restore a whole file written by run or up --snapshot)"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd[0]+" "+filepath.Base(tt.file), func(t *testing.T) {
			_, stderr, status := runCLI(t, append(tt.cmd, "--restore", tt.file)...)
			prefix := "smolvmm " + tt.cmd[0] + ": --restore " + tt.file + ": snapshot " + tt.file + ": "
			if status != 1 || !strings.HasPrefix(stderr, prefix) || !strings.HasSuffix(stderr, tt.want+"\n") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("status %d, stderr\n%s\nwant status 1, one line starting %q and ending %q", status, stderr, prefix, tt.want)
			}
		})
	}
}

// TestBenchRestoreChildAdvice: bench's restores run in children of its
// own, which say what failed in the results; their advice on a snapshot
// damaged since it was written named --snapshot too.
func TestBenchRestoreChildAdvice(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	snap := filepath.Join(t.TempDir(), "counter.snap")
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=120 at=100", "--net", "none",
		"--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, stderr:\n%s", status, stderr)
	}
	// A byte of guest memory, past the header and the state, changed.
	f, err := os.OpenFile(snap, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 8<<20); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, 8<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tests := []struct {
		cmd  []string
		want string
	}{
		{[]string{"run"}, " (the file was damaged or altered since --snapshot wrote it: take the snapshot again)"},
		{[]string{"bench", "-n", "1", "--warmup", "0"}, " (the file was damaged or altered since run or up --snapshot wrote it: take the snapshot again)"},
	}
	for _, tt := range tests {
		// run says it on stderr; bench in its results, on stdout.
		stdout, stderr, status := runCLI(t, append(tt.cmd, "--restore", snap)...)
		out := stdout + stderr
		if status != 1 || !strings.Contains(out, "snapshot is corrupt") || !strings.Contains(out, tt.want+"\n") {
			t.Errorf("%s: status %d, output\n%s\nwant status 1 and the advice %q", tt.cmd[0], status, out, tt.want)
		}
	}
}
