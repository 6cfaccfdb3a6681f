/*
 * The one-instruction emulator: executes the guest instruction at CS:EIP
 * against the VCPU with Zydis decoding.  It serves every sensitive
 * instruction the translator sends out, instructions that have no 64-bit-mode
 * form, and data accesses that fault for the monitor's reasons (addresses the
 * shadow does not back).  Faults are raised in the guest; instructions it
 * does not model stop the VM with a diagnostic naming the EIP and bytes.
 */
#ifndef BT86_EMULATE_H
#define BT86_EMULATE_H

#include <Zydis/Zydis.h>

#include "vcpu.h"

void emu_step(struct vcpu *v);
/* The system instructions translated code leaves for with what the
 * translator decoded (TCX_SYSTEM), run without a decode: int n and int3
 * (vector given), iretd, sysenter, sysexit; `length` is the instruction's.
 * The same checks and effects as emu_step's. */
enum emu_sys { EMU_SYS_INT, EMU_SYS_IRET, EMU_SYS_SYSENTER, EMU_SYS_SYSEXIT };
void emu_system(struct vcpu *v, enum emu_sys op, unsigned vector, unsigned length);
/* CR3 := val, as mov to CR3 and a task switch load it: the monitor's TLB,
 * and with paging on the shadow's current space and the inline lookup
 * table follow. */
void emu_load_cr3(struct vcpu *v, uint32_t val);
/* invlpg of linear address `lin` at CPL 0: the monitor's TLB, the
 * shadow's page (shadow_invlpg) and the lookup entries of code on it. */
void emu_invlpg(struct vcpu *v, uint32_t lin);

/* A fault while the emulator runs a guest instruction natively in its bounce
 * thunk (run.c's signal handler calls this for faults at that address):
 * becomes the guest exception `vec`.  Does not return. */
_Noreturn void emu_bounce_fault(unsigned vec);
/* Whether host address rip lies in the bounce thunk. */
bool emu_in_bounce(const struct vcpu *v, uint64_t rip);

/* The virtual CPU model (cpu_model.c). */
void cpu_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
/* Whether `d` uses the x87, MMX or SSE state, so that CR0.TS (and CR0.EM)
 * make it fault: #NM, or #UD for MMX and SSE under EM (SDM vol. 3 2.5;
 * fences, prefetches, movnti, popcnt and crc32 are exempt). */
bool cpu_fpu_insn(const ZydisDecodedInstruction *d);
/* CR0 changed from `old`: when TS, EM or MP did, the lookup table goes
 * (blocks of the other XMODE_FPU_TRAP form are not to be reached). */
void emu_cr0_fpu_follow(struct vcpu *v, uint32_t old);
/* The model has neither BMI1 nor LZCNT, so F3 0F BC/BD (which Zydis decodes
 * as TZCNT/LZCNT) are BSF/BSR with an ignored prefix, as on the processors
 * it models and under QEMU.  For those, writes the same-length bytes with
 * each F3 replaced by a leading DS override (inert in a flat model) to out
 * and returns true; decoding out gives BSF/BSR. */
bool cpu_bitscan_without_rep(const ZydisDecodedInstruction *d, const uint8_t *bytes, uint8_t *out);
uint64_t cpu_rdtsc(struct vcpu *v);
/* false: the MSR does not exist (the caller raises #GP(0)). */
bool cpu_rdmsr(struct vcpu *v, uint32_t msr, uint64_t *val);
bool cpu_wrmsr(struct vcpu *v, uint32_t msr, uint64_t val);

#endif
