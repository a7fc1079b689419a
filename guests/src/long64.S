/* long64: an amd64-style NetBSD kernel image. Linked at 0xffffffff80200000
 * and loaded at 0x200000 like NetBSD/amd64 (kern.ldscript: AT(ADDR & 0x0fffffff)),
 * entered through the native handoff at start in 32-bit protected mode with
 * paging off, so the 32-bit code uses physical addresses (RELOC, as
 * amd64's locore does). It prints the handoff through the 32-bit blob at
 * physical 0x201000 (nbinfo.c, built -m32 and included below), builds
 * 4-level page tables mapping the first 8 MiB at 0 and at KERNBASE with
 * 2 MiB pages, enables PAE, EFER.LME and paging, and far-jumps to 64-bit
 * code that continues at its high address in long64.c. */
#define KERNBASE 0xffffffff80000000
#define RELOC(x) ((x) - KERNBASE)
#define EFER 0xc0000080
#define EFER_LME 0x100
#define CR0_VALUE 0x80010033 /* PG WP NE ET MP PE */
#define CR4_PAE 0x20

	.section .text.start, "ax"
	.code32
	.globl start
	.type start, @function
start:
	cli
	cld
	movl %esp, %eax
	movl $RELOC(stack_top), %esp
	pushl %eax
	movl $RELOC(blob32), %ecx
	call *%ecx /* blob_main(handoff esp): prints, returns */
	addl $4, %esp

	/* PML4, PDPT and PD, zeroed here rather than trusting the loader. */
	movl $RELOC(pml4), %edi
	xorl %eax, %eax
	movl $(3 * 1024), %ecx
	rep stosl
	movl $(RELOC(pdpt) + 3), %eax
	movl %eax, RELOC(pml4)
	movl %eax, RELOC(pml4) + 511 * 8
	movl $(RELOC(pd) + 3), %eax
	movl %eax, RELOC(pdpt)
	movl %eax, RELOC(pdpt) + 510 * 8
	movl $RELOC(pd), %edi
	movl $0x83, %eax /* present, writable, 2 MiB page */
	movl $4, %ecx
1:	movl %eax, (%edi)
	addl $0x200000, %eax
	addl $8, %edi
	loop 1b

	movl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $RELOC(pml4), %eax
	movl %eax, %cr3
	movl $EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl $CR0_VALUE, %eax
	movl %eax, %cr0
	lgdt RELOC(gdtr)
	ljmp $0x08, $RELOC(start64)

	.code64
start64:
	movabsq $high64, %rax
	jmpq *%rax

	.text
high64:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movabsq $stack_top, %rsp
	call long64_main
1:	cli
	hlt
	jmp 1b

	.section .blob32, "ax"
	.globl blob32
blob32:
	.incbin "blob32.bin"

	.data
	.align 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00AF9A000000FFFF /* 0x08: 64-bit code (L=1, D=0) */
	.quad 0x00CF92000000FFFF /* 0x10: data */
gdtr:
	.word 3 * 8 - 1
	.long RELOC(gdt)

	.bss
	.align 4096
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4096
	.align 16
	.skip 8192
stack_top:

	.section .note.GNU-stack, "", @progbits
