/* The ELF note that marks a NetBSD kernel (NT_NETBSD_IDENT, as the real
 * kernels carry it: a section that is not loaded). smolvmm boots an ELF with
 * it and without a multiboot header through NetBSD's native handoff. */
	.section .note.netbsd.ident, "", @note
	.p2align 2
	.long 7         /* name size: "NetBSD" and its NUL */
	.long 4         /* descriptor size */
	.long 1         /* type: NT_NETBSD_IDENT */
	.ascii "NetBSD\0\0"
	.long 999000000 /* __NetBSD_Version__ 99.90 */

	.section .note.GNU-stack, "", @progbits
