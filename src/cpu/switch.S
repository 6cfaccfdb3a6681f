/*
 * World switch between monitor C code and translated guest code.  Both run in
 * 64-bit mode; the switch exchanges the register file (vcpu_abi.h has the
 * convention) and the FPU/SSE state.
 *
 * Invariant: the guest's FPU/SSE state is live in the CPU exactly while
 * translated code runs; at all other times it is in VC_FX_GUEST.
 *
 * The monitor's own FPU/SSE state needs no image: vcpu_switch_enter is a
 * function call, across which the ABI keeps only the MXCSR control bits
 * and the x87 control word (the XMM registers are the caller's to lose,
 * and the x87 stack is empty).  Those two are kept in VC_MON_CTL; the exit
 * empties the x87 stack (fninit) and loads them back.
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
	fnstcw VC_MON_CTL+4(%r15)
	fxrstor64 VC_FX_GUEST(%r15)
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
	fxsave64 VC_FX_GUEST(%r15)
	fninit
	ldmxcsr VC_MON_CTL(%r15)
	fldcw VC_MON_CTL+4(%r15)
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbx
	pop %rbp
	ret
	.size vcpu_exit_gate, .-vcpu_exit_gate

	.section .note.GNU-stack,"",@progbits
