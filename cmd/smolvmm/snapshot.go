package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/snapshot"
	vnet "github.com/smolvmm/smolvmm/virtio/net"

	"github.com/smolvmm/smolvmm/vmm"
)

// snapshotFlags are run's snapshot and restore flags.
func snapshotFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "snapshot", Usage: "when the guest is ready (--ready, --ready-port or the boot-timer port 0x505), write a snapshot of the VM to `FILE` and keep running"},
		&cli.BoolFlag{Name: "snapshot-exit", Usage: "stop the VM once the --snapshot file is written (exit status 0)"},
		&cli.StringFlag{Name: "restore", Usage: "continue the VM a snapshot `FILE` holds instead of booting a kernel (its memory size and disks come from the snapshot unless -m and -d are given)"},
	}
}

// checkSnapshotFlags refuses combinations that cannot work.
func checkSnapshotFlags(c *cli.Context) error {
	switch {
	case c.Bool("snapshot-exit") && c.String("snapshot") == "":
		return usageErrorf("--snapshot-exit without --snapshot FILE: give the file to write")
	case c.String("restore") != "" && c.String("kernel") != "":
		return usageErrorf("--restore %s and -k %s: a restored VM continues the snapshot's kernel; give one of them", c.String("restore"), c.String("kernel"))
	case c.String("restore") != "" && c.String("restore") == c.String("snapshot"):
		return usageErrorf("--snapshot %s is the --restore file: the restored VM maps it; write the new snapshot elsewhere", c.String("snapshot"))
	}
	return nil
}

// restoreConfig adjusts a config built from the run flags for --restore:
// memory and disks come from the snapshot unless given.
func restoreConfig(c *cli.Context, cfg *vmm.Config) {
	if c.String("restore") == "" {
		return
	}
	if !c.IsSet("memory") {
		cfg.MemoryMiB = 0
	}
	if !c.IsSet("disk") && !c.IsSet("share") {
		cfg.Disks = nil
	}
}

// newMachine boots cfg, or restores --restore's snapshot with it.
func newMachine(c *cli.Context, cfg vmm.Config) (*vmm.Machine, error) {
	if hasFlag(c, "restore") && c.String("restore") != "" {
		var opts []vmm.RestoreOption
		if mac, err := vnet.ParseMAC(c.String("mac")); err == nil && hasNIC(cfg) {
			opts = append(opts, vmm.WithMAC(mac)) // a clone: checked by parseNetFlags
		}
		m, err := vmm.Restore(cfg, c.String("restore"), opts...)
		if errors.Is(err, vmm.ErrSnapshotDevices) {
			return nil, fmt.Errorf("%w (give the network the snapshot's VM had: --net none when it had no network card)", err)
		}
		return m, err
	}
	return vmm.New(cfg)
}

// restoreNetMAC gives a restored VM's network card the snapshot's address,
// which its guest goes on using, unless --mac gives a clone another.
func restoreNetMAC(c *cli.Context, nc *netConfig) error {
	if !hasFlag(c, "restore") || c.String("restore") == "" || c.String("mac") != "" {
		return nil
	}
	mac, err := vmm.SnapshotMAC(c.String("restore"))
	if err != nil {
		return fmt.Errorf("--restore: %w", err)
	}
	if mac != nil {
		nc.MAC = mac
	}
	return nil
}

// hasNIC reports whether cfg has a network card (attachNIC's).
func hasNIC(cfg vmm.Config) bool {
	for _, d := range cfg.Devices {
		if _, ok := d.(*vnet.Device); ok {
			return true
		}
	}
	return false
}

// setupSnapshot opens --snapshot's file (before the containment, which
// allows no new files) and has the machine write it when ready. done,
// called after the VM ended, removes a file whose snapshot failed (when
// the containment lets it) and reports the snapshot's error.
func setupSnapshot(c *cli.Context, cfg *vmm.Config) (done func() error, err error) {
	done = func() error { return nil }
	path := ""
	if hasFlag(c, "snapshot") {
		path = c.String("snapshot")
	}
	if path == "" {
		return done, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return done, fmt.Errorf("--snapshot: %w", err)
	}
	var snapErr error
	snapFile = f
	cfg.SnapshotOnReady = f
	cfg.SnapshotExit = c.Bool("snapshot-exit")
	cfg.OnSnapshot = func(info vmm.SnapshotInfo, err error) {
		if err != nil {
			snapErr = err
			return
		}
		snapWritten.Store(true)
		if c.Bool("verbose") || c.Bool("timings") {
			fmt.Fprintf(os.Stderr, "\r\nsmolvmm: snapshot %s: %.1f MiB written, guest paused %.1f ms\r\n",
				path, float64(info.Bytes)/(1<<20), float64(info.Pause)/float64(time.Millisecond))
		}
	}
	return func() error {
		f.Close()
		left := ""
		written := snapWritten.Load()
		if snapErr != nil || !written {
			// Nothing half-written is left behind, unless the seccomp
			// filter (installed for the run, for the rest of the
			// process) forbids the unlink: then say so.
			if c.Bool("no-seccomp") || !hasFlag(c, "no-seccomp") {
				os.Remove(path)
			} else {
				left = "; " + path + " holds no usable snapshot and is left for you to remove (the seccomp filter forbids smolvmm to)"
			}
		}
		if snapErr != nil {
			return fmt.Errorf("--snapshot %s: %w%s", path, snapErr, left)
		}
		if !written {
			return fmt.Errorf("--snapshot %s: the guest never became ready, so no snapshot was taken (mark readiness with --ready or --ready-port, or have the guest write port 0x505)%s", path, left)
		}
		return nil
	}, nil
}

// snapFile is --snapshot's file, which Ctrl-A s writes too (the
// containment lets the running VMM open no file).
var snapFile *os.File

// snapWritten: a snapshot reached snapFile (at readiness or by Ctrl-A s).
var snapWritten atomic.Bool

// snapshotKey returns what Ctrl-A s does on m: write a snapshot to the
// --snapshot file, over what it held, off the input's goroutine.
func snapshotKey(c *cli.Context, m *vmm.Machine) func() {
	return func() {
		if snapFile == nil {
			fmt.Fprint(os.Stderr, "\r\nsmolvmm: C-a s: no snapshot file: run with --snapshot FILE\r\n")
			return
		}
		go func() {
			if _, err := snapFile.Seek(0, io.SeekStart); err != nil {
				fmt.Fprintf(os.Stderr, "\r\nsmolvmm: C-a s: %v\r\n", err)
				return
			}
			info, err := m.Snapshot(snapFile)
			if err != nil {
				fmt.Fprintf(os.Stderr, "\r\nsmolvmm: C-a s: %v\r\n", err)
				return
			}
			snapWritten.Store(true)
			fmt.Fprintf(os.Stderr, "\r\nsmolvmm: snapshot %s: %.1f MiB written, guest paused %.1f ms\r\n",
				snapFile.Name(), float64(info.Bytes)/(1<<20), float64(info.Pause)/float64(time.Millisecond))
		}()
	}
}

// benchRestoreTargets turns bench's smolvmm target (a boot) into one that
// restores --restore's snapshot, and adds the boot after it with
// --compare boot. Memory is the snapshot's unless -m is given; the boot
// gets the same.
func benchRestoreTargets(c *cli.Context, boot bench.Target) ([]bench.Target, error) {
	path := c.String("restore")
	f, err := snapshot.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--restore: %w", err)
	}
	memSize := f.Header.MemSize
	f.Close()
	if c.IsSet("memory") && uint64(c.Int("memory"))<<20 != memSize {
		return nil, usageErrorf("--restore %s holds %d MiB of memory, -m %d asks for another size", path, memSize>>20, c.Int("memory"))
	}
	var args []string
	for i := 0; i < len(boot.Args); i++ {
		switch boot.Args[i] {
		case "-m", "-a", "-k", "--boot":
			i++ // a restore continues the snapshot's kernel, in its memory
		default:
			args = append(args, boot.Args[i])
		}
	}
	restore := boot
	restore.Name = "smolvmm-restore"
	restore.Args = append(args, "--restore", path)
	restore.GuestBytes = memSize
	// smaps names the mapped snapshot by its absolute, resolved path.
	if restore.GuestFile, err = filepath.Abs(path); err == nil {
		if real, err := filepath.EvalSymlinks(restore.GuestFile); err == nil {
			restore.GuestFile = real
		}
	}
	targets := []bench.Target{restore}
	if c.String("compare") == "boot" {
		boot.GuestBytes = memSize
		for i := 0; i+1 < len(boot.Args); i++ {
			if boot.Args[i] == "-m" {
				boot.Args = append(append([]string(nil), boot.Args[:i+1]...), boot.Args[i+1:]...)
				boot.Args[i+1] = strconv.FormatUint(memSize>>20, 10)
			}
		}
		targets = append(targets, boot)
	}
	return targets, nil
}
