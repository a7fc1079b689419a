/* demo: prints everything it received from the multiboot loader, the RTC
 * and the PCI devices on bus 0, then exits with debug-exit value 0. */
#include "rt.h"

static u32 bss_probe[256]; /* must read as zero: the loader zeroes .bss */

static void show_mmap(const struct mb_info *mbi)
{
	if (!(mbi->flags & 0x40)) {
		puts("mmap: none\n");
		return;
	}
	printf("mmap: addr=0x%x length=%u\n", mbi->mmap_addr, mbi->mmap_length);
	uptr p = mbi->mmap_addr, end = mbi->mmap_addr + mbi->mmap_length;
	for (u32 n = 0; p + 24 <= end && n < 32; n++) {
		u32 size = rd32(p);
		u64 base = (u64)rd32(p + 8) << 32 | rd32(p + 4);
		u64 len = (u64)rd32(p + 16) << 32 | rd32(p + 12);
		printf("mmap: base=0x%016llx len=0x%016llx type=%u\n", base, len, rd32(p + 20));
		if (size < 20)
			break;
		p += size + 4;
	}
}

static void show_elf(const struct mb_info *mbi)
{
	if (!(mbi->flags & 0x20)) {
		puts("elf: none\n");
		return;
	}
	printf("elf: num=%u size=%u addr=0x%x shndx=%u\n", mbi->num, mbi->size, mbi->addr,
	       mbi->shndx);
	if (mbi->size != sizeof(struct elf_shdr) || mbi->num > 64)
		return;
	const struct elf_shdr *sh = (const struct elf_shdr *)mbi->addr;
	for (u32 i = 0; i < mbi->num; i++) {
		if (sh[i].type != 2 || sh[i].link >= mbi->num) /* SHT_SYMTAB */
			continue;
		const struct elf_shdr *st = &sh[sh[i].link];
		printf("elf: symtab index=%u sh_addr=0x%x size=%u strtab sh_addr=0x%x size=%u\n", i,
		       sh[i].addr, sh[i].size, st->addr, st->size);
		if (!sh[i].addr || !st->addr) {
			puts("elf: symtab not loaded\n");
			return;
		}
		u32 linked_kmain;
		__asm__("movl $kmain, %0" : "=r"(linked_kmain));
		const struct elf_sym *sym = (const struct elf_sym *)sh[i].addr;
		const char *str = (const char *)st->addr;
		for (u32 j = 0; j < sh[i].size / sizeof(*sym) && j < 4096; j++) {
			if (sym[j].name >= st->size || strcmp(str + sym[j].name, "kmain") != 0)
				continue;
			printf("elf: symbol %s=0x%x linked=0x%x %s\n", str + sym[j].name,
			       sym[j].value, linked_kmain,
			       sym[j].value == linked_kmain ? "ok" : "MISMATCH");
			return;
		}
		puts("elf: symbol kmain not found\n");
		return;
	}
	puts("elf: no symtab\n");
}

static void show_rtc(void)
{
	u32 i;
	for (i = 0; i < 2000 && (cmos_read(0x0A) & 0x80); i++) /* wait out an update (UIP) */
		;
	u8 a = cmos_read(0x0A), b = cmos_read(0x0B), d = cmos_read(0x0D), e = cmos_read(0x0E);
	u8 sec = cmos_read(0), min = cmos_read(2), hour = cmos_read(4);
	u8 day = cmos_read(7), mon = cmos_read(8), year = cmos_read(9), cent = cmos_read(0x32);
	printf("rtc: A=0x%02x B=0x%02x D=0x%02x E=0x%02x uip-polls=%u vrt=%u\n", a, b, d, e, i,
	       (d >> 7) & 1);
	if (b & 0x04)
		printf("rtc: %u%02u-%02u-%02u %02u:%02u:%02u binary\n", cent, year, mon, day, hour,
		       min, sec);
	else
		printf("rtc: %02x%02x-%02x-%02x %02x:%02x:%02x bcd\n", cent, year, mon, day, hour,
		       min, sec);
}

static void show_pci(void)
{
	u32 found = 0;
	for (u32 dev = 0; dev < 32; dev++) {
		u32 nfn = 1;
		for (u32 fn = 0; fn < nfn; fn++) {
			u32 id = pci_read(0, dev, fn, 0);
			if ((id & 0xFFFF) == 0xFFFF)
				continue;
			u32 hdr = pci_read(0, dev, fn, 0x0C) >> 16 & 0xFF;
			if (fn == 0 && (hdr & 0x80))
				nfn = 8;
			u32 class = pci_read(0, dev, fn, 0x08);
			u32 sub = pci_read(0, dev, fn, 0x2C);
			u32 bar0 = pci_read(0, dev, fn, 0x10);
			u32 intr = pci_read(0, dev, fn, 0x3C);
			printf("pci: 00:%02x.%u %04x:%04x rev %02x class %06x subsys %04x:%04x "
			       "bar0 %08x irq %u pin %u\n",
			       dev, fn, id & 0xFFFF, id >> 16, class & 0xFF, class >> 8,
			       sub & 0xFFFF, sub >> 16, bar0, intr & 0xFF, (intr >> 8) & 0xFF);
			found++;
		}
	}
	printf("pci: %u functions\n", found);
}

void kmain(u32 magic, const struct mb_info *mbi)
{
	puts("smolvmm-demo: hello\n");
	printf("eax: 0x%x ok\n", magic);
	u32 linked;
	__asm__("movl $kmain, %0" : "=r"(linked));
	printf("image: 0x%x-0x%x kmain=0x%x linked=0x%x ebx=0x%x\n", (u32)(uptr)__image_start,
	       (u32)(uptr)__image_end, (u32)(uptr)kmain, linked, (u32)(uptr)mbi);
	printf("flags: 0x%x\n", mbi->flags);
	if (mbi->flags & 0x1)
		printf("mem: lower=%u KiB upper=%u KiB\n", mbi->mem_lower, mbi->mem_upper);
	else
		puts("mem: none\n");
	if (mbi->flags & 0x2)
		printf("boot_device: 0x%x\n", mbi->boot_device);
	show_mmap(mbi);
	printf("cmdline: \"%s\"\n", (mbi->flags & 0x4) ? (const char *)mbi->cmdline : "(none)");
	printf("loader: \"%s\"\n",
	       (mbi->flags & 0x200) ? (const char *)mbi->boot_loader_name : "(none)");
	if (mbi->flags & 0x8) {
		printf("mods: count=%u\n", mbi->mods_count);
		for (u32 i = 0; i < mbi->mods_count && i < 8; i++) {
			uptr m = mbi->mods_addr + 16 * i;
			printf("mod: start=0x%x end=0x%x string=\"%s\"\n", rd32(m), rd32(m + 4),
			       rd32(m + 8) ? (const char *)rd32(m + 8) : "");
		}
	}
	show_elf(mbi);
	u32 nz = 0;
	for (u32 i = 0; i < 256; i++)
		nz |= bss_probe[i];
	puts(nz ? "bss: NOT ZERO\n" : "bss: zero ok\n");
	show_rtc();
	show_pci();
	puts("smolvmm-demo: done\n");
	exit(0);
}
