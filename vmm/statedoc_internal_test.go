package vmm

import (
	"encoding/binary"
	"fmt"
	"go/parser"
	"go/token"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// snapshotDoc returns package snapshot's doc comment, where a reader
// who has no other source learns the state section's layout.
func snapshotDoc(t *testing.T) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../snapshot/snapshot.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	return f.Doc.Text()
}

// TestStateLayoutDocumented: package snapshot's doc lists the state
// section's KVM entries in encodeState's order, each the kernel structure
// of its size (it listed xsave, xcrs or fpu second, the pit and clock
// after the CPUID), and the interrupt controllers; a demo state encodes
// as the doc says, entry by entry, with nothing after.
func TestStateLayoutDocumented(t *testing.T) {
	doc := snapshotDoc(t)
	i := strings.Index(doc, "Package vmm writes the state section")
	j := strings.Index(doc[max(i, 0):], "and nothing after")
	if i < 0 || j < 0 {
		t.Fatal(`package snapshot's doc has no "Package vmm writes the state section ... and nothing after"`)
	}
	doc = doc[i : i+j]
	// Entry lines: a number, then the text up to the next entry or the
	// interrupt controllers' count.
	entryRE := regexp.MustCompile(`(?m)^\t ?(\d+) +(.*(?:\n\t {4,}\S.*)*)`)
	type entry struct {
		kernel string
		size   int // the structure's, or an array element's
	}
	kernel := map[string]entry{
		"regs": {"kvm_regs", sizeRegs}, "sregs": {"kvm_sregs", sizeSregs}, "lapic": {"kvm_lapic_state", sizeLAPIC},
		"vcpu events": {"kvm_vcpu_events", sizeEvents}, "mp state": {"kvm_mp_state", sizeMPState},
		"debug registers": {"kvm_debugregs", sizeDebug}, "xsave": {"kvm_xsave", sizeXSave}, "xcrs": {"kvm_xcrs", sizeXCRs},
		"fpu": {"kvm_fpu", sizeFPU}, "pit2": {"kvm_pit_state2", sizePIT2}, "clock": {"kvm_clock_data", sizeClock},
	}
	var want []entry
	for _, n := range stateBlobNames {
		e, ok := kernel[n]
		if !ok {
			t.Fatalf("stateBlobNames has %q, which this test does not know", n)
		}
		want = append(want, e)
	}
	want = append(want, entry{"kvm_msr_entry", sizeMSREntry}, entry{"kvm_cpuid_entry2", sizeCPUIDEntry}, entry{"kvm_cpuid_entry2", 0})
	var got []entry
	for i, m := range entryRE.FindAllStringSubmatch(doc, -1) {
		if n, _ := strconv.Atoi(m[1]); n != i+1 {
			t.Fatalf("doc's entry %d is numbered %s", i+1, m[1])
		}
		e := entry{kernel: regexp.MustCompile(`kvm_\w+`).FindString(m[2])}
		if s := regexp.MustCompile(`\((\d+)`).FindStringSubmatch(m[2]); s != nil && i < len(want) && want[i].size != 0 {
			e.size, _ = strconv.Atoi(s[1])
		}
		got = append(got, e)
	}
	if !slices.Equal(got, want) {
		t.Errorf("package snapshot's doc lists the state's KVM entries as\n%v\nencodeState writes\n%v", got, want)
	}
	for _, s := range []string{
		fmt.Sprintf("%d entries, each a u32 length", len(want)),
		fmt.Sprintf("the number of interrupt controllers (%d)", irqchipCount),
		fmt.Sprintf("kvm_irqchip (%d bytes)", sizeIRQChip),
	} {
		if !strings.Contains(strings.Join(strings.Fields(doc), " "), s) {
			t.Errorf("package snapshot's doc lacks %q", s)
		}
	}

	// A state encodes as that says.
	b, err := encodeState(demoState(t))
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	take := func(what string) []byte {
		t.Helper()
		if len(b) < 4 || uint64(le.Uint32(b)) > uint64(len(b)-4) {
			t.Fatalf("%s: section ends before it", what)
		}
		n := le.Uint32(b)
		p := b[4 : 4+n]
		b = b[4+n:]
		return p
	}
	take("fields part")
	for i, e := range want {
		p := take(e.kernel)
		switch {
		case len(p) == 0:
		case i >= len(stateBlobNames) && len(p)%e.size != 0 && e.size != 0,
			i < len(stateBlobNames) && len(p) != e.size && !(e.kernel == "kvm_xsave" && len(p) > e.size):
			t.Errorf("entry %d (%s): %d bytes", i+1, e.kernel, len(p))
		}
	}
	if len(b) < 4 || le.Uint32(b) != irqchipCount {
		t.Fatalf("no count of %d interrupt controllers where the doc has it", irqchipCount)
	}
	b = b[4:]
	for i := range irqchipCount {
		if p := take("irqchip"); len(p) != sizeIRQChip || int(p[0]) != i {
			t.Errorf("interrupt controller %d: %d bytes, chip %d", i, len(p), p[0])
		}
	}
	if len(b) != 0 {
		t.Errorf("%d bytes after the interrupt controllers", len(b))
	}
}

// TestMTRRsDocumented: package snapshot's doc names every MTRR a
// snapshot saves beyond KVM_GET_MSR_INDEX_LIST (it named none), and no
// other MSR.
func TestMTRRsDocumented(t *testing.T) {
	doc := strings.Join(strings.Fields(snapshotDoc(t)), " ")
	i := strings.Index(doc, "The MSRs are")
	j := strings.Index(doc[max(i, 0):], "KVM's 8)")
	if i < 0 || j < 0 {
		t.Fatal(`package snapshot's doc has no "The MSRs are ... KVM's 8)" saying which MSRs a snapshot holds`)
	}
	named := map[uint32]bool{}
	for _, m := range regexp.MustCompile(`0x([0-9a-f]+)(?:-0x([0-9a-f]+))?`).FindAllStringSubmatch(doc[i:i+j], -1) {
		lo, _ := strconv.ParseUint(m[1], 16, 32)
		hi := lo
		if m[2] != "" {
			hi, _ = strconv.ParseUint(m[2], 16, 32)
		}
		for x := lo; x <= hi; x++ {
			named[uint32(x)] = true
		}
	}
	// KVM's MTRRcap: fixed ranges and 8 variable pairs; the doc names
	// MTRRcap itself as what says so.
	want := map[uint32]bool{msrMTRRCap: true}
	for _, x := range mtrrMSRs(true, mtrrCapFixed|8, true) {
		want[x] = true
	}
	if !maps.Equal(named, want) {
		t.Errorf("the doc names MSRs %x, a snapshot of a vCPU with KVM's MTRRs holds %x (and MTRRcap says which)",
			slices.Sorted(maps.Keys(named)), slices.Sorted(maps.Keys(want)))
	}
}
