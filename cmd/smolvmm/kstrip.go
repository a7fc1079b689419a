package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/internal/kernelimage"
	"github.com/smolvmm/smolvmm/internal/lockholder"
	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/kstrip"
)

// defaultKeepText is the default keep list as kstrip's help and errors
// show it: built when asked, as every start of smolvmm would pay for it at
// package init.
func defaultKeepText() string { return strings.Join(kstrip.DefaultKeep, " ") }

// kstripDescription is kstrip's --help text, built by kstripCommand.
func kstripDescription() string {
	return `Edits the autoconfiguration table (cfdata) of a NetBSD kernel so that the
kernel does not probe hardware a microVM lacks. Only the cf_fstate field of
each changed entry is written, exactly as NetBSD's userconf "disable" and
"enable" do (notfound <-> dnotfound, star <-> dstar); every other byte of the
kernel stays the same, and running it twice gives the same file.

Names select entries like userconf, plus attachment names:
  com       every entry of driver com        com0   the fixed unit 0
  com*      the "com*" entries               com_isa  entries attached via com_isa
Keeping an entry keeps every entry it may attach to (its parents, then
theirs; for "at attr?" every entry, of any unit, of every driver the
kernel's cfdriver_list_initial says provides attr); the parents it had to
add are reported. --list shows the table.

Modes:
  kstrip KERNEL                        keep the default list, disable the rest
  kstrip --keep a,b | -K FILE KERNEL   keep those instead of the default
                                       list (not added to it), disable the rest
  kstrip --disable x --enable y KERNEL only those changes (no stripping)
  kstrip --list|--json KERNEL          print the table, change nothing
  --list/--json with -o, --dry-run or an edit flag print the table after
  the edits.
To keep one driver more than the default list, strip with the defaults,
then run kstrip --enable NAME KERNEL. A run that leaves no boot CPU
(cpu: the kernel would crash at its first interrupt), no serial console
(com) or no disk driver (ld, wd, sd) enabled where the default list would
keep cpu, com_isa or ld_virtio is warned of, whether a --keep or -K list
left it out or --disable disabled it.
--enable also re-enables the parents of what it enables; --disable wins
over --keep and --enable, and a parent only disabled entries need is not
kept (a kept entry left with no enabled parent is warned of). The root
(mainbus0 at root) is never disabled: the kernel attaches it whatever its
state.

Flags go before KERNEL.

Default keep list: ` + defaultKeepText() + `
  mainbus, cpu: the root and the boot CPU. acpi, acpicpu, ioapic: attach
  only from ACPI/MP tables smolvmm does not provide (the ACPI probe fails
  fast and prints two error lines, no valid RSDP found and acpi_probe
  failing to initialize tables), but keep the kernel right on a VMM that
  has them; without acpi0 the kernel never reads the ACPI tables, so
  ioapic and acpicpu could not attach from them either. pci, isa: the
  buses of virtio and of the serial console (the bridges they may sit
  behind are kept as parents). com_isa: the ISA serial ports; com0 is the
  console and the tty init writes to. virtio, ld_virtio, vioif: the virtio
  PCI transport, disk and network. Compared with the predecessor's list,
  pcdisplay and wsdisplay are dropped (no display; wsdisplay would keep
  every frame buffer driver as a parent), and com and ld are narrowed to
  com_isa and ld_virtio (the plain names keep puc, pcmcia, isapnp, acpi,
  aac, cac, nvme... as parents). fdc and pckbc are disabled on purpose:
  the floppy probe costs at least 1 s and the keyboard controller probe
  up to 100,000 polls; kstrip warns when a keep list keeps them.

Without -o the kernel is replaced in place through a temporary file,
fsync and rename, keeping its permission bits, owner and group (not a
setuid, setgid or sticky bit); so is an existing OUT (a new one gets
KERNEL's mode plus owner write, u+w). An existing OUT that is not empty
and is no kernel (an ELF file, plain or gzipped) is refused unless -f is
given: a mistyped -o (a guest's disk, notes) would be lost. An OUT that
is the -K file (by a symlink or a hard link too) is refused even with -f.
A symlink is followed (its target is replaced, the link stays); a device, FIFO, socket or directory
is refused, and so is a disk image a running VM holds or a file with no
write permission at all (chmod a-w: strip into another file, or chmod
u+w it first). A file in a release's kernel directory of smolvmm's
fetch cache (the release's kernel, up's stripped copy) is refused too, in
place or as -o: the next fetch or up would undo the change; strip into a
file outside the cache. -o - writes the
kernel to standard output (the summary then goes to standard error).
A summary lost on standard output (>/dev/full) after the kernel was
written is said with that, status 1.
Gzipped kernels are read (detected by their magic); the result is
gzipped only when the name of the file written ends in .gz (a symlink's
target's name, not the link's).`
}

func kstripCommand() *cli.Command {
	return &cli.Command{
		Name:        "kstrip",
		Usage:       "disable a NetBSD kernel's unneeded drivers by editing its cfdata table",
		ArgsUsage:   "KERNEL",
		Description: kstripDescription(),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the kernel to `OUT` (a regular file, or - for standard output) instead of replacing KERNEL"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "with -o OUT, overwrite an existing OUT that is no kernel (an ELF file, plain or gzipped)"},
			&cli.StringFlag{Name: "keep-file", Aliases: []string{"K"}, Usage: "keep the driver names in `FILE` (one a line, # comments) instead of the default list, not added to it (or --keep, not both)"},
			&cli.StringSliceFlag{Name: "keep", Usage: "keep these `NAMES` (comma-separated) instead of the default list, not added to it (or -K, not both)"},
			&cli.StringSliceFlag{Name: "disable", Usage: "disable these `NAMES`"},
			&cli.StringSliceFlag{Name: "enable", Usage: "enable these `NAMES` and their parents"},
			&cli.BoolFlag{Name: "list", Aliases: []string{"l"}, Usage: "print the cfdata table"},
			&cli.BoolFlag{Name: "json", Usage: "print the table and the changes as JSON"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print what would change, write nothing"},
			&cli.BoolFlag{Name: "ignore-unknown", Usage: "warn about names that match no entry instead of failing"},
		},
		// A signal while the kernel is written stops the write and
		// removes its temporary file (status 130), as for mkimg.
		Action: func(c *cli.Context) error {
			ctx, stop := signalContext(c.Context) // fetch.go
			defer stop()
			return interrupted(ctx, runKstrip(ctx, c))
		},
	}
}

// kstripJSON is what --json prints.
type kstripJSON struct {
	Kernel      string `json:"kernel"`
	Output      string `json:"output,omitempty"`
	PointerSize int    `json:"pointer_size"`
	EntrySize   int    `json:"entry_size"`
	// StateSize is 2 for NetBSD 9's short cf_fstate, 1 for NetBSD 10's byte.
	StateSize int `json:"state_size"`
	// NetBSDVersion is the kernel's __NetBSD_Version__, 0 without a note.
	NetBSDVersion uint32              `json:"netbsd_version"`
	Entries       []kstrip.Entry      `json:"entries"`
	Changes       []kstrip.Change     `json:"changes"`
	KeptParents   []kstrip.KeptParent `json:"kept_parents"`
	Warnings      []string            `json:"warnings"`
	Notes         []string            `json:"notes,omitempty"`
	Unknown       []kstrip.Unknown    `json:"unknown,omitempty"`
	Written       bool                `json:"written"`
}

func runKstrip(ctx context.Context, c *cli.Context) error {
	if err := checkArgs(c, 1, "one KERNEL"); err != nil {
		return err
	}
	if c.NArg() == 0 {
		return usageErrorf("kstrip: give one KERNEL after the flags (see smolvmm kstrip --help)")
	}
	in := c.Args().First()
	if in == "" {
		return usageErrorf("kstrip: KERNEL is empty: give the kernel's path after the flags")
	}
	// Standard output's first write error is kept: the kernel may be
	// written before the summary is lost, which a bare "writing
	// standard output" would hide.
	printed := &firstErrWriter{w: c.App.Writer}
	stdout, stderr := io.Writer(printed), c.App.ErrWriter
	if stderr == nil {
		stderr = os.Stderr
	}
	// The summary is the command's output on stdout; on stderr (-o -) it
	// is prefixed as every other line there.
	summary, summaryPrefix := stdout, ""
	if c.String("output") == "-" {
		if c.Bool("list") || c.Bool("json") {
			return usageErrorf("kstrip: -o - writes the kernel to standard output, where -l and --json print too: drop one of them")
		}
		if isTerminal(c.App.Writer) {
			return usageErrorf("kstrip: -o - would write a binary kernel to the terminal: redirect standard output, or give -o FILE")
		}
		summary, summaryPrefix = stderr, kstripPrefix
	}
	// -f acts only on the file -o names: anywhere else it would be
	// silently ignored.
	if c.Bool("force") && (c.String("output") == "" || c.String("output") == "-") {
		return usageErrorf("kstrip: -f lets -o OUT overwrite a file that is no kernel: drop -f, or give -o OUT")
	}
	// An empty --keep ("" or ",") is a slip on the command line, said
	// before the kernel is read. The example is in the default list's
	// style: plain com and ld would keep puc, pcmcia, aac, nvme... as
	// parents.
	if c.IsSet("keep") && len(splitCommas(c.StringSlice("keep"))) == 0 {
		return usageErrorf("--keep %q names nothing: stripping with it would disable every driver; give the names to keep, e.g. --keep mainbus,cpu,pci,isa,com_isa,virtio,ld_virtio", strings.Join(c.StringSlice("keep"), ","))
	}
	// Each is the whole keep list (the usage gives them as alternatives):
	// names on both were merged, which neither flag says.
	if c.String("keep-file") != "" && c.IsSet("keep") {
		return usageErrorf("kstrip: -K %s and --keep %s: each is the whole keep list; give one of them (put every name in the file, or all on --keep)", c.String("keep-file"), strings.Join(c.StringSlice("keep"), ","))
	}
	// A kernel that is no file is said to be one first: without -o it
	// is also the output, which the user did not name. (Not opened: a
	// FIFO would block, a device act.)
	if st, err := os.Stat(in); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("kstrip: kernel %s is %s: give a kernel file", in, filekind.Of(st.Mode()))
	}
	// The file to be replaced is checked before any work: a device, FIFO
	// or directory there is never replaced (-o /dev/full, a FIFO). Asked
	// as kstripPlan decides: --list with an edit flag replaces the
	// kernel as surely as the edit flag alone.
	if out := c.String("output"); !c.Bool("dry-run") && out != "-" && kstripEdits(c) {
		if out == "" {
			out = in
		}
		what := "-o"
		if c.String("output") == "" {
			what = "kernel"
		} else if err := checkNameLength("-o", out); err != nil { // checks.go
			return err
		}
		target, err := atomicfile.Target(out)
		if e, ok := outputTargetError(what, out, err); ok { // filemsgs.go
			return e
		}
		if err != nil {
			var nr *atomicfile.NotRegularError
			if errors.As(err, &nr) && namesStdout(c.String("output")) {
				return fmt.Errorf("kstrip: output %w; -o - writes the kernel to standard output", err)
			}
			return fmt.Errorf("kstrip: output %w", err)
		}
		// An -o that is the keep list would lose it to the kernel, -f
		// or not (symlinks and hard links included). KERNEL is no such
		// input: -o KERNEL is the in-place edit kstrip makes without -o.
		if c.String("output") != "" {
			if err := checkOutputFiles([]namedFile{{"-o", out}}, []namedFile{{"-K", c.String("keep-file")}}); err != nil { // checks.go
				return err
			}
		}
		if err := checkNotInFetchCache(what, out, target); err != nil {
			return err
		}
		// A disk image a running VM holds is never replaced: the VM would
		// write on to the unlinked old file (as mkimg -f refuses it). A
		// file this process may not read is not checked: the rename needs
		// no read, and no VM of this user can hold it. The lock on a
		// kernel is another kstrip's (VMs lock disks, not kernels), which
		// lockKstripOutput waits for.
		if _, err := os.Stat(target); err == nil {
			if err := checkNotInUse(target); err != nil && !errors.Is(err, fs.ErrPermission) && checkOutputIsKernel(out, target) != nil {
				return err
			}
		}
		if c.String("output") == "" {
			// A kernel it may not read is left for the read below to
			// report: that is what to fix first.
			if unix.Access(target, unix.R_OK) == nil {
				if err := checkWriteProtected("kernel", in, target, "kstrip", "strip into another file with -o OUT"); err != nil {
					return err
				}
			}
		} else if err := checkWriteProtected("-o", out, target, "kstrip", "give -o another file"); err != nil {
			return err
		} else if !c.Bool("force") {
			if err := checkOutputIsKernel(out, target); err != nil {
				return err
			}
		}
		// ...and so is its directory, where the replacement is made; a
		// missing KERNEL is left for the read below to report.
		what = "-o " + out
		if c.String("output") == "" {
			what = "kernel " + in + " (replaced in place)"
		}
		if _, err := os.Stat(in); err == nil || what[0] == '-' {
			if err := checkWritable(what, out); err != nil {
				return err
			}
		}
	}
	// The keep list is read before the kernel: a fault in it is said
	// before any work.
	var keepFile []string
	if file := c.String("keep-file"); file != "" {
		var err error
		if keepFile, err = readKeepFile(file); err != nil {
			return err
		}
	}
	// Another kstrip writing the same file read it before this one or
	// after: the kernel is read only once that one's rename is done, so
	// that this edit applies on top of its edit, which would otherwise be
	// lost. The lock is let go once the file is written, not after the
	// output: a reader of stdout that stalls must not hold up that kstrip.
	unlock := func() {}
	if out := c.String("output"); !c.Bool("dry-run") && out != "-" && kstripEdits(c) {
		if out == "" {
			out = in
		}
		var err error
		if unlock, err = lockKstripOutput(ctx, out, stderr); err != nil {
			return err
		}
		var once sync.Once
		release := unlock
		unlock = func() { once.Do(release) }
		defer unlock()
	}
	f, err := kstrip.ReadFile(in)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == in {
			if a := inputAdvice(err, "the path given as KERNEL", "another KERNEL"); a != "" { // filemsgs.go
				return &fileError{fmt.Sprintf("kernel %s: %v (%s)", in, pe.Err, a), err}
			}
		}
		if errors.Is(err, kstrip.ErrTooLarge) || errors.Is(err, kernelimage.ErrTooLarge) {
			return fmt.Errorf("kstrip: %w (this is not a kernel image: give an uncompressed or gzipped NetBSD kernel)", err)
		}
		if errors.Is(err, kernelimage.ErrCorrupt) {
			return fmt.Errorf("kstrip: %w (the gzip data is corrupt or truncated: download the kernel again)", err)
		}
		return fmt.Errorf("kstrip: %w", err)
	}
	k, err := kstrip.Parse(f.Data)
	if err != nil {
		return fmt.Errorf("kstrip: %s: %w", in, err)
	}
	plan, edits, err := kstripPlan(c, k, keepFile, stderr)
	if err != nil {
		return err
	}
	out := kstripJSON{Kernel: in, PointerSize: k.PointerSize(), EntrySize: k.EntrySize(), StateSize: k.StateSize(), NetBSDVersion: k.Version()}
	if edits {
		r, err := k.Plan(plan)
		if err != nil {
			return fmt.Errorf("kstrip: %s: %w", in, err)
		}
		if err := k.Apply(r); err != nil {
			return err
		}
		out.Changes, out.KeptParents, out.Warnings, out.Notes, out.Unknown = r.Changes, r.KeptParents, r.Warnings, r.Notes, r.Unknown
		for _, n := range out.Notes {
			fmt.Fprintln(stderr, noticeLine("kstrip", "note", n))
		}
		out.Warnings = append(out.Warnings, lostDefaults(k, plan, c.IsSet("keep") || c.IsSet("keep-file"))...)
		for _, w := range out.Warnings {
			warnf(stderr, "kstrip", "%s", w)
		}
		out.Output, out.Written, err = kstripWrite(ctx, c, in, f, k, len(r.Changes), stdout)
		unlock()
		if err != nil {
			return err
		}
	}
	out.Entries = k.Entries
	var printErr error
	lost := "summary was"
	switch {
	case c.Bool("json"):
		printErr, lost = writeKstripJSON(stdout, &out), "JSON was"
	case c.Bool("list"):
		if edits {
			kstripSummary(stdout, "", c, &out)
			lost = "summary and table were"
		}
		printErr = kstrip.WriteTable(stdout, k.Entries)
	case edits:
		kstripSummary(summary, summaryPrefix, c, &out)
	}
	switch {
	case printed.err == nil:
		return printErr
	case !out.Written:
		// The first error, which run says once as output lost (a later
		// one would be said beside it).
		return printed.err
	}
	// The edit is done: the error says so, and run is not to say the
	// lost output again without it.
	if o, ok := c.App.Writer.(*outWriter); ok {
		o.reported(printed.err) // stdout.go
	}
	return &fileError{fmt.Sprintf("kstrip: %s was written; only its %s lost: %v", out.Output, lost, stdoutError(printed.err)), printed.err}
}

// kstripLockWait is how long kstrip waits for the lock on the file it
// replaces before it refuses; kstripWaiting, when set (by tests), is
// called once when it begins to wait.
var (
	kstripLockWait = 30 * time.Second
	kstripWaiting  func(path string)
)

// lockKstripOutput takes an exclusive flock on the file out names
// (through a link, its target), which a kstrip replacing it holds from
// its read of the kernel to its rename, so that a second kstrip editing
// the same kernel reads it only once the first one's edit is in place.
// The rename puts a new file (inode) under the name, so a lock taken on
// the old one is checked against the name, and taken again on the new
// file when the name has moved on. An -o file that does not exist yet
// has nothing to lock: kstrips writing it do not wait for each other. It
// waits at most kstripLockWait, then refuses. Where the lock cannot be
// taken at all (a file this user may not read, a file system without
// flock), the edit goes on unlocked, as before.
func lockKstripOutput(ctx context.Context, out string, stderr io.Writer) (unlock func(), err error) {
	deadline := time.Now().Add(kstripLockWait)
	waited := false
	for {
		target, err := atomicfile.Target(out)
		if err != nil {
			target = out
		}
		// O_NONBLOCK: a FIFO put there must not hang us (os.OpenFile
		// adds O_CLOEXEC).
		f, err := os.OpenFile(target, os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return func() {}, nil
		}
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			f.Close()
			return func() {}, nil // the writer refuses it, saying what it is
		}
		for {
			err := flockRetry(f, unix.LOCK_EX|unix.LOCK_NB)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.EWOULDBLOCK) {
				f.Close()
				return func() {}, nil
			}
			if ctx.Err() != nil {
				f.Close()
				return nil, ctx.Err()
			}
			if !time.Now().Before(deadline) {
				holder, _ := kstripLockHolder(f)
				f.Close()
				return nil, &fileError{fmt.Sprintf("kstrip: %s holds the lock on %s (a kstrip holds it from the read of the kernel to its replacement) and has not let it go in %s: %s is left as it is; run kstrip again once that is done", holder, target, kstripLockWait, out), err}
			}
			if !waited {
				waited = true
				holder, vm := kstripLockHolder(f)
				if vm {
					// A running VM's lock, which it holds until it stops.
					err := lockImage(f, target) // up.go
					f.Close()
					return nil, err
				}
				fmt.Fprintln(stderr, noticeLine("kstrip", "", "waiting for "+holder+", which holds the lock on "+target))
				if kstripWaiting != nil {
					kstripWaiting(target)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
		// The kstrip that held it may have renamed its new kernel over
		// the name meanwhile: that file is the one to read, and lock.
		if now, err := os.Stat(target); err == nil && os.SameFile(now, st) {
			// The flock held, no VM of ours holds the file; a QEMU
			// takes byte-range locks instead.
			if err := notInQEMU(f, target); err != nil { // up.go
				f.Close()
				return nil, err
			}
			return func() { f.Close() }, nil
		}
		f.Close()
	}
}

// kstripLockHolder names for a message who holds the lock on f:
// "another kstrip (process N (...))" when that is a kstrip, else
// "process N (...)", or "another process" when /proc does not say; vm
// is whether it is a smolvmm process other than kstrip (a VM on the
// file, refused at once as before).
func kstripLockHolder(f *os.File) (holder string, vm bool) {
	pids := lockholder.PIDs(f)
	desc := lockholder.Describe(f)
	if len(pids) == 0 || desc == "" {
		return "another process", false
	}
	kstrips := 0
	for _, pid := range pids {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if filepath.Base(args[0]) != "smolvmm" {
			continue
		}
		if !slices.Contains(args[1:], "kstrip") {
			return desc, true
		}
		kstrips++
	}
	if kstrips == len(pids) {
		return "another kstrip (" + desc + ")", false
	}
	return desc, false
}

// flockRetry is flock(how) on f, retried on EINTR.
func flockRetry(f *os.File, how int) error {
	for {
		if err := unix.Flock(int(f.Fd()), how); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// firstErrWriter is w, keeping the first write error.
type firstErrWriter struct {
	w   io.Writer
	err error
}

func (f *firstErrWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil && f.err == nil {
		f.err = err
	}
	return n, err
}

// bootRoles are what the default keep list keeps for a microVM to boot:
// its boot CPU, its console and its root disk, each by one attachment
// (keep) that any of drivers can stand in for. Without a cpu entry
// cpu_attach never runs for the boot CPU, which alone sets its interrupt
// stack and CR4_OSXSAVE: NetBSD 9 i386 switches to a null stack at the
// first interrupt (or faults on xsave). The root, mainbus, needs no role:
// it is never disabled.
var bootRoles = []struct {
	keep, drivers, lacks string
}{
	{"cpu", "cpu", "the kernel attaches no boot CPU and crashes at its first interrupt"},
	{"com_isa", "com", "the kernel has no serial console"},
	{"ld_virtio", "ld wd sd", "the kernel has no disk to mount the root file system from"},
}

// lostDefaults warns of each boot role the default list would have kept
// in k and no enabled entry fills after a run with plan p: a --disable
// that matches it, --keep and -K (which replace the default list, easy to
// miss: --keep vioif leaves no CPU, console or disk), or an earlier strip.
func lostDefaults(k *kstrip.Kernel, p kstrip.Plan, userKeep bool) []string {
	var out []string
	for _, r := range bootRoles {
		if !k.Known(r.keep) {
			continue
		}
		drivers := strings.Fields(r.drivers)
		ofRole := func(i int) bool { return slices.Contains(drivers, k.Entries[i].Name) }
		if slices.ContainsFunc(k.Entries, func(e kstrip.Entry) bool { return !e.State.Disabled() && slices.Contains(drivers, e.Name) }) {
			continue
		}
		names := drivers[len(drivers)-1]
		if n := len(drivers) - 1; n > 0 {
			names = strings.Join(drivers[:n], ", ") + " or " + names
		}
		var disabling []string
		for _, d := range p.Disable {
			if slices.ContainsFunc(k.Match(d), ofRole) && !slices.Contains(disabling, d) {
				disabling = append(disabling, d)
			}
		}
		var advice string
		switch {
		case len(disabling) > 0:
			advice = fmt.Sprintf("--disable %s disables it; leave it out", strings.Join(disabling, ","))
		case userKeep:
			advice = fmt.Sprintf("--keep and -K replace the default keep list, which keeps %s; add it to the list", r.keep)
		default:
			advice = fmt.Sprintf("--enable %s enables it", r.keep)
		}
		out = append(out, fmt.Sprintf("no %s entry stays enabled, so %s: %s", names, r.lacks, advice))
	}
	return out
}

// entriesNull is where o's "entries" sit in o marshalled without them.
const entriesNull = "\n  \"entries\": null"

// writeKstripJSON writes o as json.Encoder does with a two-space indent,
// one entry at a time: a table of tens of thousands of entries (a hostile
// kernel's) is never held whole in memory as JSON.
func writeKstripJSON(w io.Writer, o *kstripJSON) error {
	rest := *o
	rest.Entries = nil
	head, err := json.MarshalIndent(&rest, "", "  ")
	if err != nil {
		return err
	}
	// JSON strings hold no raw newline, so only the field matches.
	at := bytes.Index(head, []byte(entriesNull))
	if at < 0 {
		return fmt.Errorf("kstrip: no entries field in the JSON of %T", rest)
	}
	bw := bufio.NewWriter(w)
	bw.Write(head[:at+len(entriesNull)-len("null")])
	switch {
	case o.Entries == nil:
		bw.WriteString("null")
	case len(o.Entries) == 0:
		bw.WriteString("[]")
	default:
		bw.WriteByte('[')
		for i := range o.Entries {
			b, err := json.MarshalIndent(&o.Entries[i], "    ", "  ")
			if err != nil {
				return err
			}
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString("\n    ")
			if _, err := bw.Write(b); err != nil {
				return err
			}
		}
		bw.WriteString("\n  ]")
	}
	bw.Write(head[at+len(entriesNull):])
	bw.WriteByte('\n')
	return bw.Flush()
}

// readKeepFile reads -K's names, refusing, as -k is refused, a file that
// is not a regular one without waiting on it (a FIFO) or reading it (a
// device).
func readKeepFile(file string) ([]string, error) {
	fh, _, err := regfile.Open(file)
	if errors.Is(err, regfile.ErrNotRegular) {
		return nil, &fileError{fmt.Sprintf("%s (give a keep list in a regular file, one name a line)", flagFileError("-K", file, file, err)), err}
	}
	if err != nil {
		return nil, inputFileError("-K", file, file, err)
	}
	names, err := kstrip.ReadKeepList(fh)
	fh.Close()
	if errors.Is(err, kstrip.ErrConfigFile) {
		return nil, fmt.Errorf("kstrip: %s: %w; -K wants the names of the drivers to keep, one a line (such as mainbus, cpu, pci, isa, com_isa, virtio, ld_virtio), not a kernel configuration: --list KERNEL shows the names a kernel has", file, err)
	}
	if err != nil {
		return nil, fmt.Errorf("kstrip: %s: %w", file, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("kstrip: keep list %s names nothing: stripping with it would disable every driver", file)
	}
	return names, nil
}

// kstripEdits reports whether the flags ask for an edit: all but --list
// or --json alone do (with -o, --dry-run, --keep, -K, --enable or
// --disable they print the table after the edits). runKstrip checks the
// file to be replaced by the same answer kstripPlan acts on.
func kstripEdits(c *cli.Context) bool {
	if !c.Bool("list") && !c.Bool("json") {
		return true
	}
	return c.IsSet("keep") || c.IsSet("keep-file") || c.IsSet("output") || c.Bool("dry-run") ||
		len(splitCommas(c.StringSlice("enable"))) > 0 || len(splitCommas(c.StringSlice("disable"))) > 0
}

// kstripPlan turns the flags into a Plan; edits is false for a listing.
func kstripPlan(c *cli.Context, k *kstrip.Kernel, keepFile []string, stderr io.Writer) (p kstrip.Plan, edits bool, err error) {
	p.Enable, p.Disable = splitCommas(c.StringSlice("enable")), splitCommas(c.StringSlice("disable"))
	p.IgnoreUnknown = c.Bool("ignore-unknown")
	p.Keep = splitCommas(c.StringSlice("keep"))
	if keepFile != nil {
		p.Keep = keepFile // never with --keep: runKstrip refuses both
	}
	userKeep := c.IsSet("keep") || c.IsSet("keep-file")
	if userKeep && strings.TrimSpace(strings.Join(p.Keep, "")) == "" {
		return p, false, fmt.Errorf("kstrip: --keep names nothing: stripping with it would disable every driver")
	}
	if !kstripEdits(c) {
		return p, false, nil
	}
	onlyEdits := len(p.Enable) > 0 || len(p.Disable) > 0
	p.Strip = userKeep || !onlyEdits
	if p.Strip && !userKeep {
		keep, missing, err := k.Applicable(kstrip.DefaultKeep)
		if err != nil {
			// A kernel of another port, whose root is no mainbus.
			return p, false, fmt.Errorf("kstrip: the default keep list: %w; is it a NetBSD x86 kernel? Give the names to keep with --keep or -K", err)
		}
		p.Keep = keep
		for _, n := range missing {
			fmt.Fprintf(stderr, "%snote: default keep name %q is not in this kernel\n", kstripPrefix, n)
		}
	}
	return p, true, nil
}

// kstripWrite writes the kernel unless this is a dry run, or an in-place
// run with nothing to change; -o - writes it to stdout.
func kstripWrite(ctx context.Context, c *cli.Context, in string, f *kstrip.File, k *kstrip.Kernel, changes int, stdout io.Writer) (string, bool, error) {
	out := c.String("output")
	if c.Bool("dry-run") {
		return out, false, nil
	}
	if out == "-" {
		if _, err := stdout.Write(k.Bytes()); err != nil {
			return out, false, fmt.Errorf("kstrip: writing the kernel to standard output: %w", err)
		}
		return "standard output", true, nil
	}
	if out == "" {
		if changes == 0 {
			return in, false, nil
		}
		out = in
	}
	_, statErr := os.Stat(out)
	// Compressed by the name of the file replaced: through a link
	// "netbsd" to netbsd.gz, the .gz file is written. Should the target
	// not resolve, the writer, which resolves it again, says why.
	target, err := atomicfile.Target(out)
	if err != nil {
		target = out
	}
	// A new output is the user's own copy: owner-write is added, or a
	// kernel from read-only media (0444) would give a 0444 output that
	// the same command then refuses to replace as write-protected.
	if err := kstrip.WriteFileContext(ctx, out, k.Bytes(), kstrip.WantsGzip(target), f.Mode|0o200); err != nil {
		// The writer leaves the output as it was: say so of the output.
		left := out + " is unchanged"
		if statErr != nil {
			left = out + " was not written"
		}
		if strings.Contains(err.Error(), out) {
			return out, false, fmt.Errorf("kstrip: %w (%s)", err, left)
		}
		return out, false, fmt.Errorf("kstrip: writing %s: %w (%s)", out, err, left)
	}
	return out, true, nil
}

// checkOutputIsKernel refuses to replace target, the file -o path names,
// when it is not empty and is no kernel kstrip reads (an ELF file, plain
// or gzipped): -o rescue.img for -o rescue.k would lose a guest's disk,
// which no other check stops while no VM holds it. Only the first bytes
// are read (of a gzipped file, the first it inflates to).
func checkOutputIsKernel(path, target string) error {
	// O_NONBLOCK: a FIFO put there since Target looked must not hang us.
	f, err := os.OpenFile(target, os.O_RDONLY|unix.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		cause := err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			cause = pe.Err // the path is named once
		}
		return &fileError{fmt.Sprintf("kstrip: -o %s: %v, so kstrip cannot tell whether it is a kernel it may replace: give -o another file, or pass -f to overwrite it", path, cause), err}
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil // the writer refuses it, saying what it is
	}
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if n == 0 {
		return nil // nothing is lost
	}
	if kernelimage.IsGzip(head) {
		if _, err := f.Seek(0, io.SeekStart); err == nil {
			if zr, err := gzip.NewReader(f); err == nil {
				n, _ = io.ReadFull(zr, head[:cap(head)])
				head = head[:n]
			}
		}
	}
	if bytes.Equal(head, []byte(elf.ELFMAG)) {
		return nil
	}
	return fmt.Errorf("kstrip: -o %s holds something other than a kernel (an ELF file, plain or gzipped): kstrip would replace it with the kernel it writes; give -o another file, or pass -f to overwrite it", path)
}

// kstripPrefix begins kstrip's notes and warnings, as errorLine begins
// its errors.
const kstripPrefix = "smolvmm kstrip: "

// kstripSummary writes what changed to w, each line after prefix.
func kstripSummary(w io.Writer, prefix string, c *cli.Context, o *kstripJSON) {
	// The index tells apart entries with one label (pci* at mainbus and
	// at ppb); a parent kept for two entries of one label shows once.
	shown := map[string]bool{}
	for _, p := range o.KeptParents {
		line := fmt.Sprintf("kept parent [%d] %s (%s) for %s", p.Index, p.Label, kstrip.Printable(p.Attach), p.For)
		if !shown[line] {
			shown[line] = true
			fmt.Fprintln(w, prefix+line)
		}
	}
	dis, en := 0, 0
	for _, ch := range o.Changes {
		if ch.To.Disabled() {
			dis++
		} else {
			en++
		}
		if c.Bool("dry-run") {
			fmt.Fprintf(w, "%s%s [%d] %s (%s): %s -> %s\n", prefix, verb(ch.To), ch.Index, ch.Label, kstrip.Printable(ch.Attach), ch.From, ch.To)
		}
	}
	enabled := 0
	for _, e := range o.Entries {
		if !e.State.Disabled() {
			enabled++
		}
	}
	var where string
	switch {
	case c.Bool("dry-run"):
		where = "dry run, nothing written"
	case o.Written:
		where = "wrote " + o.Output
	default:
		where = "nothing to change, " + o.Kernel + " left as it was"
	}
	fmt.Fprintf(w, "%s%s: disabled %d, enabled %d; %d of %d entries enabled; %s\n", prefix, o.Kernel, dis, en, enabled, len(o.Entries), where)
}

func verb(s kstrip.State) string {
	if s.Disabled() {
		return "disable"
	}
	return "enable"
}

// splitCommas flattens repeated flags that may each hold a comma list
// (--keep a,b --keep c): the app turns off urfave/cli's own splitting so
// that -d img,ro stays one value.
func splitCommas(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				out = append(out, n)
			}
		}
	}
	return out
}

// checkNotInFetchCache refuses to replace target, the file output what
// ("kernel" or "-o") named path would replace, when it lies in a release's
// kernel directory of smolvmm's fetch cache: fetch and up check what they
// keep there against its digest and replace what no longer matches, so
// the next run would silently undo the strip.
func checkNotInFetchCache(what, path, target string) error {
	dir, ok := fetchCacheKernelDir(target)
	if !ok {
		return nil
	}
	kind, undone := "a file in a release's kernel directory of", "fetch and up keep only their own files there"
	if _, err := os.Stat(target + ".sha512"); err == nil {
		kind, undone = "a kernel up stripped, in", "the next up would find it changed and strip the release's kernel again, undoing the edit"
	} else if listedIn(filepath.Join(dir, "SHA512"), filepath.Base(target)) {
		kind, undone = "the release's kernel in", "the next fetch or up would find it no longer matching its SHA512 and download it again, undoing the strip (up strips a copy of its own)"
	}
	advice := "strip into a file outside the cache with -o OUT"
	if what == "-o" {
		advice = "give -o a file outside the cache"
	}
	return usageErrorf("kstrip: %s %s is %s smolvmm's fetch cache (%s): %s; %s", what, path, kind, dir, undone, advice)
}

// fetchCacheKernelDir returns the directory of target when it is a
// release's kernel directory in smolvmm's fetch cache: a "kernel"
// directory holding a SHA512 file, with fetch's lock file beside it (a
// cache of any --cache) or under the default cache (which a copied cache
// may have without its lock). A NetBSD release tree (binary/kernel) has
// the same shape and neither.
func fetchCacheKernelDir(target string) (string, bool) {
	// Absolute first: a relative target's directory may be "." (named
	// from inside the kernel directory), whose name and parent say
	// nothing, and the default cache is matched as a prefix.
	abs, err := filepath.Abs(target)
	if err != nil {
		return "", false
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil || filepath.Base(dir) != "kernel" {
		return "", false
	}
	if st, err := os.Stat(filepath.Join(dir, "SHA512")); err != nil || !st.Mode().IsRegular() {
		return "", false
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), ".lock")); err == nil {
		return dir, true
	}
	def, err := fetch.DefaultCacheDir()
	if err != nil {
		return "", false
	}
	if real, err := filepath.EvalSymlinks(def); err == nil {
		def = real
	}
	return dir, strings.HasPrefix(dir, def+string(filepath.Separator))
}

// listedIn reports whether the SHA512 digest file sums lists name ("SHA512
// (name) = ..."). Only its first MiB is read: a release's lists a few
// files.
func listedIn(sums, name string) bool {
	f, err := os.Open(sums)
	if err != nil {
		return false
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return bytes.Contains(b, []byte("("+name+")"))
}

// namesStdout reports whether path names this process's standard output
// rather than a file: such a path is a pipe or a terminal, never replaced
// (-o - is what writes there).
func namesStdout(path string) bool {
	switch filepath.Clean(path) {
	case "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1":
		return true
	}
	return false
}
