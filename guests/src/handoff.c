/* handoff: the QEMU stand-in for NetBSD's native /boot handoff, which QEMU
 * cannot perform. Booted by QEMU as a multiboot kernel linked out of the way
 * at 64 MiB, with words "entry=0x... esp=0x..." and one module per memory
 * region whose string carries "load=0x...", it copies every module to its
 * load address (first reading all descriptors into its own memory: the
 * copies may overwrite QEMU's multiboot information in low memory), then
 * enters the kernel in flat 32-bit protected mode, paging and interrupts
 * off, EIP=entry, ESP=esp, EAX=EBX=0 and every other register 0. */
#include "rt.h"

#define MAX_REGIONS 64

struct region {
	u32 src, len, dst;
};

static struct region regions[MAX_REGIONS];
static const u64 gdt[3] __attribute__((aligned(8))) = {
	0, 0x00CF9A000000FFFFull, 0x00CF92000000FFFFull,
};

/* load_addr finds "load=0x..." in a module string ("file load=0x..."). */
static int load_addr(const char *s, u32 *v)
{
	for (; *s; s++) {
		if ((s[0] != ' ' && s[0] != 0) || memcmp(s + 1, "load=0x", 7) != 0)
			continue;
		u32 n = 0, digits = 0;
		for (s += 8; *s && *s != ' '; s++, digits++) {
			u32 d;
			if (*s >= '0' && *s <= '9')
				d = (u32)(*s - '0');
			else if (*s >= 'a' && *s <= 'f')
				d = (u32)(*s - 'a' + 10);
			else
				return 0;
			n = n << 4 | d;
		}
		*v = n;
		return digits > 0 && digits <= 8;
	}
	return 0;
}

static int overlaps(u32 a, u32 alen, u32 b, u32 blen)
{
	return a < b + blen && b < a + alen;
}

void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)magic;
	u32 entry, esp;
	if (!word_uint("entry", &entry) || !word_uint("esp", &esp))
		fail("handoff: the command line needs entry=0x... and esp=0x...");
	u32 n = (mbi->flags & 0x8) ? mbi->mods_count : 0;
	if (n > MAX_REGIONS)
		fail("handoff: more than 64 modules");
	u32 self = (u32)(uptr)__image_start, selflen = (u32)(uptr)__bss_end - self;
	for (u32 i = 0; i < n; i++) {
		uptr m = mbi->mods_addr + 16 * i;
		struct region *r = &regions[i];
		r->src = rd32(m);
		r->len = rd32(m + 4) - r->src;
		const char *s = (const char *)rd32(m + 8);
		if (!s || !load_addr(s, &r->dst)) {
			printf("FAIL: handoff: module %u has no load=0x... in \"%s\"\n", i, s ? s : "");
			exit(1);
		}
		if (r->dst + r->len < r->dst || overlaps(r->dst, r->len, self, selflen)) {
			printf("FAIL: handoff: module %u load=0x%x len=%u overlaps the handoff guest\n", i,
			       r->dst, r->len);
			exit(1);
		}
	}
	/* A copy must not overwrite a module still to be copied. */
	for (u32 i = 0; i < n; i++)
		for (u32 j = i + 1; j < n; j++)
			if (overlaps(regions[i].dst, regions[i].len, regions[j].src, regions[j].len)) {
				printf("FAIL: handoff: module %u overwrites module %u\n", i, j);
				exit(1);
			}
	printf("handoff: %u regions, entering 0x%x with esp=0x%x\n", n, entry, esp);
	for (u32 i = 0; i < n; i++) {
		u32 d = regions[i].dst, s = regions[i].src, l = regions[i].len;
		__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(l) : : "memory");
	}
	struct __attribute__((packed)) {
		u16 limit;
		u32 base;
	} gdtr = {sizeof(gdt) - 1, (u32)(uptr)gdt};
	__asm__ volatile("cli\n\t"
			 "lgdt %0\n\t"
			 "ljmp $0x08, $1f\n"
			 "1:\tmovw $0x10, %%ax\n\t"
			 "movw %%ax, %%ds\n\t"
			 "movw %%ax, %%es\n\t"
			 "movw %%ax, %%fs\n\t"
			 "movw %%ax, %%gs\n\t"
			 "movw %%ax, %%ss\n\t"
			 "movl %2, %%esp\n\t"
			 "xorl %%eax, %%eax\n\t"
			 "xorl %%ebx, %%ebx\n\t"
			 "xorl %%edx, %%edx\n\t"
			 "xorl %%esi, %%esi\n\t"
			 "xorl %%edi, %%edi\n\t"
			 "xorl %%ebp, %%ebp\n\t"
			 "pushl $0\n\t"
			 "popfl\n\t"
			 "jmp *%%ecx"
			 :
			 : "m"(gdtr), "c"(entry), "S"(esp)
			 : "memory");
	__builtin_unreachable();
}
