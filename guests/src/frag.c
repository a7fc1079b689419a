/* frag: 4-byte MMIO accesses that straddle a page boundary, which KVM
 * splits into two MMIO exits. "n=N" sets the count (default 100000);
 * "read" reads instead of writing and counts values that are not the
 * pattern the test device answers (each byte its own address's low 8 bits). */
#include "rt.h"

void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)magic;
	(void)mbi;
	u32 n = 100000, bad = 0, last = 0;
	word_uint("n", &n);
	/* 2 bytes on each side of the page boundary at 0x10001000. */
	volatile u32 *p = (volatile u32 *)0x10000FFEu;
	printf("frag: start\n");
	if (has_word("read")) {
		for (u32 i = 0; i < n; i++) {
			u32 v = *p;
			if (v != 0x0100FFFEu) {
				bad++;
				last = v;
			}
		}
		printf("frag: reads %u bad %u last %x\n", n, bad, last);
	} else {
		for (u32 i = 0; i < n; i++)
			*p = 0x11223344u;
		printf("frag: writes %u\n", n);
	}
	exit(0);
}
