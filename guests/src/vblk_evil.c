/* Malformed requests for the vblk guest ("evil=KIND"): each breaks one rule
 * of the split virtqueue, or (ramlast, ivt, ring, availw) is valid but aims
 * the data at a place a device could trip on: the end of RAM, address 0,
 * the rings themselves. The guest reports what the device did, resets it
 * and proves it works again; judging the device is the test's job. */
#include "vblk.h"

static struct blk_hdr ehdr;
static u8 edata[512], estatus;
static struct vring_desc etable[1026] __attribute__((aligned(16)));
static u8 ering2[4096 * 3] __attribute__((aligned(4096)));

static void set(struct vring_desc *d, u64 addr, u32 len, u16 flags, u16 next)
{
	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

/* good3 writes a well-formed read of sector 0 as three descriptors at t. */
static void good3(struct vring_desc *t)
{
	set(&t[0], (uptr)&ehdr, sizeof(ehdr), VRING_DESC_F_NEXT, 1);
	set(&t[1], (uptr)edata, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set(&t[2], (uptr)&estatus, 1, VRING_DESC_F_WRITE, 0);
}

static void indirect_to(struct vring_desc *t, u32 len)
{
	set(&blk_q.desc[0], (uptr)t, len, VRING_DESC_F_INDIRECT, 0);
}

/* build prepares the descriptors for kind and returns the head to publish;
 * -1 means kind is unknown. */
static int build(const char *kind)
{
	struct vring_desc *d = blk_q.desc;
	u16 size = blk_q.size;
	good3(d);
	if (!strcmp(kind, "loop")) {
		d[2].flags |= VRING_DESC_F_NEXT; /* 0 -> 1 -> 2 -> 0 ... */
		d[2].next = 0;
	} else if (!strcmp(kind, "next")) {
		d[0].next = (u16)(size + 5);
	} else if (!strcmp(kind, "head")) {
		return size;
	} else if (!strcmp(kind, "addr")) {
		d[1].addr = 0xF0000000u; /* far beyond RAM */
	} else if (!strcmp(kind, "wrap")) {
		d[1].addr = 0xFFFFFFFFFFFFFE00ull; /* addr + len overflows 64 bits */
		d[1].len = 0x400;
	} else if (!strcmp(kind, "hdrw")) {
		d[0].flags |= VRING_DESC_F_WRITE; /* header must be device-readable */
	} else if (!strcmp(kind, "dataro")) {
		d[1].flags &= (u16)~VRING_DESC_F_WRITE; /* IN data must be device-writable */
	} else if (!strcmp(kind, "statusro")) {
		d[2].flags = 0; /* status must be device-writable */
	} else if (!strcmp(kind, "zero")) {
		d[1].len = 0;
	} else if (!strcmp(kind, "indloop")) {
		good3(etable);
		etable[2].flags |= VRING_DESC_F_NEXT;
		etable[2].next = 0;
		indirect_to(etable, 3 * sizeof(struct vring_desc));
	} else if (!strcmp(kind, "indnest")) {
		good3(etable);
		set(&etable[1], (uptr)&etable[4], 2 * sizeof(struct vring_desc),
		    VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 2);
		indirect_to(etable, 3 * sizeof(struct vring_desc));
	} else if (!strcmp(kind, "indlen")) {
		good3(etable);
		indirect_to(etable, 17); /* not a multiple of 16 */
	} else if (!strcmp(kind, "indnext")) {
		good3(etable);
		etable[1].next = 7; /* beyond the 3-entry table */
		indirect_to(etable, 3 * sizeof(struct vring_desc));
	} else if (!strcmp(kind, "long")) {
		/* A chain of size+2 descriptors inside one indirect table. */
		u32 n = size + 2u;
		set(&etable[0], (uptr)&ehdr, sizeof(ehdr), VRING_DESC_F_NEXT, 1);
		for (u32 i = 1; i < n - 1; i++)
			set(&etable[i], (uptr)edata + (i & 511), 1,
			    VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, (u16)(i + 1));
		set(&etable[n - 1], (uptr)&estatus, 1, VRING_DESC_F_WRITE, 0);
		indirect_to(etable, n * sizeof(struct vring_desc));
	} else if (!strcmp(kind, "ramend")) {
		d[1].addr = ram_top - 256; /* the last 256 bytes of RAM, and 256 past it */
	} else if (!strcmp(kind, "lenwrap")) {
		d[1].addr = 0x1000;
		d[1].len = 0xFFFFFFF0u; /* 32-bit address + length wraps */
	} else if (!strcmp(kind, "ramlast")) {
		d[1].addr = ram_top - 512; /* valid: the last sector's worth of RAM */
	} else if (!strcmp(kind, "ivt")) {
		d[1].addr = 0; /* valid: sector 0 over the real-mode IVT */
	} else if (!strcmp(kind, "ring")) {
		d[1].addr = (uptr)blk_q.desc; /* valid: sector 0 over the descriptor table */
	} else if (!strcmp(kind, "availw")) {
		/* Sector 0 over the available ring: its index becomes "OL". */
		d[1].addr = (uptr)blk_q.avail;
	} else if (!strcmp(kind, "jump") || !strcmp(kind, "pfn") || !strcmp(kind, "resetmid")) {
		return 0; /* handled when publishing */
	} else {
		return -1;
	}
	return 0;
}

static const char *const kinds[] = {
	"loop", "next", "head", "addr", "wrap", "hdrw", "dataro", "statusro", "zero",
	"indloop", "indnest", "indlen", "indnext", "long", "jump", "pfn",
	"ramend", "lenwrap", "ramlast", "ivt", "ring", "availw", "resetmid",
};

void evil_run(u32 timeout)
{
	const char *kind = 0;
	char word[16];
	for (u32 i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && !kind; i++) {
		u32 n = strlen(kinds[i]);
		memcpy(word, "evil=", 5);
		memcpy(word + 5, kinds[i], n + 1);
		if (has_word(word))
			kind = kinds[i];
	}
	if (!kind) {
		if (has_prefix("evil="))
			fail("vblk: unknown evil kind (see vblk_evil.c)");
		return;
	}
	ehdr.type = BLK_T_IN;
	ehdr.sector = 0;
	estatus = 0xEE;
	if (ram_top == 0 && (!strcmp(kind, "ramend") || !strcmp(kind, "ramlast")))
		fail("vblk: no memory size in the multiboot info");
	int head = build(kind);
	if (head < 0)
		fail("vblk: unknown evil kind");
	u32 d1addr = (u32)blk_q.desc[1].addr;
	barrier();
	u16 io = blk_dev.io;
	if (!strcmp(kind, "jump")) {
		/* One real entry, but the index moves by more than the queue size. */
		blk_q.avail[2] = 0;
		barrier();
		blk_q.avail[1] = (u16)(blk_q.size + 1);
		mb();
		outw(io + VIO_QUEUE_NOTIFY, 0);
	} else if (!strcmp(kind, "pfn")) {
		/* Move the live queue: a device must not silently follow it. */
		outw(io + VIO_QUEUE_SEL, 0);
		outl(io + VIO_QUEUE_PFN, (u32)(uptr)ering2 >> 12);
		vq_submit(&blk_q, 0);
	} else if (!strcmp(kind, "resetmid")) {
		/* A good request, then at once a reset and DRIVER_OK again
		 * without placing the queue: whatever the device had begun
		 * must not complete into the old ring afterwards. */
		vq_submit(&blk_q, (u16)head);
		outb(io + VIO_STATUS, 0);
		outb(io + VIO_STATUS, VIRTIO_ACK | VIRTIO_DRIVER | VIRTIO_DRIVER_OK);
		blk_q.used[2] = 0xEE;
		blk_q.used[3] = 0xEE;
		mb();
	} else {
		vq_submit(&blk_q, (u16)head);
	}
	printf("vblk: evil %s submitted\n", kind);
	/* The device thread either completes the request or refuses the ring
	 * (NEEDS_RESET), on its own time: wait for one or the other, not for a
	 * fixed while (1 to 2 s, less where its 4M-poll cap comes first) that a
	 * loaded host's device thread can outlast, the guest then reading
	 * device-status 0x07 where the test wants 0x47. */
	u32 wait = timeout;
	word_uint("evilwait", &wait);
	struct deadline dl;
	deadline_init(&dl, wait < timeout ? wait : timeout);
	while (vq_used_idx(&blk_q) == 0 && !(inb(io + VIO_STATUS) & VIRTIO_NEEDS_RESET) &&
	       !deadline_passed(&dl))
		;
	/* availw's device completes the request and only then reads the
	 * available index the data overwrote: wait for it to refuse the ring
	 * rather than race the device thread for its status. */
	if (!strcmp(kind, "availw")) {
		deadline_init(&dl, wait < timeout ? wait : timeout);
		while (!(inb(io + VIO_STATUS) & VIRTIO_NEEDS_RESET) && !deadline_passed(&dl))
			;
	}
	printf("vblk: evil %s: used=%u status=0x%02x device-status=0x%02x isr=0x%x\n", kind,
	       vq_used_idx(&blk_q), estatus, inb(io + VIO_STATUS), inb(io + VIO_ISR));
	if (!strcmp(kind, "ramlast") || !strcmp(kind, "ivt")) {
		const u8 *p = (const u8 *)(uptr)d1addr;
		printf("vblk: evil %s: data %c%c%c%c\n", kind, p[0], p[1], p[2], p[3]);
	}
	blk_init();
	u32 st = blk_read0();
	if (st != 0) {
		printf("vblk: read after reset status %u\n", st);
		fail("vblk: device did not recover");
	}
	puts("vblk: recovered ok\n");
	exit(0);
}
