/* nbinfo: prints what NetBSD's native /boot handoff passed to the kernel:
 * the six stack words (arch/i386/stand/lib/exec.c, startprog) and every
 * bootinfo record (arch/x86/include/bootinfo.h), as demo does for multiboot.
 * Shared by nbboot and long64's 32-bit entry; runs unpaged, so the physical
 * addresses in the records are used as they are. */
#include "nbinfo.h"

/* The multiboot entry of the shared runtime (rt_entry) is linked in but
 * never taken by these guests: reaching it is a loader bug. */
void kmain(u32 magic, const struct mb_info *mbi)
{
	(void)magic;
	(void)mbi;
	fail("nb: entered through multiboot");
}

/* fnv1a hashes a record's bytes: a line per record then covers every byte
 * the loader wrote, padding included. */
static u32 fnv1a(uptr p, u32 n)
{
	u32 h = 2166136261u;
	for (u32 i = 0; i < n; i++) {
		h ^= *(const volatile u8 *)(p + i);
		h *= 16777619u;
	}
	return h;
}

/* put_field prints the NUL-terminated string in a fixed-size field, quoted,
 * with anything unprintable as \xNN. */
static void put_field(uptr p, u32 max)
{
	putc('"');
	for (u32 i = 0; i < max; i++) {
		u8 c = *(const volatile u8 *)(p + i);
		if (!c)
			break;
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			putc((char)c);
		else
			printf("\\x%02x", c);
	}
	putc('"');
}

static void put_head(uptr p)
{
	printf("head=%02x%02x%02x%02x", *(const volatile u8 *)p, *(const volatile u8 *)(p + 1),
	       *(const volatile u8 *)(p + 2), *(const volatile u8 *)(p + 3));
}

static const char *type_name(u32 t)
{
	switch (t) {
	case 0:
		return "bootpath";
	case 1:
		return "rootdevice";
	case 3:
		return "bootdisk";
	case 4:
		return "netif";
	case 6:
		return "console";
	case 7:
		return "biosgeom";
	case 8:
		return "symtab";
	case 9:
		return "memmap";
	case 10:
		return "bootwedge";
	case 11:
		return "modulelist";
	case 12:
		return "framebuffer";
	case 13:
		return "userconfcommands";
	}
	return "unknown";
}

static void need(u32 len, u32 want, const char *what)
{
	if (len < want) {
		printf("FAIL: nb: %s record is %u bytes, needs %u\n", what, len, want);
		exit(1);
	}
}

static void show_record(uptr a, u32 type, u32 len)
{
	switch (type) {
	case 0: /* btinfo_bootpath: char bootpath[80] */
		need(len, 8 + 80, "bootpath");
		puts("nb: btinfo bootpath ");
		put_field(a + 8, 80);
		break;
	case 1: /* btinfo_rootdevice: char devname[16] */
		need(len, 8 + 16, "rootdevice");
		puts("nb: btinfo rootdevice ");
		put_field(a + 8, 16);
		break;
	case 6: /* btinfo_console: char devname[16]; int addr, speed */
		need(len, 8 + 24, "console");
		puts("nb: btinfo console ");
		put_field(a + 8, 16);
		printf(" addr=0x%x speed=%u", rd32(a + 24), rd32(a + 28));
		break;
	case 8: { /* btinfo_symtab: int nsym, ssym, esym */
		need(len, 8 + 12, "symtab");
		u32 ssym = rd32(a + 12);
		printf("nb: btinfo symtab nsym=%u ssym=0x%x esym=0x%x ", rd32(a + 8), ssym,
		       rd32(a + 16));
		put_head(ssym);
		break;
	}
	case 9: { /* btinfo_memmap: int num; packed {u64 addr, size; u32 type}[num] */
		need(len, 12, "memmap");
		u32 num = rd32(a + 8);
		if (num > 64 || 12 + num * 20 > len) {
			printf("FAIL: nb: memmap num=%u does not fit in %u bytes\n", num, len);
			exit(1);
		}
		printf("nb: btinfo memmap num=%u\n", num);
		for (u32 i = 0; i < num; i++) {
			uptr e = a + 12 + 20 * i;
			printf("nb: memmap addr=0x%016llx size=0x%016llx type=%u\n",
			       (u64)rd32(e + 4) << 32 | rd32(e), (u64)rd32(e + 12) << 32 | rd32(e + 8),
			       rd32(e + 16));
		}
		return;
	}
	case 11: { /* btinfo_modulelist: int num; u32 endpa; {char path[80]; int type, len; u32 base}[num] */
		need(len, 16, "modulelist");
		u32 num = rd32(a + 8);
		if (num > 32 || 16 + num * 92 > len) {
			printf("FAIL: nb: modulelist num=%u does not fit in %u bytes\n", num, len);
			exit(1);
		}
		printf("nb: btinfo modulelist num=%u endpa=0x%x\n", num, rd32(a + 12));
		for (u32 i = 0; i < num; i++) {
			uptr e = a + 16 + 92 * i;
			puts("nb: module ");
			put_field(e, 80);
			u32 base = rd32(e + 88);
			printf(" type=%u len=%u base=0x%x ", rd32(e + 80), rd32(e + 84), base);
			put_head(base);
			puts("\n");
		}
		return;
	}
	default:
		return;
	}
	puts("\n");
}

void nb_print(const u32 *sp)
{
	printf("nb: esp=0x%x return=0x%x\n", (u32)(uptr)sp, sp[0]);
	printf("nb: boothowto=0x%x bootdev=0x%x bootinfo=0x%x esym=0x%x extmem=%u basemem=%u\n",
	       sp[1], sp[2], sp[3], sp[4], sp[5], sp[6]);
	uptr bi = sp[3];
	if (!bi) {
		puts("nb: no bootinfo\n");
		return;
	}
	u32 n = rd32(bi);
	printf("nb: bootinfo entries=%u\n", n);
	if (n > 32)
		fail("nb: more than 32 bootinfo entries");
	for (u32 i = 0; i < n; i++) {
		uptr a = rd32(bi + 4 + 4 * i);
		u32 len = rd32(a), type = rd32(a + 4);
		printf("nb: record %u at 0x%x type=%u %s len=%u", i, (u32)a, type, type_name(type),
		       len);
		if (len < 8 || len > 65536) {
			puts("\n");
			fail("nb: record length outside 8..65536");
		}
		printf(" fnv=0x%08x\n", fnv1a(a, len));
		show_record(a, type, len);
	}
}
