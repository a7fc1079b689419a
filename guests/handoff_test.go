package guests

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
	"github.com/smolvmm/smolvmm/netbsdboot"
)

// nbPlan is a small stand-in for a NetBSD native loader's plan: the
// kernel's PT_LOADs at p_paddr (.bss as zeros), a copy of its ELF header as
// the symbol area, one module, bootinfo records and the entry stack. It
// returns the regions, the physical entry and ESP, and the lines the
// nb_print code must print for them (nbinfo.c's format).
type nbPlan struct {
	regions    []Region
	entry, esp uint32
	lines      []string
}

const (
	planStack    = 0x4000 // ESP: return address and six words above it
	planBootinfo = 0x5000
	planModule   = 0x400000
	planExtmem   = 130048 // KiB above 1 MiB in a 128 MiB machine
)

func le32(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

func field(s string, n int) []byte {
	b := make([]byte, n)
	copy(b, s)
	return b
}

func makePlan(t *testing.T, kernel string) nbPlan {
	t.Helper()
	raw, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var p nbPlan
	var end uint64
	for _, ph := range f.Progs {
		if ph.Type != elf.PT_LOAD {
			continue
		}
		data := make([]byte, ph.Memsz)
		if _, err := io.ReadFull(ph.Open(), data[:ph.Filesz]); err != nil {
			t.Fatal(err)
		}
		p.regions = append(p.regions, Region{ph.Paddr, data})
		end = max(end, ph.Paddr+ph.Memsz)
		if f.Entry >= ph.Vaddr && f.Entry < ph.Vaddr+ph.Memsz {
			p.entry = uint32(f.Entry - ph.Vaddr + ph.Paddr)
		}
	}
	if p.entry == 0 {
		t.Fatalf("%s: entry %#x in no PT_LOAD", kernel, f.Entry)
	}
	// Symbol area: just the ELF header, enough for the guest's "head=7f454c46".
	ssym := (end + 3) &^ 3
	p.regions = append(p.regions, Region{ssym, raw[:64]})
	esymSyms := uint32(ssym) + 64
	mod := append([]byte("\x7fELFmodule"), make([]byte, 6)...)
	p.regions = append(p.regions, Region{planModule, mod})
	esym := uint32(planModule + len(mod))

	memmap := le32(2)
	for _, e := range [][3]uint64{{0, 0x9fc00, 1}, {0x100000, 0x7f00000, 1}} {
		memmap = binary.LittleEndian.AppendUint64(memmap, e[0])
		memmap = binary.LittleEndian.AppendUint64(memmap, e[1])
		memmap = binary.LittleEndian.AppendUint32(memmap, uint32(e[2]))
	}
	modlist := append(le32(1, esym), field("miniroot.kmod", 80)...)
	modlist = append(modlist, le32(1, uint32(len(mod)), planModule)...)
	records := []struct {
		typ   uint32
		name  string
		body  []byte
		lines []string
	}{
		{0, "bootpath", field("netbsd", 80), []string{`nb: btinfo bootpath "netbsd"`}},
		{1, "rootdevice", field("md0a", 16), []string{`nb: btinfo rootdevice "md0a"`}},
		{6, "console", append(field("com", 16), le32(0x3f8, 9600)...),
			[]string{`nb: btinfo console "com" addr=0x3f8 speed=9600`}},
		{8, "symtab", le32(1, uint32(ssym), esymSyms), []string{fmt.Sprintf(
			"nb: btinfo symtab nsym=1 ssym=%#x esym=%#x head=7f454c46", ssym, esymSyms)}},
		{9, "memmap", memmap, []string{"nb: btinfo memmap num=2",
			"nb: memmap addr=0x0000000000000000 size=0x000000000009fc00 type=1",
			"nb: memmap addr=0x0000000000100000 size=0x0000000007f00000 type=1"}},
		{11, "modulelist", modlist, []string{fmt.Sprintf("nb: btinfo modulelist num=1 endpa=%#x", esym),
			fmt.Sprintf(`nb: module "miniroot.kmod" type=1 len=%d base=%#x head=7f454c46`, len(mod), planModule)}},
	}
	table := le32(uint32(len(records)))
	var recs []byte
	addr := uint32(planBootinfo + 4 + 4*len(records))
	p.esp = planStack
	p.lines = []string{
		fmt.Sprintf("nb: esp=%#x return=0x0", planStack),
		fmt.Sprintf("nb: boothowto=0x0 bootdev=0x0 bootinfo=%#x esym=%#x extmem=%d basemem=639", planBootinfo, esym, planExtmem),
		fmt.Sprintf("nb: bootinfo entries=%d", len(records)),
	}
	for i, r := range records {
		rec := append(le32(uint32(8+len(r.body)), r.typ), r.body...)
		h := fnv.New32a()
		h.Write(rec)
		table = append(table, le32(addr)...)
		p.lines = append(p.lines, fmt.Sprintf("nb: record %d at %#x type=%d %s len=%d fnv=0x%08x", i, addr, r.typ, r.name, len(rec), h.Sum32()))
		p.lines = append(p.lines, r.lines...)
		recs = append(recs, rec...)
		addr += uint32(len(rec))
	}
	p.regions = append(p.regions,
		Region{planBootinfo, append(table, recs...)},
		Region{planStack, le32(0, 0, 0, planBootinfo, esym, planExtmem, 639)})
	return p
}

// memory returns 128 MiB of guest memory holding the plan's regions.
func (p nbPlan) memory(t *testing.T) []byte {
	mem := make([]byte, HandoffMemMiB<<20)
	for _, r := range p.regions {
		copy(mem[r.Addr:], r.Data)
	}
	return mem
}

// runHandoff boots kernel through the handoff guest with plan's regions.
func runHandoff(t *testing.T, kernel string, p nbPlan, system string) (string, int) {
	t.Helper()
	args, err := HandoffQEMUArgs(build(t, "handoff"), t.TempDir(), p.regions, p.entry, p.esp)
	if err != nil {
		t.Fatal(err)
	}
	return runQEMU(t, kernel, qemuOpts{system: system, memMiB: HandoffMemMiB, boot: args})
}

func checkOutput(t *testing.T, out string, lines []string) {
	t.Helper()
	t.Logf("output:\n%s", out)
	if want := strings.Join(lines, "\r\n") + "\r\n"; out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}

// TestNBInfoLines checks the Go decoder against the hand-written lines of
// makePlan, and its refusals.
func TestNBInfoLines(t *testing.T) {
	p := makePlan(t, build(t, "nbboot"))
	mem := p.memory(t)
	got, err := NBInfoLines(mem, p.esp)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "\n") != strings.Join(p.lines, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(p.lines, "\n"))
	}
	bad := func(addr uint32, v uint32) []byte {
		m := append([]byte(nil), mem...)
		binary.LittleEndian.PutUint32(m[addr:], v)
		return m
	}
	rec0 := binary.LittleEndian.Uint32(mem[planBootinfo+4:])
	tests := []struct {
		name string
		mem  []byte
		esp  uint32
		want string
	}{
		{"stack outside", mem, uint32(len(mem)) - 8, "stack: 28 bytes at"},
		{"too many entries", bad(planBootinfo, 33), planStack, "33 entries"},
		{"short record", bad(rec0, 4), planStack, "length 4 outside"},
		{"record outside", bad(planBootinfo+4, uint32(len(mem))-4), planStack, "bootinfo record 0: 8 bytes at"},
		{"short bootpath", bad(rec0, 20), planStack, "(bootpath) at 0x501c: 20 bytes, needs 88"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NBInfoLines(tc.mem, tc.esp)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestQEMUHandoffGuests boots nbboot and long64 with makePlan's regions
// and compares their whole output, the nb: lines with makePlan's own.
func TestQEMUHandoffGuests(t *testing.T) {
	for _, tc := range []struct {
		guest, system string
		lines         func(string, []byte, uint32) ([]string, error)
	}{
		{"nbboot", "", NbbootLines},
		{"long64", "qemu-system-x86_64", Long64Lines},
	} {
		t.Run(tc.guest, func(t *testing.T) {
			kernel := build(t, tc.guest)
			p := makePlan(t, kernel)
			want, err := tc.lines(kernel, p.memory(t), p.esp)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(want, "\n"), strings.Join(p.lines, "\n")) {
				t.Fatalf("expected lines:\n%s\nlack makePlan's:\n%s", strings.Join(want, "\n"), strings.Join(p.lines, "\n"))
			}
			out, status := runHandoff(t, kernel, p, tc.system)
			if status != 1 {
				t.Errorf("exit status %d, want 1 (debug-exit value 0)", status)
			}
			handoff := fmt.Sprintf("handoff: %d regions, entering %#x with esp=%#x", len(p.regions), p.entry, p.esp)
			checkOutput(t, out, append([]string{handoff}, want...))
		})
	}
}

func TestHandoffQEMUArgs(t *testing.T) {
	dir := t.TempDir()
	args, err := HandoffQEMUArgs("h.elf", dir, []Region{
		{0x100000, []byte("kernel")}, {0x6000, nil}, {0x5000, []byte("info")},
	}, 0x100000, 0x4000)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-kernel", "h.elf", "-append", "entry=0x100000 esp=0x4000", "-initrd",
		filepath.Join(dir, "region-00.bin") + " load=0x100000," + filepath.Join(dir, "region-02.bin") + " load=0x5000"}
	if fmt.Sprintf("%q", args) != fmt.Sprintf("%q", want) {
		t.Errorf("args %q, want %q", args, want)
	}
	for name, data := range map[string]string{"region-00.bin": "kernel", "region-02.bin": "info"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != data {
			t.Errorf("%s: %q, %v; want %q", name, b, err, data)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "region-01.bin")); err == nil {
		t.Error("an empty region was written")
	}

	many := make([]Region, 65)
	for i := range many {
		many[i] = Region{uint64(i) * 0x1000, []byte{1}}
	}
	tests := []struct {
		name, dir string
		regions   []Region
		want      string
	}{
		{"comma", filepath.Join(dir, "a,b"), nil, "comma or a space"},
		{"above", dir, []Region{{HandoffBase - 1, []byte{1, 2}}}, "region 0 (0x3ffffff, 2 bytes) does not end below"},
		{"wrap", dir, []Region{{1<<64 - 1, []byte{1, 2}}}, "region 0"},
		{"overlap", dir, []Region{{0x2000, make([]byte, 0x1000)}, {0x1800, make([]byte, 0x1000)}},
			"regions 1 (0x1800-0x2800) and 0 (0x2000-0x3000) overlap"},
		{"too many", dir, many, "65 handoff regions, at most 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := HandoffQEMUArgs("h.elf", tc.dir, tc.regions, 0, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestQEMUNativeLoader boots nbboot and long64 through smolvmm's own NetBSD
// loader (netbsdboot) into a []byte-backed memory, then under QEMU through
// the handoff guest with the plan's regions, and compares the guest's whole
// output with what the loader wrote (NbbootLines, Long64Lines): QEMU is the
// reference for the guest, the guest the check of the loader.
func TestQEMUNativeLoader(t *testing.T) {
	for _, tc := range []struct {
		guest, system string
		lines         func(string, []byte, uint32) ([]string, error)
		class         byte // the kernel's ELF class, which its kmod must have
	}{
		{"nbboot", "", NbbootLines, 1},
		{"long64", "qemu-system-x86_64", Long64Lines, 2},
	} {
		t.Run(tc.guest, func(t *testing.T) {
			mod := elftest.Kmod(tc.class, 4096)
			kernel := build(t, tc.guest)
			raw, err := os.ReadFile(kernel)
			if err != nil {
				t.Fatal(err)
			}
			mem := guestmem.New(make([]byte, HandoffMemMiB<<20))
			plan, err := netbsdboot.Load(mem, bytes.NewReader(raw), int64(len(raw)), netbsdboot.Options{
				KernelName: "netbsd", Append: "-s console=com root=md0a",
				Modules: []netbsdboot.Module{{Name: "miniroot.kmod", Data: mod}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if plan.EAX != 0 || plan.EBX != 0 {
				t.Fatalf("plan EAX %#x EBX %#x: the handoff guest enters with both 0", plan.EAX, plan.EBX)
			}
			var regions []Region
			for _, r := range plan.Regions {
				if r.Len > 0 { // the handoff guest gets (and counts) non-empty regions only
					regions = append(regions, Region{r.Addr, mem.Bytes()[r.Addr : r.Addr+r.Len]})
				}
			}
			want, err := tc.lines(kernel, mem.Bytes(), plan.ESP)
			if err != nil {
				t.Fatal(err)
			}
			out, status := runHandoff(t, kernel, nbPlan{regions: regions, entry: plan.EIP, esp: plan.ESP}, tc.system)
			if status != 1 {
				t.Errorf("exit status %d, want 1 (debug-exit value 0)", status)
			}
			handoff := fmt.Sprintf("handoff: %d regions, entering %#x with esp=%#x", len(regions), plan.EIP, plan.ESP)
			checkOutput(t, out, append([]string{handoff}, want...))
			// The comparison above holds for any esym the loader
			// writes; the contract's is the end of everything loaded
			// (docs/NETBSD-BOOT-NOTES.md, the /boot handoff), here
			// the module's end.
			var modEnd uint64
			for _, r := range plan.Regions {
				if strings.HasPrefix(r.What, "module miniroot.kmod") && r.Len == uint64(len(mod)) {
					modEnd = r.Addr + r.Len
				}
			}
			if modEnd == 0 {
				t.Fatalf("no region of %d bytes for miniroot.kmod in %v", len(mod), plan.Regions)
			}
			if w := fmt.Sprintf(" esym=%#x extmem=", modEnd); !strings.Contains(out, w) {
				t.Errorf("the guest did not get esym %#x, the module's end (want %q in its stack line)", modEnd, w)
			}
		})
	}
}
