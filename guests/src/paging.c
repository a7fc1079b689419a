/* paging: runs as NetBSD/i386 does after its first instructions. Linked at
 * 0xc0100000 and loaded at 0x100000 (compiled -fPIE, so the code before
 * paging runs at its physical address), it builds page tables mapping the
 * first 8 MiB both at 0 and at KERNBASE, with a recursive slot as NetBSD's
 * pmap has (PDIR_SLOT_PTE), turns paging on, jumps to its high addresses,
 * removes the identity map as NetBSD's locore does once it runs high, then
 * takes its own GDT and IDT at virtual addresses, a #PF that returns with
 * iret, and PIT ticks that wake a `sti; hlt` idle loop.
 * Words: "pse" (4 MiB pages), "pae" (PAE, 3-level, 4 KiB pages), none for
 * non-PAE 4 KiB pages; "ticks=N" (default 10), "timeout=N" (seconds to
 * wait for the first tick, default 5). */
#include "rt.h"

#define KERNBASE 0xc0000000u
#define MAPPED (8u << 20) /* mapped at 0 and at KERNBASE */
#define PG_P 0x1u
#define PG_RW 0x2u
#define PG_PS 0x80u
#define PG_AD 0x60u /* accessed and dirty: set by the CPU as it walks */
/* PG, WP, NE, ET, MP, PE: what NetBSD's locore sets in CR0, minus TS and AM. */
#define CR0_VALUE 0x80010033u
/* Recursive slots as NetBSD's i386 pmap places them, just below KERNBASE:
 * one PDE (PTE_BASE 0xbfc00000) without PAE, four with (0xbf800000). */
#define SLOT ((KERNBASE >> 22) - 1)
#define PAE_SLOT ((KERNBASE >> 21) - 4)

enum { MODE_4K, MODE_PSE, MODE_PAE };

/* 4k: page directory, then 2 page tables. pse: the directory alone. pae:
 * PDPT, 4 directories (one 2048-entry array, as NetBSD uses it), 4 tables. */
static u8 pgmem[9 * 4096] __attribute__((aligned(4096)));
static u32 mode, cr3, cr4;
static volatile u32 ticks, others, pf_count, pf_cr2, pf_err;

#pragma GCC visibility push(hidden)
extern char iret_stubs[], pf_access[], pf_resume[];
u32 pf_probe(u32 addr);
void load_segments(const void *gdtr);
#pragma GCC visibility pop

static const char *mode_name(void)
{
	if (mode == MODE_PAE)
		return "pae";
	return mode == MODE_PSE ? "pse" : "4k";
}

static u32 read_cr(int n)
{
	u32 v = 0;
	if (n == 0)
		__asm__ volatile("movl %%cr0, %0" : "=r"(v));
	else if (n == 2)
		__asm__ volatile("movl %%cr2, %0" : "=r"(v));
	else if (n == 3)
		__asm__ volatile("movl %%cr3, %0" : "=r"(v));
	else
		__asm__ volatile("movl %%cr4, %0" : "=r"(v));
	return v;
}

/* build_tables fills pgmem (at m, physical address mp) for the mode. */
static void build_tables(u8 *m, u32 mp)
{
	memset(m, 0, sizeof(pgmem));
	cr3 = mp;
	if (mode == MODE_PAE) {
		u64 *pdpt = (u64 *)m, *pd = (u64 *)(m + 4096), *pt = (u64 *)(m + 5 * 4096);
		for (u32 i = 0; i < MAPPED / 4096; i++)
			pt[i] = (u64)(i * 4096) | PG_P | PG_RW;
		for (u32 i = 0; i < MAPPED >> 21; i++) {
			u64 e = (mp + (5 + i) * 4096) | PG_P | PG_RW;
			pd[i] = e;
			pd[(KERNBASE >> 21) + i] = e;
		}
		for (u32 i = 0; i < 4; i++) {
			pd[PAE_SLOT + i] = (mp + (1 + i) * 4096) | PG_P | PG_RW;
			pdpt[i] = (mp + (1 + i) * 4096) | PG_P; /* RW is reserved in a PDPTE */
		}
		cr4 = 0x20;
		return;
	}
	u32 *pd = (u32 *)m, *pt = (u32 *)(m + 4096);
	for (u32 i = 0; i < MAPPED >> 22; i++) {
		u32 e = mode == MODE_PSE ? (i << 22) | PG_P | PG_RW | PG_PS
					 : (mp + (1 + i) * 4096) | PG_P | PG_RW;
		pd[i] = e;
		pd[(KERNBASE >> 22) + i] = e;
	}
	if (mode == MODE_4K)
		for (u32 i = 0; i < MAPPED / 4096; i++)
			pt[i] = (i * 4096) | PG_P | PG_RW;
	pd[SLOT] = mp | PG_P | PG_RW;
	cr4 = mode == MODE_PSE ? 0x10 : 0;
}

struct frame {
	u32 edi, esi, ebp, esp, ebx, edx, ecx, eax;
	u32 vec, err, eip, cs, eflags;
};

/* iret_dispatch handles every vector and returns: iret_common irets. */
void iret_dispatch(struct frame *f)
{
	if (f->vec == 14 && f->eip == (u32)(uptr)pf_access) {
		pf_cr2 = read_cr(2);
		pf_err = f->err;
		pf_count++;
		f->eip = (u32)(uptr)pf_resume;
		return;
	}
	if (f->vec < 32) {
		printf("guest: exception %u frame %x %x %x %x cr2=0x%x\n", f->vec, f->err, f->eip,
		       f->cs, f->eflags, read_cr(2));
		exit(4);
	}
	if (f->vec == 32)
		ticks++;
	else
		others++;
	if (f->vec >= 40)
		outb(0xA0, 0x20);
	outb(0x20, 0x20); /* non-specific EOI */
}

static const u64 gdt[3] __attribute__((aligned(8))) = {
	0, 0x00CF9A000000FFFFull, 0x00CF92000000FFFFull,
};
static struct gate idt[48] __attribute__((aligned(8)));

/* intr_setup loads GDT and IDT (virtual addresses: paging is on), remaps
 * the PIC to 0x20/0x28 with only IRQ 0 open and starts the PIT at hz. */
static void intr_setup(u32 hz)
{
	struct dtr gdtr = {sizeof(gdt) - 1, (u32)(uptr)gdt};
	load_segments(&gdtr);
	for (u32 i = 0; i < 48; i++) {
		u32 a = (u32)(uptr)iret_stubs + 16 * i;
		idt[i] = (struct gate){(u16)a, 0x08, 0, 0x8E, (u16)(a >> 16)};
	}
	struct dtr idtr = {sizeof(idt) - 1, (u32)(uptr)idt};
	__asm__ volatile("lidt %0" : : "m"(idtr));
	outb(0x20, 0x11);
	outb(0xA0, 0x11);
	outb(0x21, 0x20);
	outb(0xA1, 0x28);
	outb(0x21, 0x04);
	outb(0xA1, 0x02);
	outb(0x21, 0x01);
	outb(0xA1, 0x01);
	outb(0x21, 0xFE);
	outb(0xA1, 0xFF);
	u32 div = 1193182 / hz;
	outb(0x43, 0x34); /* channel 0, lo/hi byte, mode 2 (rate generator), as NetBSD's clock */
	outb(0x40, (u8)div);
	outb(0x40, (u8)(div >> 8));
}

static u64 read_entry(uptr a, u32 size)
{
	return size == 8 ? *(volatile u64 *)a : *(volatile u32 *)a;
}

/* check_recursive reads the PDE (and PTE) of a kernel text address through
 * the recursive slot and compares them with the tables as written. */
static void check_recursive(void)
{
	u32 va = (u32)(uptr)check_recursive;
	u32 esz = mode == MODE_PAE ? 8 : 4, shift = mode == MODE_PAE ? 21 : 22;
	u32 slot = mode == MODE_PAE ? PAE_SLOT : SLOT;
	uptr ptebase = (uptr)slot << shift;
	u8 *pdir = pgmem + (mode == MODE_PAE ? 4096 : 0);
	u64 want = read_entry((uptr)pdir + (va >> shift) * esz, esz);
	u64 got = read_entry(ptebase + slot * 4096 + (va >> shift) * esz, esz) & ~(u64)PG_AD;
	if (got != (want & ~(u64)PG_AD)) {
		printf("FAIL: paging: pde of 0x%x via slot %u is 0x%llx, want 0x%llx\n", va, slot, got,
		       want);
		exit(1);
	}
	puts("paging: recursive pde ok\n");
	if (mode == MODE_PSE)
		return;
	got = read_entry(ptebase + (va >> 12) * esz, esz) & ~(u64)PG_AD;
	want = ((va - KERNBASE) & ~0xFFFu) | PG_P | PG_RW;
	if (got != want) {
		printf("FAIL: paging: pte of 0x%x via slot %u is 0x%llx, want 0x%llx\n", va, slot, got,
		       want);
		exit(1);
	}
	puts("paging: recursive pte ok\n");
}

static void __attribute__((noreturn)) high_main(void)
{
	/* Pointers taken before paging are physical: move them up. */
	const char *c = cmdline_get();
	if ((uptr)c < MAPPED)
		cmdline_set(c + KERNBASE);
	else if ((uptr)c < KERNBASE)
		cmdline_set("");
	printf("paging: mode=%s cr0=0x%08x cr3=0x%08x cr4=0x%08x\n", mode_name(), read_cr(0),
	       read_cr(3), read_cr(4));
	printf("paging: running at 0x%x\n", (u32)(uptr)high_main);
	/* NetBSD's locore drops the identity map once it runs high. */
	if (mode == MODE_PAE)
		memset(pgmem + 4096, 0, (MAPPED >> 21) * 8);
	else
		memset(pgmem, 0, (MAPPED >> 22) * 4);
	__asm__ volatile("movl %0, %%cr3" : : "r"(cr3) : "memory");
	if (rd32(KERNBASE + 0x100000) != 0x1BADB002)
		fail("paging: 0xc0100000 does not read the multiboot header");
	puts("paging: high mapping ok\n");

	intr_setup(100);
	u32 v = pf_probe(0x100000);
	if (pf_count != 1 || v != 0xdeadbeef || pf_cr2 != 0x100000) {
		printf("FAIL: paging: read of 0x100000 gave 0x%x, %u page faults, cr2=0x%x\n", v,
		       pf_count, pf_cr2);
		exit(1);
	}
	printf("paging: identity map removed: #PF cr2=0x%x err=0x%x, iret ok\n", pf_cr2, pf_err);
	check_recursive();

	u32 want = 10, woken = 0;
	word_uint("ticks", &want);
	struct deadline dl;
	deadline_init(&dl, timeout_word(5));
	sti();
	while (ticks == 0 && !deadline_passed(&dl))
		;
	cli();
	if (ticks == 0) {
		printf("FAIL: irq: no timer tick in %u s\n", timeout_word(5));
		exit(1);
	}
	/*
	 * Idle as NetBSD's cpu_idle does: each hlt must be ended by a tick
	 * (no wake-up without one), and the ticks must keep coming. A host
	 * that starved the guest through several periods delivers the ticks
	 * it owes back to back (KVM's PIT reinjects them), so one hlt may be
	 * followed by more ticks than wake-ups, never by fewer.
	 */
	u32 start = ticks;
	for (;;) {
		cli();
		if (ticks - start >= want)
			break;
		__asm__ volatile("sti; hlt" : : : "memory");
		woken++;
	}
	u32 got = ticks - start;
	if (woken == 0 || woken > got || others) {
		printf("FAIL: hlt: %u wake-ups for %u ticks, %u other interrupts\n", woken, got,
		       others);
		exit(1);
	}
	/* The counts depend on the host's load: print what was checked. */
	printf("irq: %u ticks via iret\n", want);
	printf("hlt: woken by ticks only\n");
	puts("paging: done\n");
	exit(0);
}

void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)magic;
	(void)mbi;
	mode = has_word("pae") ? MODE_PAE : has_word("pse") ? MODE_PSE : MODE_4K;
	/* Unpaged, PC-relative addresses are physical. */
	build_tables(pgmem, (u32)(uptr)pgmem);
	printf("paging: enabling paging, tables at 0x%x\n", (u32)(uptr)pgmem);
	__asm__ volatile("movl %0, %%cr4\n\t"
			 "movl %1, %%cr3\n\t"
			 "movl %2, %%cr0"
			 :
			 : "r"(cr4), "r"(cr3), "r"(CR0_VALUE)
			 : "memory");
	/* Jump to high_main's virtual address on the stack's virtual address:
	 * the frames below hold physical addresses and are never returned to. */
	__asm__ volatile("addl %1, %%esp\n\t"
			 "addl %1, %0\n\t"
			 "jmp *%0"
			 :
			 : "r"(high_main), "i"(KERNBASE)
			 : "memory");
	__builtin_unreachable();
}
