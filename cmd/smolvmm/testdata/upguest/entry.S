/* Multiboot v1 entry of the up end-to-end test guest: flags 0x2 (memory
 * info) only, like NetBSD, so the loader places it by its program headers. */
	.section .multiboot, "a"
	.align 4
	.long 0x1BADB002
	.long 0x00000002
	.long -(0x1BADB002 + 0x00000002)

	.text
	.globl _start
_start:
	cli
	mov $stack_top, %esp
	push %ebx
	push %eax
	call kmain
1:	hlt
	jmp 1b

	.bss
	.align 16
	.space 16384
stack_top:
