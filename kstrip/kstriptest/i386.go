package kstriptest

// I386Generic is the part of NetBSD 9's i386 GENERIC configuration (with
// std.i386 and the files.* definitions it draws on) that decides what a
// virtio microVM keeps: the paths from mainbus to the console (com0 at
// isa), the root disk (ld at virtio) and the network (vioif), every
// other way those buses can be reached (isa0 has eight parents, pci four),
// the slow probes (fdc, pckbc), and the shapes that make parent matching
// hard: Star entries numbered after fixed units (com*, wdc*, ahc*),
// parents named by unit (acpi0 at mainbus0, est0 at cpu0), attachments at
// an interface attribute alone (atabus* at ata?, scsibus* at scsi?,
// wsdisplay* at wsemuldisplaydev?, makphy* at mii?) and one attachment at
// two attributes (sd at scsibus or atapibus). Device lines list only the
// interface attributes a driver provides, which is what the kernel's
// driver table (cd_attrs) holds. Build it with FromConfig.
const I386Generic = `
device mainbus: isabus eisabus mcabus pcibus acpibus cpubus ioapicbus apmbus pnpbiosbus ipmibus
attach mainbus at root
device cpu: cpufeaturebus
attach cpu at cpubus
device ioapic
attach ioapic at ioapicbus
device acpicpu
attach acpicpu at cpufeaturebus
device coretemp
attach coretemp at cpufeaturebus
device est
attach est at cpufeaturebus
device hyperv
attach hyperv at cpufeaturebus
device vmt
attach vmt at cpufeaturebus
device ipmi
attach ipmi at ipmibus
device acpi: acpiapmbus acpinodebus acpiecdtbus acpisdtbus acpimadtbus acpihpetbus acpiwdrtbus
attach acpi at acpibus
device acpitz
attach acpitz at acpinodebus
device hpet
attach hpet at acpihpetbus with hpet_acpi_tab
attach hpet at acpinodebus with hpet_acpi_dev
attach hpet at hpetichbus with ichlpcib_hpet
device pckbc: pckbport
attach pckbc at acpinodebus with pckbc_acpi
attach pckbc at isa with pckbc_isa
device pcppi: pcppi
attach pcppi at acpinodebus with pcppi_acpi
attach pcppi at isa
device attimer
attach attimer at acpinodebus with attimer_acpi
attach attimer at isa with attimer_isa
device pci: pci
attach pci at pcibus
device elansc: gpiobus pcibus
attach elansc at pcibus
device ichlpcib: isabus fwhichbus hpetichbus gpiobus tcoichbus
attach ichlpcib at pci
device fwhrng
attach fwhrng at fwhichbus
device tco
attach tco at tcoichbus
device tcpcib: isabus hpetichbus
attach tcpcib at pci
device gcscpcib: isabus gpiobus
attach gcscpcib at pci with gcscpcib_pci
device viapcib: isabus i2cbus
attach viapcib at pci
device rdcpcib: isabus
attach rdcpcib at pci
device pchb: pcibus agpbus
attach pchb at pci
device pceb: eisabus isabus
attach pceb at pci
device pcib: isabus
attach pcib at pci
device pcmb: mcabus
attach pcmb at pci
device ppb: pcibus
attach ppb at pci
device puc: puc
attach puc at pci
device agp
attach agp at agpbus
device eisa: eisa
attach eisa at eisabus
device isa: isa
attach isa at isabus
device mca: mca
attach mca at mcabus
device isapnp: isapnp
attach isapnp at isa
device pckbd: wskbddev
attach pckbd at pckbport
device pms: wsmousedev
attach pms at pckbport
device wskbd
attach wskbd at wskbddev
device wsmouse
attach wsmouse at wsmousedev
device vga: wsemuldisplaydev
attach vga at pci with vga_pci
device wsdisplay
attach wsdisplay at wsemuldisplaydev with wsdisplay_emul
device sysbeep
attach sysbeep at pcppi
device com: com
attach com at puc with com_puc
attach com at isapnp with com_isapnp
attach com at isa with com_isa
attach com at mca with com_mca
device lpt
attach lpt at isa with lpt_isa
device wm: mii
attach wm at pci
device makphy
attach makphy at mii
device ahc: scsi
attach ahc at pci with ahc_pci
attach ahc at eisa with ahc_eisa
attach ahc at isa with ahc_isa
device mpt: scsi
attach mpt at pci with mpt_pci
device scsibus: scsibus
attach scsibus at scsi
device sd
attach sd at scsibus atapibus
device cd
attach cd at scsibus atapibus
device aac: aac
attach aac at pci with aac_pci
device nvme: nvme
attach nvme at pci with nvme_pci
device ld
attach ld at aac with ld_aac
attach ld at nvme with ld_nvme
attach ld at virtio with ld_virtio
device pciide: ata
attach pciide at pci
device piixide: ata
attach piixide at pci
device wdc: ata
attach wdc at isapnp with wdc_isapnp
attach wdc at isa with wdc_isa
device atabus: atapi ata_hl
attach atabus at ata
device wd
attach wd at ata_hl
device atapibus: atapibus
attach atapibus at atapi
device fdc: fdc
attach fdc at isa with fdc_isa
device fd
attach fd at fdc
device virtio: virtio
attach virtio at pci with virtio_pci
device viomb
attach viomb at virtio
device vioif
attach vioif at virtio
device viornd
attach viornd at virtio
device vioscsi: scsi
attach vioscsi at virtio

mainbus0 at root
cpu* at mainbus?
ioapic* at mainbus?
acpicpu* at cpu?
coretemp* at cpu?
est0 at cpu0
hyperv0 at cpu0
vmt0 at cpu0
ipmi0 at mainbus?
acpi0 at mainbus0
acpitz* at acpi?
attimer* at acpi?
hpet* at acpihpetbus?
hpet* at acpinodebus?
pckbc* at acpi?
pcppi* at acpi?
pci* at mainbus? bus ?
pci* at pchb? bus ?
pci* at ppb? bus ?
pci* at elansc? bus ?
elansc* at mainbus? bus ?
ichlpcib* at pci? dev ? function ?
fwhrng* at ichlpcib?
tco* at ichlpcib?
tcpcib* at pci? dev ? function ?
hpet* at tcpcib?
gcscpcib* at pci? dev ? function ?
viapcib* at pci? dev ? function ?
rdcpcib* at pci? dev ? function ?
pchb* at pci? dev ? function ?
pceb* at pci? dev ? function ?
pcib* at pci? dev ? function ?
pcmb* at pci? dev ? function ?
ppb* at pci? dev ? function ?
puc* at pci? dev ? function ?
agp* at pchb?
eisa0 at mainbus?
eisa0 at pceb?
isa0 at gcscpcib?
isa0 at ichlpcib?
isa0 at tcpcib?
isa0 at viapcib?
isa0 at rdcpcib?
isa0 at mainbus?
isa0 at pceb?
isa0 at pcib?
mca0 at mainbus?
mca0 at pcmb?
isapnp0 at isa?
pckbc0 at isa?
pckbd* at pckbc?
pms* at pckbc?
vga* at pci? dev ? function ?
wsdisplay* at vga? console ?
wsdisplay* at wsemuldisplaydev?
wskbd* at pckbd? console ?
wsmouse* at pms? mux 0
attimer0 at isa?
pcppi0 at isa?
sysbeep0 at pcppi?
com* at puc? port ?
com* at isapnp?
com0 at isa? port 0x3f8 irq 4
com1 at isa? port 0x2f8 irq 3
com2 at isa? port 0x3e8 irq 5
com* at mca? slot ?
lpt0 at isa? port 0x378 irq 7
ahc* at pci? dev ? function ?
mpt* at pci? dev ? function ?
ahc* at eisa? slot ?
ahc0 at isa? port ? irq ?
scsibus* at scsi?
sd* at scsibus? target ? lun ?
cd* at scsibus? target ? lun ?
aac* at pci? dev ? function ?
ld* at aac? unit ?
nvme* at pci? dev ? function ?
ld* at nvme? nsid ?
pciide* at pci? dev ? function ? flags 0x0000
piixide* at pci? dev ? function ?
wdc* at isapnp?
wdc0 at isa? port 0x1f0 irq 14 flags 0x00
wdc1 at isa? port 0x170 irq 15 flags 0x00
atabus* at ata?
wd* at atabus? drive ? flags 0x0000
atapibus* at atapi?
cd* at atapibus? drive ? flags 0x0000
sd* at atapibus? drive ? flags 0x0000
fdc0 at isa? port 0x3f0 irq 6 drq 2
fd* at fdc? drive ?
wm* at pci? dev ? function ?
makphy* at mii? phy ?
virtio* at pci? dev ? function ?
viomb* at virtio?
ld* at virtio?
vioif* at virtio?
viornd* at virtio?
vioscsi* at virtio?
`
