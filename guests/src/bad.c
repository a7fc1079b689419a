/* bad: guests that end badly on purpose, to test the VMM's failure paths.
 * Words (one of): "triplefault" (empty IDT, then ud2), "triplefault-gp"
 * (empty IDT, then a bad selector), "triplefault-int3" (empty IDT, then
 * int3), "triplefault-silent" (empty IDT, then ud2, with nothing printed
 * first: a guest that dies booting), "triplefault-paging" (the same right
 * after turning paging on, as NetBSD's locore does first), "mmio" (touch
 * unmapped MMIO, then exit 0), "reset" (0xFE to port
 * 0x64), "halt" (NetBSD's halt message, then poll the UART; a received byte
 * resets through 0x64), "vga" (NetBSD's pcdisplay probe: write a word to the
 * text and graphics windows and read it back; a machine without a display
 * reads back all ones). */
#include "rt.h"

static const struct dtr null_idt = {0, 0};

/* One page directory: the first 8 MiB identity-mapped with 4 MiB pages. */
static u32 pgdir[1024] __attribute__((aligned(4096)));

/* Turns paging on (PSE, CR0 = PG WP NE ET MP PE as NetBSD's locore sets it)
 * and triple-faults at once, printing nothing. */
static void triplefault_paging(void)
{
	pgdir[0] = 0x00000083u; /* present, writable, 4 MiB */
	pgdir[1] = 0x00400083u;
	__asm__ volatile("movl %%cr4, %%eax\n\t"
			 "orl $0x10, %%eax\n\t"
			 "movl %%eax, %%cr4\n\t"
			 "movl %0, %%cr3\n\t"
			 "movl $0x80010033, %%eax\n\t"
			 "movl %%eax, %%cr0\n\t"
			 "lidt %1\n\t"
			 "ud2"
			 : : "r"(pgdir), "m"(null_idt) : "eax", "memory");
}

static void mmio(void)
{
	static const u32 addrs[] = {0xFED40000u, 0xE0000000u, 0xC0000000u};
	for (u32 i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		u32 v = rd32(addrs[i]);
		wr32(addrs[i], 0x12345678u);
		printf("bad: mmio 0x%x read 0x%x, wrote\n", addrs[i], v);
	}
	puts("bad: mmio survived\n");
	exit(0);
}

static void vga(void)
{
	static const u32 addrs[] = {0xA0000u, 0xB0000u, 0xB8000u, 0xBFFFEu};
	for (u32 i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		volatile u16 *w = (volatile u16 *)addrs[i];
		*w = 0xA55A;
		printf("bad: vga 0x%x wrote 0xa55a read 0x%x\n", addrs[i], *w);
	}
	/* The real-mode IVT below and the firmware page above stay RAM. The
	 * empty asm hides the constant address from gcc's bounds warnings. */
	uptr ivt = 0x15 * 4;
	__asm__("" : "+r"(ivt));
	printf("bad: vga ivt[0x15]=0x%x stub=0x%x\n", rd32(ivt), *(volatile u8 *)0xFFF53u);
	exit(0);
}

void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)magic;
	(void)mbi;
	/* ud2 and a bad selector give KVM_EXIT_SHUTDOWN on the project's KVM;
	 * int3 through an empty IDT ends there in an emulation failure instead. */
	if (has_word("triplefault")) {
		puts("bad: triple fault now (ud2)\n");
		__asm__ volatile("lidt %0; ud2" : : "m"(null_idt));
	} else if (has_word("triplefault-gp")) {
		puts("bad: triple fault now (bad selector)\n");
		__asm__ volatile("lidt %0; movw $0x4242, %%ax; movw %%ax, %%ds" : : "m"(null_idt) : "eax");
	} else if (has_word("triplefault-silent")) {
		__asm__ volatile("lidt %0; ud2" : : "m"(null_idt));
	} else if (has_word("triplefault-paging")) {
		triplefault_paging();
	} else if (has_word("triplefault-int3")) {
		puts("bad: triple fault now (int3)\n");
		__asm__ volatile("lidt %0; int3" : : "m"(null_idt));
	} else if (has_word("mmio")) {
		mmio();
	} else if (has_word("vga")) {
		vga();
	} else if (has_word("reset")) {
		puts("bad: reset through port 0x64\n");
		outb(0x64, 0xFE);
		for (volatile u32 i = 0; i < 100000; i++)
			;
		fail("bad: reset ignored");
	} else if (has_word("halt")) {
		puts("\nThe operating system has halted.\nPlease press any key to reboot.\n\n");
		for (;;) {
			if (inb(0x3f8 + 5) & 1) {
				printf("bad: key 0x%02x, rebooting\n", inb(0x3f8));
				outb(0x64, 0xFE);
			}
		}
	}
	fail("bad: say triplefault, triplefault-gp, triplefault-int3, triplefault-silent, triplefault-paging, mmio, vga, reset or halt");
}
