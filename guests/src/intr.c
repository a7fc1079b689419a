/* GDT, IDT and 8259 PIC setup for the guests that prove interrupt delivery. */
#include "rt.h"

/* Own flat segments: the loader's GDT may live anywhere (or nowhere in RAM),
 * and an interrupt gate reloads CS from the table in memory. */
static const u64 gdt[3] __attribute__((aligned(8))) = {
	0, 0x00CF9A000000FFFFull, 0x00CF92000000FFFFull,
};
static struct gate idt[48] __attribute__((aligned(8)));
static struct dtr gdtr, idtr;
static irq_handler handler;

extern char intr_stubs[];
void intr_load_gdt(const struct dtr *);
void intr_load_idt(const struct dtr *);

/* intr_dispatch is called by intr_common with the stack frame: frame[0] is
 * the vector, then the CPU's words (error code for some exceptions, EIP...). */
void intr_dispatch(const u32 *frame)
{
	u32 vec = frame[0];
	if (vec < 32) {
		printf("guest: exception %u frame %x %x %x %x\n", vec, frame[1], frame[2],
		       frame[3], frame[4]);
		exit(4);
	}
	handler(vec - 32);
	printf("guest: irq handler for %u returned\n", vec - 32);
	exit(5);
}

void intr_init(irq_handler h)
{
	handler = h;
	gdtr.limit = sizeof(gdt) - 1;
	gdtr.base = (u32)(uptr)gdt;
	intr_load_gdt(&gdtr);
	for (u32 i = 0; i < 48; i++) {
		u32 a = (u32)(uptr)intr_stubs + 8 * i;
		idt[i].off_lo = (u16)a;
		idt[i].sel = 0x08;
		idt[i].zero = 0;
		idt[i].type = 0x8E; /* present, ring 0, 32-bit interrupt gate */
		idt[i].off_hi = (u16)(a >> 16);
	}
	idtr.limit = sizeof(idt) - 1;
	idtr.base = (u32)(uptr)idt;
	intr_load_idt(&idtr);

	/* ICW1-4: edge/level as the ELCR says, cascade, vectors 0x20/0x28, 8086 mode. */
	outb(0x20, 0x11);
	outb(0xA0, 0x11);
	outb(0x21, 0x20);
	outb(0xA1, 0x28);
	outb(0x21, 0x04);
	outb(0xA1, 0x02);
	outb(0x21, 0x01);
	outb(0xA1, 0x01);
	outb(0x21, 0xFF); /* everything masked until a guest unmasks its line */
	outb(0xA1, 0xFF);
}

void pic_unmask(u32 irq)
{
	if (irq < 8) {
		outb(0x21, inb(0x21) & (u8) ~(1u << irq));
		return;
	}
	outb(0xA1, inb(0xA1) & (u8) ~(1u << (irq - 8)));
	outb(0x21, inb(0x21) & (u8) ~(1u << 2));
}
