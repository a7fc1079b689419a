/* Multiboot v1 header and entry stub shared by every guest. */
#define MB_HDR_MAGIC 0x1BADB002
#define MB_HDR_FLAGS 0x3 /* page-align modules, want memory info; no a.out kludge */

	.section .multiboot, "a"
	.align 4
	.long MB_HDR_MAGIC
	.long MB_HDR_FLAGS
	.long -(MB_HDR_MAGIC + MB_HDR_FLAGS)

	.text
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	/* The stack's physical address: the link address minus __kvoff (0 for
	 * guests linked at their physical address, 0xc0000000 for the one linked
	 * like NetBSD). Resolved by the linker, so no run-time relocation. */
	movl $__stack_top, %esp
	subl $__kvoff, %esp
	pushl $0
	popfl
	pushl %ebx
	pushl %eax
	call rt_entry
1:	cli
	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
