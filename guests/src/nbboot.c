/* nbboot: the guest-side check of NetBSD's native /boot handoff. An i386
 * ELF32 linked like NetBSD/i386 (virtual 0xc0100000, loaded at 0x100000,
 * compiled -fPIE so it runs unpaged) with the NetBSD note and no multiboot
 * header. It prints the stack words and every bootinfo record, checks that
 * .bss is zero and exits with debug-exit value 0. No words. */
#include "nbinfo.h"

static u32 bss_probe[256];

void nb_main(const u32 *sp);

void nb_main(const u32 *sp)
{
	serial_init();
	puts("nbboot: hello\n");
	printf("nbboot: running at 0x%x\n", (u32)(uptr)nb_main);
	nb_print(sp);
	u32 nz = 0;
	for (u32 i = 0; i < 256; i++)
		nz |= bss_probe[i];
	if (nz)
		fail("nbboot: bss not zero");
	puts("nbboot: bss zero ok\n");
	puts("nbboot: done\n");
	exit(0);
}
