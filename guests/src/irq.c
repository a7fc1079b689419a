/* irq: proves interrupt delivery into unpaged protected mode. The handler
 * prints "irq N ok" and exits through the debug port; it never returns.
 * Words: "uart" (default: IRQ 4, UART transmit-empty), "pit" (IRQ 0, PIT
 * channel 0 at 1 kHz), "timeout=N" (seconds to wait, default 5). */
#include "rt.h"

static u32 want;

static void on_irq(u32 irq)
{
	if (irq != want) {
		printf("irq: unexpected irq %u (want %u)\n", irq, want);
		exit(1);
	}
	if (irq == 4) {
		u8 iir = inb(0x3f8 + 2);
		outb(0x3f8 + 1, 0x00); /* IER off again */
		printf("irq 4 ok iir=0x%02x\n", iir);
	} else {
		printf("irq %u ok\n", irq);
	}
	exit(0);
}

void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)magic;
	(void)mbi;
	struct deadline dl;
	want = has_word("pit") ? 0 : 4;
	printf("irq: waiting for irq %u (%s)\n", want, want ? "uart thre" : "pit");
	intr_init(on_irq);
	pic_unmask(want);
	if (want == 0) {
		outb(0x43, 0x34); /* channel 0, lo/hi byte, mode 2 */
		outb(0x40, 1193 & 0xFF);
		outb(0x40, 1193 >> 8);
	} else {
		outb(0x3f8 + 4, 0x0B); /* DTR, RTS, OUT2: OUT2 gates the IRQ on a PC */
		outb(0x3f8 + 1, 0x02); /* IER: transmit holding register empty */
	}
	deadline_init(&dl, timeout_word(5));
	sti();
	while (!deadline_passed(&dl))
		;
	cli();
	printf("irq: timeout waiting for irq %u\n", want);
	exit(1);
}
