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
 * (default 5 s): "FAIL: no pit interrupt" and exit 1. */
#include "rt.h"

static volatile u32 reached;

static void on_irq(u32 irq)
{
	if (irq != 0) {
		printf("FAIL: unexpected irq %u\n", irq);
		exit(1);
	}
	printf("counter: pit irq 0 after count %u\n", reached);
	exit(0);
}

void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)magic;
	(void)mbi;
	u32 n = 200, at = 100;
	word_uint("n", &n);
	word_uint("at", &at);
	int pit = has_word("pit");
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
		if (i == at) {
			outb(0x505, 1);
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
	printf("counter: done\n");
	exit(0);
}
