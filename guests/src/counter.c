/* counter: the snapshot tests' guest. It prints "count N" for N from 1 to
 * n (default 200), and after "count at" (default 100) writes the
 * boot-timer port 0x505, the readiness a snapshot is taken at; then it
 * prints "counter: done" and exits 0. The count lives in a register and
 * on the stack, so a restored guest that goes on from the right number
 * had its registers and memory back.
 * With "pit", it sets up its interrupts and PIT channel 0 in one-shot mode
 * (about 55 ms) before the ready point and, after it, waits for IRQ 0 with
 * interrupts on instead of counting on: the handler prints
 * "counter: pit irq 0 after count N" and exits 0 (it never returns: this
 * host's KVM cannot iret in protected mode). "timeout=N" bounds the wait
 * (default 5 s): "FAIL: no pit interrupt" and exit 1.
 * With "clock", it first counts the TSC over k times 65535 ticks of PIT
 * channel 2 (about 55 ms each, gated through port 0x61; "calib=k", default
 * 1) and prints "counter: tsc T over k*65535 pit ticks" (T in hex); at
 * the ready point it reads the TSC
 * just before and just after its write to 0x505 and then prints
 * "counter: tsc before B after A" (hex) and the RTC as
 * "counter: rtc YY-MM-DD hh:mm:ss" (BCD, as register B leaves it): a
 * restored guest prints the B its snapshot saw and its own A.
 * With "scatter", count i also writes words of a pattern of i into a
 * page above 4 MiB that i picks, scattered over RAM, and after the ready
 * point every third count zeroes the page an earlier count wrote: a
 * snapshot then has pages written, pages never touched and pages made
 * zero again, before and after a restore. With "spin", after the last
 * count it prints "counter: spinning" and loops in spin_forever, writing
 * nothing, instead of exiting (a test snapshots it there).
 * With "mtrr", when CPUID says it has MTRRs, it sets MTRRdefType, the
 * first variable range and two fixed ranges to mtrr_val before its first
 * count, and at the ready point, after its write to 0x505, prints them as
 * "counter: mtrr 2ff=V 200=V 201=V 250=V 268=V" (hex): a restored guest
 * prints what it reads after the restore. Without MTRRs it prints
 * "counter: no mtrr". */
#include "rt.h"

static volatile u32 reached;

static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

/* tsc_per_pit counts TSC ticks while PIT channel 2 counts 65535 down in
 * mode 0: its output (port 0x61 bit 5) goes high at terminal count. */
static u64 tsc_per_pit(void)
{
	outb(0x61, (u8)(inb(0x61) & ~3)); /* gate off, speaker off */
	outb(0x43, 0xB0);                 /* channel 2, lo/hi byte, mode 0 */
	outb(0x42, 0xFF);
	outb(0x42, 0xFF);
	u64 t0 = rdtsc();
	outb(0x61, (u8)((inb(0x61) & ~2) | 1)); /* gate on: counting starts */
	for (u32 polls = 0; !(inb(0x61) & 0x20); polls++)
		if (polls > 100000000u)
			fail("PIT channel 2 never reached its terminal count");
	return rdtsc() - t0;
}

static void print_rtc(void)
{
	while (cmos_read(0x0A) & 0x80) /* update in progress */
		;
	printf("counter: rtc %02x-%02x-%02x %02x:%02x:%02x\n", cmos_read(9), cmos_read(8), cmos_read(7),
	       cmos_read(4), cmos_read(2), cmos_read(0));
}

static void on_irq(u32 irq)
{
	if (irq != 0) {
		printf("FAIL: unexpected irq %u\n", irq);
		exit(1);
	}
	printf("counter: pit irq 0 after count %u\n", reached);
	exit(0);
}

static const u32 mtrr_idx[] = {0x2ff, 0x200, 0x201, 0x250, 0x268};
/* WB by default, enabled with the fixed ranges; range 0 at 0, WB, 128 MiB;
 * the first 64 KiB WB; 0xC0000-0xC7FFF WP. */
static const u64 mtrr_val[] = {0xc06, 0x6, 0xf8000800, 0x0606060606060606ull, 0x0505050505050505ull};

static int has_mtrr(void)
{
	u32 a = 1, b, c = 0, d;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	return (d >> 12) & 1;
}

static void mtrr_set(void)
{
	for (u32 k = 0; k < sizeof mtrr_idx / sizeof mtrr_idx[0]; k++)
		__asm__ volatile("wrmsr" : : "c"(mtrr_idx[k]), "a"((u32)mtrr_val[k]), "d"((u32)(mtrr_val[k] >> 32)));
}

static void mtrr_print(void)
{
	printf("counter: mtrr");
	for (u32 k = 0; k < sizeof mtrr_idx / sizeof mtrr_idx[0]; k++) {
		u32 lo, hi;
		__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(mtrr_idx[k]));
		printf(" %x=%llx", mtrr_idx[k], ((u64)hi << 32) | lo);
	}
	printf("\n");
}

/* scatter_page is the page count i writes: above 4 MiB, below RAM's top. */
static u8 *scatter_page(u32 i, u32 top)
{
	u32 pages = (top - (4u << 20)) / 4096;
	return (u8 *)(uptr)((4u << 20) + (i * 2654435761u) % pages * 4096);
}

static void scatter(u32 i, u32 at, u32 top)
{
	u32 *w = (u32 *)(scatter_page(i, top) + (i * 68) % 4000);
	for (u32 k = 0; k < 16; k++)
		w[k] = (i * 0x01000193u) ^ (k << 24) ^ 0x80000001u;
	if (i > at && (i - at) % 3 == 0) {
		u8 *p = scatter_page(i - at, top);
		for (u32 k = 0; k < 4096; k++)
			p[k] = 0;
	}
}

/* spin_forever loops writing nothing: a test that finds the vCPU in it
 * knows the guest's memory no longer changes. */
static void __attribute__((noinline, noreturn)) spin_forever(void)
{
	for (;;)
		__asm__ volatile("pause");
}

void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)magic;
	u32 n = 200, at = 100;
	int scat = has_word("scatter"), spin = has_word("spin");
	u32 top = (mbi->flags & 1) ? (mbi->mem_upper + 1024) << 10 : 16u << 20;
	word_uint("n", &n);
	word_uint("at", &at);
	int pit = has_word("pit"), clock = has_word("clock");
	int mtrr = has_word("mtrr") && has_mtrr();
	if (has_word("mtrr") && !mtrr)
		printf("counter: no mtrr\n");
	if (mtrr)
		mtrr_set();
	if (clock) {
		u32 calib = 1;
		word_uint("calib", &calib);
		u64 t = 0;
		for (u32 i = 0; i < calib; i++)
			t += tsc_per_pit();
		printf("counter: tsc %llx over %u*65535 pit ticks\n", t, calib);
	}
	if (pit) {
		intr_init(on_irq);
		outb(0x43, 0x30); /* channel 0, lo/hi byte, mode 0: one interrupt at terminal count */
		outb(0x40, 0xFF);
		outb(0x40, 0xFF);
		pic_unmask(0);
	}
	for (u32 i = 1; i <= n; i++) {
		printf("count %u\n", i);
		reached = i;
		if (scat)
			scatter(i, at, top);
		if (i == at && clock) {
			u64 before = rdtsc();
			outb(0x505, 1);
			u64 after = rdtsc();
			printf("counter: tsc before %llx after %llx\n", before, after);
			print_rtc();
		} else if (i == at) {
			outb(0x505, 1);
			if (mtrr)
				mtrr_print();
			if (pit) {
				struct deadline dl;
				deadline_init(&dl, timeout_word(5));
				sti();
				while (!deadline_passed(&dl))
					;
				cli();
				fail("no pit interrupt");
			}
		}
	}
	if (spin) {
		printf("counter: spinning\n");
		spin_forever();
	}
	printf("counter: done\n");
	exit(0);
}
