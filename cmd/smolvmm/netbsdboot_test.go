package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// netbsdELF is an ELF32 kernel for machine with NetBSD's ident note and
// code at its entry.
func netbsdELF(machine uint16, code []byte) []byte {
	if code == nil {
		code = []byte{0xf4}
	}
	return elftest.File{Machine: machine, Entry: 0xc0100000,
		Segs: []elftest.Seg{{Vaddr: 0xc0100000, Paddr: 0x100000, Data: code, Memsz: 0x1000}},
		Secs: []elftest.Sec{{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)}},
	}.Build()
}

// mbGuard is code for a kernel's entry that jumps over the multiboot v1
// header after it (flags 2, as NetBSD i386 GENERIC's).
var mbGuard = []byte{
	0xeb, 0x0e, 0x90, 0x90, // jmp over the header
	0x02, 0xb0, 0xad, 0x1b, 2, 0, 0, 0, 0xfc, 0x4f, 0x52, 0xe4, // multiboot header
}

// exitByProtocol writes 3 to the debug-exit port when EAX holds the
// multiboot magic at entry, else 2: status 7 for multiboot, 5 for the
// native handoff, neither a refusal's 1.
var exitByProtocol = []byte{
	0x3d, 0x02, 0xb0, 0xad, 0x2b, // cmp eax, 0x2badb002
	0x0f, 0x94, 0xc0, // sete al
	0x0f, 0xb6, 0xc0, // movzx eax, al
	0x83, 0xc0, 0x02, // add eax, 2
	0x66, 0xba, 0x01, 0x05, // mov dx, 0x501
	0xef, 0xf4, // out dx, eax; hlt
}

// Statuses of a kernel running exitByProtocol.
const (
	statusNative    = 5
	statusMultiboot = 7
)

// netbsdELF64 is an amd64 NetBSD kernel (ELF64, linked at
// 0xffffffff80200000, loaded at 2 MiB) whose entry runs code in 32-bit
// mode, as amd64's start does.
func netbsdELF64(code []byte) []byte {
	return elftest.File{Class: 2, Machine: 62, Entry: 0xffffffff80200000,
		Segs: []elftest.Seg{{Vaddr: 0xffffffff80200000, Paddr: 0x200000, Data: code, Memsz: 0x1000}},
		Secs: []elftest.Sec{{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 1000000000)}},
	}.Build()
}

// TestCLIAutoProtocolPassesOverMultiboot: a NetBSD kernel with a multiboot
// header boots by the native handoff under --boot auto when given a
// --module (NetBSD's multiboot entry never reads the module list) or
// when it is ELF64 (multiboot v1 loads ELF32 only), and -v and
// --timings say why; without either it stays on multiboot.
func TestCLIAutoProtocolPassesOverMultiboot(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := t.TempDir()
	i386 := filepath.Join(dir, "netbsd")
	amd64 := filepath.Join(dir, "netbsd64")
	kmod := filepath.Join(dir, "miniroot.kmod")
	for path, data := range map[string][]byte{
		i386:  netbsdELF(3, append(append([]byte(nil), mbGuard...), exitByProtocol...)),
		amd64: netbsdELF64(append(append([]byte(nil), mbGuard...), exitByProtocol...)),
		kmod:  elftest.Kmod(1, 104),
	} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	modules := "the kernel has a multiboot header, but NetBSD's multiboot entry ignores boot modules"
	elf64 := "the kernel has a multiboot header, but multiboot v1 loads no ELF64 file without the a.out kludge"
	for _, tt := range []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"i386, module", []string{"-k", i386, "--module", kmod}, statusNative, []string{
			"smolvmm: boot protocol netbsd chosen: " + modules + "\n",
			"module miniroot.kmod",
			"boot protocol netbsd: " + modules + "):",
		}},
		{"i386, no module", []string{"-k", i386}, statusMultiboot, []string{"smolvmm: boot protocol multiboot (elf32 kernel)", "boot protocol multiboot):"}},
		{"amd64", []string{"-k", amd64}, statusNative, []string{
			"smolvmm: boot protocol netbsd chosen: " + elf64 + "\n",
			"boot protocol netbsd: " + elf64 + "):",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "-m", "16", "--net", "none", "-a", "console=com", "-v", "--timings"}, tt.args...)
			_, stderr, status := runCLI(t, args...)
			if status != tt.status {
				t.Fatalf("status %d, want %d (%s); stderr:\n%s", status, tt.status, map[int]string{statusNative: "native", statusMultiboot: "multiboot"}[tt.status], stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}

// TestCLINetBSDHandoff runs a NetBSD-noted guest that writes boothowto to
// the debug-exit port: -v names the protocol and what was loaded,
// --timings names the protocol, and the append line's boot flag reaches
// the guest.
func TestCLINetBSDHandoff(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	code := []byte{
		0x8b, 0x44, 0x24, 0x04, // mov eax, [esp+4]: boothowto
		0x66, 0xba, 0x01, 0x05, // mov dx, 0x501
		0xef, 0xf4, // out dx, eax; hlt
	}
	k := filepath.Join(t.TempDir(), "netbsd")
	if err := os.WriteFile(k, netbsdELF(3, code), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(smolvmmBin(t), "run", "-k", k, "-m", "16", "-a", "-s console=com init=/bin/sh", "-v", "--timings")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	// RB_SINGLE = 2 written to the port: status (2<<1)|1.
	if !ok || ee.ExitCode() != 5 {
		t.Fatalf("run: %v, want exit status 5; stderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{
		"smolvmm: boot protocol netbsd (elf32 kernel): EIP 0x100000 ESP 0x6fe4",
		"loaded [0x00100000, 0x00101000) segment 0",
		`boot warning: "init=/bin/sh" is not passed`,
		"timings (ms since the Go runtime started; boot protocol netbsd)",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestCLINetBSDHandoffNotes: without -v, what the native handoff cannot
// pass is still said once on stderr (a NetBSD kernel without console=
// prints to a display smolvmm does not have: silence otherwise, by either
// protocol); with console=com and nothing left out, only that this test
// kernel has no symbols.
func TestCLINetBSDHandoffNotes(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := t.TempDir()
	k := filepath.Join(dir, "netbsd")
	exit0 := []byte{
		0x31, 0xc0, // xor eax, eax
		0x66, 0xba, 0x01, 0x05, // mov dx, 0x501
		0xef, 0xf4, // out dx, eax; hlt
	}
	if err := os.WriteFile(k, netbsdELF(3, exit0), 0o644); err != nil {
		t.Fatal(err)
	}
	// The same with a multiboot header (flags 2), as GENERIC has: its
	// code jumps over the header. NetBSD's multiboot entry leaves the
	// console on the display without console= too.
	mb := filepath.Join(dir, "netbsd-multiboot")
	if err := os.WriteFile(mb, netbsdELF(3, append([]byte{
		0xeb, 0x0e, 0x90, 0x90, // jmp over the header
		0x02, 0xb0, 0xad, 0x1b, 2, 0, 0, 0, 0xfc, 0x4f, 0x52, 0xe4, // multiboot header
	}, exit0...)), 0o644); err != nil {
		t.Fatal(err)
	}
	noConsole := "smolvmm run: note: no console= given: the kernel's console is pc"
	for _, tt := range []struct {
		kernel, appendLine string
		notes              []string
	}{
		{k, "console=com root=ld0a", nil},
		{k, "-s", []string{noConsole}},
		{k, "console=com init=/bin/sh", []string{`smolvmm run: note: "init=/bin/sh" is not passed`}},
		{mb, "console=com root=ld0a", nil},
		{mb, "-s root=ld0a", []string{noConsole}},
		// NetBSD's multiboot entry reads the line, but only some of it.
		{mb, "console=com root=ld0a init=/sbin/init single", []string{
			`smolvmm run: note: "init=/sbin/init" is ignored by NetBSD's multiboot entry, except that its "/sbin/init" becomes the booted kernel's path`,
			`smolvmm run: note: "single" is ignored by NetBSD's multiboot entry`}},
	} {
		if tt.kernel == k {
			// This kernel has no symbols: the loader says so too.
			tt.notes = append(tt.notes, "smolvmm run: note: the kernel has no symbol table")
		}
		t.Run(filepath.Base(tt.kernel)+" "+tt.appendLine, func(t *testing.T) {
			_, stderr, status := runCLI(t, "run", "-k", tt.kernel, "-m", "16", "--net", "none", "-a", tt.appendLine)
			if status != 1 { // debug-exit 0: (0<<1)|1
				t.Fatalf("status %d, want 1; stderr:\n%s", status, stderr)
			}
			if got := strings.Count(stderr, "note:"); got != len(tt.notes) {
				t.Errorf("%d notes, want %d; stderr:\n%s", got, len(tt.notes), stderr)
			}
			for _, want := range tt.notes {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}

// TestBootAdvice: a kernel the boot protocol cannot load gets advice
// that fits how the protocol was chosen, in one pair of parentheses. A
// NetBSD kernel forced to multiboot was told to "pass a multiboot v1
// kernel or a NetBSD i386/amd64 ELF kernel (netbsd, netbsd-GENERIC.gz)",
// which it is.
func TestBootAdvice(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm: the kernel is judged when the VM loads it")
	}
	dir := t.TempDir()
	netbsd := filepath.Join(dir, "netbsd-GENERIC")
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(netbsd, netbsdELF(3, nil), 0o644); err != nil { // EM_386, no multiboot header
		t.Fatal(err)
	}
	if err := os.WriteFile(text, bytes.Repeat([]byte("hello "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	netbsdMB := filepath.Join(dir, "netbsd-multiboot")
	netbsd64 := filepath.Join(dir, "netbsd64")
	kmod := filepath.Join(dir, "miniroot.kmod")
	// GENERIC_KASLR: amd64, linked relocatable, with the ident note and
	// locore's start.
	kaslr := filepath.Join(dir, "netbsd-GENERIC_KASLR")
	// XEN3_DOMU: amd64 with its Xen notes, PV entry point (type 1)
	// among them, in .note.Xen and no __xen_guest section, as the
	// linker leaves it.
	xen := filepath.Join(dir, "netbsd-XEN3_DOMU")
	sym, str := elftest.Symtab(2, false, []elftest.Sym{{Name: "start", Value: 0x20, Shndx: 1}})
	for path, data := range map[string][]byte{
		kaslr: elftest.File{Class: 2, Type: 1, Secs: []elftest.Sec{
			{Name: ".text", Type: 1, Flags: 6, Data: make([]byte, 0x100)},
			{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)},
			{Name: ".symtab", Type: 2, Data: sym, Link: 4, Info: 1},
			{Name: ".strtab", Type: 3, Data: str},
		}}.Build(),
		xen: elftest.File{Class: 2, Machine: 62, Entry: 0xffffffff80200000,
			Segs: []elftest.Seg{{Vaddr: 0xffffffff80200000, Paddr: 0xffffffff80200000, Data: []byte{0xf4}, Memsz: 0x1000}},
			Secs: []elftest.Sec{
				{Name: ".note.netbsd.ident", Type: 7, Data: elftest.NetBSDNote(false, 901000000)},
				{Name: ".note.Xen", Type: 7, Data: append(elftest.Note(false, "Xen", 6, []byte("NetBSD\x00")), elftest.Note(false, "Xen", 1, make([]byte, 8))...)},
			}}.Build(),
		// Booted, they exit (status 5 or 7) rather than halt for ever.
		netbsdMB: netbsdELF(3, append(append([]byte(nil), mbGuard...), exitByProtocol...)),
		netbsd64: netbsdELF64(append(append([]byte(nil), mbGuard...), exitByProtocol...)),
		kmod:     elftest.Kmod(1, 104),
	} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		args   []string
		advice string
	}{
		{"NetBSD kernel forced to multiboot", []string{"-k", netbsd, "--boot", "multiboot"},
			"--boot multiboot forced the multiboot protocol: drop --boot to let smolvmm choose, or use --boot netbsd for a NetBSD ELF kernel"},
		{"no kernel forced to netbsd", []string{"-k", text, "--boot", "netbsd"},
			"--boot netbsd forced NetBSD's native handoff, which boots only a NetBSD i386/amd64 ELF kernel: drop --boot to let smolvmm choose, or use --boot multiboot for a multiboot kernel"},
		{"NetBSD kernel with a module forced to multiboot", []string{"-k", netbsdMB, "--module", kmod, "--boot", "multiboot"},
			"--boot multiboot forced multiboot: use --boot netbsd, NetBSD's native handoff, which passes --module files, or drop --boot"},
		{"amd64 NetBSD kernel forced to multiboot", []string{"-k", netbsd64, "--boot", "multiboot"},
			"--boot multiboot forced multiboot, which loads no ELF64 kernel: use --boot netbsd, or drop --boot"},
		{"no kernel", []string{"-k", text},
			"pass -k a multiboot v1 kernel or a NetBSD i386/amd64 ELF kernel, such as netbsd or netbsd-GENERIC.gz; --boot forces a protocol"},
		{"amd64 KASLR kernel", []string{"-k", kaslr},
			kaslrAdvice},
		{"Xen PV kernel", []string{"-k", xen},
			"pass -k the release's netbsd-GENERIC (or netbsd-GENERIC.gz): a Xen PV kernel runs only under Xen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, status := runCLI(t, append([]string{"run", "--net", "none"}, tt.args...)...)
			msg := strings.TrimSuffix(stderr, "\n")
			if status != 1 || !strings.HasSuffix(msg, " ("+tt.advice+")") {
				t.Fatalf("status %d, stderr %q\nwant 1 and the advice (%s)", status, msg, tt.advice)
			}
		})
	}
}

// TestCLINativeLongKernelName: NetBSD's native handoff passes no command
// line, so a kernel's long file name (235 bytes, through a symlink) and a
// long -a boot under --boot netbsd: the name is cut in BTINFO_BOOTPATH,
// with a warning, and the words the handoff cannot pass are listed. Both
// were refused as overflowing multiboot's 254-byte command line.
func TestCLINativeLongKernelName(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := t.TempDir()
	k := filepath.Join(dir, "netbsd")
	if err := os.WriteFile(k, netbsdELF(3, append(append([]byte(nil), mbGuard...), exitByProtocol...)), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, strings.Repeat("n", 235))
	if err := os.Symlink(k, link); err != nil {
		t.Fatal(err)
	}
	word := strings.Repeat("w", 300)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"long name, default -a", []string{"-k", link}, "the kernel's name is cut to 79 bytes in BTINFO_BOOTPATH"},
		{"long -a", []string{"-k", k, "-a", "console=com " + word}, `"` + word + `" is not passed`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "-m", "16", "--net", "none", "--boot", "netbsd", "-v"}, tt.args...)
			_, stderr, status := runCLI(t, args...)
			if status != statusNative || !strings.Contains(stderr, tt.want) {
				t.Errorf("status %d, want %d and %q in stderr:\n%s", status, statusNative, tt.want, stderr)
			}
		})
	}
}
