package kstriptest

func p(iattr, name string, unit int) *Parent {
	return &Parent{IAttr: iattr, Name: name, Unit: unit}
}

// Generic is a cut-down i386 GENERIC ioconf: the microVM's drivers, the
// slow probes, a driver with several parents (isa), Star entries numbered
// after fixed ones (com* from 2), an entry disabled at build time (ne0),
// an interface-attribute-only parent (atabus at ata?, provided by pciide
// and wdc; see GenericProvides) and a fixed parent
// unit served by a Star entry (sd0 at scsibus0).
var Generic = []Entry{
	{Name: "mainbus", Attach: "mainbus", Unit: 0, State: 0},                                                 // 0
	{Name: "cpu", Attach: "cpu", State: 2, Parent: p("cpubus", "mainbus", -1)},                              // 1
	{Name: "acpicpu", Attach: "acpicpu", State: 2, Parent: p("cpufeaturebus", "cpu", -1)},                   // 2
	{Name: "ioapic", Attach: "ioapic", State: 2, Parent: p("ioapicbus", "mainbus", -1)},                     // 3
	{Name: "acpi", Attach: "acpi", Unit: 0, State: 0, Parent: p("acpibus", "mainbus", 0)},                   // 4
	{Name: "pci", Attach: "pci", State: 2, Parent: p("pcibus", "mainbus", -1)},                              // 5
	{Name: "pci", Attach: "pci", State: 2, Parent: p("pcibus", "ppb", -1)},                                  // 6
	{Name: "ppb", Attach: "ppb", State: 2, Parent: p("pci", "pci", -1)},                                     // 7
	{Name: "pchb", Attach: "pchb", State: 2, Parent: p("pci", "pci", -1)},                                   // 8
	{Name: "pcib", Attach: "pcib", State: 2, Parent: p("pci", "pci", -1)},                                   // 9
	{Name: "ichlpcib", Attach: "ichlpcib", State: 2, Parent: p("pci", "pci", -1)},                           // 10
	{Name: "isa", Attach: "isa", Unit: 0, State: 0, Parent: p("isabus", "mainbus", -1)},                     // 11
	{Name: "isa", Attach: "isa", Unit: 0, State: 0, Parent: p("isabus", "pcib", -1)},                        // 12
	{Name: "isa", Attach: "isa", Unit: 0, State: 0, Parent: p("isabus", "ichlpcib", -1)},                    // 13
	{Name: "com", Attach: "com_isa", Unit: 0, State: 0, Parent: p("isa", "isa", -1)},                        // 14
	{Name: "com", Attach: "com_isa", Unit: 1, State: 0, Parent: p("isa", "isa", -1)},                        // 15
	{Name: "com", Attach: "com_puc", Unit: 2, State: 2, Parent: p("puc", "puc", -1)},                        // 16
	{Name: "puc", Attach: "puc", State: 2, Parent: p("pci", "pci", -1)},                                     // 17
	{Name: "com", Attach: "com_acpi", Unit: 2, State: 2, Parent: p("acpinodebus", "acpi", -1)},              // 18
	{Name: "fdc", Attach: "fdc_isa", Unit: 0, State: 0, Parent: p("isa", "isa", -1)},                        // 19
	{Name: "fd", Attach: "fd", State: 2, Parent: p("fdc", "fdc", -1)},                                       // 20
	{Name: "pckbc", Attach: "pckbc_isa", Unit: 0, State: 0, Parent: p("isa", "isa", -1)},                    // 21
	{Name: "pckbd", Attach: "pckbd", State: 2, Parent: p("pckbport", "pckbc", -1)},                          // 22
	{Name: "pms", Attach: "pms", State: 2, Parent: p("pckbport", "pckbc", -1)},                              // 23
	{Name: "wskbd", Attach: "wskbd", State: 2, Parent: p("wskbddev", "pckbd", -1)},                          // 24
	{Name: "pciide", Attach: "pciide", State: 2, Parent: p("pci", "pci", -1)},                               // 25
	{Name: "atabus", Attach: "atabus", State: 2, Parent: p("ata", "", -1)},                                  // 26
	{Name: "wd", Attach: "wd", State: 2, Parent: p("ata_hl", "atabus", -1)},                                 // 27
	{Name: "virtio", Attach: "virtio_pci", State: 2, Parent: p("pci", "pci", -1)},                           // 28
	{Name: "ld", Attach: "ld_virtio", State: 2, Parent: p("virtio", "virtio", -1)},                          // 29
	{Name: "ld", Attach: "ld_aac", State: 2, Parent: p("aac", "aac", -1)},                                   // 30
	{Name: "aac", Attach: "aac", State: 2, Parent: p("pci", "pci", -1)},                                     // 31
	{Name: "vioif", Attach: "vioif", State: 2, Parent: p("virtio", "virtio", -1)},                           // 32
	{Name: "vga", Attach: "vga_isa", Unit: 0, State: 0, Parent: p("isa", "isa", -1)},                        // 33
	{Name: "vga", Attach: "vga_pci", Unit: 1, State: 2, Parent: p("pci", "pci", -1)},                        // 34
	{Name: "wsdisplay", Attach: "wsdisplay_emul", State: 2, Parent: p("wsemuldisplaydev", "vga", -1)},       // 35
	{Name: "pcdisplay", Attach: "pcdisplay", Unit: 0, State: 0, Parent: p("isa", "isa", -1)},                // 36
	{Name: "wsdisplay", Attach: "wsdisplay_emul", State: 2, Parent: p("wsemuldisplaydev", "pcdisplay", -1)}, // 37
	{Name: "eisa", Attach: "eisa", Unit: 0, State: 0, Parent: p("eisabus", "mainbus", -1)},                  // 38
	{Name: "mca", Attach: "mca", Unit: 0, State: 0, Parent: p("mcabus", "mainbus", -1)},                     // 39
	{Name: "ne", Attach: "ne_isa", Unit: 0, State: 4, Parent: p("isa", "isa", -1)},                          // 40
	{Name: "scsibus", Attach: "scsibus", State: 2, Parent: p("scsi", "", -1)},                               // 41
	{Name: "sd", Attach: "sd", Unit: 0, State: 0, Parent: p("scsibus", "scsibus", 0)},                       // 42
	{Name: "sd", Attach: "sd", Unit: 1, State: 2, Parent: p("scsibus", "scsibus", -1)},                      // 43
	{Name: "wdc", Attach: "wdc_isa", Unit: 0, State: 0, Parent: p("isa", "isa", -1)},                        // 44
}

// GenericProvides are the interface attributes Generic's drivers provide
// that no child names them with: atabus attaches at "ata?", which pciide
// and wdc provide. Nothing provides "scsi".
var GenericProvides = map[string][]string{
	"pciide": {"ata"},
	"wdc":    {"ata"},
}
