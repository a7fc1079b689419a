package vmm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// syncFailsBackend is an image in memory whose every Sync fails with EIO.
type syncFailsBackend struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncFailsBackend) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copy(p, s.b[off:]), nil
}

func (s *syncFailsBackend) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copy(s.b[off:], p), nil
}

func (s *syncFailsBackend) Sync() error { return fmt.Errorf("fdatasync: %w", unix.EIO) }

// snapOnLine is a Config.Console that, once the output holds line, has
// a snapshot of m asked for (on a goroutine of its own) and takes no more
// output until it is queued: with a one-byte console buffer the guest
// is held within a byte of line until then, and the vCPU serves the
// snapshot at its next exit, before the guest goes past line.
type snapOnLine struct {
	line   string
	m      *vmm.Machine
	queued chan struct{}
	mu     sync.Mutex
	out    bytes.Buffer
	asked  bool
	done   chan snapResult
}

type snapResult struct {
	written int // bytes the snapshot wrote
	err     error
}

func (c *snapOnLine) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(p)
	ask := !c.asked && strings.Contains(c.out.String(), c.line)
	c.asked = c.asked || ask
	c.mu.Unlock()
	if ask {
		go func() {
			var w bytes.Buffer
			_, err := c.m.Snapshot(&w)
			c.done <- snapResult{w.Len(), err}
		}()
		<-c.queued
	}
	return len(p), nil
}

func (c *snapOnLine) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// A disk whose flush failed on the host (blk.Disk.FlushError) refuses
// every snapshot: the image may lack writes the guest was told were not
// made durable, and a restore, which opens the image again without the
// failure, would not tell its guest so. The snapshot is taken between
// the guest's failed FLUSH and its next step; it is refused, nothing is
// written, and the guest goes on (the vblk guest reports the flush's
// IOERR and exits 1).
func TestSnapshotRefusedAfterFailedFlush(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup gives the machine its disk and returns the name and
		// path the refusal must give it.
		setup    func(t *testing.T, cfg *vmm.Config) (disk, path string)
		wantErrn error // the flush's error, or nil for any
	}{
		{"a disk among Config.Devices whose fdatasync fails", func(t *testing.T, cfg *vmm.Config) (string, string) {
			disk, _ := diskImage(t)
			img, err := os.ReadFile(disk)
			if err != nil {
				t.Fatal(err)
			}
			d, err := blk.New(&syncFailsBackend{b: img}, int64(len(img)), blk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Devices = []virtio.Device{d}
			return "Devices[0]", ""
		}, unix.EIO},
		{"Config.Disks image on a full file system (root)", func(t *testing.T, cfg *vmm.Config) (string, string) {
			path := imageOnFullFS(t)
			cfg.Disks = []blk.Spec{{Path: path}}
			// A sector in a hole of the image: its writeback needs a
			// block the full file system under ext2 cannot give.
			cfg.Append += " sector=1000"
			return "ld0", path
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needKVM(t)
			cfg := vmm.Config{Kernel: guest(t, "vblk"), MemoryMiB: 32, Append: "seq=3", Log: &guests.Console{}}
			disk, path := tc.setup(t, &cfg)
			defer vmm.SetConsoleBuffer(1)()
			con := &snapOnLine{line: "vblk: flush status", queued: make(chan struct{}), done: make(chan snapResult, 1)}
			cfg.Console = con
			m, err := vmm.New(cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer m.Close()
			con.m = m
			var once sync.Once
			vmm.OnSnapshotQueued(m, func() { once.Do(func() { close(con.queued) }) })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e, err := m.Run(ctx)
			out := con.String()
			if err != nil || e.Reason != vmm.ExitDebug || e.Code != 1 || !strings.Contains(out, "vblk: flush status 1") {
				t.Fatalf("Run: exit %+v, %v; want the guest to see its flush fail (IOERR) and exit 1 after the snapshot; output:\n%s\nlog:\n%s",
					e, err, out, cfg.Log)
			}
			con.mu.Lock()
			asked := con.asked
			con.mu.Unlock()
			if !asked {
				t.Fatalf("no snapshot was asked for; output:\n%s", out)
			}
			r := <-con.done
			var fe *vmm.DiskFlushError
			if !errors.As(r.err, &fe) {
				t.Fatalf("snapshot after the failed flush: %v (%d bytes written), want a *vmm.DiskFlushError", r.err, r.written)
			}
			if fe.Disk != disk || fe.Path != path || fe.Err == nil || (tc.wantErrn != nil && !errors.Is(r.err, tc.wantErrn)) {
				t.Errorf("refusal names disk %q, path %q, error %v; want %q, %q, %v", fe.Disk, fe.Path, fe.Err, disk, path, tc.wantErrn)
			}
			if msg := r.err.Error(); !strings.Contains(msg, disk) || !strings.Contains(msg, path) || !strings.Contains(msg, fe.Err.Error()) {
				t.Errorf("refusal %q does not name the disk %s, its image %q and the flush's error", msg, disk, path)
			}
			if r.written != 0 {
				t.Errorf("the refused snapshot wrote %d bytes, want none", r.written)
			}
		})
	}
}

// imageOnFullFS returns a vblk guest's image (sector 0, the rest a hole)
// on an ext2 file system in a loop device over a file of a tmpfs that is
// full: ext2 allocates the blocks a write needs, but their writeback
// fails, and so does the fdatasync after it. It needs root, losetup and
// mkfs.ext2.
func imageOnFullFS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a full file system under a disk image needs root (tmpfs and loop mounts)")
	}
	for _, tool := range []string{"losetup", "mkfs.ext2", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found (util-linux, e2fsprogs): %v", tool, err)
		}
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	dir := t.TempDir()
	tmpfs, mnt := filepath.Join(dir, "tmpfs"), filepath.Join(dir, "mnt")
	for _, d := range []string{tmpfs, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run("mount", "-t", "tmpfs", "-o", "size=3m", "smolvmm-test", tmpfs)
	t.Cleanup(func() { exec.Command("umount", tmpfs).Run() })
	backing := filepath.Join(tmpfs, "fs.img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 32<<20); err != nil {
		t.Fatal(err)
	}
	loop := run("losetup", "--find", "--show", backing)
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	// 4 KiB blocks, each a page of the tmpfs file: a block ext2 takes
	// for the guest's write is one the tmpfs has never held. Few
	// inodes, so that their tables fit in 3 MiB.
	run("mkfs.ext2", "-q", "-b", "4096", "-N", "64", loop)
	run("mount", loop, mnt)
	// After the machine closed the image: cleanups run last first.
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	path := filepath.Join(mnt, "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	_, werr := f.WriteString(guests.VblkSector0)
	terr := f.Truncate(1 << 20)
	serr := f.Sync()
	if err := errors.Join(werr, terr, serr, f.Close()); err != nil {
		t.Fatal(err)
	}
	// Fill the tmpfs: every block the loop device has not written yet
	// is then one it cannot.
	fill, err := os.Create(filepath.Join(tmpfs, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	defer fill.Close()
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = 1
	}
	for {
		if _, err := fill.Write(chunk); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	return path
}
