package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/smolvmm/smolvmm/internal/commaopt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/internal/staledir"
	"github.com/smolvmm/smolvmm/internal/starttime"
	"github.com/smolvmm/smolvmm/internal/termsafe"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netbsdboot"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio/blk"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
	"github.com/smolvmm/smolvmm/vmm"
)

var (
	// processStart is as close to exec as Go lets us observe: the
	// anchor of --timings and of the bench's runtime phase.
	processStart = starttime.At
	// mainStart is when every package was initialised (the bench's main
	// phase): what the binary's size costs at each start.
	mainStart = time.Now()
)

func runFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.IntFlag{Name: "memory", Aliases: []string{"m"}, Value: vmm.DefaultMemoryMiB, Usage: "guest RAM in `MiB`"},
		&cli.StringFlag{Name: "append", Aliases: []string{"a"}, Value: vmm.DefaultAppend,
			Usage: "kernel command `LINE` after the kernel's name"},
		&cli.StringSliceFlag{Name: "disk", Aliases: []string{"d"},
			Usage: "virtio-blk disk `IMAGE`, optionally followed by ,ro and ,serial=ID (repeatable: ld0, ld1, ...)"},
		&cli.StringSliceFlag{Name: "share", Usage: "share a snapshot of host `DIR` (DIR,ro: read-only) as the next ld disk " +
			"(a FAT32 image built at start; mount_msdos /dev/ldNa in the guest; guest writes are discarded at exit; a comma in DIR is written ,,)"},
		&cli.StringSliceFlag{Name: "module", Usage: "boot module `FILE`, optionally followed by ,args for a multiboot kernel or by its type " +
			"for a NetBSD kernel, which takes modules only through its native handoff: ,kmod (the default for an ELF file), ,fs, ,splash or ,rndseed (repeatable; a comma in FILE is written ,,)"},
		&cli.StringFlag{Name: "boot", Value: "auto", Usage: "boot `PROTOCOL`: auto (multiboot when the kernel has a multiboot header, " +
			"except for a NetBSD kernel given --module, or ELF64 without the a.out kludge; NetBSD's native /boot handoff for those and other NetBSD ELF kernels), multiboot or netbsd"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: verboseUsage},
		&cli.BoolFlag{Name: "timings", Usage: "print the time of each boot phase on exit"},
		&cli.StringFlag{Name: "ready", Usage: readyUsage + ")"},
		&cli.IntFlag{Name: "ready-port", Usage: readyPortUsage + ")"},
		&cli.StringFlag{Name: "kvm-device", Value: "/dev/kvm", Hidden: true},
	}, containFlags()...) // contain.go
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "boot a kernel (multiboot, or NetBSD i386/amd64 through its native handoff) in a microVM",
		ArgsUsage: " ",
		Description: `Examples:
   smolvmm run -k netbsd-9.3 -d root.img
   smolvmm run -k netbsd -d root.img -a "-s console=com root=ld0a"   # single user
   smolvmm run -k kernel.elf -m 64 -a "" --module initrd.img,initrd
   smolvmm run -k netbsd-g4u.gz --module miniroot.kmod -a "console=com"  # native handoff

A kernel with a multiboot header boots by multiboot. A NetBSD ELF kernel
without one gets the handoff NetBSD's /boot performs, and so does a NetBSD
kernel with one when given --module (NetBSD's multiboot entry never reads
the module list: --boot multiboot refuses them) or when it is ELF64, as
amd64 kernels are (multiboot v1 loads ELF32 only, unless the header has the
a.out kludge's addresses); -v and --timings say why. Under the native
handoff, boot flags (-s, -a, -v...), console=, console_addr=, console_speed=
and root= from -a become its boot arguments; other words are not passed (a
note names each).
A NetBSD kernel booted by multiboot gets -a with every boot flag gathered
into one word after its name, where it looks for them; a note names each
other word it ignores, and the first word with a '/', which it takes as
its own file name. For NetBSD, either way, root= names a disk partition
(ld0a), a wedge (dk0, NAME=root) or an interface for root on NFS (vioif0),
console= is com (the serial port) or pc, console_addr= if given is 0x3f8
(the only serial port), and console_speed= is a decimal rate such as 9600
or 115200; other values are refused, as the guest would print nothing.

The console is COM1 on your terminal. On a terminal, Ctrl-A x quits,
Ctrl-A s writes a snapshot to the --snapshot file, Ctrl-A h lists these keys
and Ctrl-A Ctrl-A sends Ctrl-A. The exit status is 0 when the guest reboots
(a triple fault after the guest printed counts as a reboot, as NetBSD resets
with one) or halts, (v<<1)|1 when it writes v to the debug-exit port 0x501,
130 when stopped by Ctrl-A x or a signal (Ctrl-C off a terminal, SIGTERM,
SIGHUP), 2 when the guest crashed (a triple fault before it printed
anything included) or the command line is wrong, 1 for other errors
before the guest ran, 141 when the reader of its output went away (SIGPIPE),
148 when the seccomp filter stopped a forbidden call (159 when the kernel
killed it, or another process sent the VMM SIGSYS), and with --jail 128+n when signal n killed the jailed VMM.
A --snapshot run that wrote no snapshot keeps these statuses and warns
that none was taken and why (the guest never became ready, it crashed
or the run failed first, or every attempt failed: the one at ready, each
C-a s); with --snapshot-exit, a guest that ends by itself before it is
ready, or whose snapshot failed, gives 1 (a stop by Ctrl-A x or a signal,
130).
SIGQUIT, SIGABRT and SIGTRAP end it with Go's stack dump and status 2
(a terminal put back first); SIGUSR1, SIGUSR2 and SIGALRM are ignored.

The guest reaches the files it was given (-d, --share, the kernel and
modules), the network it was given (--net) and its console: once set up,
the VMM runs under a seccomp filter (--no-seccomp turns it off), as --user
if given, in --chroot's empty directory if given, and with --jail in new
mount, PID, IPC and UTS namespaces, plus a network namespace of its own
with --net none, user:NAME or tap:NAME (not with --net user, whose NAT uses
the host's network). On a shared network (--net user:NAME) a VMM the guest
took over could also connect to other Unix sockets: the files its user may
reach, and any abstract socket of its network namespace whatever --user and
--chroot say; only --jail keeps it from the host's.`,
		Flags: append(append(append([]cli.Flag{
			&cli.StringFlag{Name: "kernel", Aliases: []string{"k"}, Usage: "kernel `FILE`: multiboot (ELF or a.out kludge) or NetBSD ELF, gzipped or not (required unless --restore)"},
		}, withUsage(withUsage(withUsage(runFlags(), "verbose", runVerboseUsage),
			"ready", readyUsage+"; with --restore, a line printed after the restore)"),
			"ready-port", readyPortUsage+"; with --restore, after the restore)")...), netFlags()...), snapshotFlags()...), // snapshot.go
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, 0, ""); err != nil {
				return err
			}
			if err := checkSnapshotFlags(c); err != nil {
				return err
			}
			if err := restoreNet(c); err != nil { // snapshot.go: --net from --restore's snapshot
				return err
			}
			if c.String("kernel") == "" && c.String("restore") == "" {
				return usageErrorf("no kernel: give one with -k FILE, e.g. smolvmm run -k netbsd -d root.img (smolvmm demo boots the built-in guest)")
			}
			if ran, err := runJailed(c, os.Args); ran { // jail.go
				return err
			}
			defer prepareRestore(c)() // snapshot.go: begun while the rest is set up
			ctx, stop := runSignals(c.Context)
			defer stop()
			cfg, cleanup, err := vmConfig(ctx, c)
			defer cleanup()
			if err != nil {
				return interrupted(ctx, err)
			}
			cfg.Kernel = c.String("kernel")
			restoreConfig(c, &cfg) // snapshot.go
			return runVM(ctx, c, cfg, vmm.Exit.Status)
		},
	}
}

// runSignals is ctx cancelled by the signals that stop a VM: SIGINT
// (Ctrl-C off a terminal), SIGTERM and SIGHUP. Commands that boot one take
// it before their setup, so that a signal while they build a --share image
// or load the kernel ends them as one while the guest runs does: status
// 130, with what they created removed.
func runSignals(ctx context.Context) (context.Context, context.CancelFunc) {
	return signalContext(ctx) // fetch.go
}

// vmConfig turns the shared run flags into a vmm.Config. cleanup removes
// what it created (shared-directory images, each in a directory of its
// own) and unmaps the modules; call it after the VM ends, also on error
// (its BeforeRun calls it too, before the guest runs). ctx stops the building
// of --share images.
func vmConfig(ctx context.Context, c *cli.Context) (cfg vmm.Config, cleanup func(), err error) {
	var temps []string
	var releases []func()
	cleanup = func() {
		for _, release := range releases {
			release()
		}
		releases = nil
	}
	if err := checkRunFlags(c); err != nil {
		return cfg, cleanup, err
	}
	cfg = vmm.Config{
		MemoryMiB: c.Int("memory"),
		Append:    c.String("append"),
		NoAppend:  c.IsSet("append") && c.String("append") == "",
		Verbose:   c.Bool("verbose"),
		Log:       newRawLogWriter(os.Stderr), // console.go: "\r\n" once the terminal is raw
		KVMPath:   c.String("kvm-device"),
	}
	if hasFlag(c, "boot") {
		cfg.Boot, _ = bootplan.ParseProtocol(c.String("boot")) // checked by checkRunFlags
	}
	for _, spec := range c.StringSlice("disk") {
		d, _ := blk.ParseDiskSpec(spec) // checked by checkRunFlags
		// Said before the machine names it as a disk ("ld0: disk image
		// ..."); up found its -d images missing before its build, when
		// one could still be the image it builds (checkDisks cannot).
		if _, err := os.Stat(d.Path); errors.Is(err, fs.ErrNotExist) {
			// A -k kernel the VM would refuse is said first, as
			// bench says it: it was learnt of only once the missing
			// disk had been made.
			if hasFlag(c, "kernel") && c.String("kernel") != "" && !restoring(c) {
				if kerr := checkKernelFile(c.String("kernel")); kerr != nil { // checks.go
					return cfg, cleanup, kerr
				}
			}
			return cfg, cleanup, inputFileError("-d", d.Path, d.Path, err)
		}
		// A restore's disk is the snapshot's, whose guest may have
		// written a compressed stream's signature on it: the restore
		// decides by the content the snapshot recorded (newMachine
		// advises on a refused one that is not raw).
		if !restoring(c) {
			if err := checkDiskFormat(d); err != nil { // disktail.go
				return cfg, cleanup, err
			}
		}
		// Nor is a restore's warned of: it is the disk the snapshot's
		// run was given (and warned of), whose guest may have written
		// a tar archive on it, and what the warnings advise (mkimg,
		// -k, truncate to whole sectors) makes an image the restore
		// refuses.
		if c.Command.Name != "boot" && !restoring(c) { // bench's VMs (benchBootCommand): bench warned once
			warnDiskTail(os.Stderr, commandSaid(c), d) // disktail.go
		}
		cfg.Disks = append(cfg.Disks, d)
	}
	if len(c.StringSlice("share")) > 0 {
		// What a run killed while it built its images left (SIGKILL,
		// the OOM killer: no cleanup ran), as big as its shares.
		staledir.RemoveDead(shareTempPrefix, 0o077, nil)
	}
	for _, spec := range c.StringSlice("share") {
		dir, ro, _ := parseShareSpec(spec) // checked by checkRunFlags
		// A directory of its own per image: a share holding TMPDIR
		// (--share /tmp) leaves out the run's temporaries, this image
		// and the earlier shares' alike, by device and inode. Locked
		// until cleanup, so that a later run removes it only once this
		// one has died.
		tmp, release, err := staledir.Make(shareTempPrefix+"*", nil)
		if err != nil {
			return cfg, cleanup, shareImageError(spec, err)
		}
		temps = append(temps, tmp)
		releases = append(releases, release)
		img := filepath.Join(tmp, "share.img")
		if err := imagebuilder.BuildDataImageTemporary(ctx, dir, img, imagebuilder.DataFAT32, 0, temps...); err != nil {
			return cfg, cleanup, shareImageError(spec, err)
		}
		cfg.Disks = append(cfg.Disks, blk.Spec{Path: img,
			Options: blk.Options{ReadOnly: ro, Serial: shareSerial(dir)}})
	}

	// Refused by their sizes before any is mapped: the loaders' own
	// check of the layout comes once the kernel is read.
	if err := checkModulesFit(c.StringSlice("module"), int64(cfg.MemoryMiB)<<20); err != nil { // checks.go
		return cfg, cleanup, err
	}
	var read uint64 // bytes of modules read into the heap
	for _, spec := range c.StringSlice("module") {
		if err := ctx.Err(); err != nil {
			return cfg, cleanup, err
		}
		mod, err := readModule(spec, int64(cfg.MemoryMiB)<<20)
		if err != nil {
			return cfg, cleanup, err
		}
		// regfile.Map reads what it cannot map (a pseudo-file, a file
		// system without mmap) into memory of its own that Unmap gives
		// back, or, short of address space for that, into the heap.
		if !regfile.Mapped(mod.Data) {
			read += uint64(len(mod.Data))
		}
		i := len(cfg.Modules)
		cfg.Modules = append(cfg.Modules, mod)
		releases = append(releases, func() {
			regfile.Unmap(mod.Data)
			// Every copy of cfg (runVM's, for the whole run) shares
			// this array: without this, bytes read stay reachable.
			cfg.Modules[i].Data, mod.Data = nil, nil
		})
	}
	if read > freeReadModules {
		// Garbage once loaded, but a running VMM allocates too little
		// for a collection to come and give the heap back.
		releases = append(releases, debug.FreeOSMemory)
	}
	if len(releases) > 0 {
		// The machine holds the share images open from New on: remove
		// them before the guest runs, while the VMM still may
		// (contain.go, whose seccomp filter comes after). New keeps no
		// module's bytes: unmapped or dropped then, no page of them
		// stays the VMM's while the guest runs.
		cfg.BeforeRun = func() error { cleanup(); return nil }
	}
	if r := c.String("ready"); r != "" {
		cfg.Ready = regexp.MustCompile(r) // checked by checkRunFlags
	}
	if p := c.Int("ready-port"); p != 0 {
		cfg.ReadyAddr = "127.0.0.1:" + strconv.Itoa(p)
	}
	return cfg, cleanup, nil
}

// shareImageError is err of building --share spec's image, or its
// directory, in TMPDIR. A full file system is TMPDIR's, which no flag
// changes: the builder's advice, to write the image elsewhere, names no
// way to.
func shareImageError(spec string, err error) error {
	full := "is full"
	switch {
	case errors.Is(err, syscall.EDQUOT):
		full = "has no room left in your quota"
	case !errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("--share %s: %w", spec, err)
	}
	// The file that found no room, not the builder's advice around it.
	cause := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		cause = pe
	}
	return &fileError{fmt.Sprintf("--share %s: the file system of %s, where its image is built (TMPDIR), %s: %v (free some space there, or set TMPDIR to a directory on a file system with room)", spec, os.TempDir(), full, cause), err} // checks.go
}

// freeReadModules is how many bytes of modules read into the heap
// are worth a collection (a few milliseconds) to give back before the
// guest runs, as vmm's loadGarbage is for what New allocates.
const freeReadModules = 4 << 20

// checkRunFlags checks the values of the run flags (and of the network
// flags, on commands that have them) without opening or building anything,
// so that up can refuse a typo before it downloads and builds. A wrong
// value is a command-line mistake: exit status 2.
func checkRunFlags(c *cli.Context) error {
	// vmm takes 0 as its default; on the command line it is a mistake.
	switch m := c.Int("memory"); {
	case m < vmm.MinMemoryMiB:
		return usageErrorf("-m %d: too little RAM (use -m between %d and %d MiB)", m, vmm.MinMemoryMiB, vmm.MaxMemoryMiB)
	case m > vmm.MaxMemoryMiB:
		return usageErrorf("-m %d: too much RAM (use -m between %d and %d MiB; RAM stays below the PCI hole at 3 GiB)", m, vmm.MinMemoryMiB, vmm.MaxMemoryMiB)
	}
	if err := checkAppend(c); err != nil {
		return err
	}
	if err := checkDisks(c); err != nil {
		return err
	}
	for _, spec := range c.StringSlice("share") {
		if _, _, err := parseShareSpec(spec); err != nil {
			return err
		}
	}
	for _, spec := range c.StringSlice("module") {
		if _, _, err := parseModuleSpec(spec); err != nil {
			return err
		}
	}
	for _, spec := range c.StringSlice("share") {
		// A file's problem, status 1, said before the data image's
		// builder names it in its own words ("data directory: stat").
		if dir, _, err := parseShareSpec(spec); err == nil { // its mistakes refused above
			if err := checkInputDir("--share", dir, dir, shareDirWant); err != nil { // filemsgs.go
				return err
			}
		}
	}
	if hasFlag(c, "boot") {
		p, err := bootplan.ParseProtocol(c.String("boot"))
		if err != nil {
			return bootFlagError(c.String("boot"), err)
		}
		// The built-in guest is fixed: --boot netbsd is refused for it
		// whatever else is given, and was only after it was loaded.
		if p == bootplan.NetBSD && c.Command.Name == "demo" {
			return usageErrorf("--boot %s: the built-in demo guest is a multiboot kernel, which NetBSD's native handoff cannot boot (drop --boot, or give --boot multiboot)", c.String("boot"))
		}
	}
	if r := c.String("ready"); r != "" {
		if _, err := regexp.Compile(r); err != nil {
			return readyRegexpError(r, err)
		}
	}
	// An explicit 0 is no port either (it was taken as no --ready-port).
	if p := c.Int("ready-port"); p < 0 || p > 65535 || p == 0 && c.IsSet("ready-port") {
		return usageErrorf("--ready-port %d: give a TCP port between 1 and 65535", p)
	}
	if hasFlag(c, "net") {
		if _, err := parseNetFlags(c, ""); err != nil {
			return err
		}
	}
	if err := checkReadyPort(c); err != nil {
		return err
	}
	return checkContainFlags(c) // contain.go
}

// shareTempPrefix begins the name of the directory in TMPDIR that holds
// a --share image while it is built.
const shareTempPrefix = "smolvmm-share-"

// shareDirWant is what --share takes, as its refusal of a file says.
const shareDirWant = "a directory to share"

// parseShareSpec splits --share's value, DIR or DIR,ro, a comma in DIR
// written twice as -d's. A value without a directory or with another
// option is a command-line mistake (status 2).
func parseShareSpec(spec string) (dir string, ro bool, err error) {
	parts := commaopt.Split(spec)
	dir = parts[0]
	if dir == "" {
		return "", false, usageErrorf("--share %q: empty directory path (the form is DIR[,ro]; a comma in DIR is written ,,)", spec)
	}
	for _, opt := range parts[1:] {
		switch {
		case opt != "ro":
			return "", false, usageErrorf("--share %s: unknown option %q; use --share DIR or --share DIR,ro (a comma in DIR is written ,,)", spec, opt)
		case ro:
			return "", false, usageErrorf("--share %s: option ro given twice; give it once", spec)
		}
		ro = true
	}
	return dir, ro, nil
}

// parseModuleSpec splits --module's value, FILE or FILE,args (a type for
// a NetBSD kernel, which the boot protocol checks), a comma in FILE written
// twice as -d's; args are the rest as given. A value without a file is a
// command-line mistake (status 2), as -d's.
func parseModuleSpec(spec string) (path, args string, err error) {
	path, args, _ = commaopt.Cut(spec)
	if path == "" {
		return "", "", usageErrorf("--module %q: empty file path (the form is FILE[,args], or FILE,kmod|fs|splash|rndseed for a NetBSD kernel; a comma in FILE is written ,,)", spec)
	}
	return path, args, nil
}

// readyRegexpError is the refusal of --ready's value r, which
// regexp.Compile refused with err: the value once (the regexp package
// quotes it again, or its part at fault, after "error parsing regexp").
func readyRegexpError(r string, err error) error {
	var se *syntax.Error
	if errors.As(err, &se) {
		return usageErrorf("--ready %q: not a regular expression: %s (see https://pkg.go.dev/regexp/syntax)", r, se.Code)
	}
	return usageErrorf("--ready %q: %v", r, err)
}

// bootFlagError is the refusal of --boot's value s, for which
// bootplan.ParseProtocol returned err: the value said once.
func bootFlagError(s string, err error) error {
	if errors.Is(err, bootplan.ErrProtocol) {
		return usageErrorf("--boot %s: unknown boot protocol (want auto, multiboot or netbsd)", s)
	}
	return usageErrorf("--boot %s: %v", s, err)
}

// readModule maps --module's file (regfile.Map): a regular file no larger
// than the guest's RAM (limit bytes), which must hold it whole. Its Data
// is the file's mapping, or the memory it was read into: regfile.Unmap it
// once the machine is built (New keeps none of it), not before.
func readModule(spec string, limit int64) (multiboot.Module, error) {
	path, args, err := parseModuleSpec(spec)
	if err != nil {
		return multiboot.Module{}, err
	}
	data, err := regfile.Map(path, limit)
	if err != nil {
		return multiboot.Module{}, moduleFileError(spec, path, err)
	}
	return multiboot.Module{Name: filepath.Base(path), Data: data, Args: args}, nil
}

// moduleFileError is the refusal of --module spec's file path, which
// regfile refused with err, with what to change: -m for a file too large
// for the guest's RAM, the path for one missing or not a regular file (as
// -k's).
func moduleFileError(spec, path string, err error) error {
	switch {
	case errors.Is(err, regfile.ErrTooLarge):
		e := flagFileError("--module", spec, path, err)
		return &fileError{e.Error() + " (the guest's RAM must hold it whole: raise -m)", err}
	case errors.Is(err, regfile.ErrNotRegular):
		e := flagFileError("--module", spec, path, err)
		return &fileError{e.Error() + " (check the path given with --module)", err}
	}
	return inputFileError("--module", spec, path, err)
}

// runVM builds and runs a machine on the terminal and turns its end into
// the process exit status with status. ctx (from runSignals) stops the
// setup and then the guest.
func runVM(ctx context.Context, c *cli.Context, cfg vmm.Config, status func(vmm.Exit) int) (err error) {
	// A signal during the setup ends it with 130, whatever step it
	// stopped or let fail. (The guest's run has its own statuses.)
	sigCtx, running := ctx, false
	defer func() {
		if err != nil && !running {
			err = interrupted(sigCtx, err)
		}
	}()
	if err := checkTaskLimits(c); err != nil {
		return err
	}
	var events []vmm.Event
	onEvent := cfg.OnEvent // the caller's (up's), if any, gets them too
	cfg.OnEvent = func(e vmm.Event) {
		events = append(events, e)
		if onEvent != nil {
			onEvent(e)
		}
	}

	con, err := openConsole(os.Stdin, os.Stdout, hasFlag(c, "snapshot"))
	if err != nil {
		return err
	}
	defer con.restore()
	cfg.Console = stdout // stdout.go: con.out, keeping a write error
	cfg.Input = con.in

	// Last before New, which owns the NIC from then on.
	nicFailer, lateNIC, err := attachRunNIC(c, &cfg)
	if err != nil {
		return snapshotNetError(c, err) // snapshot.go
	}
	if hasFlag(c, "net") {
		// What --snapshot's and Ctrl-A s's headers record of it.
		cfg.SnapshotNetwork = snapshotNetwork(c.String("net"), &cfg) // snapshot.go
	}

	snap, snapDone, err := setupSnapshot(c, &cfg) // snapshot.go
	if err != nil {
		return err
	}
	if err := contain(c, &cfg, snap.target, con.fd, con.termios); err != nil { // contain.go
		snapDone() // removes the snapshot's temporaries
		return err
	}
	defer dropExecutablePages(&cfg, c.Bool("verbose"), nil)() // exepages.go

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Ctrl-A x, after a Ctrl-A s asked for before it (snapshot.go).
	con.onQuit = quitKey(snap, func() { cancel(nil) })
	defer watchNIC(ctx, cancel, nicFailer)() // netflags.go

	m, err := newMachine(c, cfg) // snapshot.go: New, or Restore with --restore
	if err == nil && ctx.Err() != nil {
		// Stopped while the kernel loaded: the guest never runs.
		m.Close()
		err = stoppedBeforeRun(ctx)
	}
	if err == nil && lateNIC != nil {
		// The restore succeeded: its shared network is joined now.
		joined, jerr := lateNIC.join()
		if err = snapshotNetError(c, jerr); err != nil {
			m.Close()
		} else {
			defer watchNIC(ctx, cancel, joined)()
			noteRestoreJoin(c, lateNIC.nc, lateNIC.Addr(), con.saved != nil) // snapshot.go
		}
	}
	if err = kernelLoadError(err, cfg.Boot, kernelFile(cfg)); err != nil {
		snapDone()
		return err
	}
	defer m.Close()
	if p := m.Plan(); !c.Bool("verbose") {
		// What the loader could not pass (-v logs it with the
		// layout): a word of -a the native handoff has no place for
		// or NetBSD's multiboot entry ignores, or no console the user
		// will see.
		eol := "\n"
		if con.saved != nil {
			eol = "\r\n" // the terminal is raw already
		}
		for _, w := range p.Notices {
			fmt.Fprint(stderrOut, noticeLine(commandSaid(c), "note", w)+eol) // stdout.go: its EPIPE recorded
		}
	}
	con.onSnapshot = snapshotKey(snap, m) // snapshot.go: Ctrl-A s
	running = true
	exit, err := m.Run(ctx)
	// A Ctrl-A s snapshot the stop interrupted ends now: its line is
	// said on the raw terminal, before the last lines, and its failure
	// counted before snapDone's warning chooses its reason.
	snap.waitKeys()
	var before *vmm.Error
	if errors.As(err, &before) && before.Op == vmm.OpBeforeRun {
		// The containment steps' own errors name their flag.
		err = before.Err
	}
	var nicErr *nicFailedError
	if err == nil && errors.As(context.Cause(ctx), &nicErr) {
		err = nicErr
	}
	con.restore()
	if serr := snapDone(); serr != nil {
		var none *noSnapshotError
		if errors.As(serr, &none) {
			none.ready, none.unended = cfg.Ready, m.ReadyUnended() // why it never became ready
			switch {
			case errors.Is(err, vmm.ErrGuestCrash):
				none.stopped = "the guest crashed before it became ready"
			case err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
				none.stopped = "the run failed before the guest became ready"
			}
		}
		switch {
		case errors.As(serr, &none) && (err != nil || !c.Bool("snapshot-exit") || exit.Reason == vmm.ExitStopped):
			// The guest's or the stop's status stands: only a
			// --snapshot-exit guest that ended by itself failed
			// its purpose.
			warnf(os.Stderr, commandSaid(c), "%v", serr)
		case err == nil || snap.exitErr != nil && errors.Is(err, snap.exitErr):
			// --snapshot-exit's snapshot failed: Run returns its
			// error as the machine got it, serr with the file and
			// what to do.
			err = serr
		}
	}
	if exit.Reason == vmm.ExitHalted {
		// The VM ends on the halt message's last period: end that line
		// for the shell's prompt.
		fmt.Fprint(stdout, "\r\n")
	}
	if c.Bool("timings") {
		printTimings(os.Stderr, processStart, events, m.Plan())
	}
	if c.Bool("verbose") {
		pio, mmio := m.Unhandled()
		fmt.Fprintf(os.Stderr, "smolvmm %s: %d unhandled port accesses, %d unhandled MMIO accesses\n", commandSaid(c), pio.Total, mmio.Total)
		if busiest := pio.Busiest(8); len(busiest) > 0 {
			fmt.Fprintf(os.Stderr, "smolvmm %s: busiest unhandled ports: %s\n", commandSaid(c), strings.Join(busiest, "; "))
		}
	}
	for _, d := range cfg.Devices {
		// The card's traffic under -v; its losses always, since the
		// guest was never told why frames went missing.
		if nic, ok := d.(*vnet.Device); ok {
			if st := nic.Stats(); c.Bool("verbose") || st.Lost() != 0 {
				fmt.Fprintf(os.Stderr, "smolvmm %s: network card: %s\n", commandSaid(c), st)
			}
			printBackendStats(c, nic.Backend())
		}
	}
	printShareWrites(c, m.DiskStats())
	if err != nil {
		return guestCrashExit(c, err)
	}
	if c.Bool("verbose") || exit.Reason == vmm.ExitStopped {
		fmt.Fprintf(os.Stderr, "\nsmolvmm %s: guest %s\n", commandSaid(c), exit.Reason)
	}
	if s := status(exit); s != 0 {
		return cli.Exit("", s)
	}
	return nil
}

// checkTaskLimits refuses, before its guest runs, a VM whose threads a
// task limit (RLIMIT_NPROC, a cgroup's pids.max, kernel.threads-max or
// pid_max) has no room for, with the limit and how to raise it: the Go
// runtime dies when it cannot make a thread it needs ("fatal error:
// newosproc", "pthread_create failed") or stalls, with the guest in
// KVM_RUN. A limit with room for the fewest threads the VMM was seen to
// run with, but not for those it likely makes, is only warned of on
// standard error. The tasks counted are those of the user the VMM runs
// as (--user, --uid). A lookup of --user that fails is left to contain,
// which refuses it.
func checkTaskLimits(c *cli.Context) error {
	uid := os.Getuid()
	if creds, err := dropTo(c); err == nil && creds != nil {
		uid = creds.UID
	}
	net := "none"
	if hasFlag(c, "net") {
		net = c.String("net")
	}
	least, likely := runTasks(net, hasFlag(c, "snapshot") && c.String("snapshot") != "")
	tight, err := bench.CheckOwnLimits(uid, least, likely)
	if tight != nil {
		warnf(os.Stderr, commandSaid(c), "%v: its Go runtime dies if it cannot make a thread it needs (raise the limit: %s; or end some of the processes that take it)",
			tight, limitRaise(tight.Limit))
	}
	var le *bench.LimitError
	if !errors.As(err, &le) {
		return nil
	}
	return fmt.Errorf("%w (raise the limit: %s; or end some of the processes that take it)", err, limitRaise(le.Limit))
}

// runTasks is the fewest tasks (threads) a run, demo or up VMM was seen
// to run its guest with on network net, with a --snapshot broker or not
// (least: below it every run died), and how many it likely takes
// (likely: bench's vmTasks, or the fewest that every run was seen to
// complete with, if more). Measured: smolvmm as make build builds it
// (static), without this check, running the counter guest in a cgroup
// whose pids.max was raised from 5, 20 runs a value, 2 cores; the lowest
// pids.max that some runs completed with, and the lowest that all did:
//
//	GOMAXPROCS      1        2        4         8
//	--net none      8, 10    8, 9     9, 11     9, 11
//	--net user      9, 9     8, 10    10, 12    10, 12
//
// Between the two the runtime died ("fatal error: newosproc") or hung in
// some runs, by timing (a cgo build ran with one thread fewer).
// --snapshot starts a broker, a process of its own (broker.go): with it,
// at GOMAXPROCS 2 and --net none, 10 and 26 (a run that could not start
// it failed with an error of its own; 18 of 20 completed at 24).
func runTasks(net string, snapshot bool) (least, likely uint64) {
	procs := runtime.GOMAXPROCS(0)
	least = 8
	if procs > 2 {
		least++
		if net != "none" {
			least++
		}
	}
	likely = max(vmTasks(net), 10)
	if snapshot {
		least, likely = least+2, likely+16
	}
	return least, likely
}

// limitRaise is how the user raises the host limit named as a
// bench.LimitError names it.
func limitRaise(limit string) string {
	switch limit {
	case "RLIMIT_NOFILE":
		return "ulimit -n"
	case "RLIMIT_NPROC":
		return "ulimit -u, or LimitNPROC= in a systemd unit"
	case "kernel.threads-max", "kernel.pid_max":
		return "sysctl " + limit
	}
	return "the cgroup's pids.max (systemd: TasksMax=)"
}

// printBackendStats prints, under -v and always when it dropped or
// refused anything (which the card's counters do not see, nor the guest
// learns why), the counters of the card's network backend b: the user
// network's refused connections, flows and queries, the frames it
// dropped for the guest, a shared network's frames lost while it was
// away.
func printBackendStats(c *cli.Context, b vnet.Backend) {
	if l, ok := b.(*lateBackend); ok { // latejoin.go
		b = l.Backend()
	}
	r, ok := b.(netback.StatsReporter)
	if !ok {
		return
	}
	if st := r.Stats(); c.Bool("verbose") || st.Lost() != 0 {
		fmt.Fprintf(os.Stderr, "smolvmm %s: network %s: %s\n", commandSaid(c), c.String("net"), st)
	}
}

// kernelLoadError is the CLI's error for vmm's err loading the kernel by
// proto (New's, or CheckKernel's) from the file kernel (-k's; "" for a
// restore or the built-in guest): advice for a forced protocol, for a
// snapshot given as the kernel, or for a file of another kind (a set, a
// disk image, a module, kernel compressed otherwise), naming the file,
// and status 2 for a mistake in -a or a
// module's type, which only the kernel's protocol tells
// (multiboot.ErrAppend, for a NetBSD kernel booted by multiboot, is
// netbsdboot.ErrAppend too).
func kernelLoadError(err error, proto bootplan.Protocol, kernel string) error {
	snapshotAsKernelHint(err, kernel)
	if ve := (*vmm.Error)(nil); errors.As(err, &ve) && ve.Field == "Kernel" {
		if hint := kernelContentHint(ve.Err, kernel); hint != "" && kernel != "" {
			ve.Field = "" // the hint is complete, naming the file
			ve.Hint = hint
		}
	}
	err = forcedBootHint(err, proto) // advice.go: for a kernel after all
	if errors.Is(err, netbsdboot.ErrAppend) || errors.Is(err, netbsdboot.ErrModuleType) {
		err = usageStatus{err}
	}
	return err
}

// snapshotAsKernelHint points a -k kernel that no protocol boots and that
// is a snapshot (it starts with the snapshot magic: run -k up.snap) to
// --restore: the advice to pass a multiboot or NetBSD kernel, after "the
// file starts with \"SMOL\"", missed what was meant.
func snapshotAsKernelHint(err error, kernel string) {
	var ve *vmm.Error
	if kernel == "" || !errors.As(err, &ve) || ve.Field != "Kernel" || !notAKernel(ve.Err) {
		return
	}
	f, ferr := os.Open(kernel)
	if ferr != nil {
		return
	}
	defer f.Close()
	magic := make([]byte, len(snapshot.Magic))
	if _, ferr := io.ReadFull(f, magic); ferr != nil || string(magic) != snapshot.Magic {
		return
	}
	ve.Field = "" // the hint is complete: not vmFlagHint's to change
	ve.Hint = fmt.Sprintf("-k %s is a smolvmm snapshot, not a kernel: give it as --restore %s instead of -k", kernel, kernel)
}

// kernelFile is the file cfg's kernel is read from, "" when it is none
// (a restore, the built-in guest).
func kernelFile(cfg vmm.Config) string {
	if cfg.KernelImage != nil {
		return ""
	}
	return cfg.Kernel
}

// guestCrashExit gives a guest's crash the crash status, 2, with advice
// for a triple fault before any console output (and its registers under
// -v); a restored guest's snapshot file truncated under it gets advice;
// other errors pass as they are.
func guestCrashExit(c *cli.Context, err error) error {
	var tf *vmm.TripleFaultError
	if errors.As(err, &tf) {
		verbose := hasFlag(c, "verbose") && c.Bool("verbose")
		if verbose {
			fmt.Fprintf(os.Stderr, "smolvmm: registers at the triple fault:\n%s\n", tf.Regs)
		}
		return cli.Exit(err.Error()+" ("+tripleFaultAdvice(tf, verbose || !hasFlag(c, "verbose"))+")", 2)
	}
	if errors.Is(err, vmm.ErrGuestCrash) {
		return crashStatus{err}
	}
	if errors.Is(err, vmm.ErrMemoryFileTruncated) {
		// Not the guest's fault, and not a crash: what was done to the
		// file, and what to do instead.
		return fmt.Errorf("%w (do not modify a snapshot file a VM restored from is running on: the pages the guest has not written are still read from it; taking a new snapshot over it (--snapshot) is safe: smolvmm writes a temporary file and renames it over the old)", err)
	}
	return err
}

// tripleFaultAdvice says what a triple fault before any console output
// may mean: a guest that died turning paging on most likely met a KVM
// that cannot run paged guests (nested, emulating ones, such as this
// project's CI machines'), not a broken kernel. quiet leaves out the
// pointer to -v (given, or not a flag of the command).
func tripleFaultAdvice(tf *vmm.TripleFaultError, quiet bool) string {
	var a string
	switch {
	case tf.SettingPaging && tf.LongModeEnabled():
		a = "the guest died turning paging on to enter long mode: this host's KVM may not run paged or 64-bit guests, as nested, emulating KVMs often cannot; try the kernel on another host"
	case tf.SettingPaging:
		a = "the guest died turning paging on: this host's KVM may not run paged 32-bit guests, as nested, emulating KVMs often cannot; try the kernel on another host"
	default:
		a = "the kernel died before it printed anything: check that it is built for this machine and that -a gives it console=com"
	}
	if !quiet {
		a += "; -v prints every register"
	}
	return a
}

// verboseUsage is -v's help for the commands that boot a kernel (demo,
// up); run's adds what it logs of a --restore (runVerboseUsage).
const verboseUsage = "log the boot protocol, what was loaded where and the loader's warnings, " +
	"the first access to each unhandled port, and the counts on exit"

// runVerboseUsage is run's -v help: run alone has --restore.
const runVerboseUsage = "log the boot protocol, what was loaded where and the loader's warnings (with --restore: the snapshot, its memory and the disks checked), " +
	"the first access to each unhandled port, and the counts on exit"

// readyUsage and readyPortUsage are --ready's and --ready-port's help,
// but for the closing parenthesis, which run's, naming --restore, replaces.
const (
	readyUsage     = "regular `REGEXP` on a console line that marks the service ready (one that ends with $ or \\b waits for the end of the line: leave $ out for a prompt) (for --timings"
	readyPortUsage = "host `PORT` forwarded with -p that marks the service ready once the guest accepts a TCP connection there " +
		"(its SYN-ACK; on a tap: once a connection to 127.0.0.1:PORT is answered or held for 100 ms) (for --timings"
)

// withUsage is flags with the help of the flag name replaced by usage,
// for a command where the shared text would name a flag it lacks or miss
// one it has (a copy: the flags are built afresh for each command).
func withUsage(flags []cli.Flag, name, usage string) []cli.Flag {
	for i, f := range flags {
		switch b := f.(type) {
		case *cli.BoolFlag:
			if b.Name == name {
				v := *b
				v.Usage = usage
				flags[i] = &v
			}
		case *cli.StringFlag:
			if b.Name == name {
				v := *b
				v.Usage = usage
				flags[i] = &v
			}
		case *cli.IntFlag:
			if b.Name == name {
				v := *b
				v.Usage = usage
				flags[i] = &v
			}
		case *cli.StringSliceFlag:
			if b.Name == name {
				v := *b
				v.Usage = usage
				flags[i] = &v
			}
		}
	}
	return flags
}

// printTimings prints --timings' report: the boot protocol (and why, when
// auto passed over the kernel's multiboot header) and each phase's time.
func printTimings(w *os.File, start time.Time, events []vmm.Event, plan bootplan.Plan) {
	proto := plan.Protocol.String()
	if plan.Reason != "" {
		proto += ": " + plan.Reason
	}
	fmt.Fprintf(w, "smolvmm timings (ms since the Go runtime started; boot protocol %s):\n", proto)
	fmt.Fprintf(w, "  %-16s %9.3f\n", "main", float64(mainStart.Sub(start).Microseconds())/1000)
	for _, e := range events {
		fmt.Fprintf(w, "  %-16s %9.3f\n", e.Phase, float64(e.Time.Sub(start).Microseconds())/1000)
	}
}

// hasFlag reports whether the running command defines flag name. It reads
// the names with namesOf (up.go), not through each flag's Names and its
// regular expression: a VM start asks ~15 times, over ~40 flags each.
func hasFlag(c *cli.Context, name string) bool {
	for _, f := range c.Command.Flags {
		for _, n := range namesOf(f) {
			if n == name {
				return true
			}
		}
	}
	return false
}

// readyThroughForward makes --ready-port on the user network (nc) the
// guest's own answer: the user network's forward accepts on the host
// before it asks the guest, so a host connection that holds proves
// nothing. The machine watches instead for the guest's SYN-ACK from the
// forward's guest port, and connects to the forward's host address (a
// loopback one as given, 127.0.0.1 for a wildcard) only to make the
// forward ask. On a tap the host port reaches the guest's TCP by the
// host's own routes: a connection that holds is the guest's, as before.
func readyThroughForward(cfg *vmm.Config, nc netConfig) {
	if cfg.ReadyAddr == "" || !isUserNet(nc.Spec) {
		return
	}
	ap, err := netip.ParseAddrPort(cfg.ReadyAddr)
	if err != nil {
		return
	}
	for _, f := range nc.Forwards {
		if f.Proto != "tcp" || f.HostPort != ap.Port() || !(f.HostAddr.IsLoopback() || f.HostAddr.IsUnspecified()) {
			continue
		}
		cfg.ReadyGuestPort = f.GuestPort
		if f.HostAddr.IsLoopback() {
			cfg.ReadyAddr = netip.AddrPortFrom(f.HostAddr, f.HostPort).String()
		}
		return
	}
}

// nicConfig is the network card the flags ask for: --net, -p and --mac
// (seed as parseNetFlags's), the MAC of --restore's snapshot, and the
// user --user or --uid drop the VMM to, which a shared network is told
// when the VMM joins it as root.
func nicConfig(c *cli.Context, seed string) (netConfig, error) {
	nc, err := parseNetFlags(c, seed)
	if err != nil || nc.Spec == "none" {
		return nc, err
	}
	if err := restoreNetMAC(c, &nc); err != nil { // snapshot.go
		return nc, err
	}
	creds, err := dropTo(c) // contain.go
	if err != nil {
		return nc, err
	}
	if creds != nil {
		nc.RunsAs = creds.UID
	}
	return nc, nil
}

// attachNIC adds the network card the --net, -p and --mac flags ask for, on
// commands that have them. --net none means no card at all, as QEMU's
// -nic none; its flags are still checked. The nicFailer is the card's
// backend when it can fail for good while the VM runs (watchNIC).
func attachNIC(c *cli.Context, cfg *vmm.Config) (nicFailer, error) {
	nc, ok, err := nicSetup(c, cfg)
	if !ok {
		return nil, err
	}
	nic, failer, err := openNIC(nc)
	if err != nil {
		return nil, err
	}
	// The machine owns the NIC from here, even if New fails.
	cfg.Devices = append(cfg.Devices, nic)
	return failer, nil
}

// attachRunNIC is attachNIC for run, which restores too: a restored VM's
// card on a shared network (--net user:NAME) joins it only once the
// restore has succeeded (late, whose join the caller calls then), so that
// a restore refused (a damaged snapshot, a disk in use, a -d the snapshot
// contradicts) leaves no lease and no VM in the network's log.
func attachRunNIC(c *cli.Context, cfg *vmm.Config) (failer nicFailer, late *lateBackend, err error) {
	if !hasFlag(c, "restore") || c.String("restore") == "" {
		failer, err = attachNIC(c, cfg)
		return failer, nil, err
	}
	nc, ok, err := nicSetup(c, cfg)
	if !ok {
		return nil, nil, err
	}
	if !isSharedNet(nc.Spec) {
		nic, failer, err := openNIC(nc)
		if err != nil {
			return nil, nil, err
		}
		cfg.Devices = append(cfg.Devices, nic)
		return failer, nil, nil
	}
	late = newLateBackend(nc) // latejoin.go
	nic, err := vnet.New(late, nc.MAC)
	if err != nil {
		late.Close()
		return nil, nil, err
	}
	cfg.Devices = append(cfg.Devices, nic)
	return nil, late, nil
}

// nicSetup is the network card's configuration from the flags, with its
// logging; ok is false when there is no card to attach (no --net flag,
// --net none) or on err.
func nicSetup(c *cli.Context, cfg *vmm.Config) (nc netConfig, ok bool, err error) {
	if !hasFlag(c, "net") {
		return nc, false, nil
	}
	nc, err = nicConfig(c, macSeed(c, cfg.Disks))
	if err != nil || nc.Spec == "none" {
		return nc, false, err
	}
	if c.Bool("verbose") && cfg.Log != nil {
		log := cfg.Log
		// Escaped (noticeLine): a line may carry a hub's words.
		nc.Logf = func(format string, args ...any) { fmt.Fprintln(log, noticeLine("", "", fmt.Sprintf(format, args...))) }
	} else {
		// Without -v the VM is still not offline silently.
		nc.Notef = stderrNotef() // rejoin.go
	}
	checkRejoin(c, &nc) // rejoin.go
	readyThroughForward(cfg, nc)
	return nc, true, nil
}

// macSeed is what the default MAC is derived from: the first disk's path
// (up's image, else the first -d) or, when the first disk is a --share
// image, that share's directory, since the image is a new temporary file
// each run and so would give a new MAC, and on a shared network a new
// lease, every time. vmConfig puts the shares after every other disk.
func macSeed(c *cli.Context, disks []blk.Spec) string {
	if len(disks) == 0 {
		return ""
	}
	if hasFlag(c, "share") {
		if shares := c.StringSlice("share"); len(shares) == len(disks) {
			dir, _, _ := parseShareSpec(shares[0]) // checked by checkRunFlags
			return dir
		}
	}
	return disks[0].Path
}

// printShareWrites says, for each --share disk the guest wrote to, how
// much: its writes and flushes were answered OK, and went with the
// temporary image, which nothing told the guest. stats are the machine's
// disks', the shares last (vmConfig).
func printShareWrites(c *cli.Context, stats []blk.Stats) {
	if !hasFlag(c, "share") {
		return
	}
	shares := c.StringSlice("share")
	first := len(stats) - len(shares)
	for i, spec := range shares {
		if first+i < 0 {
			continue
		}
		if n := stats[first+i].BytesWritten; n > 0 {
			dir, _, _ := parseShareSpec(spec) // checked by checkRunFlags
			// The paths escaped as an error line's are: a name is anyone's.
			fmt.Fprintf(os.Stderr, "smolvmm %s: %s\n", commandSaid(c), termsafe.Line(fmt.Sprintf("--share %s: the guest wrote %s to it, discarded with its image (a share is a copy of the directory for this run; for writes that last, make the directory an image, smolvmm mkimg --data %s -i IMAGE, and give it with -d IMAGE)",
				spec, kibString(n), dir)))
		}
	}
}

// kibString is n bytes in KiB, rounded up: a write of one sector is not
// "0 KiB".
func kibString(n uint64) string { return strconv.FormatUint((n+1023)/1024, 10) + " KiB" }

// shareSerial is the serial of --share dir's disk: "share-" and the
// directory's name, cut to the serial's 20 bytes and with bytes other than
// printable ASCII as '_' (a longer or non-ASCII name was refused, naming
// the temporary image the user never gave).
func shareSerial(dir string) string {
	b := []byte("share-" + filepath.Base(filepath.Clean(dir)))
	if len(b) > blk.SerialLen {
		b = b[:blk.SerialLen]
	}
	for i, c := range b {
		if c < 0x20 || c > 0x7E {
			b[i] = '_'
		}
	}
	return string(b)
}
