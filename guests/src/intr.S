/* Interrupt entry stubs (vectors 0-47, 8 bytes apart) and GDT loading.
 * Handlers never return: iret in protected mode fails on the project's KVM. */
	.text
	.globl intr_load_gdt
intr_load_gdt:
	movl 4(%esp), %eax
	lgdt (%eax)
	ljmp $0x08, $1f
1:	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %fs
	movw %ax, %gs
	movw %ax, %ss
	ret

	.globl intr_load_idt
intr_load_idt:
	movl 4(%esp), %eax
	lidt (%eax)
	ret

	.align 8
	.globl intr_stubs
intr_stubs:
	.set vec, 0
	.rept 48
	.align 8
	pushl $vec
	jmp intr_common
	.set vec, vec + 1
	.endr

intr_common:
	movl %esp, %eax
	pushl %eax
	call intr_dispatch
1:	cli
	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
