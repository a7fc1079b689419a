package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/consoleline"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// benchReportFlag is how the bench tells its child where to write phases.
const benchReportFlag = "--report"

// benchChildEnv marks, in the environment, a process the bench started
// for one boot: only there is "bench boot" a command.
const benchChildEnv = "SMOLVMM_BENCH_CHILD"

// benchSubcommands is the hidden child command in a process the bench
// started, and none elsewhere: "smolvmm bench boot" typed by hand is a
// stray argument (its missing --report was urfave's raw error, and
// --report FILE truncated FILE unchecked).
func benchSubcommands() []*cli.Command {
	if os.Getenv(benchChildEnv) != "1" {
		return nil
	}
	return []*cli.Command{benchBootCommand()}
}

// benchSetupDone, when set, runs once bench is set up (its kernel
// checked, --compare qemu's files written), before its first VM starts:
// the tests' build (benchtesthook.go) waits there for a signal.
var benchSetupDone func(ctx context.Context)

// benchSetupEnv, set to "wait" in the environment of the tests' build,
// has bench print benchSetupWaitLine on standard error once it is set up
// and wait there for a signal.
const benchSetupEnv = "SMOLVMM_TEST_BENCH_SETUP"

// benchSetupWaitLine is what the tests' build of bench prints when it waits.
const benchSetupWaitLine = "smolvmm-test: bench set up, waiting for a signal"

// benchTimeout is how long bench waits for a boot unless --timeout says.
const benchTimeout = 2 * time.Minute

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:      "bench",
		Usage:     "boot a kernel many times and report where each millisecond goes, optionally against QEMU",
		ArgsUsage: " ",
		Description: `Each boot runs in a fresh smolvmm process, so that process start is real.
Times are milliseconds since that process was started: first console byte,
ready (--ready REGEXP on a console line; --ready-port PORT with -p PORT:80:
the guest accepting a connection on port 80, as smolvmm run --ready-port
tells it (QEMU's boots: a TCP connection to 127.0.0.1:PORT that the peer
keeps open 100 ms or answers); or the guest writing the boot-timer port 0x505;
whichever comes first, as run --timings), exit, and smolvmm's own phases
(VM created, devices, kernel loaded, first KVM_RUN). A guest still running
a second after it was ready (a system at its login prompt) is stopped there
(phase "stopped": SIGTERM, then SIGKILL 5 s later); one never ready (no
ready condition, or a --ready line never printed, and no write to 0x505)
is waited for until it ends. Memory is the VMM's resident memory outside
guest RAM.

With --compare qemu the same kernel boots under qemu-system-i386 -kernel,
with -enable-kvm (when /dev/kvm can be opened) and without (TCG), with the
same devices (COM1 on stdio, debug-exit 0x501, legacy virtio-blk-pci disks
with smolvmm's serials, legacy virtio-net-pci with smolvmm's MAC on the user
network with the -p forwards). QEMU boots
multiboot kernels only (a gzipped one is decompressed for it); a kernel that
needs NetBSD's native /boot handoff is refused.

Examples:
   smolvmm bench                                   # the built-in demo guest
   smolvmm bench --compare qemu --json r.json --svg boot.svg
   smolvmm bench -k netbsd -d root.img --ready 'login:' -n 10
   smolvmm bench -k netbsd -d web.img -p 8080:80 --ready-port 8080 --compare qemu
   smolvmm bench --parallel 50 --net none --json density.json --svg density.svg

With --parallel N, N VMs start at once, each in its own process. A VM has
started at its first console byte (or at its --ready line); it is stopped
there, and once every VM has started or failed, each one's memory is read
from /proc/PID/smaps_rollup while all of them are alive: RSS, and PSS, which
counts the pages VMs share (the executable) once. The VMs are then killed.
A VM that cannot start (memory, file descriptors) says why and the others
go on; the report gives the count that started. An N the host's limits
certainly cannot hold (RLIMIT_NOFILE, RLIMIT_NPROC, kernel.threads-max,
pid_max, a cgroup's pids.max) is refused before any VM starts. Disks are
shared by every VM: give them ,ro. With --net user:NAME every VM joins
the shared network (smolvmm net), each with its own MAC, from one that
is the user's own upward (52:54:00, the uid's low 16 bits XOR 0x5b00, then
00: root's 52:54:00:5b:00:00), as the network keeps a MAC for the user
whose VM leased it, or from --mac MAC upward (VM i gets MAC + i, within
its last two bytes): give each bench of one user that runs at once on one
network its own --mac, as two from one address would be refused each
other's MACs. The network's memory is shared
out among the VMs joined to it then, as it says (others' too). --net
tap:NAME, which every VM would share, is refused with N > 1.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "kernel", Aliases: []string{"k"}, Usage: "kernel `FILE`, multiboot or NetBSD ELF (default: the built-in demo guest)"},
			&cli.StringFlag{Name: "boot", Value: "auto", Usage: "boot `PROTOCOL` for smolvmm's boots: auto, multiboot or netbsd"},
			&cli.StringSliceFlag{Name: "disk", Aliases: []string{"d"}, Usage: "virtio-blk disk `IMAGE`, optionally followed by ,ro and ,serial=ID (repeatable)"},
			&cli.StringFlag{Name: "append", Aliases: []string{"a"}, Value: vmm.DefaultAppend, Usage: "kernel command `LINE` after the kernel's name"},
			&cli.IntFlag{Name: "memory", Aliases: []string{"m"}, Value: vmm.DefaultMemoryMiB, Usage: "guest RAM in `MiB`"},
			&cli.IntFlag{Name: "boots", Aliases: []string{"n"}, Value: 20, Usage: "`N` timed boots per system"},
			&cli.IntFlag{Name: "warmup", Value: 2, Usage: "`N` untimed boots before the timed ones"},
			&cli.StringFlag{Name: "ready", Usage: "regular `REGEXP` on a console line that marks the service ready (a restore of a snapshot taken once ready is ready at its first instruction: the line is timed only if it comes again)"},
			&cli.IntFlag{Name: "ready-port", Usage: "host `PORT` forwarded with -p that marks the service ready once the guest accepts a TCP connection there (as run --ready-port)"},
			&cli.StringFlag{Name: "compare", Usage: "also boot under `SYSTEM`: qemu, or boot (with --restore: smolvmm's cold boot of -k or the demo guest)"},
			&cli.StringFlag{Name: "restore", Usage: "time restores of the snapshot `FILE` (smolvmm run --snapshot) instead of boots"},
			&cli.BoolFlag{Name: "no-verify-memory", Usage: "with --restore: do not check each restore's memory against the snapshot's digest, as run --restore --no-verify-memory (by default the check's time is in snapshot-loaded)"},
			&cli.StringFlag{Name: "json", Usage: "write the results as JSON to `FILE`"},
			&cli.StringFlag{Name: "svg", Usage: "write a chart to `FILE`"},
			&cli.DurationFlag{Name: "timeout", Value: benchTimeout, Usage: "give up on a boot after this `DURATION`"},
			&cli.BoolFlag{Name: "console", Usage: "copy the guests' console output to standard error"},
			&cli.StringFlag{Name: "kvm-device", Value: "/dev/kvm", Hidden: true},
			&cli.BoolFlag{Name: "no-seccomp", Usage: "boot smolvmm without its seccomp filter (to measure what the filter costs)"},
			&cli.BoolFlag{Name: "jail", Usage: "boot smolvmm in namespaces of its own, as run --jail does (to measure what the jail costs; memory is the jailed VMM's)"},
			&cli.IntFlag{Name: "parallel", Usage: "start `N` VMs at once and report how fast all of them start and each one's memory (RSS and PSS), instead of timed boots"},
		}, netFlags()...),
		Subcommands:     benchSubcommands(),
		HideHelpCommand: true, // the only subcommand is the hidden child
		Action:          benchAction,
	}
}

func benchAction(c *cli.Context) error {
	// Taken before the setup, as run takes it: a signal while the kernel
	// is read and decompressed or --compare qemu's files are written ends
	// the bench with status 130 and those files removed (it was killed
	// there, leaving them in TMPDIR).
	ctx, stop := runSignals(c.Context) // run.go
	defer stop()
	// The flag parser gives --compare the next word even when it is a
	// flag (--compare -n 3 makes "-n" the value and "3" an argument):
	// refused here, before the stray argument is.
	if v := c.String("compare"); strings.HasPrefix(v, "-") {
		return usageErrorf("smolvmm bench: --compare %q: --compare takes qemu or boot (with --restore), not a flag", v)
	}
	if err := checkArgs(c, 0, ""); err != nil {
		return err
	}
	// Restores and the boots beside them get the snapshot's network
	// unless --net is given: before checkParallelFlags, which refuses a
	// tap for more than one VM (the snapshot's was started once, and the
	// others failed on it, status 0).
	if err := restoreNet(c); err != nil { // snapshot.go
		return err
	}
	if err := checkParallelFlags(c); err != nil {
		return err
	}
	if c.Bool("jail") && os.Geteuid() != 0 {
		return usageErrorf("smolvmm bench: --jail needs root (it runs as uid %d): creating mount and PID namespaces takes CAP_SYS_ADMIN", os.Geteuid())
	}
	if n := c.Int("boots"); n < 1 {
		return usageErrorf("smolvmm bench: -n %d: give at least 1 boot", n)
	}
	if n := c.Int("warmup"); n < 0 {
		return usageErrorf("smolvmm bench: --warmup %d: give 0 or more warm-up boots (0: none)", n)
	}
	// One condition marks a boot ready, as the README's row has it
	// (--ready RE | --ready-port N): the results name one, and both were
	// taken without a word.
	if r, p := c.String("ready"), c.Int("ready-port"); r != "" && p != 0 {
		return usageErrorf("smolvmm bench: --ready %q and --ready-port %d: give one of them, the console line or the forwarded port that marks the guest ready", r, p)
	}
	// The flag package takes -5s and 0: the first ran every boot and
	// failed each as timed out, the second became bench's own default.
	if d := c.Duration("timeout"); d <= 0 {
		return usageErrorf("smolvmm bench: --timeout %s: give a time to wait for each boot, more than 0 (default %s)", d, benchTimeout)
	}
	// Checked here as run checks it, not by each child (--parallel 50 -m
	// 30000 would start 50 VMs that each fail).
	switch m := c.Int("memory"); {
	case m < vmm.MinMemoryMiB:
		return usageErrorf("smolvmm bench: -m %d: too little RAM (use -m between %d and %d MiB)", m, vmm.MinMemoryMiB, vmm.MaxMemoryMiB)
	case m > vmm.MaxMemoryMiB:
		return usageErrorf("smolvmm bench: -m %d: too much RAM (use -m between %d and %d MiB; RAM stays below the PCI hole at 3 GiB)", m, vmm.MinMemoryMiB, vmm.MaxMemoryMiB)
	}
	// As run checks them, before any boot starts (each boot failed on
	// them, exit status 1).
	if err := checkAppend(c); err != nil {
		return err
	}
	if err := checkDisks(c); err != nil {
		return err
	}
	switch v := c.String("compare"); {
	case v == "boot" && c.String("restore") == "":
		return usageErrorf("smolvmm bench: --compare boot compares restores with boots: give --restore FILE")
	case c.Bool("no-verify-memory") && c.String("restore") == "":
		return usageErrorf("smolvmm bench: --no-verify-memory without --restore FILE: it skips the check of the memory of the snapshot the VMs are restored from")
	case v == "qemu" && c.String("restore") != "":
		return usageErrorf("smolvmm bench: --restore with --compare qemu: compare a restore with smolvmm's own boot (--compare boot)")
	case v != "" && v != "qemu" && v != "boot":
		return usageErrorf("smolvmm bench: --compare %q: only qemu is supported (and boot, with --restore)", v)
	}
	// As run --restore refuses them: only --compare boot's boots use
	// them (they were dropped from the restores without a word).
	if r := c.String("restore"); r != "" && c.String("compare") != "boot" {
		for _, f := range []struct{ name, flag string }{{"kernel", "-k"}, {"append", "-a"}, {"boot", "--boot"}} {
			if c.IsSet(f.name) {
				return usageErrorf("smolvmm bench: --restore %s and %s: the snapshot continues a kernel already booted, with its command line; drop %s, or give --compare boot to boot with it beside the restores", r, f.flag, f.flag)
			}
		}
	}
	// Found now, not after every boot has run.
	for _, f := range []string{"json", "svg"} {
		if p := c.String(f); p != "" {
			// A file's problem, status 1, as for every other output.
			if err := checkOutputDir("--"+f, p, "write it"); err != nil {
				return err
			}
		}
	}
	inputs := []namedFile{{"-k", c.String("kernel")}, {"--restore", c.String("restore")}}
	for _, d := range c.StringSlice("disk") {
		if spec, err := blk.ParseDiskSpec(d); err == nil {
			inputs = append(inputs, namedFile{"-d", spec.Path})
		}
	}
	if err := checkOutputFiles([]namedFile{{"--json", c.String("json")}, {"--svg", c.String("svg")}}, inputs); err != nil {
		return err
	}
	for _, f := range []string{"json", "svg"} {
		if p := c.String(f); p != "" {
			if err := checkWritable("--"+f+" "+p, p); err != nil {
				return err
			}
			if t, err := atomicfile.Target(p); err == nil {
				if err := checkWriteProtected("--"+f, p, t, "bench", "give --"+f+" another file"); err != nil {
					return err
				}
			}
		}
	}
	var ready bench.Ready
	if r := c.String("ready"); r != "" {
		re, err := regexp.Compile(r)
		if err != nil {
			return readyRegexpError(r, err) // run.go
		}
		ready.Pattern = re
	}
	port := c.Int("ready-port")
	if port < 0 || port > 65535 || port == 0 && c.IsSet("ready-port") {
		return usageErrorf("smolvmm bench: --ready-port %d: give a TCP port between 1 and 65535", port)
	}
	if port > 0 {
		ready.Addr = "127.0.0.1:" + strconv.Itoa(port)
	}
	if p, err := bootplan.ParseProtocol(c.String("boot")); err != nil {
		return bootFlagError(c.String("boot"), err)
	} else if p == bootplan.NetBSD && c.String("kernel") == "" && c.String("restore") == "" {
		// As for demo: every boot failed on it, each said in the results.
		return usageErrorf("smolvmm bench: --boot %s: without -k bench boots the built-in demo guest, a multiboot kernel, which NetBSD's native handoff cannot boot (give -k a NetBSD kernel, or drop --boot)", c.String("boot"))
	}
	if err := checkReadyPort(c); err != nil { // as run does
		return err
	}
	// Said once, in run's words and with its status, not by every VM
	// (which all failed, and were counted as failed boots).
	if err := benchSetup(ctx, checkBenchKernel(c)); err != nil {
		return err
	}
	for i, spec := range c.StringSlice("disk") {
		d, err := blk.ParseDiskSpec(spec)
		if err != nil {
			return diskSpecError(err)
		}
		if err := benchSetup(ctx, checkDiskFile(d, i, c.String("restore") != "")); err != nil {
			return err
		}
		if c.String("restore") == "" { // a restore's disk: as run's (run.go)
			warnHiddenTail(os.Stderr, "bench", d.Path) // disktail.go
			warnDiskContent(os.Stderr, "bench", d)
		}
	}

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: cannot find the smolvmm executable to re-run: %w", err)
	}
	kernel, kernelName := c.String("kernel"), "demo"
	childArgs := []string{"bench", "boot", "-m", strconv.Itoa(c.Int("memory")), "-a", c.String("append"),
		"--kvm-device", c.String("kvm-device"), "--boot", c.String("boot")}
	if kernel != "" {
		kernelName = kernel
		childArgs = append(childArgs, "-k", kernel)
	}
	seed := ""
	var qemuDisks []bench.QEMUDisk
	for _, d := range c.StringSlice("disk") {
		spec, err := blk.ParseDiskSpec(d)
		if err != nil {
			return diskSpecError(err)
		}
		// The serial smolvmm's guest reads, given or derived: QEMU's
		// guest would read none.
		serial := spec.Serial
		if serial == "" {
			serial = blk.DeriveSerial(spec.Path)
		}
		qemuDisks = append(qemuDisks, bench.QEMUDisk{Path: spec.Path, ReadOnly: spec.ReadOnly, Serial: serial})
		childArgs = append(childArgs, "-d", d)
		if seed == "" {
			seed = spec.Path
		}
	}
	nc, err := parseNetFlags(c, seed)
	if err != nil {
		return err
	}
	childArgs = append(childArgs, "--net", nc.Spec)
	for _, p := range c.StringSlice("publish") {
		childArgs = append(childArgs, "-p", p)
	}
	if m := c.String("mac"); m != "" && !c.IsSet("parallel") {
		// --parallel gives each VM its own, from this one up.
		childArgs = append(childArgs, "--mac", m)
	}
	if c.Bool("no-seccomp") {
		childArgs = append(childArgs, "--no-seccomp")
	}
	if c.Bool("jail") {
		childArgs = append(childArgs, "--jail")
	}
	if port > 0 {
		// The VMM judges the port itself (the guest's SYN-ACK behind a
		// user network's forward) and reports on --ready-fd.
		childArgs = append(childArgs, "--ready-port", strconv.Itoa(port))
	}
	if r := c.String("ready"); r != "" {
		// Judged by the bench, on the console; the child follows it
		// only to know whether the bench will read its memory.
		childArgs = append(childArgs, "--ready-line", r)
	}
	memoryMiB := c.Int("memory")
	guestBytes := uint64(memoryMiB) << 20
	targets := []bench.Target{{Name: "smolvmm", Path: self, Args: childArgs, ReportFlag: benchReportFlag, SettledFlag: "--settled-fd", ReadyFlag: "--ready-fd", GuestBytes: guestBytes, Jailed: c.Bool("jail"), Tasks: vmTasks(nc.Spec),
		Env: []string{benchChildEnv + "=1"}, Success: bench.DebugExitSuccess}}
	if r := c.String("restore"); r != "" {
		targets, err = benchRestoreTargets(c, targets[0]) // snapshot.go
		if err != nil {
			err = benchRestoreError{err}
		}
		if err := benchSetup(ctx, err); err != nil {
			return err
		}
		kernelName = "snapshot " + r
		// The snapshot's RAM, not -m's default, in the results.
		memoryMiB = int(targets[0].GuestBytes >> 20)
	}
	if err := benchSetup(ctx, checkParallelDisks(c)); err != nil {
		return err
	}
	if err := checkRestoreRounds(c); err != nil {
		return err
	}
	ownSystems := len(targets)
	if n := c.Int("parallel"); n > 0 {
		var vmArgs func(int) []string
		switch {
		case c.String("mac") != "":
			vmArgs = parallelMACs(nc.MAC) // netflags.go: VM i gets --mac + i
		case isSharedNet(nc.Spec):
			vmArgs = parallelMACs(defaultParallelMAC(os.Geteuid())) // one MAC per VM on a shared network, the user's own
		}
		var netOpts bench.ParallelOptions
		if isSharedNet(nc.Spec) {
			// Its memory is reported with the VMs'. Not running: every
			// VM would fail the same way, so none is started.
			sn, err := benchSharedNetwork(nc.Spec)
			if err := benchSetup(ctx, err); err != nil {
				return err
			}
			netOpts.NetworkPID, netOpts.NetworkVMs, netOpts.NetworkSettle = sn.PID, sn.VMs, sn.Settle
			// Said once here: every VM is a clone with a MAC of its
			// own, leased another address than its guest keeps.
			if r := c.String("restore"); r != "" {
				if sn, err := snapshotNet(r); err == nil {
					if note := restoreJoinNote(sn, nc.Spec, "", netip.Addr{}, n); note != "" {
						fmt.Fprintln(stderrOut, noticeLine("bench", "note", fmt.Sprintf("--restore %s: %s", r, note))) // errorline.go
					}
				}
			}
		}
		return benchParallel(ctx, c, targets[0], n, bench.Config{Kernel: kernelName, Disks: c.StringSlice("disk"),
			Append: c.String("append"), MemoryMiB: memoryMiB, Ready: c.String("ready"), Net: nc.Spec}, ready.Pattern, vmArgs, netOpts)
	}

	if err := checkBenchKVM(c); err != nil {
		return err
	}
	warnWritableDisks(os.Stderr, c.StringSlice("disk"))
	var notes []string
	if isSharedNet(nc.Spec) {
		// Its memory is reported with the VM's, read in the memory boot,
		// as --parallel reads it. Not running, or out of sight: the
		// boots say whether they can join it.
		sn, err := benchSharedNetwork(nc.Spec)
		if err := benchSetup(ctx, nil); err != nil {
			return err
		}
		if err != nil {
			note := fmt.Sprintf("shared network memory not read: %v", err)
			fmt.Fprintf(os.Stderr, "smolvmm bench: %s\n", note)
			notes = append(notes, note)
		} else {
			for i := range targets[:ownSystems] {
				targets[i].Network = sn
			}
		}
	}
	if c.String("compare") == "qemu" {
		// QEMU needs the demo guest as a file, and a gzipped kernel
		// decompressed.
		// Locked while this bench runs, so that the next bench
		// removes it if this one is killed.
		dir, lock, err := bench.MakeTempDir()
		if err != nil {
			return fmt.Errorf("smolvmm bench: --compare qemu: %w", err)
		}
		defer lock.Close()
		defer os.RemoveAll(dir)
		qk := filepath.Join(dir, "demo.elf")
		if kernel == "" {
			err = os.WriteFile(qk, guests.Demo, 0o644)
		} else {
			qk, err = bench.QEMUKernelContext(ctx, kernel, dir)
		}
		if err != nil {
			return benchSetup(ctx, fmt.Errorf("smolvmm bench: --compare qemu: %w", err))
		}
		userNet, netNote := qemuNet(nc.Spec)
		if userNet && c.String("mac") == "" {
			// Without a disk to derive it from, smolvmm's boots would
			// each draw a random MAC: all take the one QEMU's get.
			targets[0].Args = append(targets[0].Args, "--mac", nc.MAC.String())
		}
		qt, skipped, err := bench.QEMUTargets(bench.QEMUSetup{
			Kernel: qk, Append: c.String("append"), MemoryMiB: c.Int("memory"),
			Disks: qemuDisks, UserNet: userNet, MAC: nc.MAC, Forwards: qemuForwards(nc.Forwards),
		}, nil)
		if err := benchSetup(ctx, nil); err != nil {
			return err
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "smolvmm bench: --compare qemu: %v; showing smolvmm only\n", err)
			notes = append(notes, err.Error())
		}
		if netNote != "" && len(qt) > 0 {
			fmt.Fprintf(os.Stderr, "smolvmm bench: %s\n", netNote)
			notes = append(notes, netNote)
		}
		for _, s := range skipped {
			fmt.Fprintf(os.Stderr, "smolvmm bench: left out %s\n", s)
		}
		notes = append(notes, skipped...)
		targets = append(targets, qt...)
	}

	if benchSetupDone != nil {
		benchSetupDone(ctx)
	}
	if err := benchSetup(ctx, nil); err != nil {
		return err
	}
	opts := bench.Options{
		Boots: c.Int("boots"), Warmup: c.Int("warmup"), Progress: os.Stderr,
		Boot: bench.BootOptions{Ready: ready, Timeout: c.Duration("timeout")},
		Config: bench.Config{Kernel: kernelName, Disks: c.StringSlice("disk"), Append: c.String("append"),
			MemoryMiB: memoryMiB, Ready: c.String("ready"), ReadyAddr: ready.Addr, Net: nc.Spec},
	}
	if c.Bool("console") {
		opts.Boot.Console = os.Stderr
	}
	res, err := bench.Run(ctx, targets, opts)
	if ctx.Err() != nil {
		return errBenchInterrupted
	}
	if err != nil && res == nil {
		return err
	}
	if note := restoreReadyNote(c, res, ready.Pattern); note != "" {
		fmt.Fprintf(os.Stderr, "smolvmm bench: %s\n", note)
		notes = append(notes, note)
	}
	res.Notes = append(res.Notes, notes...)
	// A write error is stdout's, which keeps it for main to report
	// (stdout.go): the files asked for are written whatever happened
	// to the table.
	_ = res.WriteText(stdout)
	if err := writeBenchFile(c.String("json"), res.WriteJSON); err != nil {
		return err
	}
	if res.HasBoots() {
		if err := writeBenchFile(c.String("svg"), res.WriteSVG); err != nil {
			return err
		}
	} else if p := c.String("svg"); p != "" {
		// A chart of nothing: the failure below says why.
		fmt.Fprintf(os.Stderr, "smolvmm bench: --svg %s not written: no system has a boot to draw\n", p)
	}
	if err != nil {
		return err
	}
	// smolvmm's own systems (a restore's and its boot's with --compare
	// boot) fail the bench; QEMU's are only compared.
	for _, s := range res.Systems[:min(ownSystems, len(res.Systems))] {
		if s.Error != "" {
			return &benchFailedError{s.Err}
		}
	}
	return nil
}

// restoreReadyNote says in how many timed rounds the restored guest
// printed no line --ready (re) matches: a snapshot taken once ready
// restores ready at its first instruction, and bench does not make its
// restores wait for the line (a guest snapshotted at it prints it no
// more), so its ready is then the restore's own. "" when every round
// printed it, or there are no restores timed against a line (with
// --ready-port, which the restores do wait for, --ready is refused).
// --parallel has no such note: its results keep no console output.
func restoreReadyNote(c *cli.Context, res *bench.Results, re *regexp.Regexp) string {
	if c.String("restore") == "" || re == nil || len(res.Systems) == 0 {
		return ""
	}
	s := res.Systems[0]
	missed := 0
	for _, b := range s.Boots {
		if !consoleLineMatches(b.Output, re) {
			missed++
		}
	}
	if missed == 0 {
		return ""
	}
	return fmt.Sprintf("%s: in %d of %d rounds the restored guest printed no line --ready %q matches: those restores were ready at their first instruction, as the snapshot was taken once its guest was ready",
		s.Name, missed, len(s.Boots), re.String())
}

// consoleLineMatches reports whether re matches a line of out as the
// bench matches its ready pattern (consoleline.Matcher): as the line
// grows, or, for what waits for a line's end ($), once it ends.
func consoleLineMatches(out []byte, re *regexp.Regexp) bool {
	m := consoleline.NewMatcher(re)
	for _, b := range out {
		if m.Add(b) {
			return true
		}
	}
	return false
}

// checkBenchKernel loads the kernel smolvmm's boots will boot (-k, or the
// demo guest) as run does before it starts, outside any VM: a file that
// is no kernel, an -a its protocol refuses, a kernel larger than -m. A
// bench that only restores a snapshot boots no kernel; with --compare
// boot the boots get the snapshot's memory size (benchRestoreTargets),
// which -m cannot change: a kernel too large for it is refused with what
// can be done instead.
func checkBenchKernel(c *cli.Context) error {
	restore := c.String("restore")
	if restore != "" && c.String("compare") != "boot" {
		return nil
	}
	proto, _ := bootplan.ParseProtocol(c.String("boot")) // checked before
	cfg := vmm.Config{MemoryMiB: c.Int("memory"), Append: c.String("append"), NoAppend: c.String("append") == "", Boot: proto}
	if restore != "" {
		f, err := snapshot.Open(restore)
		if err != nil {
			return nil // benchRestoreTargets says why, in --restore's words
		}
		cfg.MemoryMiB = int(f.Header.MemSize >> 20)
		f.Close()
	}
	if cfg.Kernel = c.String("kernel"); cfg.Kernel == "" {
		cfg.Kernel, cfg.KernelImage = "demo", guests.Demo
	}
	_, err := vmm.CheckKernel(cfg)
	var ve *vmm.Error
	var big *multiboot.MemoryError
	if restore != "" && errors.As(err, &ve) && errors.As(err, &big) && big.NeedMiB() <= vmm.MaxMemoryMiB {
		ve.Field = "" // the hint is complete: not vmFlagHint's to change
		ve.Hint = fmt.Sprintf("--compare boot boots it in the snapshot's %d MiB, whatever -m says: take the snapshot (--restore %s) again with run -m %d or more, or compare a smaller kernel",
			cfg.MemoryMiB, restore, big.NeedMiB())
	}
	return kernelLoadError(err, proto, kernelFile(cfg)) // run.go
}

// checkBenchKVM opens and closes the KVM device smolvmm's boots will use,
// once every flag and file is checked and before any boot or output: a
// user who may not open /dev/kvm got the report's header and a nested
// error per system, results written, instead of run's one line.
func checkBenchKVM(c *cli.Context) error {
	return vmm.CheckKVM(c.String("kvm-device"))
}

// benchFailedError is smolvmm's failed boots, whose error the results on
// standard output said already: the line on standard error points there,
// and keeps the error for advise ("raise --timeout").
type benchFailedError struct{ err error }

func (e *benchFailedError) Error() string {
	// An errno in the error is the bench's own, before the VM's start
	// (a pipe, the fork): a boot that ran fails with its own stderr.
	if errors.Is(e.err, syscall.EMFILE) || errors.Is(e.err, syscall.ENFILE) {
		return "the bench ran out of file descriptors before it could start smolvmm's VM; the results above say where"
	}
	return "smolvmm's boots failed; the results above say why"
}

func (e *benchFailedError) Unwrap() error { return e.err }

// hubVMsError explains an error of netback.HubVMs: a smolvmm net that
// predates the question refuses it as a malformed hello; any other
// refusal (out of descriptors, shutting down) says why itself.
func hubVMsError(err error) error {
	var re *netback.RefusedError
	if errors.As(err, &re) && re.Reason == netback.RefusedMalformed {
		return fmt.Errorf("it does not answer the question (a smolvmm net older than this smolvmm?): %w", err)
	}
	return err
}

// vmTasks is how many tasks (processes and threads) one VM of bench
// takes, as the host's task limits count them. Measured (threads of
// bench --parallel 4's VMs at their ready line, 2 cores): 7, 8, 9 to 10
// and 9 to 10 with GOMAXPROCS 1, 2, 4 and 8 or more under --net none,
// one more with a user network at GOMAXPROCS 1 and 2 (the VM's
// GOMAXPROCS is the bench's: same environment, same CPUs).
func vmTasks(netSpec string) uint64 {
	n := uint64(7 + min(runtime.GOMAXPROCS(0), 4))
	if netSpec != "none" {
		n++
	}
	return n
}

// errBenchInterrupted ends a bench stopped by a stopSignals signal, as fetch
// and run end (status 130): its VMs have been killed and waited for, and
// its results, partial, are not written.
var errBenchInterrupted = cli.Exit("interrupted: the VMs were stopped, no results written", 130)

// benchSetup is err, or, once a stopSignals signal has ended ctx (the
// bench's, from runSignals), the end of a bench stopped in its setup: no
// VM started, status 130, the signal named as run names it there. The
// caller's deferred cleanups remove what the setup made.
func benchSetup(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	msg := "interrupted"
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) {
		msg += " by " + signalName(sc.sig)
	}
	return cli.Exit(msg+" before any VM started, no results written", 130)
}

// checkParallelFlags refuses what --parallel cannot do: compare systems,
// share one host port between VMs, or count timed boots.
func checkParallelFlags(c *cli.Context) error {
	n := c.Int("parallel")
	if !c.IsSet("parallel") {
		return nil
	}
	if n < 1 {
		return usageErrorf("smolvmm bench: --parallel %d: give at least 1 VM", n)
	}
	// What every VM would share, and must not: one tap device (a tap
	// takes one VM). --mac, or the user's own on a shared network, is
	// the first VM's, the others' count up from it within its last two
	// bytes.
	if err := checkParallelMACs(n, c.String("mac"), c.String("net"), os.Geteuid()); err != nil {
		return err
	}
	if kind, name, _ := strings.Cut(c.String("net"), ":"); n > 1 && kind == "tap" {
		if netFromSnapshot != "" {
			return usageErrorf("smolvmm bench: --restore %s: its VM was on --net tap:%s, which does not go with --parallel %d: a tap device takes one VM; give --net none, user or user:NAME", netFromSnapshot, name, n)
		}
		return usageErrorf("smolvmm bench: --net tap:%s does not go with --parallel %d: a tap device takes one VM; use --net none, user or user:NAME", name, n)
	}
	for _, f := range []string{"compare", "ready-port", "publish", "boots", "warmup", "jail", "console"} {
		if c.IsSet(f) {
			why := map[string]string{
				"jail":       "its memory figures would be those of the processes that wait for the jailed VMMs",
				"compare":    "it measures smolvmm only",
				"ready-port": "the VMs cannot all answer on one host port; use --ready",
				"publish":    "the VMs cannot all forward one host port",
				"boots":      "every VM starts once",
				"warmup":     "every VM starts once",
				"console":    "the VMs' consoles are read for their ready lines, not shown",
			}[f]
			return usageErrorf("smolvmm bench: %s does not go with --parallel: %s", flagSpelling(findFlag(c, f)), why)
		}
	}
	return nil
}

// warnWritableDisks says once, on w, when any of the -d flags disks
// gives a writable image: a boot the bench stops, at a second past its
// ready event, ends without the guest's shutdown and leaves the image's
// file systems marked not clean, so each later boot checks them (the
// built-in services' basicrc runs fsck -p /) within the time measured.
func warnWritableDisks(w io.Writer, disks []string) {
	var rw, ro []string
	for _, d := range disks {
		spec, err := blk.ParseDiskSpec(d)
		if err != nil || spec.ReadOnly {
			continue
		}
		rw = append(rw, "-d "+d)
		spec.ReadOnly = true
		ro = append(ro, "-d "+shellWord(spec.String()))
	}
	if len(rw) == 0 {
		return
	}
	is := " is"
	if len(rw) > 1 {
		is = " are"
	}
	warnf(w, "bench", "%s%s writable: a boot the bench stops (its guest still running a second after it is ready) ends without the guest's shutdown, leaving the file systems it mounted read-write marked not clean, so each later boot checks them (the built-in services run fsck -p /) within the time measured; give %s for boots that compare",
		strings.Join(rw, ", "), is, strings.Join(ro, " "))
}

// checkParallelDisks refuses --parallel N > 1 with a read-write disk,
// before any VM starts: the first VM to open it takes its write lock,
// and every other one, given the same image, failed on it while the
// bench ended with status 0. A restore opens each disk as the snapshot's
// machine had it, so with --restore the snapshot's record decides (one
// whose state cannot be read is left to the restore to refuse).
func checkParallelDisks(c *cli.Context) error {
	n := c.Int("parallel")
	if n < 2 {
		return nil
	}
	if r := c.String("restore"); r != "" {
		if which, it, ro := snapshotRWDisks(r); which != "" {
			return usageErrorf("smolvmm bench: --restore %s does not go with --parallel %d: the snapshot's %s read-write, and a writable disk stays locked to the first VM (the others would fail), so each clone that writes needs its own copy of the image, which bench cannot give its VMs; give --parallel 1, or take the snapshot with %s given ,ro (run %s --snapshot FILE), which can be restored many times at once",
				r, n, which, it, ro)
		}
	}
	for _, spec := range c.StringSlice("disk") {
		d, err := blk.ParseDiskSpec(spec)
		if err != nil || d.ReadOnly {
			continue
		}
		d.ReadOnly = true
		return usageErrorf("smolvmm bench: -d %s does not go with --parallel %d: a writable disk stays locked to the first VM (the others would fail); give -d %s to share it read-only between the VMs, or --parallel 1",
			spec, n, shellWord(d.String()))
	}
	return nil
}

// checkRestoreRounds refuses, before any round, a bench (not --parallel,
// which checkParallelDisks checks) of more than one restore (-n plus
// --warmup) of a snapshot that recorded a read-write
// disk: the first restore's guest may write the image, and a restore is
// refused an image changed since the snapshot, so every later round
// failed and the snapshot was left unrestorable against it. The disks
// the restores open, -d's or the snapshot's own, have the snapshot's
// settings (the restore refuses others); one whose state cannot be read
// is left to the restore to refuse.
func checkRestoreRounds(c *cli.Context) error {
	r := c.String("restore")
	n, warmup := c.Int("boots"), c.Int("warmup")
	if r == "" || c.Int("parallel") > 0 || n+warmup < 2 {
		return nil
	}
	which, it, ro := snapshotRWDisks(r)
	if which == "" {
		return nil
	}
	return usageErrorf("smolvmm bench: --restore %s with %d rounds (-n %d, --warmup %d): the snapshot's %s read-write: the first restore's guest may write it, and a restore is refused an image that changed since the snapshot: every later round would fail, and the snapshot would restore against the image no more; take the snapshot with %s given ,ro (run %s --snapshot FILE), or give -n 1 --warmup 0 for one restore",
		r, n+warmup, n, warmup, which, it, ro)
}

// snapshotRWDisks describes the read-write disks the snapshot at path
// recorded: which ("disk PATH is", "disks P1, P2 are"), it ("the disk",
// "the disks") and ro, the -d flags that give them ,ro, each a shell
// word; which is "" when it recorded none or cannot be read. As in
// restoreDiskHint, an untrusted snapshot's own paths are not offered as
// a command (FILEn stands for its disk n): they are anyone's bytes, and
// one such as $(cmd) was advice to run cmd.
func snapshotRWDisks(path string) (which, it, ro string) {
	disks, err := vmm.SnapshotDisks(path)
	if err != nil {
		return "", "", ""
	}
	own := snapshotTrusted(path)
	var rw, flags []string
	for i, d := range disks {
		if !d.ReadOnly {
			rw = append(rw, d.Path)
			spec := blk.Spec{Path: d.Path, Options: blk.Options{ReadOnly: true}}
			if !own {
				spec.Path = "FILE" + strconv.Itoa(i+1)
			}
			flags = append(flags, "-d "+shellWord(spec.String()))
		}
	}
	switch len(rw) {
	case 0:
		return "", "", ""
	case 1:
		return "disk " + rw[0] + " is", "the disk", flags[0]
	}
	return "disks " + strings.Join(rw, ", ") + " are", "the disks", strings.Join(flags, " ")
}

// benchParallel runs smolvmm bench --parallel: n copies of t at once.
func benchParallel(ctx context.Context, c *cli.Context, t bench.Target, n int, cfg bench.Config, ready *regexp.Regexp, vmArgs func(int) []string, netOpts bench.ParallelOptions) error {
	if ready == nil && !t.ReadyReported {
		// As RunParallel: unused. A restore keeps its ready report: it
		// starts there when its guest prints nothing (at its prompt).
		t.ReadyFlag = ""
	}
	if err := bench.CheckHostLimits(t, n); err != nil {
		return parallelLimitError(n, err)
	}
	// After the limits, a command-line mistake (status 2).
	if err := checkBenchKVM(c); err != nil {
		return err
	}
	if benchSetupDone != nil {
		benchSetupDone(ctx)
	}
	if err := benchSetup(ctx, nil); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "smolvmm bench: starting %d VMs at once\n", n)
	res, err := bench.RunParallel(ctx, t, bench.ParallelOptions{N: n, Ready: ready, Timeout: c.Duration("timeout"), Config: cfg, VMArgs: vmArgs,
		NetworkPID: netOpts.NetworkPID, NetworkVMs: netOpts.NetworkVMs, NetworkSettle: netOpts.NetworkSettle})
	if ctx.Err() != nil {
		return errBenchInterrupted
	}
	if err != nil {
		return parallelLimitError(n, err)
	}
	_ = res.WriteText(stdout) // as the sequential bench's: stdout keeps its error for main
	if err := writeBenchFile(c.String("json"), res.WriteJSON); err != nil {
		return err
	}
	// Also with none started: the chart shows each failure, and an old
	// one left in place would contradict the JSON beside it.
	if err := writeBenchFile(c.String("svg"), res.WriteSVG); err != nil {
		return err
	}
	for _, h := range parallelHints(res) {
		fmt.Fprintf(os.Stderr, "smolvmm bench: %s\n", h)
	}
	if res.Started == 0 {
		return fmt.Errorf("bench: none of the %d VMs started: %s", n, res.VMs[0].Error)
	}
	return nil
}

// parallelLimitError is the refusal of --parallel n that a limit of the
// host cannot hold (a bench.LimitError): a command-line mistake, with
// the command that raises the limit.
func parallelLimitError(n int, err error) error {
	var le *bench.LimitError
	if !errors.As(err, &le) {
		return err
	}
	return usageErrorf("smolvmm bench: --parallel %d: %s (give a smaller --parallel, or raise the limit: %s)", n, le.Why(), limitRaise(le.Limit)) // run.go
}

// benchSharedNetwork is the shared network --net spec names, as bench
// reports its memory: its process, how many VMs it says are joined, and
// how long after the VMs' joins its memory is read: once its releases
// after them have run (net.go), as it then stays.
func benchSharedNetwork(spec string) (*bench.SharedNetwork, error) {
	socket, pid, err := sharedNetPID(spec)
	if err != nil {
		return nil, err
	}
	sn := &bench.SharedNetwork{PID: pid, Settle: 400 * time.Millisecond, VMs: func() (int, error) {
		n, err := netback.HubVMs(socket)
		return n, hubVMsError(err)
	}}
	for _, q := range joinsQuiet {
		sn.Settle += q
	}
	return sn, nil
}

// sharedNetPID is the socket and process of the shared network spec
// (user:NAME or user:PATH) names.
func sharedNetPID(spec string) (string, int, error) {
	socket, pid, err := probeSharedNet(spec) // netflags.go
	if err == nil && pid <= 0 {
		err = fmt.Errorf("--net %s: its process is not in this PID namespace", spec)
	}
	if err != nil {
		return "", 0, err
	}
	return socket, pid, nil
}

// parallelHints says, once each, what to change when VMs failed for want
// of file descriptors (the bench's or the shared network's), tasks or
// memory (the OOM killer's kill too), or found their MACs taken or
// another user's. The bench says which of its limits a VM found reached
// (bench.VM.Limit); the network's refusals come from the VMs, other
// processes, as text: their reasons' own words.
func parallelHints(res *bench.ParallelResults) []string {
	var fds, netFDs, procs, mem, mac, owner bool
	for _, v := range res.VMs {
		switch v.Limit {
		case bench.LimitFileDescriptors:
			fds = true
		case bench.LimitTasks:
			procs = true
		case bench.LimitMemory:
			mem = true
		}
		owner = owner || strings.Contains(v.Error, netback.RefusedMACOwner.String())
		netFDs = netFDs || strings.Contains(v.Error, netback.RefusedNoDescriptors.String())
		mac = mac || strings.Contains(v.Error, netback.RefusedDuplicateMAC.String())
	}
	var hints []string
	if fds {
		hints = append(hints, "some VMs found no file descriptor: raise the limit (ulimit -n) or give a smaller --parallel")
	}
	if netFDs {
		hints = append(hints, "the shared network ran out of file descriptors for some VMs: raise the limit of open files where smolvmm net runs (LimitNOFILE= in its systemd unit, or ulimit -n before it) and start it again, or give a smaller --parallel")
	}
	if procs {
		hints = append(hints, "some VMs could not be created as processes: give a smaller --parallel, or raise the task limit that was reached (ulimit -u, sysctl kernel.threads-max or kernel.pid_max, the cgroup's pids.max)")
	}
	if mem {
		hints = append(hints, "some VMs found no memory: give them less guest RAM (-m) or a smaller --parallel")
	}
	if mac {
		hints = append(hints, "some VMs' MACs were on the network already (another bench's VMs?): give each bench that runs at once its own --mac, the first of its VMs' (VM i gets MAC + i)")
	}
	if owner {
		// The VM's own advice, a --mac per VM, is not bench's to take.
		hints = append(hints, "some VMs' MACs are leased to another user's VMs on the network: give this bench a --mac of its own, the first of its VMs' (VM i gets MAC + i), from a range no other user's VMs have used")
	}
	return hints
}

// qemuNet is the network QEMU's boots get for --net spec: its own user
// network (slirp) for user, and for a shared network user:NAME, which
// QEMU cannot join, as the nearest; none for tap and none. The note, when
// set, says where QEMU's network differs from smolvmm's.
func qemuNet(spec string) (userNet bool, note string) {
	switch {
	case spec == "user":
		return true, ""
	case isSharedNet(spec):
		return true, "--net " + spec + ": QEMU used its own user network, not the shared one (it cannot join a smolvmm net)"
	case strings.HasPrefix(spec, "tap"):
		return false, "--net " + spec + ": QEMU runs without a network card (it gets the user network only)"
	}
	return false, ""
}

// qemuForwards turns -p forwards into QEMU hostfwd rules.
func qemuForwards(fs []netback.Forward) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s:%s-:%d", f.Proto, netip.AddrPortFrom(f.HostAddr, f.HostPort), f.GuestPort))
	}
	return out
}

// writeBenchFile writes a result file through a temporary name, so that a
// failed write leaves the previous file.
func writeBenchFile(path string, write func(io.Writer) error) error {
	if path == "" {
		return nil
	}
	err := atomicfile.Write(path, 0o644, func(f *os.File) error { return write(f) })
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// benchBootCommand is the child the bench runs for each smolvmm boot: the
// console goes straight to standard output (no terminal handling) and the
// phases go to the --report file.
func benchBootCommand() *cli.Command {
	return &cli.Command{
		Name:   "boot",
		Hidden: true,
		Usage:  "one measured boot (run by smolvmm bench)",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "kernel", Aliases: []string{"k"}},
			&cli.StringSliceFlag{Name: "disk", Aliases: []string{"d"}},
			&cli.StringFlag{Name: "append", Aliases: []string{"a"}, Value: vmm.DefaultAppend},
			&cli.IntFlag{Name: "memory", Aliases: []string{"m"}, Value: vmm.DefaultMemoryMiB},
			&cli.StringFlag{Name: "kvm-device", Value: "/dev/kvm"},
			&cli.StringFlag{Name: "boot", Value: "auto"},
			&cli.StringFlag{Name: "report", Required: true},
			&cli.BoolFlag{Name: "no-seccomp"},
			&cli.BoolFlag{Name: "jail"},
			&cli.StringFlag{Name: "restore"},
			&cli.BoolFlag{Name: "no-verify-memory"},
			&cli.IntFlag{Name: "settled-fd"},
			&cli.IntFlag{Name: "ready-port"},
			&cli.IntFlag{Name: "ready-fd"},
			&cli.StringFlag{Name: "ready-line"},
		}, netFlags()...),
		Action: func(c *cli.Context) error {
			err := benchBoot(c)
			if err != nil && c.String("restore") != "" {
				return benchRestoreError{err}
			}
			return err
		},
	}
}

// benchRestoreError is an error of bench's restores, in the bench or in
// the child that restores: advice on the snapshot names the --snapshot of
// run or up, which took it, as bench has none (advice.go).
type benchRestoreError struct{ error }

func (e benchRestoreError) Unwrap() error { return e.error }

// ExitCode keeps the exit status of the error it wraps.
func (e benchRestoreError) ExitCode() int { return exitCode(e.error) }

// childPhases names vmm's phases as the bench does.
var childPhases = map[vmm.Phase]string{
	vmm.PhaseVMCreated:      bench.PhaseVMCreated,
	vmm.PhaseDevicesCreated: bench.PhaseDevicesCreated,
	vmm.PhaseKernelLoaded:   bench.PhaseKernelLoaded,
	vmm.PhaseFirstRun:       bench.PhaseFirstRun,
	vmm.PhaseSnapshotLoaded: bench.PhaseSnapshotLoaded,
	vmm.PhaseStateRestored:  bench.PhaseStateRestored,
	vmm.PhaseReady:          bench.PhaseReady,
	vmm.PhaseExit:           bench.PhaseGuestExit,
}

func benchBoot(c *cli.Context) error {
	if ran, err := runJailed(c, os.Args); ran { // jail.go
		return err
	}
	report := bench.ChildReport{Phases: map[string]int64{
		bench.PhaseRuntime: bench.MonoOf(processStart),
		bench.PhaseMain:    bench.MonoOf(mainStart),
	}}
	// Taken before the setup, which a signal stops too.
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()
	// The parent always passes -a, so an empty one means no command line.
	cfg, cleanup, err := vmConfig(ctx, c)
	defer cleanup()
	if err != nil {
		return err
	}
	// The bench reads the VM's memory at its ready line, else at its
	// first console byte: followed here, for linger.
	sampled := &sampleWatch{w: stdout} // stdout.go
	if r := c.String("ready-line"); r != "" {
		re, err := regexp.Compile(r)
		if err != nil {
			return readyRegexpError(r, err) // run.go
		}
		sampled.m = consoleline.NewMatcher(re)
	}
	cfg.Console = sampled
	var readyOut *os.File // bench.Target.ReadyFlag
	if fd := c.Int("ready-fd"); fd > 2 {
		readyOut = os.NewFile(uintptr(fd), "ready")
		defer readyOut.Close()
	}
	cfg.OnEvent = func(e vmm.Event) {
		// Called from one goroutine at a time, in phase order. The
		// first console byte is timed by the bench, on the pipe.
		if name, ok := childPhases[e.Phase]; ok {
			report.Phases[name] = bench.MonoOf(e.Time)
		}
		if e.Phase == vmm.PhaseReady {
			sampled.vmmReady.Store(true)
		}
		if e.Phase == vmm.PhaseReady && readyOut != nil {
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], uint64(bench.MonoOf(e.Time)))
			_, _ = readyOut.Write(b[:])
		}
	}
	if k := c.String("kernel"); k != "" {
		cfg.Kernel = k
	} else {
		cfg.Kernel, cfg.KernelImage = "demo", guests.Demo
	}
	nicFailer, err := attachNIC(c, &cfg)
	if err != nil {
		return err
	}
	// The report is written after the run, when the filter forbids
	// opening files: open it now.
	rf, err := os.Create(c.String("report"))
	if err != nil {
		return fmt.Errorf("bench report: %w", err)
	}
	defer rf.Close()
	if err := contain(c, &cfg, nil, -1, nil); err != nil { // contain.go
		return err
	}
	var settled *benchSettled
	if fd := c.Int("settled-fd"); fd > 2 && !jailed {
		settled = openBenchSettled(fd)
	}
	waitRelease := dropExecutablePages(&cfg, false, settled.notifier()) // exepages.go
	defer waitRelease()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer watchNIC(ctx, cancel, nicFailer)() // netflags.go

	restoreConfig(c, &cfg)       // snapshot.go: memory and disks from --restore's snapshot
	m, err := newMachine(c, cfg) // New, or Restore with --restore
	if err != nil {
		return err
	}
	settled.guestRAM(m.Memory().Bytes())
	exit, runErr := m.Run(ctx)
	var nicErr *nicFailedError
	if runErr == nil && errors.As(context.Cause(ctx), &nicErr) {
		runErr = nicErr
	}
	// A guest that ends before the bench has read this VM's memory (the
	// demo guest, on a busy host) leaves it whole until then; one that
	// ended before the event the bench reads it at has nothing to wait
	// for (the bench would have said it timed out).
	waitRelease()
	if sampled.due(c.Int("ready-port") > 0) {
		settled.linger(5 * time.Second)
	}
	settled.close()
	m.Close()
	report.Phases[bench.PhaseClosed] = bench.MonoNow()
	if runErr == nil && exit.Reason != vmm.ExitStopped {
		// Only the guest's own end: the bench tells it from this
		// process's failures, whose statuses can look the same.
		status := exit.Status()
		report.GuestStatus = &status
	}
	if err := json.NewEncoder(rf).Encode(report); err != nil {
		return fmt.Errorf("bench report: %w", err)
	}
	if runErr != nil {
		return guestCrashExit(c, runErr)
	}
	if s := exit.Status(); s != 0 {
		return cli.Exit("", s)
	}
	return nil
}

// benchSettled is a bench child's end of the bench's settled socket
// (bench.Target.SettledFlag); nil without one.
type benchSettled struct{ f *os.File }

func openBenchSettled(fd int) *benchSettled {
	// Non-blocking, so that linger's read can have a deadline.
	_ = syscall.SetNonblock(fd, true)
	return &benchSettled{f: os.NewFile(uintptr(fd), "settled")}
}

// notifier is notify, or nil without a socket (a timed boot, a jailed
// VM): dropExecutablePages then knows no bench waits to read the VM's
// memory, and does not unmap the executable again on the way out.
func (s *benchSettled) notifier() func(mappedWhy string) {
	if s == nil {
		return nil
	}
	return s.notify
}

// notify tells the bench that the VMM has settled: its memory may be
// read. mappedWhy is "" when the executable was unmapped, else why it was
// not, which the bench reports beside the memory (bench.SettledMapped).
// Callers reach it through notifier, so s is never nil here.
func (s *benchSettled) notify(mappedWhy string) {
	msg := []byte{bench.SettledReleased}
	if mappedWhy != "" {
		msg = append([]byte{bench.SettledMapped}, mappedWhy...)
		msg = msg[:min(len(msg), bench.SettledMax)]
	}
	_, _ = s.f.Write(msg)
}

// guestRAM tells the bench where the guest RAM is mapped
// (bench.SettledGuestRAM), before the guest runs: the Go heap's mappings
// can have its size (-m 4), which leaves the bench unable to tell them
// apart by size alone.
func (s *benchSettled) guestRAM(mem []byte) {
	if s == nil || len(mem) == 0 {
		return
	}
	var msg [9]byte
	msg[0] = bench.SettledGuestRAM
	binary.LittleEndian.PutUint64(msg[1:], uint64(uintptr(unsafe.Pointer(&mem[0]))))
	_, _ = s.f.Write(msg[:])
}

// linger waits, at most d, for the bench to have read the VM's memory
// (EOF on the socket).
func (s *benchSettled) linger(d time.Duration) {
	if s == nil {
		return
	}
	_ = s.f.SetReadDeadline(time.Now().Add(d))
	_, _ = s.f.Read(make([]byte, 1))
}

// close ends the bench's wait for this VM to settle.
func (s *benchSettled) close() {
	if s != nil {
		s.f.Close()
	}
}

// sampleWatch is a bench child's console, w, followed to tell whether
// the bench reads the VM's memory: at the ready line re (given), at the
// VMM's own ready event (a ready port, a restore's ready), or else at the
// first console byte.
type sampleWatch struct {
	w        io.Writer
	m        *consoleline.Matcher // the ready line's pattern; nil: none
	wrote    atomic.Bool
	matched  atomic.Bool
	vmmReady atomic.Bool // set by the machine's PhaseReady event
	mu       sync.Mutex
}

func (s *sampleWatch) Write(p []byte) (int, error) {
	if len(p) > 0 {
		s.wrote.Store(true)
	}
	if s.m != nil && !s.matched.Load() {
		// As the bench matches lines (bench.Ready.Pattern).
		s.mu.Lock()
		for _, c := range p {
			if s.m.Add(c) {
				s.matched.Store(true)
				break
			}
		}
		s.mu.Unlock()
	}
	return s.w.Write(p)
}

// due reports whether the bench reads the VM's memory at an event that
// came: the ready line or the VMM's ready with a ready condition
// (readyPort: one the VMM judges), else any console output.
func (s *sampleWatch) due(readyPort bool) bool {
	if s.vmmReady.Load() || s.matched.Load() {
		return true
	}
	return s.m == nil && !readyPort && s.wrote.Load()
}
