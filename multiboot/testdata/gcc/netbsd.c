/*
 * A kernel laid out like NetBSD/i386's: only .text gets an explicit load
 * address, so rodata, data+bss and the .note.netbsd.ident that the link
 * places after "end" follow it low; ld makes four PT_LOAD segments, the last
 * one starting at end.
 */
#define MB_FLAGS 0x2 /* WANT_MEMORY only, as NetBSD's locore */
__attribute__((section(".multiboot"), used, aligned(4)))
static const unsigned int mbh[3] = {0x1BADB002, MB_FLAGS, -(0x1BADB002 + MB_FLAGS)};
__attribute__((section(".note.netbsd.ident"), used, aligned(4)))
static const struct {
	unsigned int namesz, descsz, type;
	char name[8];
	unsigned int version;
} ident = {7, 4, 1, "NetBSD", 903000000};
static const char msg[] = "rodata";
unsigned char bss_area[0x3000];
int data_word = 0x12345678;
const char *msgp = msg;
void _start(void) {
	for (int i = 0; i < (int)sizeof bss_area; i++) bss_area[i] += data_word + msgp[0];
	for (;;) __asm__ volatile("hlt");
}
