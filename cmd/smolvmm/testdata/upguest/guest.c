/* The end-to-end test guest of `smolvmm up`: a stand-in for a NetBSD kernel.
 * It carries a cfdata table in NetBSD's i386 layout (so kstrip has work to
 * do), prints the state of each entry as it was booted (so the test sees
 * that the stripped kernel is what ran), finds the legacy virtio-blk
 * device by a PCI scan, reads sector 2 (bytes 1024-1535: the ext2
 * superblock) and prints the superblock magic, then resets the machine the
 * way NetBSD reboots (0xFE to port 0x64). */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

/* NetBSD's struct cfdata and struct cfparent (sys/device.h), 32-bit. */
struct cfparent {
	const char *cfp_iattr;
	const char *cfp_parent;
	int cfp_unit;
};

struct cfdata {
	const char *cf_name;
	const char *cf_atname;
	short cf_unit;
	short cf_fstate;
	int *cf_loc;
	int cf_flags;
	const struct cfparent *cf_pspec;
};

#define NORM 0 /* FSTATE_NOTFOUND */
#define STAR 2 /* FSTATE_STAR */

static const struct cfparent at_mainbus_cpu = {"cpubus", "mainbus", -1};
static const struct cfparent at_mainbus_pci = {"pcibus", "mainbus", -1};
static const struct cfparent at_mainbus_isa = {"isabus", "mainbus", -1};
static const struct cfparent at_pci = {"pci", "pci", -1};
static const struct cfparent at_isa = {"isa", "isa", -1};
static const struct cfparent at_virtio = {"virtio", "virtio", -1};
static const struct cfparent at_atabus = {"ata_hl", "atabus", -1};
static const struct cfparent at_pciide = {"ata", "pciide", -1};

struct cfdata cfdata[] = {
	{"mainbus", "mainbus", 0, NORM, 0, 0, 0},
	{"cpu", "cpu", 0, STAR, 0, 0, &at_mainbus_cpu},
	{"pci", "pci", 0, STAR, 0, 0, &at_mainbus_pci},
	{"isa", "isa", 0, NORM, 0, 0, &at_mainbus_isa},
	{"com", "com_isa", 0, NORM, 0, 0, &at_isa},
	{"fdc", "fdc_isa", 0, NORM, 0, 0, &at_isa},
	{"pckbc", "pckbc_isa", 0, NORM, 0, 0, &at_isa},
	{"virtio", "virtio_pci", 0, STAR, 0, 0, &at_pci},
	{"ld", "ld_virtio", 0, STAR, 0, 0, &at_virtio},
	{"vioif", "vioif", 0, STAR, 0, 0, &at_virtio},
	{"pciide", "pciide", 0, STAR, 0, 0, &at_pci},
	{"atabus", "atabus", 0, STAR, 0, 0, &at_pciide},
	{"wd", "wd", 0, STAR, 0, 0, &at_atabus},
	{0, 0, 0, 0, 0, 0, 0},
};

static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(p)); }
static inline void outw(u16 p, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(p)); }
static inline void outl(u16 p, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline u16 inw(u16 p) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline u32 inl(u16 p) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }
#define barrier() __asm__ volatile("" : : : "memory")

static void putch(char c)
{
	for (int i = 0; i < 100000 && !(inb(0x3fd) & 0x20); i++)
		;
	outb(0x3f8, (u8)c);
}

static void puts(const char *s)
{
	while (*s)
		putch(*s++);
}

static void puthex(u32 v)
{
	char b[11] = "0x";
	int n = 2;
	for (int sh = 28; sh >= 0; sh -= 4)
		if ((v >> sh) || sh == 0 || n > 2)
			b[n++] = "0123456789abcdef"[(v >> sh) & 15];
	b[n] = 0;
	puts(b);
}

static void putdec(u32 v)
{
	char b[11];
	int n = 10;
	b[n] = 0;
	do {
		b[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts(b + n);
}

static void reset(void)
{
	outb(0x64, 0xFE);
	for (;;)
		__asm__ volatile("hlt");
}

static void fail(const char *why)
{
	puts("upguest: FAIL ");
	puts(why);
	puts("\n");
	reset();
}

static u32 pci_read(u32 dev, u32 reg)
{
	outl(0xCF8, 0x80000000u | (dev << 11) | reg);
	return inl(0xCFC);
}

static void pci_write(u32 dev, u32 reg, u32 v)
{
	outl(0xCF8, 0x80000000u | (dev << 11) | reg);
	outl(0xCFC, v);
}

/* Legacy virtio-pci registers (offsets in BAR0). */
enum { HOSTF = 0, GUESTF = 4, QPFN = 8, QSIZE = 12, QSEL = 14, QNOTIFY = 16, STATUS = 18, CONFIG = 20 };

struct desc {
	u64 addr;
	u32 len;
	u16 flags, next;
};

static u8 ring[3 * 4096] __attribute__((aligned(4096)));
static struct {
	u32 type, reserved;
	u64 sector;
} hdr;
static u8 sector[512];
static volatile u8 status;

void kmain(u32 magic, void *info)
{
	(void)info;
	puts("upguest: multiboot magic ");
	puthex(magic);
	puts("\n");
	for (struct cfdata *cf = cfdata; cf->cf_name; cf++) {
		puts("cfdata: ");
		puts(cf->cf_name);
		if (cf->cf_fstate == 2 || cf->cf_fstate == 3)
			puts("*");
		else
			putdec((u32)cf->cf_unit);
		puts(" state ");
		putdec((u32)cf->cf_fstate);
		puts("\n");
	}

	u32 dev = 0, io = 0;
	for (dev = 0; dev < 32; dev++)
		if (pci_read(dev, 0) == 0x10011AF4u && (pci_read(dev, 0x2C) >> 16) == 2)
			break;
	if (dev == 32)
		fail("no virtio-blk device on PCI bus 0");
	io = pci_read(dev, 0x10) & 0xFFFCu;
	pci_write(dev, 0x04, pci_read(dev, 0x04) | 0x5); /* I/O space, bus master */
	puts("upguest: virtio-blk at 00:");
	putdec(dev);
	puts(".0 io ");
	puthex(io);
	puts("\n");

	outb((u16)(io + STATUS), 0);
	outb((u16)(io + STATUS), 1 | 2); /* ACKNOWLEDGE, DRIVER */
	(void)inl((u16)(io + HOSTF));
	outl((u16)(io + GUESTF), 0);
	outw((u16)(io + QSEL), 0);
	u32 qsz = inw((u16)(io + QSIZE));
	if (qsz == 0 || qsz > 256)
		fail("queue size not in 1..256");
	struct desc *d = (struct desc *)ring;
	volatile u16 *avail = (volatile u16 *)(ring + 16 * qsz);
	u32 used_off = (16 * qsz + 6 + 2 * qsz + 4095) & ~4095u;
	volatile u16 *used = (volatile u16 *)(ring + used_off);
	outl((u16)(io + QPFN), (u32)ring >> 12);
	outb((u16)(io + STATUS), 1 | 2 | 4); /* DRIVER_OK */
	puts("upguest: capacity ");
	putdec(inl((u16)(io + CONFIG)));
	puts(" sectors\n");

	hdr.type = 0; /* VIRTIO_BLK_T_IN */
	hdr.sector = 2;
	status = 0xFF;
	d[0] = (struct desc){(u32)&hdr, sizeof hdr, 1, 1};
	d[1] = (struct desc){(u32)sector, sizeof sector, 1 | 2, 2};
	d[2] = (struct desc){(u32)&status, 1, 2, 0};
	avail[0] = 1; /* VRING_AVAIL_F_NO_INTERRUPT: poll */
	avail[2] = 0;
	barrier();
	avail[1] = 1;
	barrier();
	outw((u16)(io + QNOTIFY), 0);
	for (u32 i = 0; used[1] != 1; i++)
		if (i > 5000000)
			fail("no answer from the disk");
	barrier();
	if (status != 0)
		fail("read request failed");
	puts("upguest: ext2 magic ");
	puthex((u32)sector[56] | (u32)sector[57] << 8);
	puts("\nupguest: done\n");
	reset();
}
