/* vblk: a legacy virtio-blk driver. Reads sector 0, writes a known pattern
 * to a sector, flushes, reads it back, asks for the serial, prints "vblk: ok".
 * Words: "indirect" (one INDIRECT_DESC descriptor per request), "irq" (wait
 * for the device's INTx instead of polling; the handler reports and exits),
 * "seq=N" (pattern counter), "sector=N" (sector to write, default 1),
 * "queued" (a snapshot point with a write of sector 2 published and not
 * notified), "oob" (also read the sector at the capacity: must fail), "disk=N" (use
 * the Nth virtio-blk device, from 0), "timeout=N" (seconds to wait for each
 * request, default 10), "evil=KIND" and "evilwait=N" (see vblk_evil.c),
 * "shuffle" (with disk=1: first move disk 0's BAR0 onto disk 1's, where it
 * cannot decode, and disk 1's to where disk 0's was; the driver then works
 * there, so notifications must follow the moves). */
#include "vblk.h"

/* State shared with vblk_evil.c. */
u8 blk_ring[VQ_MEM] __attribute__((aligned(4096)));
static struct vring_desc itable[3] __attribute__((aligned(16)));
static struct blk_hdr hdr;
static u8 buf[512], back[512], status;
struct vdev blk_dev;
struct vq blk_q;
u32 ram_top;
static int indirect, irqmode;
static u32 timeout, host;

static void fill(struct vring_desc *d, const void *p, u32 len, u16 flags, u16 next)
{
	d->addr = (u32)(uptr)p;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

/* shuffle moves disk 0's BAR0 onto disk 1's, then disk 1's to disk 0's old
 * address, and points the driver there. */
static void shuffle(void)
{
	u32 dev0, fn0;
	if (blk_dev.dev == 0 || pci_find(0x1AF4, 0x1001, 2, 0, &dev0, &fn0) != 0 || dev0 == blk_dev.dev)
		fail("vblk: shuffle needs disk=1 and a disk 0");
	u32 a = pci_read(0, dev0, fn0, 0x10) & ~3u, b = blk_dev.io;
	pci_write(0, dev0, fn0, 0x10, b | 1);
	pci_write(0, blk_dev.dev, blk_dev.fn, 0x10, a | 1);
	blk_dev.io = (u16)(pci_read(0, blk_dev.dev, blk_dev.fn, 0x10) & ~3u);
	printf("vblk: shuffled disk 0 to 0x%x, disk 1 to 0x%x\n",
	       pci_read(0, dev0, fn0, 0x10) & ~3u, blk_dev.io);
	if (blk_dev.io != a || inw(b + VIO_QUEUE_SIZE) != 0xFFFF)
		fail("vblk: BARs not where they were put");
}

/* describe lays out one request (header, optional data, status byte) at
 * descriptor 0, not yet published. */
static void describe(u32 type, u64 sector, void *data, u32 len)
{
	hdr.type = type;
	hdr.reserved = 0;
	hdr.sector = sector;
	status = 0xFF; /* a device that never writes the status is caught */
	struct vring_desc *t = indirect ? itable : blk_q.desc;
	u16 n = 0;
	fill(&t[n], &hdr, sizeof(hdr), VRING_DESC_F_NEXT, (u16)(n + 1));
	n++;
	if (len) {
		u16 f = VRING_DESC_F_NEXT | (type == BLK_T_OUT ? 0 : VRING_DESC_F_WRITE);
		fill(&t[n], data, len, f, (u16)(n + 1));
		n++;
	}
	fill(&t[n], &status, 1, VRING_DESC_F_WRITE, 0);
	n++;
	if (indirect)
		fill(&blk_q.desc[0], itable, n * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	barrier();
}

/* submit queues one request and notifies the device. */
static void submit(u32 type, u64 sector, void *data, u32 len)
{
	describe(type, sector, data, len);
	vq_submit(&blk_q, 0);
}

/* request submits and polls; returns the status byte (0xFF on timeout). */
u32 request(u32 type, u64 sector, void *data, u32 len)
{
	submit(type, sector, data, len);
	u32 id, ulen;
	if (vq_poll(&blk_q, timeout, &id, &ulen) != 0) {
		printf("vblk: timeout on request type %u\n", type);
		exit(1);
	}
	if (id != 0)
		printf("vblk: used id %u, want 0\n", id);
	return status;
}

void blk_init(void)
{
	vdev_status(&blk_dev, 0);
	vdev_status(&blk_dev, VIRTIO_ACK);
	vdev_status(&blk_dev, VIRTIO_ACK | VIRTIO_DRIVER);
	host = inl(blk_dev.io + VIO_HOST_FEATURES);
	u32 guest = host & (BLK_F_RO | BLK_F_FLUSH);
	if (indirect) {
		if (!(host & VIRTIO_F_INDIRECT_DESC))
			fail("vblk: indirect descriptors not offered");
		guest |= VIRTIO_F_INDIRECT_DESC;
	}
	outl(blk_dev.io + VIO_GUEST_FEATURES, guest);
	printf("vblk: host features 0x%x guest features 0x%x\n", host, guest);
	/* After a reset the device starts from index 0 again: so does the ring. */
	blk_q.last_used = 0;
	if (vq_setup("vblk", &blk_dev, &blk_q, 0, blk_ring) != 0)
		fail("vblk: queue setup");
	blk_q.avail[0] = irqmode ? 0 : VRING_AVAIL_F_NO_INTERRUPT;
	blk_q.avail[1] = 0;
	*(volatile u16 *)(blk_q.used + 2) = 0;
	vdev_status(&blk_dev, VIRTIO_ACK | VIRTIO_DRIVER | VIRTIO_DRIVER_OK);
	printf("vblk: status 0x%x\n", inb(blk_dev.io + VIO_STATUS));
}

u32 blk_read0(void)
{
	return request(BLK_T_IN, 0, buf, 512);
}

static void on_irq(u32 irq)
{
	u8 isr = inb(blk_dev.io + VIO_ISR);
	printf("vblk: irq %u isr=0x%x used=%u status=%u\n", irq, isr, vq_used_idx(&blk_q), status);
	if (irq != blk_dev.irq || !(isr & 1))
		fail("vblk: wrong irq or isr");
	if (vq_used_idx(&blk_q) != 1 || status != 0)
		fail("vblk: request not completed at interrupt time");
	printf("vblk: sector 0 %02x %02x %02x %02x\n", buf[0], buf[1], buf[2], buf[3]);
	puts("vblk: irq ok\n");
	exit(0);
}

void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)magic;
	if (mbi->flags & 1)
		ram_top = (mbi->mem_upper + 1024) << 10;
	indirect = has_word("indirect");
	irqmode = has_word("irq");
	u32 seq = 0, sector = 1;
	word_uint("seq", &seq);
	word_uint("sector", &sector);
	timeout = timeout_word(10);

	u32 disk = 0;
	word_uint("disk", &disk);
	if (vdev_open("vblk", 0x1001, 2, disk, &blk_dev) != 0)
		fail("vblk: no device");
	if (has_word("shuffle"))
		shuffle();
	blk_init();
	u32 cap_lo = inl(blk_dev.io + VIO_CONFIG), cap_hi = inl(blk_dev.io + VIO_CONFIG + 4);
	printf("vblk: capacity %u sectors (hi %u)\n", cap_lo, cap_hi);
	evil_run(timeout); /* returns only without an evil= word */

	/* Snapshot points (the boot-timer port): "ready" with the driver
	 * live and no request made, "pending" with a read of sector 0 just
	 * handed to the device. */
	if (has_word("ready"))
		outb(0x505, 1);
	if (has_word("pending")) {
		submit(BLK_T_IN, 0, buf, 512);
		outb(0x505, 1);
		u32 id, ulen;
		if (vq_poll(&blk_q, timeout, &id, &ulen) != 0)
			fail("vblk: pending read not completed");
		printf("vblk: pending read status %u sector 0 %02x %02x\n", status, buf[0], buf[1]);
	}
	if (has_word("queued")) {
		/* Never notified: only a restore's kick of every queue serves it. */
		memset(back, 'Q', 512);
		describe(BLK_T_OUT, 2, back, 512);
		vq_publish(&blk_q, 0);
		outb(0x505, 1);
		u32 id, ulen;
		if (vq_poll(&blk_q, timeout, &id, &ulen) != 0)
			fail("vblk: queued write not completed");
		printf("vblk: queued write status %u\n", status);
	}

	if (irqmode) {
		if (blk_dev.irq == 0 || blk_dev.irq >= 16)
			fail("vblk: no usable interrupt line");
		intr_init(on_irq);
		pic_unmask(blk_dev.irq);
		struct deadline dl;
		deadline_init(&dl, timeout);
		sti();
		submit(BLK_T_IN, 0, buf, 512);
		while (!deadline_passed(&dl))
			;
		cli();
		printf("vblk: no interrupt; used=%u isr=0x%x\n", vq_used_idx(&blk_q),
		       inb(blk_dev.io + VIO_ISR));
		exit(1);
	}

	u32 st = request(BLK_T_IN, 0, buf, 512);
	if (st != 0) {
		printf("vblk: read sector 0 status %u\n", st);
		exit(1);
	}
	puts("vblk: sector 0");
	for (u32 i = 0; i < 16; i++)
		printf(" %02x", buf[i]);
	puts("\n");

	for (u32 i = 0; i < 512; i++)
		buf[i] = (u8)i;
	char tag[] = "smolvmm-write-test seq=";
	u32 n = sizeof(tag) - 1;
	memcpy(buf, tag, n);
	char digits[12];
	u32 nd = 0, v = seq;
	do {
		digits[nd++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (nd)
		buf[n++] = (u8)digits[--nd];
	buf[n++] = '\n';
	st = request(BLK_T_OUT, sector, buf, 512);
	if (host & BLK_F_RO) {
		printf("vblk: read-only disk, write status %u\n", st);
		if (st == 0)
			fail("vblk: write to read-only disk succeeded");
	} else {
		if (st != 0) {
			printf("vblk: write sector %u status %u\n", sector, st);
			exit(1);
		}
		printf("vblk: wrote sector %u seq=%u\n", sector, seq);
		if (host & BLK_F_FLUSH) {
			st = request(BLK_T_FLUSH, 0, 0, 0);
			if (st != 0) {
				printf("vblk: flush status %u\n", st);
				exit(1);
			}
			puts("vblk: flush ok\n");
			if (has_word("hang"))
				for (;;) /* the crash test kills the VMM here */
					;
		} else {
			puts("vblk: flush not offered\n");
		}
		st = request(BLK_T_IN, sector, back, 512);
		if (st != 0 || memcmp(buf, back, 512) != 0) {
			printf("vblk: readback status %u differs\n", st);
			exit(1);
		}
		puts("vblk: readback ok\n");
	}

	if (has_word("oob")) {
		st = request(BLK_T_IN, (u64)cap_hi << 32 | cap_lo, back, 512);
		printf("vblk: read beyond end status %u\n", st);
		if (st == 0)
			fail("vblk: read beyond the end succeeded");
	}

	char serial[21];
	memset(serial, 0, sizeof(serial));
	st = request(BLK_T_GET_ID, 0, serial, 20);
	if (st == 0)
		printf("vblk: serial \"%s\"\n", serial);
	else
		printf("vblk: get-id status %u\n", st);
	puts("vblk: ok\n");
	exit(0);
}
