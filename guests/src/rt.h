/* Tiny freestanding runtime shared by smolvmm's multiboot test guests. */
#ifndef RT_H
#define RT_H

/* Every symbol binds locally: the NetBSD-style guest is compiled -fPIE and
 * must reach its data PC-relatively (never through absolute GOT entries). */
#pragma GCC visibility push(hidden)

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned int uptr;

#define MB_MAGIC 0x2BADB002u

/* Multiboot v1 info structure, read field by field from EBX. */
struct mb_info {
	u32 flags, mem_lower, mem_upper, boot_device, cmdline;
	u32 mods_count, mods_addr;
	u32 num, size, addr, shndx; /* ELF section header table (flag 0x20) */
	u32 mmap_length, mmap_addr, drives_length, drives_addr;
	u32 config_table, boot_loader_name;
};

struct elf_shdr {
	u32 name, type, flags, addr, offset, size, link, info, addralign, entsize;
};

struct elf_sym {
	u32 name, value, size;
	u8 info, other;
	u16 shndx;
};

static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(p)); }
static inline void outw(u16 p, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(p)); }
static inline void outl(u16 p, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline u16 inw(u16 p) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline u32 inl(u16 p) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline void barrier(void) { __asm__ volatile("" : : : "memory"); }
/* A locked add orders stores before later loads (what virtio rings need on x86). */
static inline void mb(void) { __asm__ volatile("lock; addl $0,(%%esp)" : : : "memory"); }
static inline u32 rd32(uptr a) { return *(volatile u32 *)a; }
static inline void wr32(uptr a, u32 v) { *(volatile u32 *)a = v; }

/* Serial console (COM1, polled). */
void serial_init(void);
void putc(char c);
void puts(const char *s);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Exit through the QEMU-style debug-exit port 0x501: status (v<<1)|1. */
#define DEBUG_EXIT_PORT 0x501
void exit(u8 v) __attribute__((noreturn));
void fail(const char *why) __attribute__((noreturn));

/* Command line: words after the first (the kernel file name). */
void cmdline_set(const char *s);
const char *cmdline_get(void);
int has_word(const char *w);
int has_prefix(const char *p); /* a word starting with p */
int word_uint(const char *key, u32 *v); /* "key=N" (decimal or 0x hex) */

/* Wall-clock deadline for polling loops, counted in RTC second ticks (the
 * cost of a loop iteration differs a thousandfold between QEMU TCG, the
 * project's software KVM and a hardware one). A cap on the RTC reads (each
 * two port exits, a microsecond or more on any KVM) also ends the wait if
 * the RTC never ticks; a cap on polls, which cost nanoseconds on hardware,
 * ended a 5 s wait in well under a second there. */
struct deadline {
	u32 left, polls, reads, cap;
	u8 last;
};
void deadline_init(struct deadline *d, u32 seconds);
int deadline_passed(struct deadline *d);
/* timeout_words returns "timeout=N" from the command line, else def. */
u32 timeout_word(u32 def);
u8 cmos_read(u8 reg);

/* PCI configuration mechanism #1. */
u32 pci_read(u32 bus, u32 dev, u32 fn, u32 off);
void pci_write(u32 bus, u32 dev, u32 fn, u32 off, u32 v);
/* pci_find returns 0 and fills *dev and *fn for the nth (from 0) function
 * with the vendor/device pair (and subsystem id when subsys >= 0). */
int pci_find(u16 vendor, u16 device, int subsys, u32 nth, u32 *dev, u32 *fn);

/* Interrupts: own GDT + IDT, PIC remapped to 0x20/0x28. Handlers never return. */
typedef void (*irq_handler)(u32 vec);
void intr_init(irq_handler h);
void pic_unmask(u32 irq);
static inline void sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void cli(void) { __asm__ volatile("cli" : : : "memory"); }

void *memset(void *d, int c, u32 n);
void *memcpy(void *d, const void *s, u32 n);
int memcmp(const void *a, const void *b, u32 n);
u32 strlen(const char *s);
int strcmp(const char *a, const char *b);

/* Guest entry point, called by the entry stub with EAX and EBX. */
void kmain(u32 magic, const struct mb_info *mbi);

/* Set by the linker script: start and end of the loaded image. */
extern char __image_start[], __image_end[], __bss_start[], __bss_end[];

#pragma GCC visibility pop

/* An IDT gate and the operand of lgdt/lidt, for the guests that set up
 * their own tables. */
struct gate {
	u16 off_lo, sel;
	u8 zero, type;
	u16 off_hi;
};

struct __attribute__((packed)) dtr {
	u16 limit;
	u32 base;
};

#endif
