package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/virtio/blk"
)

// untrusted makes the snapshot at path one a restore does not take the
// disks of (snapshotTrusted): writable by others.
func untrusted(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
}

// TestBenchDiskAdviceQuoted: bench's advice for a snapshot's read-write
// disks offered the paths the snapshot recorded, unquoted, as a command
// to run: a snapshot anyone wrote, recording a disk $(touch PWNED), was
// advice to run touch. A snapshot of the user's own has its paths
// shell-quoted; an untrusted one's are not offered (FILEn stands for
// disk n), as restoreDiskHint's rule has it. A -d refused for --parallel
// is offered back quoted too.
func TestBenchDiskAdviceQuoted(t *testing.T) {
	dir := t.TempDir()
	evil := filepath.Join(dir, "$(touch "+filepath.Join(dir, "PWNED")+") x.img")
	spaced := filepath.Join(dir, "my disk.img")
	if err := os.WriteFile(spaced, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	own, other, other2 := filepath.Join(dir, "own.snap"), filepath.Join(dir, "other.snap"), filepath.Join(dir, "other2.snap")
	writeDiskSnapshot(t, own, snapDisk{evil, false})
	writeDiskSnapshot(t, other, snapDisk{evil, false})
	writeDiskSnapshot(t, other2, snapDisk{spaced, true}, snapDisk{evil, false})
	untrusted(t, other)
	untrusted(t, other2)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"own, parallel", []string{"--restore", own, "--parallel", "2"}, "(run -d '" + evil + ",ro' --snapshot FILE)"},
		{"own, rounds", []string{"--restore", own, "-n", "2"}, "(run -d '" + evil + ",ro' --snapshot FILE)"},
		{"untrusted, parallel", []string{"--restore", other, "--parallel", "2"}, "(run -d FILE1,ro --snapshot FILE)"},
		{"untrusted, rounds", []string{"--restore", other, "-n", "2"}, "(run -d FILE1,ro --snapshot FILE)"},
		{"untrusted, second disk", []string{"--restore", other2, "-n", "2"}, "(run -d FILE2,ro --snapshot FILE)"},
		{"-d, parallel", []string{"-d", spaced, "--parallel", "2"}, "give -d '" + spaced + ",ro' to share it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--kvm-device", filepath.Join(dir, "kvm"), "--net", "none"}, tt.args...)
			status, _, stderr := benchRun(t, nil, args...)
			if status != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("status %d stderr %q; want status 2, one line with %q", status, stderr, tt.want)
			}
			if strings.Contains(stderr, "-d "+evil) {
				t.Errorf("the snapshot's path is offered unquoted: %q", stderr)
			}
		})
	}
}

// TestRestoreDiskHintQuoted: the -d flags a refused restore is advised
// are shell words, the images given and a trusted snapshot's own paths
// quoted where a shell would read them; an untrusted snapshot's own
// paths are not offered.
func TestRestoreDiskHintQuoted(t *testing.T) {
	dir := t.TempDir()
	evil := filepath.Join(dir, "$(touch "+filepath.Join(dir, "PWNED")+") x.img")
	given := []blk.Spec{{Path: filepath.Join(dir, "my disk.img")}}
	own, other := filepath.Join(dir, "own.snap"), filepath.Join(dir, "other.snap")
	for _, p := range []string{own, other} {
		writeDiskSnapshot(t, p, snapDisk{filepath.Join(dir, "a.img"), false}, snapDisk{evil, true})
	}
	untrusted(t, other)
	tests := []struct{ path, want string }{
		{own, "give -d as the snapshot's machine had it: -d '" + dir + "/my disk.img' -d '" + evil + ",ro', or leave out -d to take the snapshot's disks"},
		{other, "give -d as the snapshot's machine had it: -d '" + dir + "/my disk.img' -d FILE2,ro"},
	}
	for _, tt := range tests {
		if got := restoreDiskHint(tt.path, given); got != tt.want {
			t.Errorf("restoreDiskHint(%s) =\n%q; want\n%q", filepath.Base(tt.path), got, tt.want)
		}
	}
}
