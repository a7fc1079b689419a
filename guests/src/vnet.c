/* vnet: a legacy virtio-net driver. Reads the MAC from config space, posts
 * receive buffers on queue 0 (10-byte header and 2048-byte data as separate
 * descriptors), sends an ARP request for 10.0.2.2 from 10.0.2.15 on queue 1
 * and prints the sender MAC of the ARP reply. Words: "irq" (wait for the
 * receive interrupt instead of polling), "timeout=N" (seconds, default 10).
 * With "clone" (the snapshot tests'), it writes the boot-timer port 0x505
 * once its queues are live instead of sending the ARP request; after that
 * point it reads the MAC from config space again and the ISR, prints
 * "vnet: after ready mac M config-change C" (C is ISR bit 1), and sends a
 * DHCPDISCOVER for the MAC read then and one for the MAC read at start,
 * printing "vnet: dhcp offer A for M" for each. With "syn" as well, it
 * then prints "vnet: waiting for tcp syn", answers ARP requests for
 * 10.0.2.15 with the MAC read after ready, and prints
 * "vnet: tcp syn from A:P to port Q" for the first TCP SYN to 10.0.2.15
 * (a port forward of the user network reaching the guest).
 * With "listen=N" (the readiness tests'), it answers ARP requests for
 * 10.0.2.15 and TCP SYNs to 10.0.2.15 instead of sending the ARP request:
 * one to port N gets a SYN-ACK, printing "vnet: accepted tcp from A:P on
 * port N", and the guest exits (with "stay", once its timeout has
 * passed, so that a host acting on its readiness finds it running); one
 * to another port gets a RST, printing
 * "vnet: refused tcp from A:P to port Q", and after three of those the
 * guest exits. With "clone" too, it does that after the DHCP exchanges
 * (what a restored service does). */
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
		vq_chain2(&rx, (u16)(2 * i), rxhdr[i], HDR, rxbuf[i], 2048, VRING_DESC_F_WRITE);
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
	vq_chain2(&tx, 0, txhdr, HDR, frame, sizeof(frame), 0);
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

/* repost gives receive chain id (a header descriptor) back to the device. */
static void repost(u32 id)
{
	u16 idx = rx.avail[1];
	rx.avail[2 + (idx & (rx.size - 1))] = (u16)id;
	barrier();
	rx.avail[1] = (u16)(idx + 1);
	mb();
	outw(dev.io + VIO_QUEUE_NOTIFY, 0);
}

static u8 dframe[342]; /* Ethernet, IPv4, UDP, BOOTP of 300 bytes */

static void put16(u8 *p, u16 v) { p[0] = (u8)(v >> 8), p[1] = (u8)v; }

/* dhcp_discover sends a DHCPDISCOVER from m (frame source and chaddr)
 * with transaction id xid, and prints the address offered to m. */
static void dhcp_discover(const u8 *m, u32 xid, u32 timeout)
{
	u8 *f = dframe;
	memset(f, 0, sizeof(dframe));
	memset(f, 0xFF, 6);
	memcpy(f + 6, m, 6);
	f[12] = 0x08, f[13] = 0x00;
	u8 *ip = f + 14, *udp = ip + 20, *bp = udp + 8;
	ip[0] = 0x45;
	put16(ip + 2, sizeof(dframe) - 14);
	ip[8] = 64, ip[9] = 17;
	memset(ip + 16, 0xFF, 4); /* from 0.0.0.0 to 255.255.255.255 */
	u32 sum = 0;
	for (u32 i = 0; i < 20; i += 2)
		sum += (u32)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	put16(ip + 10, (u16)~sum);
	put16(udp, 68), put16(udp + 2, 67), put16(udp + 4, sizeof(dframe) - 34);
	bp[0] = 1, bp[1] = 1, bp[2] = 6; /* BOOTREQUEST, Ethernet */
	bp[4] = (u8)(xid >> 24), bp[5] = (u8)(xid >> 16), bp[6] = (u8)(xid >> 8), bp[7] = (u8)xid;
	bp[10] = 0x80; /* broadcast the reply */
	memcpy(bp + 28, m, 6);
	u8 *o = bp + 236;
	o[0] = 99, o[1] = 130, o[2] = 83, o[3] = 99; /* magic cookie */
	o[4] = 53, o[5] = 1, o[6] = 1;               /* DHCPDISCOVER */
	o[7] = 255;
	vq_chain2(&tx, 0, txhdr, HDR, dframe, sizeof(dframe), 0);
	vq_submit(&tx, 0);
	u32 id, len;
	if (vq_poll(&tx, timeout, &id, &len) != 0)
		fail("vnet: DHCPDISCOVER not sent");
	struct deadline dl;
	deadline_init(&dl, timeout);
	while (!deadline_passed(&dl)) {
		if (vq_used_idx(&rx) == rx.last_used)
			continue;
		if (vq_poll(&rx, 1, &id, &len) != 0 || id >= 2 * NRX || (id & 1))
			fail("vnet: bad used element");
		const u8 *p = rxbuf[id / 2], *rb = p + 42;
		u32 n = len > HDR ? len - HDR : 0;
		int offer = n >= 42 + 240 && p[12] == 0x08 && p[13] == 0x00 && p[23] == 17 && p[36] == 0 &&
			    p[37] == 68 && rb[0] == 2 && memcmp(rb + 4, bp + 4, 4) == 0 && memcmp(rb + 28, m, 6) == 0;
		repost(id);
		if (offer) {
			printf("vnet: dhcp offer %u.%u.%u.%u for %02x:%02x:%02x:%02x:%02x:%02x\n", rb[16], rb[17],
			       rb[18], rb[19], m[0], m[1], m[2], m[3], m[4], m[5]);
			return;
		}
	}
	fail("vnet: no DHCPOFFER");
}

/* send_frame sends f (n bytes) on the transmit queue and waits for it. */
static void send_frame(const u8 *f, u32 n, u32 timeout)
{
	vq_chain2(&tx, 0, txhdr, HDR, f, n, 0);
	vq_submit(&tx, 0);
	u32 id, len;
	if (vq_poll(&tx, timeout, &id, &len) != 0)
		fail("vnet: frame not sent");
}

/* arp_reply answers the ARP request a (the frame's ARP part) for my_ip
 * as m. */
static void arp_reply(const u8 *a, const u8 *m, u32 timeout)
{
	u8 *f = frame;
	memset(f, 0, sizeof(frame));
	memcpy(f, a + 8, 6);
	memcpy(f + 6, m, 6);
	f[12] = 0x08, f[13] = 0x06;
	u8 *r = f + 14;
	memcpy(r, a, 6);    /* Ethernet, IPv4, sizes */
	r[6] = 0, r[7] = 2; /* reply */
	memcpy(r + 8, m, 6);
	memcpy(r + 14, my_ip, 4);
	memcpy(r + 18, a + 8, 10); /* the asker's MAC and address */
	send_frame(frame, sizeof(frame), timeout);
}

/* next_syn receives until a TCP SYN to 10.0.2.15 whose flags under mask
 * are SYN alone, answering ARP requests for 10.0.2.15 as m and posting
 * the other frames' buffers again. It returns the SYN's frame, whose
 * buffer *id is still out of the ring, and sets *ihl to its IP header's
 * length; 0 once dl passed. */
static const u8 *next_syn(const u8 *m, u8 mask, struct deadline *dl, u32 timeout, u32 *id, u32 *ihl)
{
	while (!deadline_passed(dl)) {
		if (vq_used_idx(&rx) == rx.last_used)
			continue;
		u32 len;
		if (vq_poll(&rx, 1, id, &len) != 0 || *id >= 2 * NRX || (*id & 1))
			fail("vnet: bad used element");
		const u8 *p = rxbuf[*id / 2];
		u32 n = len > HDR ? len - HDR : 0;
		const u8 *a = p + 14, *ip = p + 14;
		if (n >= 42 && p[12] == 0x08 && p[13] == 0x06 && a[7] == 1 && memcmp(a + 24, my_ip, 4) == 0) {
			arp_reply(a, m, timeout); /* before repost: a is in the buffer */
			repost(*id);
			continue;
		}
		*ihl = (u32)(ip[0] & 15) * 4;
		if (n >= 14 + *ihl + 20 && p[12] == 0x08 && p[13] == 0x00 && ip[9] == 6 &&
		    memcmp(ip + 16, my_ip, 4) == 0 && (ip[*ihl + 13] & mask) == 0x02)
			return p;
		repost(*id);
	}
	return 0;
}

/* wait_syn answers ARP requests for 10.0.2.15 as m and returns once a TCP
 * SYN to 10.0.2.15 came, printing where from and to which port. */
static void wait_syn(const u8 *m, u32 timeout)
{
	puts("vnet: waiting for tcp syn\n");
	struct deadline dl;
	deadline_init(&dl, timeout);
	u32 id, ihl;
	const u8 *p = next_syn(m, 0x12, &dl, timeout, &id, &ihl); /* SYN, no ACK */
	if (!p)
		fail("vnet: no tcp syn");
	const u8 *ip = p + 14, *tcp = ip + ihl;
	printf("vnet: tcp syn from %u.%u.%u.%u:%u to port %u\n", ip[12], ip[13], ip[14], ip[15],
	       (u32)(tcp[0] << 8 | tcp[1]), (u32)(tcp[2] << 8 | tcp[3]));
}

static u16 ipsum(const u8 *p, u32 n, u32 sum)
{
	for (u32 i = 0; i + 1 < n; i += 2)
		sum += (u32)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (u32)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (u16)~sum;
}

/* tcp_answer sends, from m, the answer to the TCP SYN in frame p (Ethernet,
 * IPv4 at p+14 with header length ihl): a SYN-ACK when accept, else a RST. */
static void tcp_answer(const u8 *p, u32 ihl, const u8 *m, int accept, u32 timeout)
{
	const u8 *ip = p + 14, *syn = ip + ihl;
	u8 *f = frame;
	memset(f, 0, sizeof(frame));
	memcpy(f, p + 6, 6);
	memcpy(f + 6, m, 6);
	f[12] = 0x08, f[13] = 0x00;
	u8 *rip = f + 14, *t = rip + 20;
	rip[0] = 0x45;
	put16(rip + 2, 40);
	rip[6] = 0x40; /* don't fragment */
	rip[8] = 64, rip[9] = 6;
	memcpy(rip + 12, my_ip, 4);
	memcpy(rip + 16, ip + 12, 4);
	put16(rip + 10, ipsum(rip, 20, 0));
	memcpy(t, syn + 2, 2); /* from the port asked for */
	memcpy(t + 2, syn, 2);
	u32 ack = (u32)syn[4] << 24 | (u32)syn[5] << 16 | (u32)syn[6] << 8 | syn[7];
	ack++;
	if (accept)
		t[4] = 0x12, t[5] = 0x34, t[6] = 0x56, t[7] = 0x78; /* our sequence */
	t[8] = (u8)(ack >> 24), t[9] = (u8)(ack >> 16), t[10] = (u8)(ack >> 8), t[11] = (u8)ack;
	t[12] = 5 << 4;
	t[13] = accept ? 0x12 : 0x14; /* SYN-ACK, or RST-ACK */
	if (accept)
		put16(t + 14, 8192);
	/* The checksum over the pseudo-header (addresses, protocol, length). */
	u32 sum = 6 + 20;
	for (u32 i = 12; i < 20; i += 2)
		sum += (u32)(rip[i] << 8 | rip[i + 1]);
	put16(t + 16, ipsum(t, 20, sum));
	send_frame(frame, sizeof(frame), timeout);
}

/* listen answers ARP requests for 10.0.2.15 and TCP SYNs to it: see the
 * "listen=N" word. */
static void listen(u32 port, u32 timeout)
{
	printf("vnet: listening on tcp port %u\n", port);
	u32 refused = 0;
	struct deadline dl;
	deadline_init(&dl, timeout);
	u32 id, ihl;
	const u8 *p;
	while ((p = next_syn(mac, 0x16, &dl, timeout, &id, &ihl)) != 0) { /* SYN alone */
		static u8 syn[60];
		memcpy(syn, p, 14 + ihl + 20 <= sizeof(syn) ? 14 + ihl + 20 : sizeof(syn));
		repost(id);
		const u8 *sip = syn + 14, *t = sip + ihl;
		u32 to = (u32)(t[2] << 8 | t[3]);
		int accept = to == port;
		tcp_answer(syn, ihl, mac, accept, timeout);
		if (accept) {
			printf("vnet: accepted tcp from %u.%u.%u.%u:%u on port %u\n", sip[12], sip[13],
			       sip[14], sip[15], (u32)(t[0] << 8 | t[1]), to);
			if (has_word("stay")) {
				/* Keeps running past the SYN-ACK that made it
				 * ready, for a host that acts on readiness. */
				while (!deadline_passed(&dl))
					;
			}
			exit(0);
		}
		printf("vnet: refused tcp from %u.%u.%u.%u:%u to port %u\n", sip[12], sip[13], sip[14],
		       sip[15], (u32)(t[0] << 8 | t[1]), to);
		if (++refused == 3)
			exit(0);
	}
	fail("vnet: no tcp syn to answer");
}

/* clone runs after the snapshot point of the "clone" word. */
static void clone(u32 timeout)
{
	outb(0x505, 1);
	u8 now[6];
	for (u32 i = 0; i < 6; i++)
		now[i] = inb((u16)(dev.io + VIO_CONFIG + i));
	u8 isr = inb(dev.io + VIO_ISR);
	printf("vnet: after ready mac %02x:%02x:%02x:%02x:%02x:%02x config-change %u\n", now[0], now[1],
	       now[2], now[3], now[4], now[5], (isr >> 1) & 1);
	dhcp_discover(now, 0x736d6f01, timeout);
	dhcp_discover(mac, 0x736d6f02, timeout);
	if (has_word("syn"))
		wait_syn(now, timeout);
	u32 port;
	if (word_uint("listen", &port))
		listen(port, timeout);
	puts("vnet: ok\n");
	exit(0);
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
	if (has_word("clone"))
		clone(timeout);
	u32 port;
	if (word_uint("listen", &port))
		listen(port, timeout);
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
