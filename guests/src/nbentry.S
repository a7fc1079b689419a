/* Entry of the nbboot guest, reached through NetBSD's native /boot handoff:
 * 32-bit flat protected mode, paging off, no magic in EAX, and a stack
 * holding a return address and six words (boothowto, bootdev, bootinfo,
 * esym, biosextmem, biosbasemem). It lies first in .text, at the kernel's
 * link address, as NetBSD's start does. */
	.section .text.start, "ax"
	.globl start
	.type start, @function
start:
	cli
	cld
	movl %esp, %eax
	movl $__stack_top, %esp
	subl $__kvoff, %esp
	pushl $0
	popfl
	pushl %eax
	call nb_main
1:	cli
	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
