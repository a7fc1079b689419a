package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/virtio/blk"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/consoleline"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/snapshot"
	vnet "github.com/smolvmm/smolvmm/virtio/net"

	"github.com/smolvmm/smolvmm/vmm"
)

// snapshotFlags are run's snapshot and restore flags.
func snapshotFlags() []cli.Flag {
	return append(snapshotWriteFlags(),
		&cli.StringFlag{Name: "restore", Usage: "continue the VM a snapshot `FILE` holds instead of booting a kernel (its memory size, disks and network come from the snapshot unless -m, -d and --net are given)"},
		&cli.BoolFlag{Name: "no-verify-memory", Usage: "with --restore: do not check the snapshot's memory against the digest it recorded (by default the pages the file holds are read before the VM starts, a damaged snapshot refused; ~55-80 ms per 256 MiB of data, next to nothing for a mostly empty guest); unchecked, a damaged page reaches the guest"},
	)
}

// snapshotWriteFlags are the flags that write a snapshot of a booted VM:
// run's and up's (a service snapshotted once ready, to be restored with
// run --restore). up has no --restore: it builds and boots.
func snapshotWriteFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "snapshot", Usage: "when the guest is ready (--ready, --ready-port or the boot-timer port 0x505), write a snapshot of the VM to `FILE` and keep running"},
		&cli.BoolFlag{Name: "snapshot-exit", Usage: "stop the VM once the --snapshot file is written, at ready or by Ctrl-A s (exit status 0; 1 if the guest ends by itself before it is ready, with no snapshot)"},
	}
}

// checkSnapshotFlags refuses combinations that cannot work.
func checkSnapshotFlags(c *cli.Context) error {
	restore := c.String("restore")
	switch {
	case c.Bool("snapshot-exit") && c.String("snapshot") == "":
		return usageErrorf("--snapshot-exit without --snapshot FILE: give the file to write")
	case restore != "" && c.String("kernel") != "":
		return usageErrorf("--restore %s and -k %s: a restored VM continues the snapshot's kernel; give one of them", restore, c.String("kernel"))
	case c.Bool("no-verify-memory") && restore == "":
		return usageErrorf("--no-verify-memory without --restore FILE: it skips the check of the memory of the snapshot a VM is restored from")
	}
	for _, spec := range c.StringSlice("share") {
		// The refusals below name the directory: its spelling first.
		if _, _, err := parseShareSpec(spec); err != nil {
			return err
		}
	}
	if shares := c.StringSlice("share"); len(shares) > 0 && c.String("snapshot") != "" {
		// The share's disk is a temporary image, removed once the guest
		// runs: a snapshot would record a file no restore can open, and
		// the content the guest saw could not be built again.
		// The advice keeps ,ro: without it a read-only share would become
		// a disk the guest may write.
		disk := "IMAGE"
		if _, ro, _ := parseShareSpec(shares[0]); ro {
			disk = "IMAGE,ro"
		}
		return usageErrorf("--snapshot %s and --share %s: a share is an image built from the directory for this run and removed as the guest starts, which no restore could open; make the directory a disk image of its own (smolvmm mkimg --data %s -i IMAGE) and give it with -d %s instead", c.String("snapshot"), shares[0], shareDirOf(shares[0]), disk)
	}
	if shares := c.StringSlice("share"); len(shares) > 0 && restore != "" {
		// A snapshot never has a share (refused above), so a share's
		// image is a disk the snapshot's VM never had: refused now,
		// before it is built, not by the restore's count of disks.
		disk := "IMAGE"
		if _, ro, _ := parseShareSpec(shares[0]); ro {
			disk = "IMAGE,ro"
		}
		return usageErrorf("--restore %s and --share %s: a restored VM has the disks its snapshot recorded, and a snapshot has no share (--snapshot refuses --share); drop --share (for a directory in a restored VM, make it an image, smolvmm mkimg --data %s -i IMAGE, give it with -d %s to the run that takes the snapshot, and restore that snapshot)", restore, shares[0], shareDirOf(shares[0]), disk)
	}
	if restore != "" {
		// The snapshot continues a kernel already booted: what would
		// load or start one has nothing to act on.
		for _, f := range []struct{ name, flag string }{{"append", "-a"}, {"boot", "--boot"}, {"module", "--module"}} {
			if hasFlag(c, f.name) && c.IsSet(f.name) {
				return usageErrorf("--restore %s and %s: the snapshot continues a kernel already booted, with its command line and modules; drop %s", restore, f.flag, f.flag)
			}
		}
	}
	if err := checkSnapshotSharedUser(c); err != nil {
		return err
	}
	return checkSnapshotTarget(c)
}

// checkSnapshotSharedUser refuses --snapshot when the VM drops to the
// host's nobody, before anything is fetched, opened or created: the
// flags' own mistakes (an unknown --user, --uid without --gid, no root)
// are left to checkContainFlags, to be said first.
func checkSnapshotSharedUser(c *cli.Context) error {
	path := c.String("snapshot")
	if path == "" || checkContainFlags(c) != nil { // contain.go
		return nil
	}
	creds, err := dropTo(c) // contain.go
	if err != nil || creds == nil {
		return nil
	}
	return sharedSnapshotUserError(path, creds.UID)
}

// sharedSnapshotUserError refuses (status 2) the snapshots of a VM that
// runs as uid when that is the host's nobody (sharedUID). They would be
// its (snapshot.Target.AllowUser), and every other process running as
// nobody could read the guest's memory in them. Kept root's instead, a
// restore would trust them as root's (their disk paths included),
// though a VMM its guest took over, running as nobody, wrote them.
func sharedSnapshotUserError(path string, uid int) error {
	if !sharedUID(uid) {
		return nil
	}
	return usageErrorf("--snapshot %s: the VM would run as uid %d, the host's nobody, and its snapshots would be that user's, readable by every other process running as nobody (the guest's memory is in them); give the VM an account of its own: --user NAME of a dedicated account, or --uid N --gid N of ids no one else uses", path, uid)
}

// sharedUID reports whether uid is the host's nobody, which unrelated
// processes run as: the uid user nobody has, 65534, or the kernel's
// overflow uid (what an unmapped id shows as).
func sharedUID(uid int) bool {
	if uid == 65534 {
		return true
	}
	if cr, err := sandbox.LookupUser("nobody"); err == nil && cr.UID == uid {
		return true
	}
	b, err := os.ReadFile("/proc/sys/kernel/overflowuid")
	if err != nil {
		return false
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && v == uid
}

// shareDirOf is --share spec's directory, without ,ro and with each
// comma written once, as mkimg --data takes it.
func shareDirOf(spec string) string {
	dir, _, _ := parseShareSpec(spec)
	return dir
}

// checkSnapshotTarget refuses a --snapshot path no file can have, and a
// --snapshot file the snapshot must not replace: one of the files the VM
// reads or this program (same device and inode, whatever the spelling or
// symlinks), or one with no write permission at all (checkWriteProtected).
// Any other that is not a snapshot is refused once opened
// (checkIsSnapshot).
func checkSnapshotTarget(c *cli.Context) error {
	path := c.String("snapshot")
	if path == "" {
		return nil
	}
	if err := checkNotStdout("--snapshot", path); err != nil { // filemsgs.go
		return err
	}
	if err := checkNameLength("--snapshot", path); err != nil { // checks.go
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil // no file there: nothing to lose (opening it reports the rest)
	}
	type named struct{ flag, path string }
	var inputs []named
	if k := c.String("kernel"); k != "" {
		inputs = append(inputs, named{"-k", k})
	}
	if r := c.String("restore"); r != "" {
		inputs = append(inputs, named{"--restore", r})
	}
	for _, spec := range c.StringSlice("module") {
		p, _, _ := parseModuleSpec(spec)
		inputs = append(inputs, named{"--module", p})
	}
	for _, spec := range c.StringSlice("disk") {
		if d, err := blk.ParseDiskSpec(spec); err == nil {
			inputs = append(inputs, named{"-d", d.Path})
		}
	}
	for _, spec := range c.StringSlice("share") {
		p, _, _ := parseShareSpec(spec)
		inputs = append(inputs, named{"--share", p})
	}
	for _, in := range inputs {
		if ist, err := os.Stat(in.path); err == nil && os.SameFile(st, ist) {
			return usageErrorf("--snapshot %s is the same file as %s %s: the snapshot would replace it; write the snapshot elsewhere", path, in.flag, in.path)
		}
	}
	if r := c.String("restore"); r != "" && !c.IsSet("disk") && !c.IsSet("share") {
		// The restored VM opens the snapshot's own disks.
		disks, err := vmm.SnapshotDisks(r)
		if err != nil {
			return nil // the restore reports it
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		for _, d := range disks {
			if ok && d.Dev == uint64(sys.Dev) && d.Inode == sys.Ino {
				return usageErrorf("--snapshot %s is the same file as the disk %s of --restore %s: the snapshot would replace it; write the snapshot elsewhere", path, d.Path, r)
			}
		}
	}
	if exe, err := os.Stat("/proc/self/exe"); err == nil && os.SameFile(st, exe) {
		return usageErrorf("--snapshot %s is this smolvmm program: the snapshot would replace it; write the snapshot elsewhere", path)
	}
	// As every output: the snapshot is renamed over the file, which
	// needs only its directory writable. Checked before the boot, for
	// the snapshot at ready and each Ctrl-A s alike (one target). A
	// symlink's file is replaced in its own directory, whose
	// writability decides whether chmod u+w is advice.
	target, err := atomicfile.Target(path)
	if err != nil {
		target = path
	}
	return checkWriteProtected("--snapshot", path, target, commandSaid(c), "give --snapshot another file")
}

// checkIsSnapshot refuses t, --snapshot's target at path, unless the file
// it replaces is empty or starts with the snapshot magic: a typo's
// document, or any other file not a snapshot, would be replaced. The
// file is read through the Target, which opened it without following an
// unsafe link or opening a device.
func checkIsSnapshot(path string, t *snapshot.Target) error {
	head := make([]byte, len(snapshot.Magic))
	n, exists, err := t.ReadOld(head)
	switch {
	case err != nil:
		var te *snapshot.TargetError
		if errors.As(err, &te) {
			err = te.Err // the path is said already
		}
		return usageErrorf("--snapshot %s: cannot read it to check that it is a snapshot, which writing one would replace: %v; give --snapshot another file (or remove this one if it is not needed)", path, err)
	case !exists || n == 0 || string(head[:n]) == snapshot.Magic:
		return nil
	}
	return usageErrorf("--snapshot %s is not a snapshot (it does not start with %q, as smolvmm's snapshots do), and writing one would replace it: give --snapshot another file (or remove this one if it is not needed)", path, snapshot.Magic)
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
	if !c.IsSet("disk") {
		cfg.Disks = nil
	}
}

// restorePrep is --restore's restore, begun by prepareRestore: a process
// restores one snapshot.
var restorePrep *vmm.PreparedRestore

// prepareRestore begins --restore's restore (vmm.PrepareRestore: the
// state read and decoded, KVM asked for its CPUID) while run sets up the
// rest, and returns what releases it if the restore never takes it over.
func prepareRestore(c *cli.Context) (release func()) {
	if !hasFlag(c, "restore") || c.String("restore") == "" {
		return func() {}
	}
	p := takeEarlyPrep(c.String("kvm-device"), c.String("restore"))
	if p == nil {
		p = vmm.PrepareRestore(c.String("kvm-device"), c.String("restore"), memoryCheckOptions(c)...)
	}
	restorePrep = p
	return func() { p.Close() }
}

// earlyPrep is the restore prepareRestoreEarly began, for earlyPath on
// earlyKVM, until prepareRestore takes it.
var (
	earlyPrep           *vmm.PreparedRestore
	earlyPath, earlyKVM string
)

// prepareRestoreEarly begins the restore of `smolvmm run ... --restore
// FILE` as the process starts, from its arguments as they are: the
// flags' parsing and checks take ~0.5 ms, and the restore's memory slots
// wait for KVM's CPUID question the preparation asks. prepareRestore
// takes it over when the parsed flags name the same snapshot and KVM,
// else releases it; a VM to be jailed (--jail) is prepared in its jail.
func prepareRestoreEarly(args []string) {
	if kvm, path, noVerify := earlyRestoreArgs(args); path != "" {
		var opts []vmm.RestoreOption
		if noVerify {
			opts = append(opts, vmm.SkipMemoryCheck())
		}
		earlyPrep, earlyPath, earlyKVM = vmm.PrepareRestore(kvm, path, opts...), path, kvm
	}
}

// memoryCheckOptions are the restore options of --no-verify-memory.
func memoryCheckOptions(c *cli.Context) []vmm.RestoreOption {
	if hasFlag(c, "no-verify-memory") && c.Bool("no-verify-memory") {
		return []vmm.RestoreOption{vmm.SkipMemoryCheck()}
	}
	return nil
}

// earlyRestoreArgs reads --restore's and --kvm-device's values and
// --no-verify-memory from the arguments of `smolvmm run` as they are
// (path "": none, or --jail). A preparation that guessed
// --no-verify-memory wrong costs time, not the check: Restore decides.
func earlyRestoreArgs(args []string) (kvm, path string, noVerify bool) {
	if len(args) < 2 || args[1] != "run" {
		return "", "", false
	}
	for i := 2; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasVal && i+1 < len(args) && (name == "restore" || name == "kvm-device") {
			val = args[i+1]
			i++
		}
		switch name {
		case "restore":
			path = val
		case "kvm-device":
			kvm = val
		case "no-verify-memory":
			noVerify, _ = strconv.ParseBool(val)
			noVerify = noVerify || !hasVal
		case "jail":
			return "", "", false
		}
	}
	return kvm, path, noVerify
}

// takeEarlyPrep returns the early preparation if it is for path on kvm,
// else releases it and returns nil.
func takeEarlyPrep(kvm, path string) *vmm.PreparedRestore {
	p := earlyPrep
	earlyPrep = nil
	if p == nil {
		return nil
	}
	if path != earlyPath || kvmOrDefault(kvm) != kvmOrDefault(earlyKVM) {
		p.Close()
		return nil
	}
	return p
}

func kvmOrDefault(p string) string {
	if p == "" {
		return "/dev/kvm"
	}
	return p
}

// restoring reports whether c restores a snapshot (--restore FILE).
func restoring(c *cli.Context) bool {
	return hasFlag(c, "restore") && c.String("restore") != ""
}

// newMachine boots cfg, or restores --restore's snapshot with it.
func newMachine(c *cli.Context, cfg vmm.Config) (*vmm.Machine, error) {
	if restoring(c) {
		var opts []vmm.RestoreOption
		if restorePrep != nil {
			opts = append(opts, vmm.WithPrepared(restorePrep))
		}
		if mac, err := vnet.ParseMAC(c.String("mac")); err == nil && hasNIC(cfg) {
			opts = append(opts, vmm.WithMAC(mac)) // a clone: checked by parseNetFlags
		}
		opts = append(opts, memoryCheckOptions(c)...)
		m, err := vmm.Restore(cfg, c.String("restore"), opts...)
		var ve *vmm.Error
		if errors.Is(err, vmm.ErrSnapshotDevices) && errors.As(err, &ve) && ve.Field == "Disks" {
			if err := restoreDiskCountError(c.String("restore"), cfg.Disks, err); err != nil {
				return nil, usageStatus{err} // more or fewer -d than the snapshot's disks
			}
			// A disk's read-only setting or serial: the advice is -d's.
			if hint := restoreDiskHint(c.String("restore"), cfg.Disks); hint != "" {
				ve.Hint = hint
			}
			return nil, usageStatus{err} // a -d option the snapshot contradicts
		}
		if errors.Is(err, vmm.ErrSnapshotNotTrusted) && errors.As(err, &ve) {
			// The snapshot's paths are not offered as flags: whoever
			// wrote it chose them.
			ve.Hint = "a snapshot's own disk paths are used only when you or root own it and no one else may write it; give -d FILE for each disk, in order, the images you mean it to use"
			// A --user run's snapshots are its user's (snapshot.Target.
			// AllowUser): restoring one with the same flags meets the
			// refusal too, and the reason is said: this run's own user
			// wrote it, or its guest did. Its paths are still not
			// offered as flags (the error names them).
			var oe *vmm.SnapshotOwnerError
			if errors.As(err, &oe) {
				if who := ownerDropFlag(c, oe.UID); who != "" {
					ve.Hint = "a run with " + who + " writes its snapshots as uid " + strconv.FormatUint(uint64(oe.UID), 10) + ", who owns this one: a VMM its guest took over could have written it, so its own disk paths are not used; give -d FILE for each disk, in order, the images you mean it to use, those it names if they are"
				}
			}
			if flags := snapshotDiskPattern(c.String("restore")); flags != "" {
				ve.Hint += ": " + flags
			}
			ve.Hint += " (their content is then checked)"
			return nil, err
		}
		if errors.Is(err, vmm.ErrDiskNotRecorded) && errors.As(err, &ve) {
			// Only -d opens another file than the one the snapshot recorded.
			ve.Hint = "without -d, a snapshot's disk paths are opened only while they name the very files it recorded; to restore against the file there, or a copy of the image, give -d FILE for each of the snapshot's disks, in order"
			if flags := snapshotDiskFlags(c.String("restore"), nil, true); flags != "" {
				ve.Hint += ": " + flags + " with your files' paths"
			}
			ve.Hint += " (its content is then checked)"
			return nil, err
		}
		if errors.Is(err, vmm.ErrSnapshotDevices) {
			// The devices come from the flags: a --net the snapshot
			// contradicts, as restoreNet refuses before the restore.
			return nil, usageStatus{fmt.Errorf("%w (give the network the snapshot's VM had, --net none when it had no network card, or leave out --net to take the snapshot's)", err)}
		}
		if isAs[*snapshot.MemorySizeError](err) { // advice.go
			return nil, usageStatus{err} // -m given, and not the snapshot's size
		}
		if errors.Is(err, blk.ErrInUse) {
			return nil, restoreDiskInUse{err} // advice.go
		}
		if errors.Is(err, snapshot.ErrInUse) {
			return nil, restoreSnapshotInUse{err} // advice.go
		}
		if errors.Is(err, vmm.ErrDiskChanged) && errors.Is(err, blk.ErrNotRaw) && errors.As(err, &ve) {
			// Not the snapshot's image, and not raw either: the CLI no
			// longer refuses it before the restore (vmConfig), so the
			// conversion a boot's refusal names is named here.
			var opts blk.Options
			if n, ok := diskIndex(err); ok && n < len(cfg.Disks) {
				opts = cfg.Disks[n].Options
			}
			if conv := restoreNotRawHint(err, opts); conv != "" {
				ve.Hint = conv + ", whose content is then checked against the snapshot's; or restore against the image as it was (or a copy of it), or snapshot again"
			}
			return nil, err
		}
		if errors.Is(err, blk.ErrNotWritable) {
			disks, _ := vmm.SnapshotDisks(c.String("restore"))
			e := restoreDiskNotWritable{error: err, disks: len(disks)} // advice.go
			// The image refused, -d's or the snapshot's own, for the
			// advice to read its owner and mode.
			if n, ok := diskIndex(err); ok && n < len(cfg.Disks) {
				e.image = cfg.Disks[n].Path
			} else if ok && len(cfg.Disks) == 0 && n < len(disks) {
				e.image = disks[n].Path
			}
			if e.image != "" {
				e.st, _ = os.Stat(e.image)
			}
			return nil, e
		}
		return m, err
	}
	return vmm.New(cfg)
}

// diskIndex is the index of the disk err refuses: the machine's
// *vmm.Error names it ldN, alone or followed by " (disk image PATH)".
func diskIndex(err error) (int, bool) {
	var ve *vmm.Error
	if !errors.As(err, &ve) || ve.Field != "Disks" {
		return 0, false
	}
	num, ok := strings.CutPrefix(ve.Op, "ld")
	if !ok {
		return 0, false
	}
	num, _, _ = strings.Cut(num, " ")
	n, perr := strconv.Atoi(num)
	if perr != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// restoreNotRawHint is the conversion a boot's refusal of the image that
// err's *blk.FormatError names advises (notRawAdvice), the -d it gives
// with opts; "" when err holds none. The caller goes on ", whose content
// is then checked against the snapshot's". A compressed set or kernel is
// no disk once decompressed either, and what a boot is told to do with
// it (mkimg -x, -k) gives no image of the snapshot's disk: it is told to
// give one.
func restoreNotRawHint(err error, opts blk.Options) string {
	var fe *blk.FormatError
	if !errors.As(err, &fe) {
		return ""
	}
	if _, _, _, ok := decompressor(fe.Format); ok { // disktail.go
		switch contentOf(peekCompressed(fe.Path, fe.Format)) {
		case contentTar:
			return "decompressed, it is a tar archive, such as a NetBSD set, not a disk: give -d a raw image of the snapshot's disk"
		case contentELF:
			return "decompressed, it is an ELF file, such as a NetBSD kernel, not a disk: give -d a raw image of the snapshot's disk"
		}
	}
	advised := notRawAdvice(fe, opts).Error() // disktail.go: "FE (ADVICE)"
	conv, ok := strings.CutPrefix(advised, fe.Error()+" (")
	if !ok || !strings.HasSuffix(conv, ")") {
		return ""
	}
	return strings.TrimSuffix(conv, ")")
}

// ownerDropFlag is the --user or --uid flag of c that drops the VMM to
// uid ("--user nobody", "--uid 65534"), or "" when c drops to no user or
// to another.
func ownerDropFlag(c *cli.Context, uid uint32) string {
	creds, err := dropTo(c) // contain.go
	if err != nil || creds == nil || int64(creds.UID) != int64(uid) {
		return ""
	}
	if u := c.String("user"); hasFlag(c, "user") && u != "" {
		return "--user " + u
	}
	return "--uid " + strconv.Itoa(creds.UID)
}

// restoreDiskCountError turns a restore's refusal of the number of disks
// given (err, which shows vmm.ErrSnapshotDevices's own text) into the -d flags to
// give, as a refused disk setting gets; nil when the snapshot's disks are
// as many as given, or cannot be read (err then stands).
func restoreDiskCountError(path string, given []blk.Spec, err error) error {
	disks, derr := vmm.SnapshotDisks(path)
	if derr != nil || len(disks) == len(given) {
		return nil
	}
	had := fmt.Sprintf("%d disks", len(disks))
	switch len(disks) {
	case 0:
		return &fileError{fmt.Sprintf("--restore %s: the snapshot's VM had no disk, -d gives %d (leave out -d)", path, len(given)), err}
	case 1:
		had = "1 disk"
	}
	return &fileError{fmt.Sprintf("--restore %s: the snapshot's VM had %s, -d gives %d (%s)",
		path, had, len(given), restoreDiskHint(path, given)), err}
}

// restoreDiskHint is the advice for -d flags a restore of the snapshot at
// path refused (their number, a ,ro or serial): the -d flags to give,
// the images given and the snapshot's settings, and leaving out -d only
// when the restore would take the snapshot's own disks (snapshotTrusted).
// An untrusted snapshot's own paths are not offered: FILEn stands for
// each disk beyond those given. "" when the snapshot cannot say.
func restoreDiskHint(path string, given []blk.Spec) string {
	trusted := snapshotTrusted(path)
	flags := snapshotDiskFlags(path, given, trusted)
	if flags == "" {
		return ""
	}
	hint := "give -d as the snapshot's machine had it: " + flags
	if trusted {
		hint += ", or leave out -d to take the snapshot's disks"
	}
	return hint
}

// snapshotTrusted reports whether a restore would take the disks of the
// snapshot at path from the paths it records: vmm's rule (a
// SnapshotOwnerError otherwise), owned by this process's effective user
// or root and writable by no one else.
func snapshotTrusted(path string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && (st.Uid == 0 || int64(st.Uid) == int64(os.Geteuid())) && fi.Mode().Perm()&0o022 == 0
}

// snapshotDiskFlags returns the -d flags that give the disks of the
// snapshot at path the images given (beyond them, its own paths, or
// FILEn for disk n without own) with the snapshot's read-only settings,
// and its serials where one was given, each a shell word (a path with a
// space or a $ is one); "" when the snapshot cannot say.
func snapshotDiskFlags(path string, given []blk.Spec, own bool) string {
	disks, err := vmm.SnapshotDisks(path)
	if err != nil {
		return ""
	}
	var flags []string
	for i, d := range disks {
		spec := blk.Spec{Path: d.Path, Options: blk.Options{ReadOnly: d.ReadOnly}}
		switch {
		case i < len(given):
			spec.Path = given[i].Path
			if given[i].Serial != "" {
				spec.Serial = d.Serial
			}
		case !own:
			spec.Path = "FILE" + strconv.Itoa(i+1)
		}
		flags = append(flags, "-d "+shellWord(spec.String()))
	}
	return strings.Join(flags, " ")
}

// snapshotDiskPattern returns the -d flags the snapshot at path needs,
// FILE (FILE1, FILE2, ... for more than one) standing for each path, with
// the snapshot's read-only settings; "" when the snapshot cannot say.
func snapshotDiskPattern(path string) string {
	disks, err := vmm.SnapshotDisks(path)
	if err != nil {
		return ""
	}
	var flags []string
	for i, d := range disks {
		spec := blk.Spec{Path: "FILE", Options: blk.Options{ReadOnly: d.ReadOnly}}
		if len(disks) > 1 {
			spec.Path = fmt.Sprintf("FILE%d", i+1)
		}
		flags = append(flags, "-d "+spec.String())
	}
	return strings.Join(flags, " ")
}

// snapNIC is what --restore's snapshot says of its network card, read
// once: restoreNet and restoreNetMAC both ask (a process restores one
// snapshot).
var snapNIC struct {
	path string
	has  bool
	mac  net.HardwareAddr
	net  snapshot.Network
	err  error
}

// snapshotNIC returns vmm.SnapshotNIC's answer for path, read once.
func snapshotNIC(path string) (bool, net.HardwareAddr, error) {
	readSnapNIC(path)
	return snapNIC.has, snapNIC.mac, snapNIC.err
}

// snapshotNet returns the network path's header says its VM's card was
// on (NetUnknown: not recorded, or no card), read once.
func snapshotNet(path string) (snapshot.Network, error) {
	readSnapNIC(path)
	return snapNIC.net, snapNIC.err
}

// readSnapNIC reads path's header into snapNIC, once: the card as
// vmm.SnapshotNIC says it, the network as the header records it.
func readSnapNIC(path string) {
	if snapNIC.path == path {
		return
	}
	snapNIC.path = path
	snapNIC.has, snapNIC.mac, snapNIC.err = vmm.SnapshotNIC(path)
	snapNIC.net = snapshot.Network{}
	if snapNIC.err != nil {
		return
	}
	// The header again (vmm.SnapshotNIC's is closed): ~0.02 ms.
	f, err := snapshot.OpenHeader(path)
	if err != nil {
		snapNIC.err = err
		return
	}
	snapNIC.net = f.Header.Net
	f.Close()
}

// netFromSnapshot is the --restore file whose network restoreNet made
// --net ("" when --net is the user's or its default), for the messages
// about a network the user did not name.
var netFromSnapshot string

// restoreNet gives --restore without --net the snapshot's network: none
// when its VM had no network card, else the network the snapshot records
// (user, user:NAME, tap:NAME), or, for a snapshot that records none (one
// written before the record, or by another program), the user network
// (--net's default). A restore's devices must be the snapshot's, so the
// default user network's card would have a restore of a snapshot taken
// with --net none refused; and the guest keeps the address its network
// leased it, which only that network routes to it (a shared one rejoined
// leases the MAC the same address again: it keeps leases per MAC). A
// --net given stays as given, with a warning when it names another
// network than the snapshot's (restoreNetWarning); one with a card for
// a snapshot whose VM had none is refused here, before the network is
// attached (a tap created, a shared network joined and a lease taken for
// a VM that would never run). The restore refuses the other mismatches.
func restoreNet(c *cli.Context) error {
	netFromSnapshot = ""
	if !hasFlag(c, "restore") || c.String("restore") == "" || !hasFlag(c, "net") {
		return nil
	}
	path := c.String("restore")
	if c.IsSet("net") && c.String("net") == "none" {
		return nil
	}
	has, _, err := snapshotNIC(path)
	if err != nil {
		return nil // an unreadable snapshot: the restore reports it
	}
	if has {
		snet, _ := snapshotNet(path)
		if c.IsSet("net") {
			// Said once: a jailed VMM's process is the same command's
			// second run, which said it already.
			if _, child := os.LookupEnv(jailEnv); !child {
				if w := restoreNetWarning(snet, c.String("net")); w != "" {
					warnf(stderrOut, commandSaid(c), "--restore %s: %s", path, w)
				}
			}
			return nil
		}
		// The record is about to become --net, a tap opened (created)
		// or a network joined before the restore checks the digest
		// over the header: checked first (~0.4 ms), so that a damaged
		// name is refused as the damage it is, with nothing created. A
		// user network of the VM's own creates nothing outside it: the
		// restore's own check then suffices, and costs no more.
		if snet.Kind != snapshot.NetUnknown && snet.Kind != snapshot.NetUser {
			if err := verifySnapshotHeader(path); err != nil {
				// As the restore says it, which would have.
				return fmt.Errorf("restore: %w", err)
			}
		}
		spec, named := snapshotNetSpec(snet)
		if !named {
			return usageErrorf("--restore %s: its VM was on %s, which the snapshot cannot name: give --net user:NAME for that network (the guest keeps the address it leased), or another --net", path, describeSnapshotNet(snet))
		}
		if spec == "" || spec == "user" {
			return nil // --net's default
		}
		netFromSnapshot = path
		warnCreatedTap(c, path, spec)
		return c.Set("net", spec)
	}
	if c.IsSet("net") {
		return usageErrorf("--net %s: the VM of --restore %s had no network card, and a restore has the snapshot's devices; give --net none or leave out --net", c.String("net"), path)
	}
	if p := c.StringSlice("publish"); len(p) > 0 {
		return usageErrorf("-p %s: the VM of --restore %s had no network card, so nothing can answer a forward; drop -p", p[0], path)
	}
	// Said here, of the snapshot: --net none's own refusal of --mac
	// spoke of a --net none never given.
	if mac := c.String("mac"); hasFlag(c, "mac") && mac != "" {
		return usageErrorf("--mac %s: the VM of --restore %s had no network card, so there is none to give the address; drop --mac", mac, path)
	}
	return c.Set("net", "none")
}

// snapshotNetError notes on err, a failure to attach or join the network
// restoreNet took from the snapshot (netFromSnapshot), that the user did
// not name it, and which --net gives the VM one of its own.
func snapshotNetError(c *cli.Context, err error) error {
	if err == nil || netFromSnapshot == "" {
		return err
	}
	return fmt.Errorf("%w (--net %s is the network of --restore %s's VM, taken as --net was not given: give --net user for a user network of the VM's own, or the --net you mean)", err, c.String("net"), netFromSnapshot)
}

// warnCreatedTap warns, once, that the tap the snapshot records (spec,
// taken as --net) does not exist here and is created for the VM: a new
// tap is on no bridge, so the guest's old network is not there.
func warnCreatedTap(c *cli.Context, path, spec string) {
	kind, name, _ := strings.Cut(spec, ":")
	if kind != "tap" {
		return
	}
	if _, child := os.LookupEnv(jailEnv); child {
		return // said by the command's first run
	}
	if _, err := net.InterfaceByName(name); err == nil {
		return
	}
	warnf(stderrOut, commandSaid(c), "--restore %s: its VM was on --net %s, and there is no tap %s here: it is created for the VM (and removed when it ends), on no bridge, so the guest's network is not there unless one is set up; give --net for another network", path, spec, name)
}

// verifySnapshotHeader checks the digest over the header and the state
// of the snapshot at path, as its restore does, without its memory.
func verifySnapshotHeader(path string) error {
	f, err := snapshot.OpenHeader(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.ReadState()
}

// snapshotNetSpec is the --net value of the network n records: "" when
// none is recorded; named is false for a shared network the header holds
// only the digest of the name of (a name or socket path over
// snapshot.MaxNetName bytes).
func snapshotNetSpec(n snapshot.Network) (spec string, named bool) {
	switch n.Kind {
	case snapshot.NetUser:
		return "user", true
	case snapshot.NetShared:
		return "user:" + n.Name, n.Name != ""
	case snapshot.NetTap:
		return "tap:" + n.Name, n.Name != ""
	}
	return "", true
}

// describeSnapshotNet names the network n records, for messages.
func describeSnapshotNet(n snapshot.Network) string {
	if spec, named := snapshotNetSpec(n); named {
		return "--net " + spec
	}
	return fmt.Sprintf("a %v network whose name the snapshot records only as a digest (a name or socket path over %d bytes)", n.Kind, snapshot.MaxNetName)
}

// sameSnapshotNet reports whether the --net value spec is the network n
// records (true when n records none: nothing to compare).
func sameSnapshotNet(n snapshot.Network, spec string) bool {
	if n.Kind == snapshot.NetUnknown {
		return true
	}
	r, ok := netback.NetworkRecord(spec)
	if !ok || r.Kind != n.Kind {
		return false
	}
	return n.Kind == snapshot.NetUser || n.HasName(r.Name)
}

// restoreNetWarning says what becomes of a guest restored onto spec, a
// network other than n, the snapshot's, from which it keeps its address
// (a restore changes nothing in the guest): "" when spec is n's network,
// n records none, or spec leases the guest the address it has. A warning,
// not a refusal: the guest takes the new network's address once its DHCP
// client asks again (or its network is restarted inside it), and a user
// may mean to move it; only the delay differs.
func restoreNetWarning(n snapshot.Network, spec string) string {
	if sameSnapshotNet(n, spec) {
		return ""
	}
	from := describeSnapshotNet(n)
	addr := "the address that network gave it"
	keep := "; to keep it, restore with --net " + strings.TrimPrefix(from, "--net ")
	if _, named := snapshotNetSpec(n); !named {
		keep = "; to keep it, restore with --net user:NAME for that network"
	}
	// A user network's lease (own or shared) lasts an hour, renewed at
	// half of it; a tap's network's is its own.
	renew, expire := "next asks for its lease", "until its lease ends"
	if n.Addr.IsValid() {
		addr = n.Addr.String()
		if n.Kind != snapshot.NetTap {
			renew, expire = "next renews its lease (within 30 minutes)", "until its lease ends (within 60 minutes)"
		}
	}
	kind, name, _ := strings.Cut(spec, ":")
	switch {
	case spec == "user":
		if n.Addr == netback.UserGuest {
			return "" // the address this network leases: it routes it
		}
		return fmt.Sprintf("its VM was on %s, where its guest has %s, and keeps it: --net user leases the card's MAC %s, which -p forwards connect to, so they reach the guest only once it takes %s, when its DHCP client %s and is refused %s (or its network is restarted inside it); its own connections go out meanwhile%s",
			from, addr, netback.UserGuest, netback.UserGuest, renew, addr, keep)
	case kind == "user":
		return fmt.Sprintf("its VM was on %s, where its guest has %s, and keeps it: --net user:%s leases the card's MAC an address of its own, so unless that is %s the guest is offline, -p forwards too, %s",
			from, addr, name, addr, sharedRejoinDelay(n, renew, expire)+keep)
	default:
		return fmt.Sprintf("its VM was on %s, where its guest has %s, and keeps it: the network of --net %s did not lease it and may not route it until the guest gets another there, when its DHCP client %s (or its network is restarted inside it)%s",
			from, addr, spec, renew, keep)
	}
}

// sharedRejoinDelay says how long a guest that keeps the address n's
// network leased it stays offline on a shared network that leased its
// card another (renew, what its DHCP client does next, and expire as
// restoreNetWarning words them): the hub passes the guest's DHCP renewal
// from its old address to the gateway, which refuses it, when that
// address is of its pool and no other MAC leases it, and drops it
// otherwise, so that the guest then waits for its lease to end
// (netback's rejoin note says the same).
func sharedRejoinDelay(n snapshot.Network, renew, expire string) string {
	addr, other := "the address that network gave it", "another VM on that network holds it or it is not one that network leases"
	if n.Addr.IsValid() {
		addr, other = n.Addr.String(), "another VM on that network holds "+n.Addr.String()
	}
	return fmt.Sprintf("until its DHCP client %s and is refused %s, or, if %s, %s (or its network is restarted inside it)",
		renew, addr, other, expire)
}

// restoreJoinNote says what becomes of a guest restored onto the shared
// network its snapshot records (spec, --net's), which it keeps the
// address n records of, when the network's lease for the card is another:
// joined is the address it leased a card of --mac's or the snapshot's
// MAC ("" when several clones joined, each with a MAC of its own, as
// --parallel's say). "" when the snapshot records another network
// (restoreNetWarning spoke), no address, or the one joined. A clone's
// guest sends from the snapshot's MAC, its driver's, whose lease holds
// the address: the hub drops its frames until it takes its card's MAC,
// and then its renewal of an address another MAC leases.
func restoreJoinNote(n snapshot.Network, spec, mac string, joined netip.Addr, clones int) string {
	if n.Kind != snapshot.NetShared || !n.Addr.IsValid() || !sameSnapshotNet(n, spec) || clones == 0 && joined == n.Addr {
		return ""
	}
	had := fmt.Sprintf("its guest has %s, which --net %s leased the snapshot's MAC, and keeps it: ", n.Addr, spec)
	if mac == "" && clones == 0 {
		return had + fmt.Sprintf("the network leased the MAC %s now, so the guest is offline, -p forwards too, %s",
			joined, sharedRejoinDelay(n, "next renews its lease (within 30 minutes)", "until its lease ends (within 60 minutes)"))
	}
	who := fmt.Sprintf("--mac %s joined as %s", mac, joined)
	switch {
	case clones == 1:
		who = "its VM joins with a MAC of its own, leased another address"
	case clones > 1:
		who = fmt.Sprintf("its %d VMs join with MACs of their own, leased other addresses", clones)
	}
	return had + who + fmt.Sprintf(", so a clone is offline, -p forwards too, until its guest sends from its card's MAC (its driver keeps the snapshot's, read at attach) and, as the snapshot's MAC leases %s, its DHCP client asks again from 0.0.0.0 once its lease ends (within 60 minutes), or until its network is restarted inside it", n.Addr)
}

// noteRestoreJoin says restoreJoinNote's note on stderr for a restore
// whose card nc joined its shared network at joined, in "\r\n" lines when
// raw (the terminal is raw already).
func noteRestoreJoin(c *cli.Context, nc netConfig, joined netip.Addr, raw bool) {
	path := c.String("restore")
	n, err := snapshotNet(path)
	if err != nil {
		return
	}
	// A --mac of the snapshot's own is no clone's.
	mac := ""
	if _, smac, err := snapshotNIC(path); err == nil && nc.MAC.String() != smac.String() {
		mac = nc.MAC.String()
	}
	if note := restoreJoinNote(n, nc.Spec, mac, joined, 0); note != "" {
		eol := "\n"
		if raw {
			eol = "\r\n"
		}
		fmt.Fprint(stderrOut, noticeLine(commandSaid(c), "note", "--restore "+path+": "+note)+eol)
	}
}

// restoreNetMAC gives a restored VM's network card the snapshot's address,
// which its guest goes on using, unless --mac gives a clone another.
func restoreNetMAC(c *cli.Context, nc *netConfig) error {
	if !hasFlag(c, "restore") || c.String("restore") == "" || c.String("mac") != "" {
		return nil
	}
	_, mac, err := snapshotNIC(c.String("restore"))
	if err != nil {
		return inputFileError("--restore", c.String("restore"), c.String("restore"), err) // filemsgs.go
	}
	if mac != nil {
		nc.MAC = mac
	}
	return nil
}

// snapshotNetwork returns what the snapshots of the VM cfg describes
// record of its network (vmm.Config.SnapshotNetwork): --net's, spec,
// with the address the network leased the card's MAC where this process
// knows it (netback.SnapshotNetwork); nil without a card.
func snapshotNetwork(spec string, cfg *vmm.Config) func() snapshot.Network {
	for _, d := range cfg.Devices {
		if nic, ok := d.(*vnet.Device); ok {
			return netback.SnapshotNetwork(spec, nic.Backend())
		}
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

// snapRun is one run's --snapshot: its target, which Ctrl-A s writes too
// (nil without --snapshot), and the snapshots that failed. Per
// run, so that a second run in one process neither writes to an earlier
// run's target nor reports its failures.
type snapRun struct {
	target   *snapshot.Target
	failures snapFailures
	// exit is --snapshot-exit: a Ctrl-A s snapshot stops the VM too, as
	// the one at ready does, so that its disks stay as it saw them.
	exit bool
	// exitErr is the error of --snapshot-exit's snapshot at ready as the
	// machine got it, which Run returns: the run reports it as done's.
	exitErr error
	// keys are the Ctrl-A s snapshots under way, each on a goroutine of
	// its own (snapshotKey), and pending their number: the run waits for
	// them once the guest stopped, before it restores the terminal and
	// says whether a snapshot was written (their result lines and
	// failures come first), and Ctrl-A x before it stops the guest
	// (quitKey). Added to on the input's goroutine only, never once a
	// Ctrl-A x waits (the input then serves no Ctrl-A s) nor after Run
	// returned (nothing reads the input then).
	keys    sync.WaitGroup
	pending atomic.Int32
}

// waitKeys waits for the Ctrl-A s snapshots asked for, which end once
// the machine has stopped (vmm.Machine.Snapshot then fails).
func (r *snapRun) waitKeys() { r.keys.Wait() }

// setupSnapshot prepares --snapshot's file (before the containment, which
// allows no new files) and has the machine write it when ready. done,
// called after the VM ended, removes the temporary files and reports the
// snapshot's error. run is never nil.
func setupSnapshot(c *cli.Context, cfg *vmm.Config) (run *snapRun, done func() error, err error) {
	run = &snapRun{}
	done = func() error { return nil }
	path := ""
	if hasFlag(c, "snapshot") {
		path = c.String("snapshot")
	}
	if path == "" {
		return run, done, nil
	}
	t, err := snapshot.OpenTarget(path)
	if err != nil {
		return run, done, snapshotTargetAdvice(path, err)
	}
	if err := checkIsSnapshot(path, t); err != nil {
		t.Close()
		return run, done, err
	}
	if err := allowSnapshotUser(c, path, t); err != nil {
		t.Close()
		return run, done, err
	}
	var snapErr error
	run.target = t
	w := t.NewWriter()
	exit := c.Bool("snapshot-exit")
	run.exit = exit
	cfg.SnapshotOnReady = w
	cfg.SnapshotExit = exit
	cfg.OnSnapshot = func(info vmm.SnapshotInfo, err error) {
		// On the vCPU thread, before a --snapshot-exit stops the VM:
		// the file is in place when the process ends.
		raw := err
		if err = w.Finish(err); err != nil {
			if exit {
				// The run's purpose failed: its error, at the end.
				run.exitErr, snapErr = raw, err
				return
			}
			// The guest runs on, and a Ctrl-A s may yet write one: a
			// failed attempt, said now, as a Ctrl-A s's is.
			run.failures.add(err)
			fmt.Fprint(stderrOut, "\r\n"+noticeLine(commandSaid(c), "warning", fmt.Sprintf("snapshot at ready: %v", snapshotWriteAdvice(t, err)))+"\r\n")
			return
		}
		if c.Bool("verbose") || c.Bool("timings") {
			fmt.Fprintf(stderrOut, "\r\nsmolvmm: snapshot %s: %.1f MiB written, guest paused %.1f ms\r\n",
				path, float64(info.Bytes)/(1<<20), float64(info.Pause)/float64(time.Millisecond))
		}
	}
	return run, func() error {
		_, existed, _ := t.ReadOld(nil) // before Close, which forgets it
		written := t.Close()
		if snapErr != nil {
			return snapshotWriteAdvice(t, snapErr)
		}
		if !written {
			n, last := run.failures.get()
			return &noSnapshotError{path: path, attempts: n, last: last, absent: !existed}
		}
		return nil
	}, nil
}

// noSnapshotError is setupSnapshot's report of a run that ended with no
// snapshot written: before the guest became ready, or after every attempt
// failed, the one at ready and each Ctrl-A s (attempts of them, the last
// with last). It is a failure only with
// --snapshot-exit, whose point is the snapshot; otherwise it is a warning
// beside the guest's or the signal's status (the file is left as it was).
type noSnapshotError struct {
	path     string
	attempts int
	last     error
	// ready is --ready's pattern and unended the line the guest left
	// unended that its part waiting for a line's end would have matched
	// (vmm.Machine.ReadyUnended): the reason it was never ready.
	ready   *regexp.Regexp
	unended string
	// absent: there was no file at the path, so none is "as it was".
	absent bool
	// stopped says how the run ended before the guest was ready when it
	// ended in a crash or an error ("the guest crashed before it became
	// ready"): readiness markers are then no way out.
	stopped string
}

func (e *noSnapshotError) Error() string {
	file := "the file is as it was"
	if e.absent {
		file = "no file was written"
	}
	switch {
	case e.attempts == 1:
		return fmt.Sprintf("--snapshot %s: no snapshot was taken and %s: the snapshot attempt failed: %v", e.path, file, e.last)
	case e.attempts > 1:
		return fmt.Sprintf("--snapshot %s: no snapshot was taken and %s: the %d snapshot attempts failed, the last with: %v", e.path, file, e.attempts, e.last)
	case e.stopped != "":
		return fmt.Sprintf("--snapshot %s: %s, so no snapshot was taken and %s", e.path, e.stopped, file)
	}
	if hint := readyUnendedHint(e.ready, e.unended); hint != "" {
		return fmt.Sprintf("--snapshot %s: the guest never became ready, so no snapshot was taken and %s: %s", e.path, file, hint)
	}
	return fmt.Sprintf("--snapshot %s: the guest never became ready, so no snapshot was taken and %s (mark readiness with --ready or --ready-port, or have the guest write port 0x505)", e.path, file)
}

// readyUnendedHint says why --ready's pattern re never matched the line
// unended, the guest's last, which it would have matched but for waiting
// for the line's end ($ or \b last: consoleline.Split); "" for no such
// line. The line, the guest's, is quoted with its control bytes escaped,
// and only its end when long.
func readyUnendedHint(re *regexp.Regexp, unended string) string {
	if re == nil || unended == "" {
		return ""
	}
	const max = 60
	line := strconv.Quote(unended)
	if len(unended) > max {
		line = "..." + strconv.Quote(unended[len(unended)-max:])
	}
	end := consoleline.EndAssertion(re, unended)
	if end == "" {
		end = "$"
	}
	return fmt.Sprintf("--ready %s ends with %s, so it is matched only against complete lines; the guest's last line %s never ended (a prompt): leave out %s", shellWord(re.String()), end, line, end)
}

// snapFailures counts the snapshots that failed (at ready without
// --snapshot-exit, Ctrl-A s), for the closing
// warning of a run that wrote none: it must not blame readiness for them.
type snapFailures struct {
	mu   sync.Mutex
	n    int
	last error
}

func (f *snapFailures) add(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.last = err
}

func (f *snapFailures) get() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, f.last
}

// allowSnapshotUser readies t, --snapshot's target at path, for the user
// the VM drops to (--user, --uid), if any, and refuses a directory that
// user may not replace files in: a mistake in the flags (status 2), found
// by run as it sets up and by up before it fetches. Without one, a file
// this user may not replace (checkStickyOwner) is refused as well. The
// host's nobody is refused as checkSnapshotFlags refuses it
// (sharedSnapshotUserError), for any caller that did not ask that first.
func allowSnapshotUser(c *cli.Context, path string, t *snapshot.Target) error {
	creds, err := dropTo(c) // contain.go
	if err != nil {
		return err
	}
	if creds == nil {
		return checkStickyOwner(path, t, os.Geteuid())
	}
	if err := sharedSnapshotUserError(path, creds.UID); err != nil {
		return err
	}
	err = t.AllowUser(creds.UID, creds.GID)
	switch {
	case errors.Is(err, snapshot.ErrDirPermission):
		return usageErrorf("--snapshot %s: uid %d, which the VM runs as, may not replace files in %s (the snapshot is written beside the file and renamed over it, after privileges are dropped); give a directory it can write in", path, creds.UID, t.DirName())
	case err != nil:
		return snapshotTargetAdvice(path, err)
	}
	return nil
}

// checkStickyOwner refuses t, --snapshot's target at path, when its file
// is another user's in a sticky directory (as /tmp) of another user's:
// uid may create the temporaries beside it, but only the file's or the
// directory's owner (or root) may rename one over it, and the rename
// comes after the boot (for up, after the download and the build). It is
// the file's problem, not the flags' (status 1).
func checkStickyOwner(path string, t *snapshot.Target, uid int) error {
	if uid == 0 {
		return nil // CAP_FOWNER: root replaces any file
	}
	dir, files, ok := t.Names()
	if !ok || files.FileID == (snapshot.FileID{}) {
		return nil // no file to replace
	}
	var dst, fst unix.Stat_t
	if unix.Fstat(int(dir.Fd()), &dst) != nil || dst.Mode&unix.S_ISVTX == 0 || int(dst.Uid) == uid {
		return nil
	}
	if unix.Fstatat(int(dir.Fd()), files.File, &fst, unix.AT_SYMLINK_NOFOLLOW) != nil || int(fst.Uid) == uid {
		return nil
	}
	return &fileError{fmt.Sprintf("--snapshot %s belongs to uid %d, in %s, a sticky directory (as /tmp) of uid %d's: only the file's owner, the directory's and root may replace the file, which writing the snapshot does (by a rename, after the boot); give --snapshot a path of your own, or ask uid %d to remove this one", path, fst.Uid, t.DirName(), dst.Uid, fst.Uid), snapshot.ErrDirPermission}
}

// checkSnapshotUser is allowSnapshotUser for a preflight: the target is
// opened and closed again, leaving nothing behind.
func checkSnapshotUser(c *cli.Context, path string) error {
	t, err := snapshot.OpenTarget(path)
	if err != nil {
		return snapshotTargetAdvice(path, err)
	}
	defer t.Close()
	if err := checkIsSnapshot(path, t); err != nil {
		return err
	}
	return allowSnapshotUser(c, path, t)
}

// snapshotTargetAdvice turns snapshot.OpenTarget's refusal of --snapshot's
// path into advice.
func snapshotTargetAdvice(path string, err error) error {
	var te *snapshot.TargetError
	var pe *fs.PathError
	switch {
	case errors.Is(err, snapshot.ErrInUse) && errors.As(err, &te):
		holder := te.Holder
		if holder == "" {
			holder = "another process"
		}
		// Once, without the errno's text.
		return &fileError{fmt.Sprintf("--snapshot %s is in use: %s holds its lock, as a VM does that has it as a disk, was restored from it or writes snapshots to it, and would lose it (stop that VM, or write the snapshot elsewhere)", path, holder), err}
	case errors.Is(err, fs.ErrNotExist) && errors.As(err, &te) && te.Op == "its directory":
		dir := filepath.Dir(path)
		var pe *fs.PathError
		if errors.As(err, &pe) {
			dir = pe.Path // a symlink's target's directory
		}
		return outputDirError("--snapshot", path, dir, "write it")
	case errors.Is(err, snapshot.ErrUnsafeSymlink) && errors.As(err, &te):
		return fmt.Errorf("--snapshot %s: %w (a link there could name any file, which the snapshot would replace; give the file's own path)", path, te.Err)
	case errors.Is(err, snapshot.ErrDanglingSymlink) && errors.As(err, &te):
		return fmt.Errorf("--snapshot %s: %w (a snapshot replaces a file a link names, and creates none; give the path of the file to write)", path, te.Err)
	case errors.Is(err, snapshot.ErrNotRegular) && errors.As(err, &te):
		return fmt.Errorf("--snapshot %s: %w: give a file to write the snapshot to", path, te.Err)
	case errors.As(err, &te) && te.Op == "create temporary" && errors.As(te.Err, &pe):
		// The directory, not the temporary's own name, which is of no
		// use to the user.
		dir := filepath.Dir(pe.Path)
		return &fileError{fmt.Sprintf("--snapshot %s: cannot create a file in %s: %v (%s)", path, dir, pe.Err, writableAdvice("--snapshot", dir, err)), err}
	case errors.As(err, &te):
		return fmt.Errorf("--snapshot %s: %s: %w", path, te.Op, te.Err)
	}
	return fmt.Errorf("--snapshot: %w", err)
}

// snapshotWriteAdvice turns the error of a snapshot written to t,
// --snapshot's target, into advice; it is "--snapshot FILE: ..." and, for
// a spare a VM restored from still holds, a full file system or a disk
// whose flush failed on the host, says what to do.
func snapshotWriteAdvice(t *snapshot.Target, err error) error {
	path := t.Path()
	var te *snapshot.TargetError
	var fe *vmm.DiskFlushError
	switch {
	case errors.As(err, &fe):
		// Before ENOSPC's case: the image's file system is full, not
		// the snapshot's, and no other file would help.
		image := "the disk's image"
		if fe.Path != "" {
			image = fe.Path
		}
		return fmt.Errorf("--snapshot %s: no snapshot is taken of this run: %w. Free space on (or repair) the file system that holds %s, shut the guest down, and snapshot a new run once its guest has checked its file system (%s's flushes fail until the image is opened again)", path, err, image, fe.Disk)
	case errors.Is(err, snapshot.ErrInUse) && errors.As(err, &te):
		return fmt.Errorf("--snapshot %s: the previous snapshot, which this one would be written over, is in use (%w: a VM was restored from it); stop that VM to take another snapshot", path, te.Err)
	case errors.Is(err, snapshot.ErrTempRemoved) && errors.As(err, &te):
		// Nothing brings the temporary back, and the filtered VMM
		// creates no file: putting anything back at path cannot help.
		return fmt.Errorf("--snapshot %s: %w. The temporary file beside it was removed (a cleaner of old files may remove it), and this run creates no other: it can take no more snapshots. %s keeps the last one it took, if any; to take more, run the VM again (--restore %s resumes from that one; give --snapshot another file then)", path, te.Err, path, path)
	case errors.Is(err, snapshot.ErrTempMoved) && errors.As(err, &te):
		// The temporary, not FILE, is out of place: FILE is where the
		// last snapshot left it, and the run has no other temporary.
		return fmt.Errorf("--snapshot %s: %w. That is the temporary file beside %s that this run writes its next snapshot to (it creates no other), moved away, linked elsewhere or replaced; no snapshot is written while it is so (it would write over the file moved away or linked). To take more in this run, put that temporary back at its name, with no other link to it (move it back, remove a link made to it or a file put at its name); else this run can take no more snapshots, and %s keeps the last one it took, if any. To keep a snapshot while the VM runs, copy %s", path, te.Err, path, path, path)
	case errors.Is(err, snapshot.ErrMoved) && errors.As(err, &te):
		// Writing on would go into the file moved away or linked, or
		// replace the one put in its place.
		return fmt.Errorf("--snapshot %s: %w; no snapshot is written while it is so (it would write over the file moved away or linked, or replace the one put in its place). To take more in this run, put the snapshot last written back at %s (if none was, remove the file put there) and remove any other link to it; to keep a snapshot while the VM runs, copy it rather than move or link it", path, te.Err, path)
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		// Written beside the file it replaces: that directory's file
		// system, or its quota, is full.
		return &fileError{fmt.Sprintf("--snapshot %s: %v (free space on %s or give --snapshot another file)", path, err, t.DirName()), err}
	case errors.As(err, &te):
		return fmt.Errorf("--snapshot %s: %s: %w", path, te.Op, te.Err)
	}
	return fmt.Errorf("--snapshot %s: %w", path, err)
}

// snapshotKey returns what Ctrl-A s does on m: write a snapshot to the
// --snapshot file of run, replacing what it held, off the input's
// goroutine (the snapshot waits for the vCPU, which may wait for the
// console's reader: the keys are read on meanwhile), counted in run.keys.
// With --snapshot-exit the machine stops once it is written (Run returns
// vmm.ExitSnapshot, status 0), its devices serving nothing more, as after
// the snapshot at ready: a VM running on would change its disks under the
// snapshot. One that fails leaves the VM running, for another Ctrl-A s.
// m is a *vmm.Machine but in tests.
func snapshotKey(run *snapRun, m snapshotter) func() {
	return func() {
		t := run.target
		if t == nil {
			fmt.Fprint(stderrOut, "\r\nsmolvmm: C-a s: no snapshot file: run with --snapshot FILE\r\n")
			return
		}
		run.keys.Add(1)
		run.pending.Add(1)
		go func() {
			defer run.keys.Done()
			defer run.pending.Add(-1)
			w := t.NewWriter()
			take, stops := m.Snapshot, ""
			if run.exit {
				take, stops = m.SnapshotAndExit, "; the VM stops there (--snapshot-exit)"
			}
			info, err := take(w)
			if err = w.Finish(err); err != nil {
				run.failures.add(err)
				fmt.Fprintf(stderrOut, "\r\nsmolvmm: C-a s: %v\r\n", snapshotWriteAdvice(t, err))
				return
			}
			fmt.Fprintf(stderrOut, "\r\nsmolvmm: snapshot %s: %.1f MiB written, guest paused %.1f ms%s\r\n",
				t.Path(), float64(info.Bytes)/(1<<20), float64(info.Pause)/float64(time.Millisecond), stops)
		}()
	}
}

// snapshotter is what snapshotKey needs of the machine.
type snapshotter interface {
	Snapshot(w io.Writer) (vmm.SnapshotInfo, error)
	SnapshotAndExit(w io.Writer) (vmm.SnapshotInfo, error)
}

// quitKey returns what Ctrl-A x does (escapeReader's quit): stop the run
// (stop), at once unless a Ctrl-A s snapshot of run is under way. The keys
// are served in order, so "C-a s C-a x" in one read (a paste, a script)
// means the snapshot, then the stop (a stop first had the snapshot
// refused). The wait is on a goroutine of its own, not the
// input's, which Ctrl-A x must never block: the snapshot waits for the
// vCPU's next exit, which waits for the console's reader (a paused pager
// holds it for as long as it likes), and a blocked input could read no
// second Ctrl-A x. The waiting goroutine holds nothing the snapshot
// needs, so it cannot deadlock. Instead quit reports false and the input
// reads on: a second Ctrl-A x stops the run at once, as docs/up.md
// promises Ctrl-A x does for a guest held by its console; signals stop
// it at once too. quitKey's function is called on the input's goroutine
// only.
func quitKey(run *snapRun, stop func()) func() (now bool) {
	waiting := false
	return func() bool {
		if waiting || run.pending.Load() == 0 {
			stop()
			return true
		}
		waiting = true
		// Said, as a quit that seems ignored while a snapshot waits for
		// a console nobody reads would look like a hung run.
		fmt.Fprint(stderrOut, "\r\nsmolvmm: C-a x: stopping once the snapshot under way is written (C-a x again: stop now)\r\n")
		go func() {
			run.waitKeys()
			stop()
		}()
		return false
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
		return nil, inputFileError("--restore", path, path, err) // filemsgs.go
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
	// Snapshotted once ready, it is ready at once and need not print the
	// ready line again.
	restore.ReadyReported = true
	restore.Args = append(args, "--restore", path)
	if c.Bool("no-verify-memory") {
		restore.Args = append(restore.Args, "--no-verify-memory")
	}
	restore.GuestBytes = memSize
	// smaps names the mapped snapshot by its absolute, resolved path.
	if restore.GuestFile, err = filepath.Abs(path); err == nil {
		if real, err := filepath.EvalSymlinks(restore.GuestFile); err == nil {
			restore.GuestFile = real
		}
	}
	// Its guest may write the disk, and a restore is refused an image
	// changed since the snapshot: no restore beyond the timed ones
	// (checkRestoreRounds allows one), not even one for the memory.
	if which, _, _ := snapshotRWDisks(path); which != "" {
		restore.MemoryInTimedBoot = true
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
