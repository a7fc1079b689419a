//go:build smolvmm_testhook

#include "textflag.h"

// func int80Getpid() int64
TEXT ·int80Getpid(SB),NOSPLIT,$0-8
	MOVL	$20, AX // i386's getpid
	INT	$0x80
	MOVQ	AX, ret+0(FP)
	RET
