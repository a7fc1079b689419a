/* Interrupt entry stubs that return with iret (the paging guest's, unlike
 * intr.S's): vectors 0-47, 16 bytes apart. Each pushes a dummy error code
 * where the CPU pushes none, then its vector, so every frame looks alike:
 * pushal's eight registers, vector, error code, EIP, CS, EFLAGS. */
	.text
	.align 16
	.globl iret_stubs
iret_stubs:
	.set vec, 0
	.rept 48
	.align 16
	.if vec == 8 || vec == 10 || vec == 11 || vec == 12 || vec == 13 || vec == 14 || vec == 17
	.else
	pushl $0
	.endif
	pushl $vec
	jmp iret_common
	.set vec, vec + 1
	.endr

iret_common:
	pushal
	movl %esp, %eax
	pushl %eax
	call iret_dispatch
	addl $4, %esp
	popal
	addl $8, %esp /* vector and error code */
	iret

/* pf_probe(addr) reads the dword at addr. When that faults, the #PF handler
 * resumes at pf_resume with EAX still 0xdeadbeef. */
	.globl pf_probe, pf_access, pf_resume
pf_probe:
	movl 4(%esp), %edx
	movl $0xdeadbeef, %eax
pf_access:
	movl (%edx), %eax
pf_resume:
	ret

/* load_segments(gdtr): lgdt, then reload CS and the data segments from it.
 * The far jump's target is the link-time (virtual) address: paging is on. */
	.globl load_segments
load_segments:
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

	.section .note.GNU-stack, "", @progbits
