/* hammer: a hostile guest for the VMM's port and MMIO paths. From a fixed
 * seed it throws random accesses at every port smolvmm serves (COM1, CMOS,
 * 8042, port 0x92, PCI configuration, boot timer, the virtio BARs, and any
 * port at all): in/out of 1, 2 and 4 bytes at any alignment and rep
 * ins/outs of up to 4 KiB, with random PCI configuration writes that move
 * BARs anywhere. Then it abuses the virtio registers and PCI BARs on
 * purpose, reads MMIO all over the space above RAM, puts the machine back
 * in order, checks that every device still answers and exits with 0x2A.
 * It never writes what would end the VM early (debug-exit, reset commands).
 * Words: "n=N" (random port accesses, default 3000), "seed=N",
 * "mmio=N" (distinct MMIO pages read, default 0). */
#include "rt.h"

#define EXIT_CODE 0x2A

static u32 rng = 0x9E3779B9u;

static u32 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static u8 sbuf[16384];

/* The virtio devices: PCI device number, BAR0 as placed, its size. */
static u32 nvirt, vdev[4];
static u16 vbar[4], vsize[4];

static const u16 served[] = {
	0x3F8, 0x3F9, 0x3FA, 0x3FB, 0x3FC, 0x3FD, 0x3FE, 0x3FF,
	0x70, 0x71, 0x60, 0x61, 0x64, 0x92, 0xCF8, 0xCF9, 0xCFA, 0xCFB,
	0xCFC, 0xCFD, 0xCFE, 0xCFF, 0x505, 0x500, 0x506, 0x80,
};

/* harmless says whether writing size bytes of v at port p keeps the VM
 * running: no debug-exit, no reset through 0x64, 0x92 or 0xCF9, and no
 * change to a virtio queue PFN (a random ring in RAM would let the device
 * scribble over this guest). */
static int harmless(u16 p, u32 size, u32 v)
{
	u32 end = (u32)p + size;
	if (end > 0x501 && p < 0x505)
		return 0;
	if (p == 0x64 && (v & 0xFF) == 0xFE)
		return 0;
	if (p == 0x92 && (v & 1))
		return 0;
	if (p == 0xCF9 && size == 1 && (v & 4))
		return 0;
	for (u32 i = 0; i < nvirt; i++)
		if (end > vbar[i] + 8u && p < vbar[i] + 12u)
			return 0;
	return 1;
}

static u16 pick_port(void)
{
	u32 r = rnd();
	switch (r & 7) {
	case 0:
		return (u16)(r >> 16);
	case 1:
	case 2:
		if (nvirt)
			return (u16)(vbar[(r >> 8) % nvirt] + ((r >> 16) & 0x7F));
		/* fall through */
	default:
		return served[(r >> 8) % (sizeof(served) / sizeof(served[0]))];
	}
}

static u32 pick_value(u16 p)
{
	u32 r = rnd();
	/* Half the PCI address writes name a function that exists. */
	if (p == 0xCF8 && (r & 1))
		return 0x80000000u | ((r >> 4) % 3) << 11 | (r >> 16 & 0xFC);
	return r;
}

static void rep_io(u16 p, u32 size, u32 count, int out)
{
	void *b = sbuf;
	u32 c = count;
	if (out) {
		switch (size) {
		case 1: __asm__ volatile("rep outsb" : "+S"(b), "+c"(c) : "d"(p) : "memory"); break;
		case 2: __asm__ volatile("rep outsw" : "+S"(b), "+c"(c) : "d"(p) : "memory"); break;
		default: __asm__ volatile("rep outsl" : "+S"(b), "+c"(c) : "d"(p) : "memory"); break;
		}
	} else {
		switch (size) {
		case 1: __asm__ volatile("rep insb" : "+D"(b), "+c"(c) : "d"(p) : "memory"); break;
		case 2: __asm__ volatile("rep insw" : "+D"(b), "+c"(c) : "d"(p) : "memory"); break;
		default: __asm__ volatile("rep insl" : "+D"(b), "+c"(c) : "d"(p) : "memory"); break;
		}
	}
}

static void hammer_ports(u32 n)
{
	for (u32 i = 0; i < n; i++) {
		u16 p = pick_port();
		u32 r = rnd(), size = 1u << (r % 3);
		u32 v = pick_value(p);
		if (r & 0x18) {
			/* single access */
			if (r & 4) {
				if (!harmless(p, size, v))
					continue;
				if (size == 1)
					outb(p, (u8)v);
				else if (size == 2)
					outw(p, (u16)v);
				else
					outl(p, v);
			} else if (size == 1) {
				(void)inb(p);
			} else if (size == 2) {
				(void)inw(p);
			} else {
				(void)inl(p);
			}
			continue;
		}
		/* rep string I/O of up to 4 KiB (sbuf holds what ins read) */
		u32 count = 1 + (rnd() % 4096) / size;
		if (r & 4) {
			/* Every element goes to p: no port whose effect
			 * depends on the value. */
			if (p == 0x64 || p == 0x92 || p == 0xCF9 || !harmless(p, size, 0))
				continue;
			rep_io(p, size, count, 1);
		} else {
			rep_io(p, size, count, 0);
		}
	}
}

static void find_virtio(void)
{
	for (u32 d = 0; d < 32 && nvirt < 4; d++) {
		if ((pci_read(0, d, 0, 0) & 0xFFFF) != 0x1AF4)
			continue;
		vdev[nvirt] = d;
		vbar[nvirt] = (u16)(pci_read(0, d, 0, 0x10) & ~3u);
		pci_write(0, d, 0, 0x10, 0xFFFFFFFFu);
		vsize[nvirt] = (u16)(~(pci_read(0, d, 0, 0x10) & ~3u) + 1);
		pci_write(0, d, 0, 0x10, vbar[nvirt] | 1u);
		printf("hammer: virtio 00:%02x.0 bar0 0x%x size %u\n", d, vbar[nvirt], vsize[nvirt]);
		nvirt++;
	}
}

/* restore puts every virtio BAR0 back where the firmware placed it (first
 * all out of the way, so none lands on another) and resets the devices. */
static void restore(void)
{
	for (u32 i = 0; i < nvirt; i++)
		pci_write(0, vdev[i], 0, 0x10, (0xE000u + 0x400u * i) | 1u);
	for (u32 i = 0; i < nvirt; i++) {
		pci_write(0, vdev[i], 0, 0x10, vbar[i] | 1u);
		pci_write(0, vdev[i], 0, 4, 0x5);
		outb(vbar[i] + 18, 0);
	}
	outl(0xCF8, 0);
}

static void expect(int ok, const char *what)
{
	if (!ok) {
		printf("hammer: FAIL %s\n", what);
		exit(1);
	}
}

/* abuse_pci moves BARs over each other and over legacy ports, to 0 and to
 * the top of the port space, toggles I/O decoding, and sizes BARs. */
static void abuse_pci(void)
{
	static const u32 spots[] = {0, 0x60, 0x3E0, 0x380, 0x500, 0xCC0, 0xCF8, 0xFFFF, 0xFFC0, 0xFFFFFFFF, 0x12345678};
	if (nvirt >= 2) {
		/* Onto the second device (refused), then away: the second
		 * device must keep its registers. */
		pci_write(0, vdev[0], 0, 0x10, vbar[1] | 1u);
		pci_write(0, vdev[0], 0, 0x10, 0xE000u | 1u);
		expect(inl(vbar[1]) != 0xFFFFFFFFu, "a BAR moved over another device and away took it off the bus");
		expect(inl(0xE000) != 0xFFFFFFFFu, "a BAR moved away from a conflict decodes");
		restore();
	}
	for (u32 k = 0; k < 3; k++)
		for (u32 i = 0; i < nvirt; i++) {
			for (u32 s = 0; s < sizeof(spots) / sizeof(spots[0]); s++)
				pci_write(0, vdev[i], 0, 0x10, spots[s] | 1u);
			for (u32 j = 0; j < nvirt; j++)
				pci_write(0, vdev[i], 0, 0x10, vbar[j] | 1u);
			pci_write(0, vdev[i], 0, 4, k & 1);
			pci_write(0, vdev[i], 0, 4, 5);
		}
	restore();
	puts("hammer: pci abused\n");
}

/* abuse_virtio drives the legacy registers of each device out of spec. */
static void abuse_virtio(u32 ram_pages)
{
	for (u32 i = 0; i < nvirt; i++) {
		u16 io = vbar[i];
		outb(io + 18, 0);
		outw(io + 14, 0xFFFF); /* no such queue */
		expect(inw(io + 12) == 0 && inl(io + 8) == 0, "queue 0xffff reads as absent");
		outl(io + 8, 0x200); /* PFN of a queue that does not exist */
		outw(io + 14, 0);
		u16 qsize = inw(io + 12);
		expect(qsize != 0 && qsize != 0xFFFF, "queue 0 has a size");
		outl(io + 8, ram_pages + 16); /* beyond RAM */
		expect(inb(io + 18) & 0x40, "PFN beyond RAM sets NEEDS_RESET");
		outb(io + 18, 0);
		outl(io + 8, ram_pages - 1); /* rings past the last page */
		expect(inb(io + 18) & 0x40, "rings past the end of RAM set NEEDS_RESET");
		outb(io + 18, 0);
		outl(io + 8, 0xFFFFFFFFu);
		outb(io + 18, 0);
		outl(io + 4, 0); /* no features, then DRIVER_OK with queue 0 down */
		outb(io + 18, 7);
		outw(io + 16, 0); /* notify a queue that is down */
		outw(io + 16, 31);
		outw(io + 16, 0xFFFF);
		outb(io + 16, 0);
		outl(io + 4, 0xFFFFFFFFu); /* features after DRIVER_OK */
		expect(inl(io + 4) == 0, "features after DRIVER_OK ignored");
		for (u32 k = 0; k < 64; k++) /* status toggling */
			outb(io + 18, (u8)rnd());
		outb(io + 18, 0);
		/* Every byte, word and dword of the BAR and past its end. */
		for (u32 off = 0; off < vsize[i] + 8u; off++) {
			if (off == 19)
				continue;
			(void)inb(io + off);
			(void)inw(io + off);
			(void)inl(io + off);
		}
		rep_io(io + 20, 4, 1024, 0);
		rep_io(io + 19, 1, 1024, 0);
		outb(io + 18, 0);
	}
	puts("hammer: virtio abused\n");
}

/* read_mmio reads one dword in each of n distinct pages from the top of
 * RAM up, skipping the APIC pages (the in-kernel irqchip owns them). */
static void read_mmio(u32 ram_top, u32 n)
{
	u32 step = (0xFEC00000u - ram_top) / (n ? n : 1) & ~0xFFFu;
	if (step == 0)
		step = 0x1000;
	for (u32 i = 0; i < n; i++)
		(void)rd32(ram_top + i * step + (i & 0xFFC));
	(void)rd32(0xFEE00030u); /* local APIC version */
	(void)rd32(0xFFFFFFFCu);
	(void)rd32(0xFEE01000u);
	printf("hammer: read %u MMIO pages\n", n);
}

void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)magic;
	u32 n = 3000, mmio = 0, seed = 0, ram_top = 32u << 20;
	word_uint("n", &n);
	word_uint("mmio", &mmio);
	if (word_uint("seed", &seed) && seed)
		rng = seed;
	if (mbi->flags & 1)
		ram_top = (mbi->mem_upper + 1024) << 10;
	for (u32 i = 0; i < sizeof(sbuf); i++)
		sbuf[i] = (u8)rnd();
	find_virtio();
	abuse_pci();
	abuse_virtio(ram_top >> 12);
	read_mmio(ram_top, mmio);
	hammer_ports(n);
	restore();
	serial_init();
	printf("hammer: %u port accesses done\n", n);

	outb(0x3FF, 0xA5);
	expect(inb(0x3FF) == 0xA5, "COM1 scratch register");
	outb(0x70, 0x3F);
	outb(0x71, 0x5A);
	outb(0x70, 0x3F);
	expect(inb(0x71) == 0x5A, "CMOS RAM byte 0x3f");
	expect(pci_read(0, 0, 0, 0) == 0x00081B36, "host bridge ID");
	for (u32 i = 0; i < nvirt; i++) {
		expect((pci_read(0, vdev[i], 0, 0x10) & ~3u) == vbar[i], "virtio BAR0 restored");
		expect(inl(vbar[i]) != 0xFFFFFFFFu, "virtio registers answer");
		outw(vbar[i] + 14, 0);
		expect(inw(vbar[i] + 12) != 0xFFFF, "virtio queue size answers");
	}
	puts("hammer: devices answer\n");
	exit(EXIT_CODE);
}
