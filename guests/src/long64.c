/* long64's 64-bit part: reads back EFER, CS and its descriptor's L bit,
 * CR0/CR3/CR4 and where it runs, prints them and exits through port 0x501.
 * Built -m64 -mcmodel=kernel; its own tiny console (rt.c is 32-bit). */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }

static void putc(char c)
{
	for (u32 i = 0; i < 10000 && !(inb(0x3f8 + 5) & 0x20); i++)
		;
	outb(0x3f8, (u8)c);
}

static void puts(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			putc('\r');
		putc(*s);
	}
}

static void puthex(u64 v)
{
	char b[16];
	int n = 0;
	do {
		b[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	puts("0x");
	while (n)
		putc(b[--n]);
}

void long64_main(void);

void long64_main(void)
{
	u32 lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0xc0000080u));
	u16 cs;
	__asm__ volatile("movw %%cs, %0" : "=r"(cs));
	struct __attribute__((packed)) {
		u16 limit;
		u64 base;
	} gdtr;
	__asm__ volatile("sgdt %0" : "=m"(gdtr));
	u64 desc = ((const volatile u64 *)gdtr.base)[cs >> 3];
	u64 cr0, cr3, cr4, rip;
	__asm__ volatile("movq %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("movq %%cr3, %0" : "=r"(cr3));
	__asm__ volatile("movq %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("leaq (%%rip), %0" : "=r"(rip));
	puts("long64: in long mode efer=");
	puthex((u64)hi << 32 | lo);
	puts(" cs=");
	puthex(cs);
	puts(" cs.l=");
	putc((char)('0' + (desc >> 53 & 1)));
	puts(" cs.d=");
	putc((char)('0' + (desc >> 54 & 1)));
	puts("\nlong64: cr0=");
	puthex(cr0);
	puts(" cr3=");
	puthex(cr3);
	puts(" cr4=");
	puthex(cr4);
	puts("\nlong64: running at ");
	puthex((u64)(unsigned long)long64_main);
	puts(rip >> 32 == 0xffffffffu ? " (high)\n" : " (NOT high)\n");
	puts("long64: done\n");
	for (u32 i = 0; i < 10000 && !(inb(0x3f8 + 5) & 0x40); i++)
		;
	outb(0x501, 0);
	for (;;)
		__asm__ volatile("cli; hlt");
}
