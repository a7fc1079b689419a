package kstrip

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// DefaultKeep is what a smolvmm virtio microVM needs; everything else is
// disabled. It is the predecessor's list reviewed against what the kernel
// finds on smolvmm's machine (docs/NETBSD-BOOT-NOTES.md, "The machine
// without firmware"):
//   - mainbus, cpu: the root and the boot CPU.
//   - acpi, acpicpu, ioapic: attach only from ACPI or MP tables, which
//     smolvmm does not provide, but keep the kernel right on a VMM that
//     has them. acpi0 (at mainbus0) goes with the other two: mainbus
//     looks for ACPI tables only while an acpi entry is enabled, so
//     without it neither ioapic (from the MADT) nor acpicpu would ever
//     attach. Without tables the probe is a short memory scan that fails
//     and prints two error lines (NetBSD 9: ACPICA's "A valid RSDP was
//     not found" and "acpi_probe: failed to initialize tables"). Its
//     children (pckbc, hpet... at acpi?) are not kept.
//   - pci, isa: the buses of virtio and of the serial port. Keeping them
//     keeps every bridge they may sit behind (ppb, pcib...), which only
//     match PCI IDs.
//   - com_isa: the ISA serial ports (com0 at isa? port 0x3f8 is the
//     console and the tty init uses). By attachment, not "com", since
//     "com" would keep com at puc, pcmcia, isapnp and acpi and their buses.
//   - virtio, vioif: the virtio PCI transport and the network driver.
//   - ld_virtio: the virtio disk (ld at virtio only; "ld" would keep ld
//     at aac, cac, mlx, nvme, sdmmc... and their buses, eisa included).
//   - npx: the i386 FPU driver of kernels before NetBSD 6 (npx0 at isa?
//     in the 5.99.15 kernel); later kernels handle the FPU without a
//     device and lack the name (see EraNames).
//
// Dropped: pcdisplay and wsdisplay (smolvmm has no display and the console
// is com; keeping wsdisplay would keep every frame buffer driver as its
// parent). Not kept, on purpose: fdc (its probe costs at least 1 s) and
// pckbc (up to 100,000 polls of port 0x64).
var DefaultKeep = []string{
	"mainbus", "cpu", "acpi", "acpicpu", "ioapic",
	"pci", "isa", "com_isa",
	"virtio", "ld_virtio", "vioif", "npx",
}

// EraNames are the DefaultKeep names only some NetBSD releases have: a
// kernel without one is stripped without it, unremarked
// (Kernel.Applicable does not count it missing), and a Plan naming it in
// any list skips it with a note (Report.Notes).
var EraNames = []string{"npx"}

// eraWhat says what era name n is, and which kernels lack it.
func eraWhat(n string) string {
	if n == "npx" {
		return "the i386 FPU driver of kernels before NetBSD 6.0, which later ones lack"
	}
	return "a driver only some NetBSD releases have"
}

// configWord says whether w begins the lines of a kernel configuration
// file (config(5)) that name no device; none is a driver's name. A switch,
// not a map: a package-level map is built at every start of smolvmm.
func configWord(w string) bool {
	switch w {
	case "options", "makeoptions", "include", "cinclude", "pseudo-device", "maxusers",
		"file-system", "config", "ident", "machine", "no", "select":
		return true
	}
	return false
}

// ReadKeepList reads one name per line; blank lines and everything after
// a '#' are ignored. Several names on one line, separated by spaces or
// commas, are accepted too. A line written as a kernel configuration's
// ("options INSECURE", "com0 at isa? port 0x3f8") is refused with
// ErrConfigFile: its words are no names, and would each be unknown.
func ReadKeepList(r io.Reader) ([]string, error) {
	var names []string
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.FieldsFunc(text, func(c rune) bool { return c == ',' || c == ' ' || c == '\t' || c == '\r' })
		if len(fields) > 0 && (configWord(fields[0]) || slices.Contains(fields, "at")) {
			text = strings.TrimSpace(text)
			if len(text) > 60 {
				text = text[:60] + "..."
			}
			return nil, fmt.Errorf("keep list line %d, %q, is written as in a kernel configuration (config(5)): %w", line, text, ErrConfigFile)
		}
		for _, f := range fields {
			if strings.ContainsRune(f, 0) {
				return nil, fmt.Errorf("keep list line %d: name %q contains a NUL byte", line, f)
			}
			names = append(names, f)
		}
	}
	if err := sc.Err(); err != nil {
		// The line being read when it failed is the next one.
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("keep list line %d: longer than %d bytes, so not a list of names: %w", line+1, bufio.MaxScanTokenSize, err)
		}
		return nil, fmt.Errorf("keep list line %d: %w", line+1, err)
	}
	return names, nil
}
