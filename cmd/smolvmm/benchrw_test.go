package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
)

// snapDisk is a disk as a snapshot's state records it.
type snapDisk struct {
	path string
	ro   bool
}

// writeDiskSnapshot writes a snapshot of 4 MiB whose state section holds
// a fields part (vmm/statefields.go's layout) that records disks, and
// nothing else of a machine: enough for what bench reads before any VM
// starts, no more.
func writeDiskSnapshot(t *testing.T, path string, disks ...snapDisk) {
	t.Helper()
	le := binary.LittleEndian
	var b []byte
	b = le.AppendUint64(b, 4) // MemoryMiB
	b = le.AppendUint64(b, 0) // Protocol
	b = le.AppendUint32(b, 0) // TSCKHz
	b = append(b, 1)          // Ready
	b = le.AppendUint32(b, 0) // UART RX
	b = append(b, make([]byte, 9+2)...)
	b = append(b, make([]byte, 1+128)...) // RTC Index, RAM
	b = append(b, make([]byte, 8*8)...)   // RTC Offset, Held
	b = le.AppendUint32(b, 0)             // PCI Addr
	b = le.AppendUint32(b, 0)             // PCI functions
	b = le.AppendUint32(b, 0)             // virtio devices
	b = le.AppendUint32(b, 0)             // MACs
	b = le.AppendUint32(b, uint32(len(disks)))
	for _, d := range disks {
		b = le.AppendUint32(b, uint32(len(d.path)))
		b = append(b, d.path...)
		if d.ro {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = le.AppendUint32(b, 0)           // Serial
		b = append(b, make([]byte, 4*8)...) // Size, Dev, Inode, MtimeNs
		b = le.AppendUint32(b, 0)           // Content
	}
	state := append(le.AppendUint32(nil, uint32(len(b))), b...)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := snapshot.Write(f, snapshot.NIC{}, state, make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
}

// TestBenchParallelWritableDisk: bench --parallel N with a read-write
// disk (a -d without ,ro, or a --restore snapshot that recorded one)
// started all N VMs, of which the first took the disk's lock and the
// others failed on it, and ended with status 0 ("started 1, failed 1").
// It is now refused before any VM starts or any file is written, status
// 2, saying what to give instead; read-only disks, and one VM, still get
// past it (to the missing KVM device given, status 1).
func TestBenchParallelWritableDisk(t *testing.T) {
	dir, a, b := twoImages(t)
	rw, rw2, ro := filepath.Join(dir, "rw.snap"), filepath.Join(dir, "rw2.snap"), filepath.Join(dir, "ro.snap")
	writeDiskSnapshot(t, rw, snapDisk{a, false})
	writeDiskSnapshot(t, rw2, snapDisk{a, true}, snapDisk{a, false}, snapDisk{b, false})
	writeDiskSnapshot(t, ro, snapDisk{a, true})
	const noKVM = "KVM is not available"
	restoreWhy := []string{"each clone that writes needs its own copy of the image", "can be restored many times at once"}
	tests := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"restore rw", []string{"--restore", rw, "--parallel", "2"}, 2,
			append([]string{"smolvmm bench: --restore " + rw + " does not go with --parallel 2: the snapshot's disk " + a + " is read-write", "with the disk given ,ro (run -d " + a + ",ro --snapshot FILE)"}, restoreWhy...)},
		{"restore two rw of three", []string{"--restore", rw2, "--parallel", "3"}, 2,
			append([]string{"the snapshot's disks " + a + ", " + b + " are read-write", "with the disks given ,ro (run -d " + a + ",ro -d " + b + ",ro --snapshot FILE)"}, restoreWhy...)},
		{"restore rw, -d given", []string{"--restore", rw, "-d", b, "--parallel", "2"}, 2, restoreWhy},
		{"restore rw, one VM", []string{"--restore", rw, "--parallel", "1"}, 1, []string{noKVM}},
		{"restore ro", []string{"--restore", ro, "--parallel", "2"}, 1, []string{noKVM}},
		{"restore ro, -d rw", []string{"--restore", ro, "-d", b, "--parallel", "2"}, 2, []string{"-d " + b + " does not go with --parallel 2", "give -d " + b + ",ro"}},
		{"boot rw", []string{"-d", a + ",serial=x", "--parallel", "2"}, 2,
			[]string{"smolvmm bench: -d " + a + ",serial=x does not go with --parallel 2: a writable disk stays locked to the first VM", "give -d " + a + ",ro,serial=x to share it"}},
		{"boot ro and rw", []string{"-d", a + ",ro", "-d", b, "--parallel", "2"}, 2, []string{"-d " + b + " does not go"}},
		{"boot rw, one VM", []string{"-d", a, "--parallel", "1"}, 1, []string{noKVM}},
		{"boot ro", []string{"-d", a + ",ro", "-d", b + ",ro", "--parallel", "2"}, 1, []string{noKVM}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			js, svg := filepath.Join(out, "r.json"), filepath.Join(out, "r.svg")
			args := append([]string{"--kvm-device", filepath.Join(dir, "kvm"), "--net", "none", "--json", js, "--svg", svg}, tt.args...)
			status, stdout, stderr := benchRun(t, nil, args...)
			if status != tt.status || stdout != "" || strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, "starting") {
				t.Errorf("status %d stdout %q stderr %q; want status %d, no results and one line", status, stdout, stderr, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q: %q", w, stderr)
				}
			}
			if names := dirNames(t, out); len(names) != 0 {
				t.Errorf("files written: %v", names)
			}
		})
	}
}

// TestCLIBenchRestoreParallelDisk: the check reads a real snapshot's
// disks: one taken with the disk read-write is refused for --parallel 2,
// one taken with it ,ro restores twice at once.
func TestCLIBenchRestoreParallelDisk(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := t.TempDir()
	demo, disk := filepath.Join(dir, "demo.elf"), filepath.Join(dir, "d.img")
	if err := os.WriteFile(demo, guests.Demo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		disk   string
		status int
		want   string
	}{
		{disk, 2, "the snapshot's disk " + disk + " is read-write"},
		{disk + ",ro", 0, "started 2, failed 0"},
	} {
		snap := filepath.Join(t.TempDir(), "demo.snap")
		if _, stderr, status := runCLI(t, "run", "-k", demo, "-m", "16", "--net", "none", "-d", tt.disk, "--ready", "^smolvmm-demo: hello", "--snapshot", snap, "--snapshot-exit"); status != 0 {
			t.Fatalf("-d %s --snapshot: status %d\n%s", tt.disk, status, stderr)
		}
		out, stderr, status := runCLI(t, "bench", "--restore", snap, "--net", "none", "--parallel", "2")
		if status != tt.status || !strings.Contains(out+stderr, tt.want) {
			t.Errorf("-d %s, bench --restore --parallel 2: status %d, want %d and %q\n%s\n%s", tt.disk, status, tt.status, tt.want, out, stderr)
		}
	}
}

// TestCLIBenchRestoreOnceWritableDisk: the one restore that
// checkRestoreRounds's advice gives (-n 1 --warmup 0) of a snapshot with
// a read-write disk is the only one: bench restored it once more before,
// untimed, to sample its memory, and the timed restore was then refused
// an image the first guest had written. Its memory is now read in the
// timed restore.
func TestCLIBenchRestoreOnceWritableDisk(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := t.TempDir()
	demo, disk, snap := filepath.Join(dir, "demo.elf"), filepath.Join(dir, "d.img"), filepath.Join(dir, "demo.snap")
	if err := os.WriteFile(demo, guests.Demo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, status := runCLI(t, "run", "-k", demo, "-m", "16", "--net", "none", "-d", disk, "--ready", "^smolvmm-demo: hello", "--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("--snapshot: status %d\n%s", status, stderr)
	}
	js := filepath.Join(dir, "r.json")
	_, stderr, status := runCLI(t, "bench", "--restore", snap, "--net", "none", "-n", "1", "--warmup", "0", "--json", js)
	if status != 0 {
		t.Fatalf("bench --restore -n 1 --warmup 0: status %d\n%s", status, stderr)
	}
	var line string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "smolvmm-restore: ") {
			line = l
		}
	}
	if !strings.Contains(line, "memory sampled in the first") || strings.Count(line, ".") != 1 {
		t.Errorf("progress %q: want one restore, its memory sampled in it\n%s", line, stderr)
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	res, err := bench.ReadResults(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Systems[0]; len(s.Boots) != 1 || s.Memory == nil {
		t.Errorf("%d timed restores, memory %+v (%s); want 1 and a sample", len(s.Boots), s.Memory, s.MemoryError)
	}
}

// TestBenchRestoreRoundsWritableDisk: bench --restore of a snapshot with
// a read-write disk ran its first round, whose guest could write the
// image, and every later one was refused (the image no longer the
// snapshot's), the snapshot then restorable no more. More than one round
// (-n plus --warmup) is now refused before any, status 2, saying what to
// give instead; one round, and read-only disks, get past it (to the
// missing KVM device given, status 1).
func TestBenchRestoreRoundsWritableDisk(t *testing.T) {
	dir, a, b := twoImages(t)
	rw, rw2, ro := filepath.Join(dir, "rw.snap"), filepath.Join(dir, "rw2.snap"), filepath.Join(dir, "ro.snap")
	writeDiskSnapshot(t, rw, snapDisk{a, false})
	writeDiskSnapshot(t, rw2, snapDisk{a, true}, snapDisk{b, false})
	writeDiskSnapshot(t, ro, snapDisk{a, true})
	const noKVM = "KVM is not available"
	why := "the first restore's guest may write it, and a restore is refused an image that changed since the snapshot: every later round would fail, and the snapshot would restore against the image no more"
	tests := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"rw, 3 and 1 warm-up", []string{"--restore", rw, "-n", "3", "--warmup", "1"}, 2,
			[]string{"smolvmm bench: --restore " + rw + " with 4 rounds (-n 3, --warmup 1): the snapshot's disk " + a + " is read-write: " + why,
				"take the snapshot with the disk given ,ro (run -d " + a + ",ro --snapshot FILE), or give -n 1 --warmup 0 for one restore"}},
		{"rw, defaults", []string{"--restore", rw}, 2, []string{"with 22 rounds (-n 20, --warmup 2)"}},
		{"rw, 1 and 1 warm-up", []string{"--restore", rw, "-n", "1", "--warmup", "1"}, 2, []string{why}},
		{"rw, -d given", []string{"--restore", rw, "-d", b, "-n", "2", "--warmup", "0"}, 2, []string{why}},
		{"one of two rw", []string{"--restore", rw2, "-n", "2"}, 2, []string{"the snapshot's disk " + b + " is read-write", "(run -d " + b + ",ro --snapshot FILE)"}},
		{"rw, one round", []string{"--restore", rw, "-n", "1", "--warmup", "0"}, 1, []string{noKVM}},
		{"ro", []string{"--restore", ro, "-n", "3", "--warmup", "1"}, 1, []string{noKVM}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			js, svg := filepath.Join(out, "r.json"), filepath.Join(out, "r.svg")
			args := append([]string{"--kvm-device", filepath.Join(dir, "kvm"), "--net", "none", "--json", js, "--svg", svg}, tt.args...)
			status, stdout, stderr := benchRun(t, nil, args...)
			if status != tt.status || stdout != "" || strings.Count(stderr, "\n") != 1 {
				t.Errorf("status %d stdout %q stderr %q; want status %d, no results and one line", status, stdout, stderr, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q: %q", w, stderr)
				}
			}
			if names := dirNames(t, out); len(names) != 0 {
				t.Errorf("files written: %v", names)
			}
		})
	}
}

// twoImages makes two 1 MiB disk images, a.img and b.img, in a new
// temporary directory.
func twoImages(t *testing.T) (dir, a, b string) {
	t.Helper()
	dir = t.TempDir()
	a, b = filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, a, b
}
