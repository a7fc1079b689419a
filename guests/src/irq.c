/* irq: proves interrupt delivery into unpaged protected mode. The handler
 * prints "irq N ok" and exits through the debug port; it never returns.
 * Words: "uart" (default: IRQ 4, UART transmit-empty), "pit" (IRQ 0, PIT
 * channel 0 at 1 kHz), "twice" (IRQ 4 twice: the first is served, EOIed
 * and the transmitter refilled, then the second must come), "timeout=N"
 * (seconds to wait, default 5). */
#include "rt.h"

static u32 want;
static int twice;
static volatile u32 taken;

/* wait_irq waits with interrupts on until the handler exits, or times out
 * saying it waited for "what n". */
static void wait_irq(const char *what, u32 n)
{
	struct deadline dl;
	deadline_init(&dl, timeout_word(5));
	sti();
	while (!deadline_passed(&dl))
		;
	cli();
	printf("irq: timeout waiting for %s%u\n", what, n);
	exit(1);
}

static void on_irq(u32 irq)
{
	if (irq != want) {
		printf("irq: unexpected irq %u (want %u)\n", irq, want);
		exit(1);
	}
	if (irq == 4) {
		u8 iir = inb(0x3f8 + 2); /* THRE served: the UART lowers its line */
		if (twice && ++taken == 1) {
			/* The 8259 takes IRQ 4 on an edge: only a line that went
			 * low when IIR was read rises again when the bytes
			 * printed below refill the transmitter. No iret on this
			 * host's KVM: the second interrupt nests in this one. */
			outb(0x20, 0x20); /* non-specific EOI */
			printf("irq 4 first iir=0x%02x\n", iir);
			wait_irq("a second irq ", 4);
		}
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
	want = has_word("pit") ? 0 : 4;
	twice = has_word("twice");
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
	wait_irq("irq ", want);
}
