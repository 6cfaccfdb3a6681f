/*
 * World switch between monitor C code and translated guest code.  Both run in
 * 64-bit mode; the switch exchanges the register file (vcpu_abi.h has the
 * convention) and the part of the FPU/SSE state that the monitor touches.
 *
 * Invariants:
 *  - The x87 state (stack, control and status words, tags) is the guest's,
 *    live in the CPU, always: the monitor executes no x87 instruction (it
 *    has no long double, and neither glibc's string and formatting code nor
 *    its libraries use the x87), so nothing needs saving around an exit.
 *  - XMM0-7 (all a 32-bit guest has) and MXCSR are live in the CPU while
 *    translated code runs, and in VC_FX_GUEST's slots for them (offsets 160
 *    and 24 of the fxsave layout) while the monitor runs, whose compiled
 *    code and string functions use the XMM registers freely.  The monitor
 *    runs with its own MXCSR (VC_MON_CTL), so that a guest's unmasked SSE
 *    exceptions or rounding mode never reach it; the load is skipped when
 *    both are the same, as they nearly always are.
 * A full fxsave/fxrstor pair at every exit cost a third of an emulated port
 * access on this project's hosts; these moves cost a few cycles.
 */
#include "vcpu_abi.h"

	.text

/* void vcpu_switch_enter(struct vcpu_hot *hot, uint64_t host_pc) */
	.globl vcpu_switch_enter
	.type vcpu_switch_enter, @function
vcpu_switch_enter:
	push %rbp
	push %rbx
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rdi, %r15
	mov %rsp, VC_HOST_RSP(%r15)
	stmxcsr VC_MON_CTL(%r15)
	mov VC_FX_GUEST+FX_MXCSR(%r15), %eax
	cmp VC_MON_CTL(%r15), %eax
	je 1f
	ldmxcsr VC_FX_GUEST+FX_MXCSR(%r15)
1:	movaps VC_FX_GUEST+FX_XMM+0x00(%r15), %xmm0
	movaps VC_FX_GUEST+FX_XMM+0x10(%r15), %xmm1
	movaps VC_FX_GUEST+FX_XMM+0x20(%r15), %xmm2
	movaps VC_FX_GUEST+FX_XMM+0x30(%r15), %xmm3
	movaps VC_FX_GUEST+FX_XMM+0x40(%r15), %xmm4
	movaps VC_FX_GUEST+FX_XMM+0x50(%r15), %xmm5
	movaps VC_FX_GUEST+FX_XMM+0x60(%r15), %xmm6
	movaps VC_FX_GUEST+FX_XMM+0x70(%r15), %xmm7
	mov %rsi, %r10
	mov VC_JTAB(%r15), %r14
	mov VC_LOOKUP_HITS(%r15), %r13
	mov VC_GS_BASE(%r15), %r12d
	mov VC_FS_BASE(%r15), %r9d
	mov VC_ENTRY_FLAGS(%r15), %eax
	push %rax
	popfq
	mov VC_GPR+0(%r15), %eax
	mov VC_GPR+4(%r15), %ecx
	mov VC_GPR+8(%r15), %edx
	mov VC_GPR+12(%r15), %ebx
	mov VC_GPR+16(%r15), %esp
	mov VC_GPR+20(%r15), %ebp
	mov VC_GPR+24(%r15), %esi
	mov VC_GPR+28(%r15), %edi
	jmp *%r10
	.size vcpu_switch_enter, .-vcpu_switch_enter

/* Reached by `jmp *VC_EXIT_GATE(%r15)` from an exit stub, with r10d = the
 * exit argument and the guest's registers and flags live. */
	.globl vcpu_exit_gate
	.type vcpu_exit_gate, @function
vcpu_exit_gate:
	mov %eax, VC_GPR+0(%r15)
	mov %ecx, VC_GPR+4(%r15)
	mov %edx, VC_GPR+8(%r15)
	mov %ebx, VC_GPR+12(%r15)
	mov %esp, VC_GPR+16(%r15)
	mov %ebp, VC_GPR+20(%r15)
	mov %esi, VC_GPR+24(%r15)
	mov %edi, VC_GPR+28(%r15)
	mov %r10d, VC_EXIT_ARG(%r15)
	mov %r13, VC_LOOKUP_HITS(%r15)
	mov VC_HOST_RSP(%r15), %rsp
	pushfq
	pop %rax
	mov %eax, VC_EFLAGS(%r15)
/* A signal handler redirects here with r15 = hot, rsp = VC_HOST_RSP and the
 * guest state (and r13) already stored. */
	.globl vcpu_exit_common
vcpu_exit_common:
	cld
	movaps %xmm0, VC_FX_GUEST+FX_XMM+0x00(%r15)
	movaps %xmm1, VC_FX_GUEST+FX_XMM+0x10(%r15)
	movaps %xmm2, VC_FX_GUEST+FX_XMM+0x20(%r15)
	movaps %xmm3, VC_FX_GUEST+FX_XMM+0x30(%r15)
	movaps %xmm4, VC_FX_GUEST+FX_XMM+0x40(%r15)
	movaps %xmm5, VC_FX_GUEST+FX_XMM+0x50(%r15)
	movaps %xmm6, VC_FX_GUEST+FX_XMM+0x60(%r15)
	movaps %xmm7, VC_FX_GUEST+FX_XMM+0x70(%r15)
	stmxcsr VC_FX_GUEST+FX_MXCSR(%r15)
	mov VC_FX_GUEST+FX_MXCSR(%r15), %eax
	cmp VC_MON_CTL(%r15), %eax
	je 1f
	ldmxcsr VC_MON_CTL(%r15)
1:	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbx
	pop %rbp
	ret
	.size vcpu_exit_gate, .-vcpu_exit_gate

	.section .note.GNU-stack,"",@progbits
