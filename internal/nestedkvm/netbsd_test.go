package nestedkvm_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/kernelimage"
	"github.com/smolvmm/smolvmm/internal/nestedkvm"
	"github.com/smolvmm/smolvmm/internal/realnetbsd"
	"github.com/smolvmm/smolvmm/kstrip"
	"github.com/smolvmm/smolvmm/netbsdboot"
)

// stripKernel writes the kernel after kstrip with the default keep list,
// as `smolvmm kstrip` does, and returns its path.
func stripKernel(t *testing.T, kernel string) string {
	t.Helper()
	f, err := kstrip.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	k, err := kstrip.Parse(f.Data)
	if err != nil {
		t.Fatal(err)
	}
	r, err := k.Plan(kstrip.Plan{Strip: true, Keep: kstrip.DefaultKeep, IgnoreUnknown: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Apply(r); err != nil {
		t.Fatal(err)
	}
	t.Logf("kstrip: %d of %d cfdata entries disabled", len(r.Changes), len(k.Entries))
	out := filepath.Join(t.TempDir(), "netbsd.strip")
	if err := kstrip.WriteFile(out, k.Bytes(), false, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// The lines every boot of the real kernel with its miniroot module prints,
// in this order, under smolvmm and under QEMU alike: the banner, the
// memory the loader's map gave, the module linked (md0a is its root, and
// the kernel found md_root_setconf in its own symbol table), the FFS root,
// and init's panic (this kernel has no serial driver for userland, only
// the early console) ending in halt.
var minirootLines = []string{
	"NetBSD 5.99.15 (G4U-KERNEL) #0: Sat Aug 29 02:24:41 CEST 2009\n",
	"total memory = 127 MB\n",
	"mainbus0 (root)\n",
	"root on md0a dumps on md0b\n",
	"root file system type: ffs\n",
	"panic: cnopen: no console device\n",
	"The operating system has halted.\n",
}

// What the kernel must never print here: no symbols means no module
// linking; a display means the VGA window was RAM.
var minirootNever = []string{
	"Kernel symbol table missing",
	"linker error",
	"pcdisplay0",
	"wsdisplay0",
}

// TestNetBSDKernel boots the real NetBSD/i386 kernel on the rig's real KVM
// through smolvmm's own native /boot handoff, three ways in one rig boot:
// as released with its miniroot module, after kstrip with the default keep
// list, and without the module at its root device prompt, answering what
// is typed on the console. Each is run under QEMU's software CPU too, from
// the very memory image smolvmm's loader builds (the handoff guest enters
// it), and the console text of the two is compared as sequences of lines:
// every line only one of them prints, or prints more often or elsewhere,
// is explained below or fails the test.
func TestNetBSDKernel(t *testing.T) {
	// The QEMU references below are only compared with the rig's boots:
	// where Run would skip before booting, skip before starting them.
	nestedkvm.SkipIfOff(t)
	kernel, module := realnetbsd.Files(t)
	stripped := stripKernel(t, kernel)

	// QEMU's references run on the host while the rig runs. They are
	// joined however the test ends (Run skips by ending this goroutine):
	// they read the stripped kernel from t.TempDir, removed once the
	// test returns.
	var wg sync.WaitGroup
	defer wg.Wait()
	refs := map[string]*qemuRef{}
	for name, ref := range map[string]*qemuRef{
		"generic":  {kernel: kernel, modules: []string{module}},
		"stripped": {kernel: stripped, modules: []string{module}},
		"prompt":   {kernel: stripped, replies: promptReplies},
	} {
		refs[name] = ref
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref.run(t)
		}()
	}

	run := []string{"smolvmm", "run", "--timings", "--net", "none", "-m", "128", "-a", "console=com"}
	r := nestedkvm.Run(t, nestedkvm.Job{
		Files: []nestedkvm.File{
			{Path: "/root/netbsd.gz", Source: kernel, Mode: 0o644},
			{Path: "/root/netbsd.strip", Source: stripped, Mode: 0o644},
			{Path: "/root/miniroot.kmod", Source: module, Mode: 0o644},
			{Path: "/root/prompt.sh", Data: []byte(promptScript), Mode: 0o755},
		},
		Script: nestedkvm.Step("generic", append(run, "-k", "netbsd.gz", "--module", "miniroot.kmod")...) +
			nestedkvm.Step("stripped", append(run, "-k", "netbsd.strip", "--module", "miniroot.kmod")...) +
			nestedkvm.Step("prompt", append([]string{"./prompt.sh"}, append(run, "-k", "netbsd.strip")...)...),
		Timeout: 4 * time.Minute,
	})
	wg.Wait()

	generic, strip := r.Step(t, "generic"), r.Step(t, "stripped")
	for _, s := range []nestedkvm.StepResult{generic, strip} {
		t.Run(s.Name, func(t *testing.T) {
			if s.Status != 0 {
				t.Errorf("status %d, want 0 (the kernel halted); stderr:\n%s", s.Status, s.Stderr)
			}
			wantInOrder(t, crless(s.Stdout), minirootLines...)
			for _, never := range minirootNever {
				if strings.Contains(s.Stdout, never) {
					t.Errorf("the kernel printed %q:\n%s", never, s.Stdout)
				}
			}
			if !strings.Contains(s.Stderr, "boot protocol netbsd") {
				t.Errorf("--timings does not name the native protocol:\n%s", s.Stderr)
			}
			compareWithQEMU(t, s.Stdout, refs[s.Name])
		})
	}
	// Emulated times: only their ratio means something.
	if strip.Elapsed > 0 {
		t.Logf("boot to halt in the rig: generic %v, stripped %v: kstrip made it %.1fx faster",
			generic.Elapsed, strip.Elapsed, float64(generic.Elapsed)/float64(strip.Elapsed))
	}
	t.Run("prompt", func(t *testing.T) {
		s := r.Step(t, "prompt")
		if s.Status != 0 {
			t.Errorf("status %d, want 0 (halt typed at the prompt); stderr:\n%s", s.Status, s.Stderr)
		}
		wantInOrder(t, crless(s.Stdout), promptLines...)
		compareWithQEMU(t, s.Stdout, refs["prompt"])
	})
}

// At its root device prompt the kernel reads the console through the
// UART's receive path: "?" lists the devices it knows, "halt" halts.
var promptReplies = []reply{{"root device: ", "?\r"}, {"use one of: ", "halt\r"}}

var promptLines = []string{
	"boot device: <unknown>\n",
	"root device: ?\n",
	"use one of: md0[a-p] halt reboot\n",
	"root device: halt\n",
	"The operating system has halted.\n",
}

// promptScript types at the guest as a user would: it waits for each
// prompt in smolvmm's output before typing the answer, so the kernel reads
// the bytes from its console, not from a buffer filled before it asked.
var promptScript = typingScript(`answer 'root device: ' '?' && answer 'use one of: ' halt && answer 'has halted' ''`)

// typingScript returns a script that runs its arguments (a smolvmm
// command) with the output of answers (shell commands, using answer
// PATTERN TEXT: wait at most 120 s for PATTERN in the output so far, then
// type TEXT and a carriage return) as its console input, then prints what
// the command printed and exits with its status.
func typingScript(answers string) string {
	return `#!/bin/sh
out=/tmp/typed.out
: > $out
answer() {
	i=0
	until grep -q "$1" $out; do
		i=$((i+1)); [ $i -gt 1200 ] && { echo "no '$1' after 120 s" >&2; return 1; }
		usleep 100000
	done
	[ -n "$2" ] && printf '%s\r' "$2"
}
{ ` + answers + `; } | "$@" > $out
status=$?
cat $out
exit $status
`
}

// reply is console input QEMU's reference gets once the output contains
// after.
type reply struct{ after, text string }

// qemuRef is one reference run of a kernel under qemu-system-i386's
// software CPU, entered as NetBSD's /boot enters it from the memory image
// smolvmm's own native loader builds.
type qemuRef struct {
	kernel  string
	modules []string
	replies []reply
	out     string
	skip    string // why there is no reference
}

func (q *qemuRef) run(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-i386")
	if err != nil {
		q.skip = "qemu-system-i386 is not installed"
		return
	}
	handoff, err := guests.Build("handoff")
	if err != nil {
		q.skip = "cannot build the handoff guest: " + err.Error()
		return
	}
	mem, plan, err := loadNative(q.kernel, q.modules)
	if err != nil {
		t.Errorf("loading %s: %v", q.kernel, err)
		return
	}
	var regions []guests.Region
	for _, r := range plan.Regions {
		if r.Len > 0 {
			regions = append(regions, guests.Region{Addr: r.Addr, Data: mem.Bytes()[r.Addr : r.Addr+r.Len]})
		}
	}
	dir, err := os.MkdirTemp("", "smolvmm-qemuref-")
	if err != nil {
		t.Error(err)
		return
	}
	defer os.RemoveAll(dir)
	boot, err := guests.HandoffQEMUArgs(handoff, dir, regions, plan.EIP, plan.ESP)
	if err != nil {
		t.Errorf("handoff arguments: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := append([]string{"-M", "pc", "-m", "128", "-display", "none", "-monitor", "none",
		"-no-reboot", "-serial", "stdio", "-nodefaults"}, boot...)
	cmd := exec.CommandContext(ctx, qemu, args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Errorf("starting QEMU: %v", err)
		return
	}
	// The kernel halts by polling the UART for a key, forever: the
	// reference ends at the halt message.
	var out strings.Builder
	replies := q.replies
	rd := bufio.NewReader(stdout)
	for {
		b, err := rd.ReadByte()
		if err != nil {
			break
		}
		if b == '\r' {
			continue // see lines
		}
		out.WriteByte(b)
		s := out.String()
		if len(replies) > 0 && strings.HasSuffix(s, replies[0].after) {
			io.WriteString(stdin, replies[0].text)
			replies = replies[1:]
		}
		if strings.HasSuffix(s, "Please press any key to reboot.\n") {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	q.out = out.String()
	if ctx.Err() != nil {
		t.Errorf("QEMU reference of %s timed out; it printed:\n%s%s", q.kernel, q.out, stderr.String())
	}
}

// loadNative runs smolvmm's native loader into a memory image of 128 MiB,
// as `smolvmm run -m 128 -a console=com` does.
func loadNative(kernel string, modules []string) (*guestmem.Memory, bootplan.Plan, error) {
	raw, err := os.ReadFile(kernel)
	if err != nil {
		return nil, bootplan.Plan{}, err
	}
	if raw, _, err = kernelimage.Decompress(raw); err != nil {
		return nil, bootplan.Plan{}, err
	}
	opts := netbsdboot.Options{KernelName: filepath.Base(kernel), Append: "console=com"}
	for _, m := range modules {
		data, err := os.ReadFile(m)
		if err != nil {
			return nil, bootplan.Plan{}, err
		}
		opts.Modules = append(opts.Modules, netbsdboot.Module{Name: filepath.Base(m), Data: data})
	}
	mem := guestmem.New(make([]byte, 128<<20))
	plan, err := netbsdboot.Load(mem, bytes.NewReader(raw), int64(len(raw)), opts)
	return mem, plan, err
}

// Lines only one side prints, each with the reason: the two machines have
// different hardware; the kernel, the memory its loader built and its
// console are the same. A difference that no entry explains fails the test.
var (
	onlySmolvmm = []explained{
		{`^cpu0 at mainbus0: \w+ 686-class, \d+MHz, id 0x`, "the CPU KVM passes through (in the rig, QEMU's -cpu max), found without an MP table, so without an APIC id"},
		{`^pchb0 at pci0 dev 0 function 0: unknown vendor 0x1b36 product 0x0008 `, "smolvmm's host bridge carries the generic PCI host ID 1b36:0008, which this 2009 kernel does not know; QEMU's PC has an i440FX"},
		{`^isa0 at mainbus0$`, "smolvmm has no PCI-ISA bridge: ISA hangs off mainbus"},
		// Read in the 2015 tree (krytarowski/netbsd-current-src-sys),
		// not the 2009 kernel's own; the consoles agree with it: pchb0
		// and md0 detach on both machines, isa0 on neither.
		{`^pci0: detached$`, "at halt the kernel detaches at shutdown every device that allows it, leaves first " +
			"(arch/i386/i386/machdep.c:746-749, kern/subr_autoconf.c:1832-1851); isa's attachment lacks DVF_DETACH_SHUTDOWN " +
			"(dev/isa/isa.c:64-65), so config_detach refuses isa0 with EOPNOTSUPP (subr_autoconf.c:1700-1703) on both machines. " +
			"A bus detaches only once its children have (pcib, arch/x86/pci/pcib.c:205-213; pci, dev/pci/pci.c:213-221): " +
			"under QEMU isa0 hangs off pcib0 (the PIIX3 bridge) on pci0, so neither pcib0 nor pci0 goes; under smolvmm isa0 " +
			"hangs off mainbus0 and pci0 holds only pchb0, which detaches (arch/x86/pci/pchb.c:79-80), so pci0 does"},
	}
	onlyQEMU = []explained{
		{`^handoff: \d+ regions, entering 0x100000 with esp=0x6fe4$`, "the handoff guest that enters the kernel under QEMU as /boot does says what it copied"},
		{`^(mainbus0: Intel MP Specification |ioapic0 at mainbus0 apid 0$|cpu0 at mainbus0 apid 0: )`, "SeaBIOS's MP table names QEMU's CPU model and I/O APIC; smolvmm has no firmware tables, so NetBSD runs one CPU on the 8259 PIC"},
		{`^(PCI BIOS rev\. 2\.1 found at |PCI IRQ Routing Table rev\. 1\.0 found at |ACPI Error: Invalid length 0x0 in RSDT/XSDT )`, "SeaBIOS's PCI BIOS, $PIR and ACPI tables (too new for this kernel's 2009 ACPICA); smolvmm has no firmware"},
		{`^(pchb0 at pci0 dev 0 function 0: Intel 82441FX |pcib0 at pci0 dev 1 function 0: Intel 82371SB |isa0 at pcib0$)`, "QEMU's i440FX host bridge and PIIX3 PCI-ISA bridge"},
		{`^Intel 8237\w+ \(PIIX\d\) .* at pci0 dev 1 function \d not configured$`, "QEMU's PIIX3 IDE and PIIX4 power management, whose drivers kstrip disabled"},
		{`^(piixide0|atabus\d|piixpm0|iic0|pckbc0|pckbd0|pms0|wskbd0|wsmouse0)[ :]`, "QEMU's PIIX3 IDE, PIIX4 power management and i8042 keyboard and mouse controller, which smolvmm does not have"},
		{`^(pcdisplay0|wsdisplay0) at `, "QEMU's PC decodes the VGA window (without a VGA card, as RAM), so pcdisplay finds a display there; smolvmm decodes nothing there, as a machine without a display"},
	}
)

type explained struct{ pattern, why string }

// compareWithQEMU checks that every line printed by only one of smolvmm
// and QEMU, or more often or in another place by one (consoleDiff), is
// explained, and logs the explanations used.
func compareWithQEMU(t *testing.T, smolvmm string, ref *qemuRef) {
	t.Helper()
	if ref.skip != "" {
		// CI installs QEMU and gcc: a missing reference there is a
		// failure, not a comparison quietly left out.
		if os.Getenv(nestedkvm.EnvVar) == "require" {
			t.Errorf("no QEMU reference: %s (%s=require)", ref.skip, nestedkvm.EnvVar)
			return
		}
		t.Logf("no QEMU reference: %s", ref.skip)
		return
	}
	if ref.out == "" {
		t.Errorf("the QEMU reference printed nothing")
		return
	}
	onlyOurs, onlyTheirs := consoleDiff(smolvmm, ref.out)
	check := func(side string, lines []string, table []explained) {
		for _, l := range lines {
			why := ""
			for _, e := range table {
				if regexp.MustCompile(e.pattern).MatchString(l) {
					why = e.why
					break
				}
			}
			if why == "" {
				t.Errorf("only %s prints %q, and nothing explains it", side, l)
			} else {
				t.Logf("only %s: %q (%s)", side, l, why)
			}
		}
	}
	check("smolvmm", onlyOurs, onlySmolvmm)
	check("QEMU", onlyTheirs, onlyQEMU)
}

// consoleDiff returns the lines of a and of b left out of a longest
// common subsequence of the two: the kernel prints its lines in one order
// on both machines (autoconf walks the devices as it finds them), so a
// line one side prints more often, or elsewhere in the sequence, is a
// difference as much as one the other never prints. Lines are compared
// without the CPU's measured clock, which differs from run to run, and
// returned as printed, in order.
func consoleDiff(a, b string) (onlyA, onlyB []string) {
	la, lb := consoleLines(a), consoleLines(b)
	ka, kb := make([]string, len(la)), make([]string, len(lb))
	for i, l := range la {
		ka[i] = clockless(l)
	}
	for i, l := range lb {
		kb[i] = clockless(l)
	}
	// lcs[i][j] is the length of the longest common subsequence of
	// ka[i:] and kb[j:]; consoles are tens of lines.
	lcs := make([][]int, len(ka)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(kb)+1)
	}
	for i := len(ka) - 1; i >= 0; i-- {
		for j := len(kb) - 1; j >= 0; j-- {
			if ka[i] == kb[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(ka) && j < len(kb) {
		switch {
		case ka[i] == kb[j]:
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			onlyA = append(onlyA, la[i])
			i++
		default:
			onlyB = append(onlyB, lb[j])
			j++
		}
	}
	return append(onlyA, la[i:]...), append(onlyB, lb[j:]...)
}

// consoleLines returns s's lines without carriage returns, trailing
// blanks and empty lines.
func consoleLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(crless(s), "\n") {
		if l = strings.TrimRight(l, " "); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// mhz is the CPU clock NetBSD measures at boot ("686-class, 2315MHz").
var mhz = regexp.MustCompile(`\b\d+MHz\b`)

// clockless is l without the clock's figure.
func clockless(l string) string { return mhz.ReplaceAllString(l, "MHz") }

// crless drops carriage returns: NetBSD's console ends its lines with
// "\n\r" (cnputc sends the \r after the \n), which both machines pass on
// as the kernel wrote it.
func crless(s string) string { return strings.ReplaceAll(s, "\r", "") }

// wantInOrder checks that out holds each of want, in this order.
func wantInOrder(t *testing.T, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("output lacks %q (in this order):\n%s", w, out)
			return
		}
		rest = rest[i+len(w):]
	}
}

// TestConsoleDiff: the comparison of two consoles sees a line one side
// prints more often than the other, and a line printed in another order,
// not only lines the other side never prints; the CPU's measured clock,
// which differs run to run, is not a difference.
func TestConsoleDiff(t *testing.T) {
	for _, tc := range []struct {
		name         string
		a, b         string
		onlyA, onlyB []string
	}{
		{"same", "x\r\ny\n\r", "x\ny\n", nil, nil},
		{"a line only one side prints", "x\nz\ny\n", "x\ny\n", []string{"z"}, nil},
		{"repeated on one side", "x\ny\ny\n", "x\ny\n", []string{"y"}, nil},
		{"reordered", "x\ny\nz\nw\n", "x\nz\nw\ny\n", []string{"y"}, []string{"y"}},
		{"the clock measured", "cpu0 at mainbus0: AMD 686-class, 2315MHz, id 0x60fb1\n", "cpu0 at mainbus0: AMD 686-class, 4414MHz, id 0x60fb1\n", nil, nil},
		{"trailing blanks and empty lines", "x  \n\ny\n", "x\ny\n\n", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			onlyA, onlyB := consoleDiff(tc.a, tc.b)
			if !slices.Equal(onlyA, tc.onlyA) || !slices.Equal(onlyB, tc.onlyB) {
				t.Errorf("consoleDiff = %q, %q; want %q, %q", onlyA, onlyB, tc.onlyA, tc.onlyB)
			}
		})
	}
}
