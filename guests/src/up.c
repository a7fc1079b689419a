/* up: the end-to-end test guest of `smolvmm up`, a stand-in for a NetBSD
 * kernel. It carries a cfdata table in NetBSD's i386 layout (so kstrip has
 * work to do), prints the state of each entry as it was booted (so the test
 * sees that the stripped kernel is what ran), reads sector 2 of the virtio
 * disk (bytes 1024-1535: the ext2 superblock), prints the superblock magic,
 * then resets the machine the way NetBSD reboots (0xFE to port 0x64). */
#include "virtio.h"

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

static u8 ring[VQ_MEM] __attribute__((aligned(4096)));
static struct {
	u32 type, reserved;
	u64 sector;
} hdr;
static u8 sector[512];
static volatile u8 status;

void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)mbi;
	printf("upguest: multiboot magic 0x%x\n", magic);
	for (struct cfdata *cf = cfdata; cf->cf_name; cf++) {
		if (cf->cf_fstate == 2 || cf->cf_fstate == 3)
			printf("cfdata: %s* state %d\n", cf->cf_name, cf->cf_fstate);
		else
			printf("cfdata: %s%d state %d\n", cf->cf_name, cf->cf_unit, cf->cf_fstate);
	}

	struct vdev d;
	struct vq q;
	if (vdev_open("upguest", 0x1001, 2, 0, &d) != 0)
		fail("upguest: no virtio-blk device on PCI bus 0");
	printf("upguest: virtio-blk at 00:%02x.%u io 0x%x\n", d.dev, d.fn, d.io);
	outl(d.io + VIO_GUEST_FEATURES, 0);
	if (vq_setup("upguest", &d, &q, 0, ring) != 0)
		fail("upguest: queue 0 unusable");
	vdev_status(&d, VIRTIO_ACK | VIRTIO_DRIVER | VIRTIO_DRIVER_OK);
	printf("upguest: capacity %u sectors\n", inl(d.io + VIO_CONFIG));

	hdr.type = 0; /* VIRTIO_BLK_T_IN */
	hdr.sector = 2;
	status = 0xFF;
	q.desc[0] = (struct vring_desc){(u32)(uptr)&hdr, sizeof hdr, VRING_DESC_F_NEXT, 1};
	q.desc[1] = (struct vring_desc){(u32)(uptr)sector, sizeof sector, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2};
	q.desc[2] = (struct vring_desc){(u32)(uptr)&status, 1, VRING_DESC_F_WRITE, 0};
	q.avail[0] = VRING_AVAIL_F_NO_INTERRUPT; /* poll */
	vq_submit(&q, 0);
	u32 id, len;
	if (vq_poll(&q, timeout_word(10), &id, &len) != 0)
		fail("upguest: no answer from the disk");
	if (status != 0)
		fail("upguest: read request failed");
	printf("upguest: ext2 magic 0x%x\nupguest: done\n", (u32)sector[56] | (u32)sector[57] << 8);
	for (u32 i = 0; i < 10000 && !(inb(0x3fd) & 0x40); i++) /* let the line drain */
		;
	outb(0x64, 0xFE);
	for (;;)
		__asm__ volatile("cli; hlt");
}
