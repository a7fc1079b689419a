#include "textflag.h"

// trapHandler is SIGSYS's handler, entered by the kernel with the C ABI:
// DI = signal, SI = *siginfo_t, DX = *ucontext. It runs outside the Go
// runtime (no g, no Go stack), so it only makes system calls the filter
// allows: TCSETS on the console, writev(2) of the call's line, exit_group.
TEXT ·trapHandler(SB),NOSPLIT|NOFRAME,$0
	// siginfo_t's si_code is at offset 8; _sigsys._syscall at 24 and
	// _arch at 28 for the filter's SIGSYS (SYS_SECCOMP), _kill.si_pid at
	// 16 for another process's kill (0 from outside the PID namespace): all are read before SI is reused.
	MOVL	8(SI), R8
	MOVL	16(SI), R9
	MOVL	24(SI), R12
	MOVL	28(SI), R13
	// Put the terminal back in cooked mode first.
	MOVQ	·trapTTY(SB), DI
	CMPQ	DI, $0
	JLT	report
	MOVQ	$0x5402, SI // TCSETS
	MOVQ	·trapTermios(SB), DX
	MOVQ	$16, AX // SYS_ioctl
	SYSCALL
report:
	// writev(2, {trapHead, kind, call, trapTail}, 4), the iovecs and the
	// number's digits on the signal stack: 0-63 the iovecs, 64-79 the
	// digits, written back from 80.
	SUBQ	$80, SP
	CMPL	R8, $1 // SYS_SECCOMP
	JEQ	seccomp
	// Not the filter's: writev(2, {trapKillHead, -, pid, trapKillTail}),
	// or {trapKillOutside, -, -, -} for PID 0: a sender outside the PID
	// namespace (--jail's), which the kernel shows as 0.
	TESTL	R9, R9
	JNE	killpid
	MOVQ	·trapKillOutside+0(SB), AX
	MOVQ	AX, 0(SP)
	MOVQ	·trapKillOutside+8(SB), AX
	MOVQ	AX, 8(SP)
	MOVQ	$0, 16(SP)
	MOVQ	$0, 24(SP)
	MOVQ	$0, 32(SP)
	MOVQ	$0, 40(SP)
	MOVQ	$0, 48(SP)
	MOVQ	$0, 56(SP)
	JMP	write
killpid:
	MOVQ	·trapKillHead+0(SB), AX
	MOVQ	AX, 0(SP)
	MOVQ	·trapKillHead+8(SB), AX
	MOVQ	AX, 8(SP)
	MOVQ	·trapKillTail+0(SB), AX
	MOVQ	AX, 48(SP)
	MOVQ	·trapKillTail+8(SB), AX
	MOVQ	AX, 56(SP)
	MOVQ	$0, 16(SP)
	MOVQ	$0, 24(SP)
	MOVL	R9, R12
	JMP	number
seccomp:
	MOVQ	·trapHead+0(SB), AX
	MOVQ	AX, 0(SP)
	MOVQ	·trapHead+8(SB), AX
	MOVQ	AX, 8(SP)
	MOVQ	·trapTail+0(SB), AX
	MOVQ	AX, 48(SP)
	MOVQ	·trapTail+8(SB), AX
	MOVQ	AX, 56(SP)
	// Another ABI's number indexes no x86-64 name: the i386 one (int
	// 0x80) has its own numbers, and x32's are x86-64's with bit 30 set.
	CMPL	R13, $0xC000003E // AUDIT_ARCH_X86_64
	JNE	i386
	TESTL	$0x40000000, R12
	JNE	x32
	// An x86-64 call: no kind, then trapTable[nr], the last entry for a
	// number past the table.
	CMPQ	R12, $512
	JCS	named
	MOVQ	$512, R12
named:
	MOVQ	$0, 16(SP)
	MOVQ	$0, 24(SP)
	SHLQ	$4, R12
	LEAQ	·trapTable(SB), BX
	ADDQ	R12, BX
	MOVQ	0(BX), AX
	MOVQ	AX, 32(SP)
	MOVQ	8(BX), AX
	MOVQ	AX, 40(SP)
	JMP	write
i386:
	MOVQ	·trapI386+0(SB), AX
	MOVQ	AX, 16(SP)
	MOVQ	·trapI386+8(SB), AX
	MOVQ	AX, 24(SP)
	JMP	number
x32:
	ANDL	$0x3FFFFFFF, R12
	MOVQ	·trapX32+0(SB), AX
	MOVQ	AX, 16(SP)
	MOVQ	·trapX32+8(SB), AX
	MOVQ	AX, 24(SP)
number:
	// The number in decimal, its digits from the last.
	LEAQ	80(SP), DI
	MOVL	R12, AX
	MOVL	$10, CX
digit:
	XORL	DX, DX
	DIVL	CX
	ADDL	$0x30, DX // '0'
	DECQ	DI
	MOVB	DX, 0(DI)
	TESTL	AX, AX
	JNE	digit
	MOVQ	DI, 32(SP)
	LEAQ	80(SP), AX
	SUBQ	DI, AX
	MOVQ	AX, 40(SP)
write:
	MOVQ	$2, DI // standard error
	MOVQ	SP, SI
	MOVQ	$4, DX
	MOVQ	$20, AX // SYS_writev
	SYSCALL
	MOVQ	·trapExitCode(SB), DI
	CMPL	R8, $1
	JEQ	exit
	MOVQ	·trapKillExitCode(SB), DI
exit:
	MOVQ	$231, AX // SYS_exit_group
	SYSCALL
	// Not reached; should exit_group fail, fault rather than return
	// into the refused call.
	MOVQ	$0, AX
	MOVQ	AX, 0(AX)
	RET

// trapRestorer is the sa_restorer x86-64 requires; the handler never
// returns, so it is never used.
TEXT ·trapRestorer(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$15, AX // SYS_rt_sigreturn
	SYSCALL
	RET

// func trapHandlerAddr() uintptr
TEXT ·trapHandlerAddr(SB),NOSPLIT,$0-8
	MOVQ	$·trapHandler(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

// func trapRestorerAddr() uintptr
TEXT ·trapRestorerAddr(SB),NOSPLIT,$0-8
	MOVQ	$·trapRestorer(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
