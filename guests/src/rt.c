/* Runtime shared by the test guests: COM1 output, printf, debug-port exit,
 * command line words, PCI configuration mechanism #1, libc basics. */
#include "rt.h"

#define COM1 0x3f8

static const char *cmdline;

void serial_init(void)
{
	outb(COM1 + 1, 0x00); /* IER: no interrupts */
	outb(COM1 + 3, 0x80); /* LCR: DLAB */
	outb(COM1 + 0, 0x01); /* divisor 1: 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0xC7); /* FIFO on, cleared */
	outb(COM1 + 4, 0x03); /* DTR, RTS; OUT2 stays off: no IRQ unless a guest asks */
}

void putc(char c)
{
	/* Bounded wait for THRE: a UART that never empties must not hang the guest. */
	for (u32 i = 0; i < 10000 && !(inb(COM1 + 5) & 0x20); i++)
		;
	outb(COM1, (u8)c);
}

void puts(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			putc('\r');
		putc(*s);
	}
}

static void put_num(u64 v, u32 base, int width, char pad)
{
	char buf[24];
	int n = 0;
	do {
		u32 d;
		if (base == 16) {
			d = (u32)v & 15;
			v >>= 4;
		} else {
			/* Decimal only for 32-bit values: no libgcc 64-bit division. */
			d = (u32)v % 10;
			v = (u32)v / 10;
		}
		buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
	} while (v && n < 24);
	while (width > n) {
		putc(pad);
		width--;
	}
	while (n)
		putc(buf[--n]);
}

/* printf understands %s %c %d %u %x %p %%, an optional 0 flag and width, and
 * "ll" before x for 64-bit values. */
int printf(const char *fmt, ...)
{
	__builtin_va_list ap;
	__builtin_va_start(ap, fmt);
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			if (*p == '\n')
				putc('\r');
			putc(*p);
			continue;
		}
		p++;
		char pad = ' ';
		int width = 0, ll = 0;
		if (*p == '0') {
			pad = '0';
			p++;
		}
		while (*p >= '0' && *p <= '9')
			width = width * 10 + (*p++ - '0');
		while (*p == 'l') {
			ll++;
			p++;
		}
		switch (*p) {
		case 's': {
			const char *s = __builtin_va_arg(ap, const char *);
			puts(s ? s : "(null)");
			break;
		}
		case 'c':
			putc((char)__builtin_va_arg(ap, int));
			break;
		case 'd': {
			int v = __builtin_va_arg(ap, int);
			if (v < 0) {
				putc('-');
				v = -v;
			}
			put_num((u32)v, 10, width, pad);
			break;
		}
		case 'u':
			put_num(__builtin_va_arg(ap, u32), 10, width, pad);
			break;
		case 'x':
			if (ll >= 2)
				put_num(__builtin_va_arg(ap, u64), 16, width, pad);
			else
				put_num(__builtin_va_arg(ap, u32), 16, width, pad);
			break;
		case 'p':
			puts("0x");
			put_num(__builtin_va_arg(ap, u32), 16, 8, '0');
			break;
		case '%':
			putc('%');
			break;
		case 0:
			p--;
			break;
		default:
			putc('%');
			putc(*p);
		}
	}
	__builtin_va_end(ap);
	return 0;
}

void exit(u8 v)
{
	/* Let the transmitter drain so the last line is not lost. */
	for (u32 i = 0; i < 10000 && !(inb(COM1 + 5) & 0x40); i++)
		;
	outb(DEBUG_EXIT_PORT, v);
	/* Only reached when no debug-exit device exists. */
	puts("guest: debug-exit port 0x501 ignored\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}

void fail(const char *why)
{
	printf("FAIL: %s\n", why);
	exit(1);
}

void cmdline_set(const char *s)
{
	cmdline = s;
}

const char *cmdline_get(void)
{
	return cmdline ? cmdline : "";
}

/* next_word returns the word after *p (skipping spaces) and its length. */
static const char *next_word(const char **p, u32 *len)
{
	const char *s = *p;
	while (*s == ' ')
		s++;
	const char *w = s;
	while (*s && *s != ' ')
		s++;
	*len = (u32)(s - w);
	*p = s;
	return *len ? w : 0;
}

/* find_prefix returns the first word after the kernel's file name that equals
 * key (exact) or starts with it. */
static const char *find_prefix(const char *key, u32 klen, int exact)
{
	const char *p = cmdline_get();
	u32 len;
	if (!next_word(&p, &len)) /* the kernel's file name */
		return 0;
	const char *w;
	while ((w = next_word(&p, &len))) {
		if (exact ? (len == klen && memcmp(w, key, klen) == 0)
			  : (len >= klen && memcmp(w, key, klen) == 0))
			return w;
	}
	return 0;
}

int has_word(const char *w)
{
	return find_prefix(w, strlen(w), 1) != 0;
}

int has_prefix(const char *p)
{
	return find_prefix(p, strlen(p), 0) != 0;
}

int word_uint(const char *key, u32 *v)
{
	u32 klen = strlen(key);
	const char *w = find_prefix(key, klen, 0);
	if (!w || w[klen] != '=')
		return 0;
	const char *s = w + klen + 1;
	u32 base = 10, n = 0;
	if (s[0] == '0' && s[1] == 'x') {
		base = 16;
		s += 2;
	}
	for (; *s && *s != ' '; s++) {
		u32 d;
		if (*s >= '0' && *s <= '9')
			d = (u32)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (u32)(*s - 'a' + 10);
		else
			return 0;
		n = n * base + d;
	}
	*v = n;
	return 1;
}

u8 cmos_read(u8 reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

void deadline_init(struct deadline *d, u32 seconds)
{
	d->left = seconds + 1; /* the first tick may come at once */
	d->polls = 0;
	d->reads = 0;
	d->cap = seconds < 2000 ? seconds * 1000000u : 2000000000u;
	d->last = cmos_read(0);
}

int deadline_passed(struct deadline *d)
{
	if ((++d->polls & 255) == 0) {
		if (++d->reads >= d->cap)
			return 1;
		u8 s = cmos_read(0);
		if (s != d->last) {
			d->last = s;
			if (--d->left == 0)
				return 1;
		}
	}
	return 0;
}

u32 timeout_word(u32 def)
{
	u32 v;
	return word_uint("timeout", &v) ? v : def;
}

u32 pci_read(u32 bus, u32 dev, u32 fn, u32 off)
{
	outl(0xCF8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xFC));
	return inl(0xCFC);
}

void pci_write(u32 bus, u32 dev, u32 fn, u32 off, u32 v)
{
	outl(0xCF8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xFC));
	outl(0xCFC, v);
}

int pci_find(u16 vendor, u16 device, int subsys, u32 nth, u32 *dev, u32 *fn)
{
	for (u32 d = 0; d < 32; d++) {
		u32 nfn = 1;
		for (u32 f = 0; f < nfn; f++) {
			u32 id = pci_read(0, d, f, 0);
			if ((id & 0xFFFF) == 0xFFFF)
				continue;
			if (f == 0 && (pci_read(0, d, 0, 0x0C) >> 16 & 0x80))
				nfn = 8;
			if (id != ((u32)device << 16 | vendor))
				continue;
			if (subsys >= 0 && (pci_read(0, d, f, 0x2C) >> 16) != (u32)subsys)
				continue;
			if (nth--)
				continue;
			*dev = d;
			*fn = f;
			return 0;
		}
	}
	return -1;
}

void *memset(void *d, int c, u32 n)
{
	u8 *p = d;
	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, u32 n)
{
	u8 *p = d;
	const u8 *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, u32 n)
{
	const u8 *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p < *q ? -1 : 1;
	return 0;
}

u32 strlen(const char *s)
{
	u32 n = 0;
	while (s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (u8)*a - (u8)*b;
}

/* rt_entry runs first: console, command line, then the multiboot magic check. */
void rt_entry(u32 magic, const struct mb_info *mbi)
{
	serial_init();
	if (magic != MB_MAGIC) {
		printf("guest: bad multiboot magic eax=0x%x (want 0x2badb002)\n", magic);
		exit(2);
	}
	if (mbi->flags & 0x4)
		cmdline_set((const char *)mbi->cmdline);
	kmain(magic, mbi);
	exit(0);
}
