/* long64's 32-bit part, built -m32 into a flat blob linked at physical
 * 0x201000 (blob32.ld) that long64.S includes and calls from start with the
 * handoff's stack pointer. */
#include "nbinfo.h"

void blob_main(const u32 *sp) __attribute__((section(".text.blobentry")));

void blob_main(const u32 *sp)
{
	serial_init();
	puts("long64: 32-bit entry, paging off\n");
	nb_print(sp);
}
