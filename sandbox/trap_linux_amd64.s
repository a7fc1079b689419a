#include "textflag.h"

// trapHandler is SIGSYS's handler, entered by the kernel with the C ABI:
// DI = signal, SI = *siginfo_t, DX = *ucontext. It runs outside the Go
// runtime (no g, no Go stack), so it only makes system calls the filter
// allows: TCSETS on the console, writev(2) of the call's line, exit_group.
TEXT ·trapHandler(SB),NOSPLIT|NOFRAME,$0
	// siginfo_t._sigsys._syscall is at offset 24.
	MOVL	24(SI), R12
	CMPQ	R12, $512
	JCS	named
	MOVQ	$512, R12
named:
	// Put the terminal back in cooked mode first.
	MOVQ	·trapTTY(SB), DI
	CMPQ	DI, $0
	JLT	report
	MOVQ	$0x5402, SI // TCSETS
	MOVQ	·trapTermios(SB), DX
	MOVQ	$16, AX // SYS_ioctl
	SYSCALL
report:
	// writev(2, {trapHead, trapTable[nr], trapTail}, 3), the iovecs on
	// the signal stack.
	SUBQ	$48, SP
	MOVQ	·trapHead+0(SB), AX
	MOVQ	AX, 0(SP)
	MOVQ	·trapHead+8(SB), AX
	MOVQ	AX, 8(SP)
	SHLQ	$4, R12
	LEAQ	·trapTable(SB), BX
	ADDQ	R12, BX
	MOVQ	0(BX), AX
	MOVQ	AX, 16(SP)
	MOVQ	8(BX), AX
	MOVQ	AX, 24(SP)
	MOVQ	·trapTail+0(SB), AX
	MOVQ	AX, 32(SP)
	MOVQ	·trapTail+8(SB), AX
	MOVQ	AX, 40(SP)
	MOVQ	$2, DI // standard error
	MOVQ	SP, SI
	MOVQ	$3, DX
	MOVQ	$20, AX // SYS_writev
	SYSCALL
	MOVQ	·trapExitCode(SB), DI
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
