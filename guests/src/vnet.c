/* vnet: a legacy virtio-net driver. Reads the MAC from config space, posts
 * receive buffers on queue 0 (10-byte header and 2048-byte data as separate
 * descriptors), sends an ARP request for 10.0.2.2 from 10.0.2.15 on queue 1
 * and prints the sender MAC of the ARP reply. Words: "irq" (wait for the
 * receive interrupt instead of polling), "timeout=N" (seconds, default 10). */
#include "virtio.h"

#define NET_F_MAC (1u << 5)
#define NET_F_STATUS (1u << 16)
#define NRX 4
#define HDR 10

static u8 rxring[VQ_MEM] __attribute__((aligned(4096)));
static u8 txring[VQ_MEM] __attribute__((aligned(4096)));
static u8 rxhdr[NRX][HDR], rxbuf[NRX][2048];
static u8 txhdr[HDR], frame[60];
static u8 mac[6];
static struct vdev dev;
static struct vq rx, tx;

static const u8 my_ip[4] = {10, 0, 2, 15}, gw_ip[4] = {10, 0, 2, 2};

static void post_rx(void)
{
	for (u16 i = 0; i < NRX; i++) {
		struct vring_desc *d = &rx.desc[2 * i];
		d[0].addr = (u32)(uptr)rxhdr[i];
		d[0].len = HDR;
		d[0].flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT;
		d[0].next = (u16)(2 * i + 1);
		d[1].addr = (u32)(uptr)rxbuf[i];
		d[1].len = 2048;
		d[1].flags = VRING_DESC_F_WRITE;
		d[1].next = 0;
		rx.avail[2 + i] = (u16)(2 * i);
	}
	barrier();
	rx.avail[1] = NRX;
	mb();
	outw(dev.io + VIO_QUEUE_NOTIFY, 0);
}

static void send_arp(void)
{
	u8 *f = frame;
	memset(f, 0xFF, 6); /* broadcast */
	memcpy(f + 6, mac, 6);
	f[12] = 0x08, f[13] = 0x06; /* ARP */
	u8 *a = f + 14;
	a[0] = 0, a[1] = 1;    /* Ethernet */
	a[2] = 8, a[3] = 0;    /* IPv4 */
	a[4] = 6, a[5] = 4;
	a[6] = 0, a[7] = 1;    /* request */
	memcpy(a + 8, mac, 6);
	memcpy(a + 14, my_ip, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, gw_ip, 4);
	tx.desc[0].addr = (u32)(uptr)txhdr;
	tx.desc[0].len = HDR;
	tx.desc[0].flags = VRING_DESC_F_NEXT;
	tx.desc[0].next = 1;
	tx.desc[1].addr = (u32)(uptr)frame;
	tx.desc[1].len = sizeof(frame);
	tx.desc[1].flags = 0;
	tx.desc[1].next = 0;
	/* Printed first: in irq mode the reply may interrupt right after the kick. */
	puts("vnet: sending arp request for 10.0.2.2\n");
	barrier();
	vq_submit(&tx, 0);
}

/* check_rx looks at every received frame; returns 1 once the ARP reply is seen. */
static int check_rx(void)
{
	while (vq_used_idx(&rx) != rx.last_used) {
		u32 id, len;
		if (vq_poll(&rx, 1, &id, &len) != 0 || id >= 2 * NRX || (id & 1))
			fail("vnet: bad used element");
		const u8 *p = rxbuf[id / 2];
		u32 n = len > HDR ? len - HDR : 0;
		printf("vnet: rx %u bytes type %02x%02x\n", n, p[12], p[13]);
		if (n >= 42 && p[12] == 0x08 && p[13] == 0x06 && p[21] == 2 &&
		    memcmp(p + 28, gw_ip, 4) == 0) {
			const u8 *m = p + 22;
			printf("vnet: arp reply 10.0.2.2 is at %02x:%02x:%02x:%02x:%02x:%02x\n", m[0],
			       m[1], m[2], m[3], m[4], m[5]);
			return 1;
		}
	}
	return 0;
}

static void on_irq(u32 irq)
{
	u8 isr = inb(dev.io + VIO_ISR);
	printf("vnet: irq %u isr=0x%x\n", irq, isr);
	if (irq != dev.irq || !(isr & 1))
		fail("vnet: wrong irq or isr");
	/* A transmit completion may interrupt first (NO_INTERRUPT is only a
	 * hint): the handler cannot return, so it polls for the reply from here. */
	struct deadline dl;
	deadline_init(&dl, timeout_word(10));
	while (!deadline_passed(&dl)) {
		if (check_rx()) {
			puts("vnet: ok\n");
			exit(0);
		}
	}
	fail("vnet: no arp reply after the interrupt");
}

void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)magic;
	(void)mbi;
	int irqmode = has_word("irq");
	u32 timeout = timeout_word(10);
	if (vdev_open("vnet", 0x1000, 1, 0, &dev) != 0)
		fail("vnet: no device");
	u32 host = inl(dev.io + VIO_HOST_FEATURES);
	u32 guest = host & (NET_F_MAC | NET_F_STATUS);
	outl(dev.io + VIO_GUEST_FEATURES, guest);
	printf("vnet: host features 0x%x guest features 0x%x\n", host, guest);
	if (!(guest & NET_F_MAC))
		fail("vnet: MAC not offered");
	for (u32 i = 0; i < 6; i++)
		mac[i] = inb((u16)(dev.io + VIO_CONFIG + i));
	printf("vnet: mac %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4],
	       mac[5]);
	if (guest & NET_F_STATUS)
		printf("vnet: link status 0x%x\n", inw(dev.io + VIO_CONFIG + 6));
	if (vq_setup("vnet", &dev, &rx, 0, rxring) != 0 || vq_setup("vnet", &dev, &tx, 1, txring) != 0)
		fail("vnet: queue setup");
	if (rx.size < 2 * NRX)
		fail("vnet: receive queue too small");
	if (!irqmode)
		rx.avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
	tx.avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
	vdev_status(&dev, VIRTIO_ACK | VIRTIO_DRIVER | VIRTIO_DRIVER_OK);
	post_rx();
	struct deadline dl;
	deadline_init(&dl, timeout);
	if (irqmode) {
		if (dev.irq == 0 || dev.irq >= 16)
			fail("vnet: no usable interrupt line");
		intr_init(on_irq);
		pic_unmask(dev.irq);
		sti();
	}
	send_arp();
	u32 id, len;
	if (vq_poll(&tx, timeout, &id, &len) != 0)
		fail("vnet: transmit not completed");
	puts("vnet: tx done\n");
	while (!deadline_passed(&dl)) {
		if (!irqmode && check_rx()) {
			puts("vnet: ok\n");
			exit(0);
		}
	}
	cli();
	fail("vnet: no arp reply");
}
