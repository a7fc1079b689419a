/* A freestanding multiboot kernel shaped like NetBSD: linked at 0xc0100000, loaded at 1 MiB. */
#define MB_FLAGS 0x3
__attribute__((section(".multiboot"), used, aligned(4)))
static const unsigned int mbh[3] = {0x1BADB002, MB_FLAGS, -(0x1BADB002 + MB_FLAGS)};
unsigned char bss_area[0x3000];
int data_word = 0x12345678;
void _start(void) {
	for (int i = 0; i < (int)sizeof bss_area; i++) bss_area[i] += data_word;
	for (;;) __asm__ volatile("hlt");
}
