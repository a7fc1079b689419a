package vmm_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// snapshotCounter boots the counter guest with words, snapshots it at its
// ready point (after "count 100") into a file and lets it run to its end.
// It returns the file, the output before and after the snapshot point.
func snapshotCounter(t *testing.T, cfg vmm.Config, words string) (path, before, after string) {
	t.Helper()
	needKVM(t)
	path = filepath.Join(t.TempDir(), "counter.snap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var snapErr error
	var snapInfo vmm.SnapshotInfo
	cfg.Kernel = guest(t, "counter")
	cfg.Append = words
	cfg.NoAppend = words == ""
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 16
	}
	cfg.SnapshotOnReady = f
	cfg.OnSnapshot = func(i vmm.SnapshotInfo, err error) { snapInfo, snapErr = i, err }
	out, e, err := boot(t, cfg, 30*time.Second)
	wantDebugExit(t, e, err, 0)
	if snapErr != nil {
		t.Fatalf("snapshot: %v", snapErr)
	}
	if snapInfo.Bytes < int64(cfg.MemoryMiB)<<20 {
		t.Fatalf("snapshot of %d bytes, less than the guest's memory", snapInfo.Bytes)
	}
	t.Logf("snapshot: %d bytes, guest paused %v", snapInfo.Bytes, snapInfo.Pause)
	const mark = "count 100\r\n"
	i := strings.Index(out, mark)
	if i < 0 {
		t.Fatalf("output lacks %q:\n%s", mark, out)
	}
	return path, out[:i+len(mark)], out[i+len(mark):]
}

// restoreRun restores path with cfg and opts and runs it to its end.
func restoreRun(t *testing.T, cfg vmm.Config, path string, opts ...vmm.RestoreOption) (string, vmm.Exit, error) {
	t.Helper()
	var out guests.Console
	cfg.Console = &out
	m, err := vmm.Restore(cfg, path, opts...)
	if err != nil {
		return "", vmm.Exit{}, err
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := m.Run(ctx)
	return out.String(), e, err
}

// TestSnapshotRestoreCounter: a guest restored twice, at once, from one
// snapshot goes on from exactly the count it was snapshotted at, both
// times; one waiting on the PIT is woken by the restored PIT.
func TestSnapshotRestoreCounter(t *testing.T) {
	tests := []struct{ words, want string }{
		{"", "count 101\r\n"},
		{"pit", "counter: pit irq 0 after count 100\r\n"},
	}
	for _, tt := range tests {
		t.Run("words="+tt.words, func(t *testing.T) {
			path, _, after := snapshotCounter(t, vmm.Config{}, tt.words)
			if !strings.HasPrefix(after, tt.want) {
				t.Fatalf("the snapshotted run went on with %q, want %q first", after, tt.want)
			}
			var wg sync.WaitGroup
			outs := make([]string, 2)
			errs := make([]error, 2)
			exits := make([]vmm.Exit, 2)
			for i := range outs {
				wg.Go(func() { outs[i], exits[i], errs[i] = restoreRun(t, vmm.Config{}, path) })
			}
			wg.Wait()
			for i := range outs {
				wantDebugExit(t, exits[i], errs[i], 0)
				if outs[i] != after {
					t.Errorf("restore %d printed\n%q\nwant exactly what the snapshotted run printed after the snapshot:\n%q", i, outs[i], after)
				}
			}
		})
	}
}

// TestRestorePhases: a restore reports its phases once each, in the order
// of their times, though it reads the snapshot while it creates the VM.
func TestRestorePhases(t *testing.T) {
	path, _, _ := snapshotCounter(t, vmm.Config{}, "")
	var events []vmm.Event
	_, e, err := restoreRun(t, vmm.Config{OnEvent: func(e vmm.Event) { events = append(events, e) }}, path)
	wantDebugExit(t, e, err, 0)
	seen := map[vmm.Phase]int{}
	for i, e := range events {
		seen[e.Phase]++
		if i > 0 && e.Time.Before(events[i-1].Time) {
			t.Errorf("%s reported after %s, at an earlier time", e.Phase, events[i-1].Phase)
		}
	}
	for _, p := range []vmm.Phase{vmm.PhaseSnapshotLoaded, vmm.PhaseVMCreated, vmm.PhaseDevicesCreated, vmm.PhaseStateRestored, vmm.PhaseFirstRun} {
		if seen[p] != 1 {
			t.Errorf("%s reported %d times, want once (events %v)", p, seen[p], events)
		}
	}
	if seen[vmm.PhaseKernelLoaded] != 0 {
		t.Errorf("a restore reported %s", vmm.PhaseKernelLoaded)
	}
}

// TestSnapshotWhileRunning takes a snapshot with Machine.Snapshot from
// another goroutine at an arbitrary point: the restored guest prints
// exactly the rest of what the original printed after that point.
func TestSnapshotWhileRunning(t *testing.T) {
	needKVM(t)
	path := filepath.Join(t.TempDir(), "running.snap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out guests.Console
	started := make(chan struct{})
	m, err := vmm.New(vmm.Config{Kernel: guest(t, "counter"), Append: "n=3000 at=0", MemoryMiB: 16, Console: &out,
		OnEvent: func(e vmm.Event) {
			if e.Phase == vmm.PhaseFirstOutput {
				close(started)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	type res struct {
		e   vmm.Exit
		err error
	}
	done := make(chan res, 1)
	go func() {
		e, err := m.Run(context.Background())
		done <- res{e, err}
	}()
	<-started
	if _, err := m.Snapshot(f); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	r := <-done
	wantDebugExit(t, r.e, r.err, 0)
	if _, err := m.Snapshot(f); !errors.Is(err, vmm.ErrNotRunning) {
		t.Fatalf("Snapshot after Run = %v, want ErrNotRunning", err)
	}
	got, e, err := restoreRun(t, vmm.Config{}, path)
	wantDebugExit(t, e, err, 0)
	if !strings.HasSuffix(out.String(), got) || !strings.HasSuffix(got, "counter: done\r\n") || len(got) >= len(out.String()) {
		t.Fatalf("restored guest printed %d bytes that are not a proper tail of the original's %d:\n%.300q", len(got), len(out.String()), got)
	}
}

// TestRestoreRefusals: every input a restore refuses, with nothing half
// restored.
func TestRestoreRefusals(t *testing.T) {
	needKVM(t)
	disk := filepath.Join(t.TempDir(), "data.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	path, _, _ := snapshotCounter(t, vmm.Config{Disks: []blk.Spec{{Path: disk}}}, "")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := func(edit func([]byte) []byte) string {
		p := filepath.Join(t.TempDir(), "edited.snap")
		if err := os.WriteFile(p, edit(append([]byte(nil), good...)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	memSize := func(size uint64) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], size); return b }
	}
	corrupt := edited(func(b []byte) []byte { b[snapshot.HeaderSize+10] ^= 0x20; return b })
	// resign puts back the header's SHA-256 (bytes 48-79: over bytes 0-47,
	// 80-127 and the state), so that an edited version is another
	// version's file, not a damaged field of this one's.
	resign := func(b []byte) []byte {
		s := sha256.New()
		s.Write(b[:48])
		s.Write(b[80:snapshot.HeaderSize])
		s.Write(b[snapshot.HeaderSize : snapshot.HeaderSize+binary.LittleEndian.Uint64(b[32:])])
		copy(b[48:80], s.Sum(nil))
		return b
	}
	tests := []struct {
		name  string
		path  string
		cfg   vmm.Config
		setup func()
		want  error
		text  string
	}{
		{"other memory size", path, vmm.Config{MemoryMiB: 32}, nil, snapshot.ErrMemorySize, "16 MiB in the snapshot, 32 MiB asked for"},
		{"corrupt state", corrupt, vmm.Config{}, nil, snapshot.ErrCorrupt, "SHA-256"},
		// The header's memory size is unverified until the state is:
		// the VM a restore creates meanwhile from it (8 MiB), or does
		// not (a page; more than the file holds), is never run.
		{"header memory size 8 MiB", edited(memSize(8 << 20)), vmm.Config{}, nil, snapshot.ErrCorrupt, "SHA-256"},
		{"header memory size a page", edited(memSize(snapshot.PageSize)), vmm.Config{}, nil, snapshot.ErrCorrupt, "SHA-256"},
		{"header memory size past the file", edited(memSize(64 << 20)), vmm.Config{}, nil, snapshot.ErrCorrupt, "SHA-256"},
		// A refused snapshot is reported before a VM that could not be
		// made; a good one with the VM's error.
		{"corrupt state, no KVM", corrupt, vmm.Config{KVMPath: "/nonexistent/kvm"}, nil, snapshot.ErrCorrupt, "SHA-256"},
		{"no KVM", path, vmm.Config{KVMPath: "/nonexistent/kvm"}, nil, vmm.ErrNoKVM, "/nonexistent/kvm"},
		{"truncated", edited(func(b []byte) []byte { return b[:len(b)-4096] }), vmm.Config{}, nil, snapshot.ErrTruncated, "memory section ends at"},
		{"other version", edited(func(b []byte) []byte { b[8] = 11; return resign(b) }), vmm.Config{}, nil, snapshot.ErrNewerVersion, "version 11, this reader knows versions 8 to 10: written by a newer smolvmm"},
		{"version 6", edited(func(b []byte) []byte { b[8] = 6; return resign(b) }), vmm.Config{}, nil, snapshot.ErrOlderVersion, "version 6, this reader knows versions 8 to 10: written by an older smolvmm"},
		// Version 7's MSRs lack the MTRRs: its guest would run on with them 0.
		{"version 7", edited(func(b []byte) []byte { b[8] = 7; return resign(b) }), vmm.Config{}, nil, snapshot.ErrOlderVersion, "version 7, this reader knows versions 8 to 10: written by an older smolvmm"},
		{"version field damaged", edited(func(b []byte) []byte { b[8] = 15; return b }), vmm.Config{}, nil, snapshot.ErrCorrupt, "version field damaged (header bytes 8-11 say version 15)"},
		{"not a snapshot", disk, vmm.Config{}, nil, snapshot.ErrFormat, "bad magic"},
		{"fewer disks", path, vmm.Config{Disks: []blk.Spec{}}, nil, vmm.ErrSnapshotDevices, "has 1 disks, 0 given"},
		// The guest negotiated a writable disk and a serial: one that
		// turned read-only would fail its writes, and read-only disks
		// share their lock, so two restores could then write one image.
		{"disk read-only, the snapshot's read-write", path, vmm.Config{Disks: []blk.Spec{{Path: disk, Options: blk.Options{ReadOnly: true}}}}, nil,
			vmm.ErrSnapshotDevices, "ld0 (disk image " + disk + "): the machine's devices differ from the snapshot's: read-only, the snapshot's disk read-write"},
		{"disk of another serial", path, vmm.Config{Disks: []blk.Spec{{Path: disk, Options: blk.Options{Serial: "other"}}}}, nil,
			vmm.ErrSnapshotDevices, `serial "other", the snapshot's "` + blk.DeriveSerial(disk) + `"`},
		{"changed disk", path, vmm.Config{Disks: []blk.Spec{{Path: disk}}}, func() {
			if err := os.WriteFile(disk, make([]byte, 2<<20), 0o600); err != nil {
				t.Fatal(err)
			}
		}, vmm.ErrDiskChanged, "size 2097152, the snapshot's 1048576"},
		// Taken from the snapshot, a disk is its very file, unchanged.
		{"changed disk, the snapshot's", path, vmm.Config{}, func() {
			if err := os.WriteFile(disk, make([]byte, 2<<20), 0o600); err != nil {
				t.Fatal(err)
			}
		}, vmm.ErrDiskNotRecorded, "ld0 (the snapshot's disk image " + disk + "): the path does not name the file the snapshot recorded: modified at "},
	}
	// The Config field each refusal of a disk names.
	fields := map[string]string{
		"fewer disks": "Disks", "disk read-only, the snapshot's read-write": "Disks",
		"disk of another serial": "Disks", "changed disk": "Disks",
	}
	for _, tt := range tests {
		// Begun by PrepareRestore or not, the same refusal, with
		// nothing left open.
		for _, prepared := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s prepared=%t", tt.name, prepared), func(t *testing.T) {
				if tt.setup != nil {
					tt.setup()
				}
				fds, before := openFDs(t), goroutines()
				var opts []vmm.RestoreOption
				if prepared {
					p := vmm.PrepareRestore(tt.cfg.KVMPath, tt.path)
					defer func() {
						if err := p.Close(); err != nil {
							t.Errorf("Close of the preparation Restore took: %v", err)
						}
					}()
					opts = append(opts, vmm.WithPrepared(p))
				}
				m, err := vmm.Restore(tt.cfg, tt.path, opts...)
				if err == nil {
					m.Close()
					t.Fatal("Restore succeeded")
				}
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
					t.Fatalf("Restore: %v\nwant %v mentioning %q", err, tt.want, tt.text)
				}
				var ve *vmm.Error
				if f := fields[tt.name]; f != "" && (!errors.As(err, &ve) || ve.Field != f) {
					t.Errorf("Restore: %v\nwant a *vmm.Error with Field %q", err, f)
				}
				if leaked := leakedFDs(t, fds); len(leaked) > 0 {
					t.Errorf("file descriptors left open after the refusal: %v", leaked)
				}
				noGoroutinesLeft(t, before)
			})
		}
	}
}

// TestRestorePrepared: a restore begun by PrepareRestore continues the
// guest as one without; a preparation for another snapshot or KVM is
// released and the restore begun afresh; one never used is released by
// Close. Every file and goroutine is gone once the machine or the
// preparation is closed.
func TestRestorePrepared(t *testing.T) {
	path, _, after := snapshotCounter(t, vmm.Config{}, "n=120 at=100")
	other := filepath.Join(t.TempDir(), "other.snap")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, b, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		kvmPath, prepare string
	}{
		{"the snapshot's", "", path},
		{"another snapshot's", "", other},
		{"another KVM's", "/nonexistent/kvm", path},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fds, before := openFDs(t), goroutines()
			p := vmm.PrepareRestore(tt.kvmPath, tt.prepare)
			out, e, err := restoreRun(t, vmm.Config{}, path, vmm.WithPrepared(p))
			wantDebugExit(t, e, err, 0)
			if out != after {
				t.Fatalf("restored guest printed %q, want %q", out, after)
			}
			if taken := vmm.PreparedTaken(p); taken != (tt.prepare == path && tt.kvmPath == "") {
				t.Errorf("Restore took the preparation over: %t", taken)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if leaked := leakedFDs(t, fds); len(leaked) > 0 {
				t.Errorf("file descriptors left open after the machine closed: %v", leaked)
			}
			noGoroutinesLeft(t, before)
		})
	}
	t.Run("never restored", func(t *testing.T) {
		fds, before := openFDs(t), goroutines()
		p := vmm.PrepareRestore("", path)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if leaked := leakedFDs(t, fds); len(leaked) > 0 {
			t.Errorf("file descriptors left open after Close: %v", leaked)
		}
		noGoroutinesLeft(t, before)
	})
}

// TestRestorePreparedDecodesMeanwhile: while a preparation still waits
// for KVM's CPUID answer, Restore reads and decodes the state itself,
// before it gives the VM its memory (which waits for that answer) and
// before its vCPU waits for the CPUID; the guest then continues as
// always.
func TestRestorePreparedDecodesMeanwhile(t *testing.T) {
	path, _, after := snapshotCounter(t, vmm.Config{}, "n=120 at=100")
	got := make(chan bool, 1)
	defer vmm.GatePreparedCPUID(func(decodedFirst bool) { got <- decodedFirst })()
	p := vmm.PrepareRestore("", path)
	defer p.Close()
	out, e, err := restoreRun(t, vmm.Config{}, path, vmm.WithPrepared(p))
	wantDebugExit(t, e, err, 0)
	if out != after {
		t.Fatalf("restored guest printed %q, want %q", out, after)
	}
	if !<-got {
		t.Error("the vCPU waited for KVM's CPUID before the state was decoded: Restore left the decoding to the preparation's goroutine, behind the CPUID question")
	}
}

// openFDs maps this process's open file descriptors to what they refer to.
func openFDs(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := map[string]string{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // closed since it was listed: the listing's own
		}
		fds[e.Name()] = target
	}
	return fds
}

// leakedFDs lists the descriptors open now that were not in before (by
// number and what they refer to): a count would miss a leak while
// something else of the test process (a finalizer) closes one.
func leakedFDs(t *testing.T, before map[string]string) []string {
	t.Helper()
	var leaked []string
	for fd, target := range openFDs(t) {
		if was, ok := before[fd]; !ok || was != target {
			leaked = append(leaked, fd+" -> "+target)
		}
	}
	return leaked
}

// TestRestoreOneDiskTwice: two machines restored from one snapshot share
// a read-only disk, but not a writable one: the second is refused, as
// for two booted machines.
func TestRestoreOneDiskTwice(t *testing.T) {
	for _, ro := range []bool{true, false} {
		t.Run(map[bool]string{true: "read-only", false: "read-write"}[ro], func(t *testing.T) {
			needKVM(t)
			disk := filepath.Join(t.TempDir(), "root.img")
			if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
				t.Fatal(err)
			}
			path, _, after := snapshotCounter(t, vmm.Config{Disks: []blk.Spec{{Path: disk, Options: blk.Options{ReadOnly: ro}}}}, "")
			var outA, outB guests.Console
			a, err := vmm.Restore(vmm.Config{Console: &outA}, path)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := vmm.Restore(vmm.Config{Console: &outB}, path)
			if !ro {
				if err == nil || !strings.Contains(err.Error(), "in use by another VM") {
					if b != nil {
						b.Close()
					}
					t.Fatalf("second restore on a writable disk: %v, want a refusal naming the lock", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("second restore on a read-only disk: %v", err)
			}
			defer b.Close()
			for i, m := range []*vmm.Machine{a, b} {
				e, err := m.Run(context.Background())
				wantDebugExit(t, e, err, 0)
				if got := []*guests.Console{&outA, &outB}[i].String(); got != after {
					t.Errorf("restore %d printed %q, want %q", i, got, after)
				}
			}
		})
	}
}

// TestSnapshotFullDisk: a snapshot whose file cannot be written (a full
// disk: /dev/full) fails with the write's error, and the guest runs on to
// its end, its output whole.
func TestSnapshotFullDisk(t *testing.T) {
	needKVM(t)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	var snapErr error
	out, e, err := boot(t, vmm.Config{Kernel: guest(t, "counter"), Append: "n=150 at=100", MemoryMiB: 16,
		SnapshotOnReady: full, OnSnapshot: func(_ vmm.SnapshotInfo, err error) { snapErr = err }}, 30*time.Second)
	wantDebugExit(t, e, err, 0)
	if !errors.Is(snapErr, syscall.ENOSPC) || !strings.Contains(snapErr.Error(), "write snapshot at offset 0") {
		t.Fatalf("snapshot on a full disk: %v, want ENOSPC at offset 0", snapErr)
	}
	wantLines(t, out, "count 100\r\ncount 101\r\n", "count 150\r\ncounter: done\r\n")
}

// TestSnapshotRestoreDisk: the vblk guest snapshotted with its driver
// live (and, with "pending", a read of sector 0 just handed to the device)
// is restored against the untouched image: the restored guest finishes
// that read, makes its requests through the restored queue and writes its
// sector into the image. A second restore is then refused: the image
// changed since the snapshot.
func TestSnapshotRestoreDisk(t *testing.T) {
	for _, words := range []string{"ready seq=5", "pending seq=6"} {
		t.Run(words, func(t *testing.T) {
			needKVM(t)
			disk, img := diskImage(t)
			path := filepath.Join(t.TempDir(), "vblk.snap")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var snapErr error
			disks := []blk.Spec{{Path: disk, Options: blk.Options{Serial: "smolvmm-test"}}}
			out, e, err := boot(t, vmm.Config{Kernel: guest(t, "vblk"), Append: words, MemoryMiB: 32, Disks: disks,
				SnapshotOnReady: f, SnapshotExit: true, OnSnapshot: func(_ vmm.SnapshotInfo, err error) { snapErr = err }}, 30*time.Second)
			if err != nil || snapErr != nil || e.Reason != vmm.ExitSnapshot {
				t.Fatalf("snapshot run: exit %v, %v, snapshot %v\n%s", e, err, snapErr, out)
			}
			if !strings.HasSuffix(out, "vblk: capacity 2048 sectors (hi 0)\r\n") {
				t.Fatalf("the snapshot run went past its snapshot point:\n%s", out)
			}
			got, e, err := restoreRun(t, vmm.Config{}, path)
			wantDebugExit(t, e, err, 0)
			want := []string{"vblk: sector 0 53 4d 4f 4c 56 4d 4d 2d 53 45 43 54 4f 52 2d 30\r\n",
				"vblk: wrote sector 1 seq=" + words[len(words)-1:] + "\r\n", "vblk: flush ok\r\n", "vblk: readback ok\r\n",
				"vblk: serial \"smolvmm-test\"\r\n", "vblk: ok\r\n"}
			if strings.HasPrefix(words, "pending") {
				want = append([]string{"vblk: pending read status 0 sector 0 53 4d\r\n"}, want...)
			}
			wantLines(t, got, want...)
			if strings.Contains(got, "capacity") {
				t.Errorf("the restored guest started over:\n%s", got)
			}
			seq := uint32(5)
			if strings.HasPrefix(words, "pending") {
				seq = 6
			}
			copy(img[512:], guests.VblkPattern(seq))
			if b, err := os.ReadFile(disk); err != nil || !bytes.Equal(b, img) {
				t.Fatalf("image after the restored guest's write differs (%v)", err)
			}
			if _, err := vmm.Restore(vmm.Config{Disks: []blk.Spec{{Path: disk}}}, path); !errors.Is(err, vmm.ErrDiskChanged) {
				t.Fatalf("restore against the written image: %v, want ErrDiskChanged", err)
			}
			if _, err := vmm.Restore(vmm.Config{}, path); !errors.Is(err, vmm.ErrDiskNotRecorded) {
				t.Fatalf("restore of the snapshot's disk, written: %v, want ErrDiskNotRecorded", err)
			}
		})
	}
}

// TestRestoreLocksSnapshot: a restored machine holds a shared lock on its
// snapshot file from Restore to Close, so that a writer taking the
// exclusive lock is refused while the file is mapped; a file another
// process holds exclusive is refused by Restore.
func TestRestoreLocksSnapshot(t *testing.T) {
	path, _, _ := snapshotCounter(t, vmm.Config{}, "n=120 at=100")
	other, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	m, err := vmm.Restore(vmm.Config{}, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		m.Close()
		t.Fatalf("exclusive lock while restored: %v, want EWOULDBLOCK", err)
	}
	m.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("exclusive lock after Close: %v", err)
	}
	// Held exclusive (being written): Restore refuses, naming the holder.
	_, err = vmm.Restore(vmm.Config{}, path)
	if !errors.Is(err, snapshot.ErrInUse) || !strings.Contains(err.Error(), "process ") {
		t.Fatalf("restore of a file locked exclusive: %v; want ErrInUse naming the holder", err)
	}
}
