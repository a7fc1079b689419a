/* vtcp: a minimal TCP over legacy virtio-net, to move a known byte stream
 * between two VMs (or a VM and a real stack) and check it arrived intact.
 * It takes an address by DHCP (DISCOVER, OFFER, REQUEST, ACK), answers ARP
 * for it, and plays one of two roles:
 *   listen port=P [bytes=N]: accept one connection on P, take in-order
 *     data and ACK it cumulatively (anything out of order is dropped and
 *     the last ACK repeated), check every byte against the pattern, and
 *     answer the peer's FIN with its own;
 *   send peer=A.B.C.D port=P bytes=N [window=W]: ARP for the peer (or the
 *     router, off the subnet), connect, send N bytes of the pattern in
 *     MSS-sized segments, at most W (4) unacknowledged, going back to the
 *     last ACK when none comes for a second or two (RTC ticks), then FIN.
 * Byte i of the stream is (u8)(i + 31 * (i >> 8)) (guests.VtcpStream), so
 * a segment placed at the wrong offset does not match. Checksums are
 * checked on receipt (IPv4 header and TCP); bad ones are counted and
 * dropped. Each phase waits at most timeout=N (30) seconds without
 * progress, then ends with a FAIL line. Options and state are the least
 * TCP needs: MSS is the only option sent or read, no window scaling,
 * SACK or timestamps, one connection, no TIME-WAIT. */
#include "virtio.h"

#define NET_F_MAC (1u << 5)
#define NRX 16 /* receive buffers: more than a window of segments */
#define HDR 10 /* legacy virtio-net header, no offloads */
#define BUF 2048
#define ETH 14
#define MSS 1460   /* 1500-byte IPv4 MTU less IPv4 and TCP headers */
#define RWND 11680 /* the listener's window: 8 segments */

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

static u8 rxring[VQ_MEM] __attribute__((aligned(4096)));
static u8 txring[VQ_MEM] __attribute__((aligned(4096)));
static u8 rxhdr[NRX][HDR], rxbuf[NRX][BUF];
static u8 txhdr[HDR], txbuf[ETH + 20 + 20 + MSS] __attribute__((aligned(4)));
static struct vdev dev;
static struct vq rx, tx;

static u8 mac[6], my_ip[4], mask[4] = {255, 255, 255, 0}, router[4];
static u32 timeout;
static u32 bad_sums; /* IPv4 or TCP checksums that did not verify */

typedef u32 u32a __attribute__((may_alias));
typedef u16 u16a __attribute__((may_alias));

static void put16(u8 *p, u32 v) { p[0] = (u8)(v >> 8), p[1] = (u8)v; }
static void put32(u8 *p, u32 v) { put16(p, v >> 16), put16(p + 2, v); }
static u32 get16(const u8 *p) { return (u32)(p[0] << 8 | p[1]); }
static u32 get32(const u8 *p) { return get16(p) << 16 | get16(p + 2); }
/* before: sequence number a comes before b (modulo 2^32). */
static int before(u32 a, u32 b) { return (int)(a - b) < 0; }

/* passed is deadline_passed made to stay true once it was (the runtime's
 * counts ticks down and would start over), so that an inner loop's wait
 * can end on the outer deadline and the outer loop see it. */
static int passed(struct deadline *d) { return d->left == 0 || deadline_passed(d); }

static u8 pattern(u32 i) { return (u8)(i + 31 * (i >> 8)); }

static void print_ip(const char *pre, const u8 *a, const char *post)
{
	printf("%s%u.%u.%u.%u%s", pre, a[0], a[1], a[2], a[3], post);
}

/* Ones'-complement sums (RFC 1071). The sum does not depend on byte order,
 * so words are added as an x86 loads them (little-endian, four bytes at a
 * time: fewer instructions, which count here) and the result is stored the
 * same way. */
static u64 csum_add(u64 s, const u8 *p, u32 n)
{
	for (; n >= 4; n -= 4, p += 4)
		s += *(const u32a *)p;
	if (n >= 2) {
		s += *(const u16a *)p;
		p += 2;
		n -= 2;
	}
	if (n)
		s += *p;
	return s;
}

static u16 csum_fold(u64 s)
{
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	return (u16)s;
}

/* tcp_sum sums the TCP pseudo-header and the segment of n bytes at t. */
static u16 tcp_sum(const u8 *src, const u8 *dst, const u8 *t, u32 n)
{
	u8 ph[12];
	memcpy(ph, src, 4);
	memcpy(ph + 4, dst, 4);
	ph[8] = 0, ph[9] = 6;
	put16(ph + 10, n);
	return csum_fold(csum_add(csum_add(0, ph, 12), t, n));
}

/* ---- virtio-net ---- */

static void post_rx(void)
{
	for (u16 i = 0; i < NRX; i++) {
		vq_chain2(&rx, (u16)(2 * i), rxhdr[i], HDR, rxbuf[i], BUF, VRING_DESC_F_WRITE);
		rx.avail[2 + i] = (u16)(2 * i);
	}
	barrier();
	rx.avail[1] = NRX;
	mb();
	outw(dev.io + VIO_QUEUE_NOTIFY, 0);
}

static void net_init(void)
{
	if (vdev_open("vtcp", 0x1000, 1, 0, &dev) != 0)
		fail("vtcp: no device");
	u32 host = inl(dev.io + VIO_HOST_FEATURES);
	if (!(host & NET_F_MAC))
		fail("vtcp: MAC not offered");
	outl(dev.io + VIO_GUEST_FEATURES, NET_F_MAC);
	for (u32 i = 0; i < 6; i++)
		mac[i] = inb((u16)(dev.io + VIO_CONFIG + i));
	printf("vtcp: mac %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4],
	       mac[5]);
	if (vq_setup("vtcp", &dev, &rx, 0, rxring) != 0 || vq_setup("vtcp", &dev, &tx, 1, txring) != 0)
		fail("vtcp: queue setup");
	if (rx.size < 2 * NRX)
		fail("vtcp: receive queue too small");
	rx.avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
	tx.avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
	vdev_status(&dev, VIRTIO_ACK | VIRTIO_DRIVER | VIRTIO_DRIVER_OK);
	post_rx();
}

/* send_frame sends the n bytes of txbuf and waits until the device took them. */
static void send_frame(u32 n)
{
	if (n < 60) { /* the Ethernet minimum, as a NIC pads */
		memset(txbuf + n, 0, 60 - n);
		n = 60;
	}
	vq_chain2(&tx, 0, txhdr, HDR, txbuf, n, 0);
	vq_submit(&tx, 0);
	u32 id, len;
	if (vq_poll(&tx, timeout, &id, &len) != 0)
		fail("vtcp: frame not sent");
}

static u32 rx_id; /* the receive chain of the frame rx_next returned */

/* rx_next returns the next received frame and its length, or 0 when none
 * is waiting; rx_done gives its buffer back. */
static const u8 *rx_next(u32 *n)
{
	if (vq_used_idx(&rx) == rx.last_used)
		return 0;
	u32 len;
	if (vq_poll(&rx, 1, &rx_id, &len) != 0 || rx_id >= 2 * NRX || (rx_id & 1))
		fail("vtcp: bad used element");
	*n = len > HDR ? len - HDR : 0;
	return rxbuf[rx_id / 2];
}

static void rx_done(void)
{
	u16 idx = rx.avail[1];
	rx.avail[2 + (idx & (rx.size - 1))] = (u16)rx_id;
	barrier();
	rx.avail[1] = (u16)(idx + 1);
	mb();
	outw(dev.io + VIO_QUEUE_NOTIFY, 0);
}

/* eth fills txbuf's Ethernet header and returns where the payload goes. */
static u8 *eth(const u8 *dst, u32 type)
{
	memcpy(txbuf, dst, 6);
	memcpy(txbuf + 6, mac, 6);
	put16(txbuf + 12, type);
	return txbuf + ETH;
}

/* ip fills an IPv4 header at p for a payload of n bytes and returns where
 * the payload goes. */
static u8 *ip(u8 *p, const u8 *src, const u8 *dst, u32 proto, u32 n)
{
	memset(p, 0, 20);
	p[0] = 0x45;
	put16(p + 2, 20 + n);
	p[6] = 0x40; /* don't fragment */
	p[8] = 64, p[9] = (u8)proto;
	memcpy(p + 12, src, 4);
	memcpy(p + 16, dst, 4);
	*(u16a *)(p + 10) = (u16)~csum_fold(csum_add(0, p, 20));
	return p + 20;
}

/* ---- ARP ---- */

static void arp(const u8 *dst_mac, u32 op, const u8 *tha, const u8 *tpa)
{
	u8 *a = eth(dst_mac, 0x0806);
	put16(a, 1), put16(a + 2, 0x0800);
	a[4] = 6, a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, mac, 6);
	memcpy(a + 14, my_ip, 4);
	memcpy(a + 18, tha, 6);
	memcpy(a + 24, tpa, 4);
	send_frame(ETH + 28);
}

static const u8 bcast[6] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, zero[6];
static u8 arp_ip[4], arp_mac[6]; /* the address being resolved, and its answer */
static int arp_answered;

/* handle_arp answers requests for our address and notes a reply for
 * arp_ip. It returns 1 if the frame was ARP. */
static int handle_arp(const u8 *f, u32 n)
{
	if (n < ETH || get16(f + 12) != 0x0806)
		return 0;
	if (n < ETH + 28)
		return 1;
	const u8 *a = f + ETH;
	if (get16(a) != 1 || get16(a + 2) != 0x0800)
		return 1;
	if (get16(a + 6) == 1 && memcmp(a + 24, my_ip, 4) == 0) {
		u8 tha[6], tpa[4];
		memcpy(tha, a + 8, 6);
		memcpy(tpa, a + 14, 4);
		arp(tha, 2, tha, tpa);
	} else if (get16(a + 6) == 2 && memcmp(a + 14, arp_ip, 4) == 0) {
		memcpy(arp_mac, a + 8, 6);
		arp_answered = 1;
	}
	return 1;
}

/* resolve finds the MAC of address a, asking every second or two. */
static void resolve(const u8 *a, u8 *out)
{
	memcpy(arp_ip, a, 4);
	arp_answered = 0;
	struct deadline idle, retry;
	deadline_init(&idle, timeout);
	for (;;) {
		arp(bcast, 1, zero, a);
		deadline_init(&retry, 1);
		while (!passed(&retry) && !passed(&idle)) {
			u32 n;
			const u8 *f = rx_next(&n);
			if (!f)
				continue;
			handle_arp(f, n);
			rx_done();
			if (arp_answered) {
				memcpy(out, arp_mac, 6);
				print_ip("vtcp: ", a, "");
				printf(" is at %02x:%02x:%02x:%02x:%02x:%02x\n", out[0], out[1], out[2], out[3],
				       out[4], out[5]);
				return;
			}
		}
		if (passed(&idle))
			break;
	}
	print_ip("FAIL: vtcp: no ARP reply for ", a, "\n");
	exit(1);
}

/* ---- DHCP ---- */

#define XID 0x76746370 /* "vtcp" */

static void dhcp_send(u32 type, const u8 *want, const u8 *server)
{
	static const u8 none[4];
	u8 *u = ip(eth(bcast, 0x0800), none, bcast, 17, 8 + 300);
	u8 *b = u + 8;
	memset(u, 0, 8 + 300);
	put16(u, 68), put16(u + 2, 67), put16(u + 4, 8 + 300); /* UDP checksum 0: none */
	b[0] = 1, b[1] = 1, b[2] = 6; /* BOOTREQUEST, Ethernet */
	put32(b + 4, XID);
	b[10] = 0x80; /* broadcast the answer: we have no address yet */
	memcpy(b + 28, mac, 6);
	u8 *o = b + 236;
	o[0] = 99, o[1] = 130, o[2] = 83, o[3] = 99;
	o[4] = 53, o[5] = 1, o[6] = (u8)type;
	o += 7;
	if (want) {
		o[0] = 50, o[1] = 4; /* requested address */
		memcpy(o + 2, want, 4);
		o[6] = 54, o[7] = 4; /* server identifier */
		memcpy(o + 8, server, 4);
		o += 12;
	}
	o[0] = 255;
	send_frame(ETH + 20 + 8 + 300);
}

/* dhcp_opt returns option code's value in the BOOTP message b (n bytes), or 0. */
static const u8 *dhcp_opt(const u8 *b, u32 n, u32 code, u32 len)
{
	for (u32 i = 240; i + 1 < n && b[i] != 255;) {
		if (b[i] == 0) {
			i++;
			continue;
		}
		if (b[i] == code && b[i + 1] >= len && i + 2 + b[i + 1] <= n)
			return b + i + 2;
		i += 2u + b[i + 1];
	}
	return 0;
}

/* dhcp_wait returns the BOOTP reply of DHCP type want to our transaction
 * (its length in *len), or 0 after a second or two or once idle passed. */
static const u8 *dhcp_wait(u32 want, u32 *len, struct deadline *idle)
{
	struct deadline retry;
	deadline_init(&retry, 1);
	while (!passed(&retry) && !passed(idle)) {
		u32 n;
		const u8 *f = rx_next(&n);
		if (!f)
			continue;
		const u8 *p = f + ETH, *b = p + 28;
		if (n >= ETH + 28 + 240 && get16(f + 12) == 0x0800 && p[0] == 0x45 && p[9] == 17 &&
		    get16(p + 22) == 68 && b[0] == 2 && get32(b + 4) == XID && memcmp(b + 28, mac, 6) == 0) {
			const u8 *t = dhcp_opt(b, n - ETH - 28, 53, 1);
			if (t && *t == want) {
				*len = n - ETH - 28;
				return b; /* the caller calls rx_done */
			}
		}
		rx_done();
	}
	return 0;
}

/* dhcp takes an address: DISCOVER until an OFFER, REQUEST it until ACKed. */
static void dhcp(void)
{
	u8 offered[4], server[4];
	struct deadline idle;
	deadline_init(&idle, timeout);
	const u8 *b = 0;
	u32 n;
	while (!b) {
		if (passed(&idle))
			fail("vtcp: no DHCPOFFER");
		dhcp_send(1, 0, 0);
		b = dhcp_wait(2, &n, &idle);
	}
	const u8 *sid = dhcp_opt(b, n, 54, 4);
	if (!sid) {
		rx_done();
		fail("vtcp: DHCPOFFER without a server identifier");
	}
	memcpy(offered, b + 16, 4);
	memcpy(server, sid, 4);
	rx_done();
	for (b = 0; !b;) {
		if (passed(&idle))
			fail("vtcp: no DHCPACK");
		dhcp_send(3, offered, server);
		b = dhcp_wait(5, &n, &idle);
	}
	memcpy(my_ip, b + 16, 4);
	const u8 *o = dhcp_opt(b, n, 1, 4);
	if (o)
		memcpy(mask, o, 4);
	if ((o = dhcp_opt(b, n, 3, 4)))
		memcpy(router, o, 4);
	rx_done();
	print_ip("vtcp: address ", my_ip, "");
	print_ip(" mask ", mask, "");
	print_ip(" router ", router, "");
	print_ip(" from dhcp server ", server, "\n");
}

/* ---- TCP ---- */

/* The connection: the peer, and both sides' sequence numbers. */
static struct {
	u8 mac[6], ip[4];
	u32 port, lport;
	u32 snd_una, snd_nxt, snd_max, snd_wnd, mss; /* snd_max: the highest sent */
	u32 rcv_nxt;
} c;

/* A received segment for our address, checksums verified. */
struct seg {
	const u8 *f; /* the frame: Ethernet source at f + 6 */
	const u8 *src;
	u32 sport, dport, seq, ack, flags, wnd, len, mss;
	const u8 *data;
};

/* next_seg answers ARP and returns 1 with the next TCP segment for our
 * address in *s, which stays valid until rx_done; 0 if none is waiting. */
static int next_seg(struct seg *s)
{
	u32 n;
	const u8 *f;
	while ((f = rx_next(&n))) {
		const u8 *p = f + ETH;
		if (handle_arp(f, n) || n < ETH + 20 || get16(f + 12) != 0x0800 || p[0] != 0x45 ||
		    p[9] != 6 || memcmp(p + 16, my_ip, 4) != 0 || (get16(p + 6) & 0x3FFF)) {
			rx_done(); /* not for us, options, or a fragment */
			continue;
		}
		u32 tot = get16(p + 2);
		if (tot < 40 || ETH + tot > n || csum_fold(csum_add(0, p, 20)) != 0xFFFF) {
			bad_sums++;
			rx_done();
			continue;
		}
		const u8 *t = p + 20;
		u32 off = (u32)(t[12] >> 4) * 4;
		if (off < 20 || off > tot - 20 || tcp_sum(p + 12, p + 16, t, tot - 20) != 0xFFFF) {
			bad_sums++;
			rx_done();
			continue;
		}
		s->f = f, s->src = p + 12;
		s->sport = get16(t), s->dport = get16(t + 2);
		s->seq = get32(t + 4), s->ack = get32(t + 8);
		s->flags = t[13], s->wnd = get16(t + 14);
		s->data = t + off, s->len = tot - 20 - off;
		s->mss = 536; /* the default without the option */
		for (u32 i = 20; i + 1 < off && t[i] != 0;) {
			if (t[i] == 1) {
				i++;
			} else if (t[i] == 2 && t[i + 1] == 4 && i + 4 <= off) {
				s->mss = get16(t + i + 2);
				break;
			} else if (t[i + 1] < 2) {
				break;
			} else {
				i += t[i + 1];
			}
		}
		return 1;
	}
	return 0;
}

/* ours reports whether s belongs to the connection. */
static int ours(const struct seg *s)
{
	return s->sport == c.port && s->dport == c.lport && memcmp(s->src, c.ip, 4) == 0;
}

/* tcp_send sends a segment with flags at seq, acknowledging rcv_nxt,
 * carrying n bytes of the pattern from stream offset off. */
static void tcp_send(u32 flags, u32 seq, u32 off, u32 n)
{
	u32 hl = flags & TCP_SYN ? 24 : 20;
	u8 *t = ip(eth(c.mac, 0x0800), my_ip, c.ip, 6, hl + n);
	put16(t, c.lport), put16(t + 2, c.port);
	put32(t + 4, seq), put32(t + 8, c.rcv_nxt);
	t[12] = (u8)(hl / 4 << 4), t[13] = (u8)flags;
	put16(t + 14, RWND);
	put32(t + 16, 0); /* checksum, urgent pointer */
	if (hl == 24) {
		t[20] = 2, t[21] = 4; /* MSS */
		put16(t + 22, MSS);
	}
	for (u8 *d = t + hl, *e = d + n; d < e; d++, off++)
		*d = pattern(off);
	*(u16a *)(t + 16) = (u16)~tcp_sum(my_ip, c.ip, t, hl + n);
	send_frame(ETH + 20 + hl + n);
}

static void fail_rst(void)
{
	print_ip("FAIL: vtcp: connection reset by ", c.ip, "\n");
	exit(1);
}

/* next_own_seg is next_seg for an established connection: a segment of
 * another connection is dropped, and a reset of ours ends the guest. */
static int next_own_seg(struct seg *s)
{
	if (!next_seg(s))
		return 0;
	if (!ours(s)) {
		rx_done();
		return 0;
	}
	if (s->flags & TCP_RST)
		fail_rst();
	return 1;
}

/* listen accepts one connection on port and checks the stream it brings. */
static void listen(u32 port, int want_set, u32 want)
{
	print_ip("vtcp: listening on ", my_ip, "");
	printf(":%u\n", port);
	struct seg s;
	struct deadline idle, rto;
	deadline_init(&idle, timeout);
	/* A SYN to port: the peer's address is taken from it (and its MAC
	 * from the frame, which saves an ARP exchange). */
	for (;;) {
		if (passed(&idle))
			fail("vtcp: no connection");
		if (!next_seg(&s))
			continue;
		int syn = (s.flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN && s.dport == port;
		if (syn) {
			memcpy(c.mac, s.f + 6, 6);
			memcpy(c.ip, s.src, 4);
			c.port = s.sport, c.lport = port;
			c.rcv_nxt = s.seq + 1;
		}
		rx_done();
		if (syn)
			break;
	}
	const u32 iss = 0x6c697300; /* "lis" */
	c.snd_una = iss, c.snd_nxt = iss + 1;
	tcp_send(TCP_SYN | TCP_ACK, iss, 0, 0);
	deadline_init(&idle, timeout);
	deadline_init(&rto, 1);
	u32 got = 0, segs = 0, dropped = 0;
	int established = 0, fin = 0;
	for (;;) {
		if (passed(&idle))
			fail(fin ? "vtcp: our FIN not acknowledged" : established ? "vtcp: stream stalled"
									      : "vtcp: handshake not completed");
		if (passed(&rto)) { /* our SYN or FIN went unanswered */
			if (!established)
				tcp_send(TCP_SYN | TCP_ACK, iss, 0, 0);
			else if (fin)
				tcp_send(TCP_FIN | TCP_ACK, c.snd_nxt - 1, 0, 0);
			deadline_init(&rto, 1);
		}
		if (!next_own_seg(&s))
			continue;
		if (s.flags & TCP_SYN) { /* our SYN-ACK was lost: again */
			rx_done();
			if (!established)
				tcp_send(TCP_SYN | TCP_ACK, iss, 0, 0);
			continue;
		}
		if (!established && (s.flags & TCP_ACK) && s.ack == iss + 1) {
			established = 1;
			c.snd_una = s.ack;
			print_ip("vtcp: connection from ", c.ip, "");
			printf(":%u established\n", c.port);
		}
		if (!established) {
			rx_done();
			continue;
		}
		if (fin) {
			int acked = (s.flags & TCP_ACK) && s.ack == c.snd_nxt;
			rx_done();
			if (acked)
				break;
			tcp_send(TCP_FIN | TCP_ACK, c.snd_nxt - 1, 0, 0); /* the peer's FIN again */
			continue;
		}
		if (s.len == 0 && !(s.flags & TCP_FIN)) {
			rx_done();
			continue;
		}
		if (s.seq != c.rcv_nxt) { /* out of order or old: the last ACK again */
			dropped++;
			rx_done();
			tcp_send(TCP_ACK, c.snd_nxt, 0, 0);
			continue;
		}
		for (u32 i = 0; i < s.len; i++) {
			u8 w = pattern(got + i);
			if (s.data[i] != w) {
				printf("FAIL: vtcp: stream byte %u is 0x%02x, want 0x%02x\n", got + i, s.data[i], w);
				exit(1);
			}
		}
		got += s.len;
		c.rcv_nxt += s.len;
		segs += s.len ? 1 : 0;
		fin = s.flags & TCP_FIN;
		rx_done();
		deadline_init(&idle, timeout);
		if (!fin) {
			tcp_send(TCP_ACK, c.snd_nxt, 0, 0);
			continue;
		}
		c.rcv_nxt++;
		tcp_send(TCP_FIN | TCP_ACK, c.snd_nxt, 0, 0);
		c.snd_nxt++;
		deadline_init(&rto, 1);
		if (want_set && got != want) {
			printf("FAIL: vtcp: received %u bytes, want %u\n", got, want);
			exit(1);
		}
		printf("vtcp: received %u bytes ok\n", got);
	}
	printf("vtcp: segments %u, out of order %u, bad checksums %u\n", segs, dropped, bad_sums);
	puts("vtcp: closed\n");
	exit(0);
}

/* connect opens the connection to c.ip:c.port. */
static void connect(void)
{
	const u32 iss = 0x736e6400; /* "snd" */
	struct seg s;
	struct deadline idle, rto;
	deadline_init(&idle, timeout);
	for (;;) {
		if (passed(&idle))
			fail("vtcp: no answer to SYN");
		tcp_send(TCP_SYN, iss, 0, 0);
		deadline_init(&rto, 1);
		while (!passed(&rto) && !passed(&idle)) {
			if (!next_seg(&s))
				continue;
			int mine = ours(&s);
			u32 fl = s.flags;
			if (mine && (fl & TCP_RST) && (fl & TCP_ACK) && s.ack == iss + 1) {
				rx_done();
				print_ip("FAIL: vtcp: connection refused by ", c.ip, "\n");
				exit(1);
			}
			if (mine && (fl & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK) && s.ack == iss + 1) {
				c.rcv_nxt = s.seq + 1;
				c.snd_una = c.snd_nxt = iss + 1;
				c.snd_wnd = s.wnd;
				c.mss = s.mss < MSS ? s.mss : MSS;
				rx_done();
				tcp_send(TCP_ACK, c.snd_nxt, 0, 0);
				print_ip("vtcp: connected to ", c.ip, "");
				printf(":%u mss %u window %u\n", c.port, c.mss, c.snd_wnd);
				return;
			}
			rx_done();
		}
	}
}

/* send_stream sends total bytes, at most window segments in flight, then
 * FIN, and waits for the peer's FIN. */
static void send_stream(u32 total, u32 window)
{
	const u32 start = c.snd_una, end = start + total;
	u32 timeouts = 0;
	c.snd_max = c.snd_nxt;
	int fin_sent = 0, peer_fin = 0;
	struct seg s;
	struct deadline idle, rto;
	deadline_init(&idle, timeout);
	deadline_init(&rto, 1);
	for (;;) {
		u32 limit = window * c.mss < c.snd_wnd ? window * c.mss : c.snd_wnd;
		while (before(c.snd_nxt, end)) {
			u32 n = end - c.snd_nxt < c.mss ? end - c.snd_nxt : c.mss;
			if (c.snd_nxt - c.snd_una + n > limit)
				break;
			tcp_send(TCP_ACK | TCP_PSH, c.snd_nxt, c.snd_nxt - start, n);
			c.snd_nxt += n;
			if (before(c.snd_max, c.snd_nxt))
				c.snd_max = c.snd_nxt;
		}
		if (c.snd_una == end && !fin_sent) {
			tcp_send(TCP_FIN | TCP_ACK, end, 0, 0);
			c.snd_nxt = c.snd_max = end + 1;
			fin_sent = 1;
		}
		if (fin_sent && c.snd_una == end + 1 && peer_fin)
			break;
		if (passed(&idle))
			fail(fin_sent ? "vtcp: close not completed" : "vtcp: stream stalled");
		if (passed(&rto)) { /* go back to the last ACK */
			if (c.snd_una != c.snd_max)
				timeouts++;
			if (fin_sent && c.snd_una != end + 1)
				tcp_send(TCP_FIN | TCP_ACK, end, 0, 0);
			else if (!fin_sent)
				c.snd_nxt = c.snd_una;
			deadline_init(&rto, 1);
		}
		if (!next_own_seg(&s))
			continue;
		/* An ACK of data sent before a go-back counts too. */
		if ((s.flags & TCP_ACK) && before(c.snd_una, s.ack) && !before(c.snd_max, s.ack)) {
			c.snd_una = s.ack;
			if (before(c.snd_nxt, s.ack))
				c.snd_nxt = s.ack;
			deadline_init(&idle, timeout);
			deadline_init(&rto, 1);
		}
		if (s.flags & TCP_ACK)
			c.snd_wnd = s.wnd;
		int fin = (s.flags & TCP_FIN) && s.len == 0 && s.seq == c.rcv_nxt; /* in order */
		rx_done();
		if (fin) { /* the peer's FIN (first or again): ACK it */
			if (!peer_fin)
				c.rcv_nxt++;
			peer_fin = 1;
			tcp_send(TCP_ACK, c.snd_nxt, 0, 0);
		} else if (peer_fin && (s.flags & TCP_FIN)) {
			tcp_send(TCP_ACK, c.snd_nxt, 0, 0);
		}
	}
	printf("vtcp: sent %u bytes, %u timeouts\n", total, timeouts);
	puts("vtcp: closed\n");
	exit(0);
}

/* word_ip parses "key=A.B.C.D" from the command line. */
static int word_ip(const char *key, u8 *a)
{
	const char *p = cmdline_get();
	u32 klen = strlen(key);
	while (*p && *p != ' ') /* the kernel's file name */
		p++;
	for (; *p; p++) {
		if (p[0] != ' ' || memcmp(p + 1, key, klen) != 0 || p[1 + klen] != '=')
			continue;
		const char *s = p + 2 + klen;
		for (u32 i = 0; i < 4; i++, s++) {
			u32 v = 0, digits = 0;
			for (; *s >= '0' && *s <= '9' && digits < 4; s++, digits++)
				v = v * 10 + (u32)(*s - '0');
			char sep = i < 3 ? '.' : ' ';
			if (!digits || v > 255 || (*s != sep && !(i == 3 && *s == 0)))
				return 0;
			a[i] = (u8)v;
		}
		return 1;
	}
	return 0;
}

void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)magic;
	(void)mbi;
	timeout = timeout_word(30);
	int lsn = has_word("listen"), snd = has_word("send");
	u32 port, total = 0, window = 4;
	int total_set = word_uint("bytes", &total);
	if (lsn == snd || !word_uint("port", &port) || port == 0 || port > 65535)
		fail("vtcp: say listen port=P [bytes=N], or send peer=A.B.C.D port=P bytes=N [window=W]");
	if (snd && (!word_ip("peer", c.ip) || !total_set || (word_uint("window", &window) && window == 0)))
		fail("vtcp: send needs peer=A.B.C.D, port=P and bytes=N (window=W at least 1)");
	net_init();
	dhcp();
	if (lsn)
		listen(port, total_set, total);
	c.port = port, c.lport = 40000;
	const u8 *hop = c.ip;
	for (u32 i = 0; i < 4; i++)
		if ((c.ip[i] & mask[i]) != (my_ip[i] & mask[i]))
			hop = router;
	resolve(hop, c.mac);
	connect();
	send_stream(total, window);
}
