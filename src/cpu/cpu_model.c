/*
 * The virtual CPU model the guest sees through CPUID, RDTSC and the MSRs.
 *
 * A family-6 IA-32 processor with FPU, PSE, TSC, MSR, PAE, CX8, SEP, PGE,
 * CMOV, CLFSH, MMX, FXSR, SSE, SSE2, SSE3, SSSE3, SSE4.1/4.2, POPCNT, SMEP,
 * SMAP, UMIP, RDTSCP and NX.  The instructions of the computational
 * features run natively in translated code, with identical results in
 * 64-bit mode; SYSENTER and SYSEXIT (with their three MSRs) and RDTSCP
 * (with IA32_TSC_AUX) are emulated (emulate.c), CR4.UMIP keeps SGDT, SIDT,
 * SLDT, SMSW and STR from rings 1-3 there, CR4.SMEP keeps rings 0-2 from
 * fetching user pages and CR4.SMAP from their data but for explicit
 * accesses with EFLAGS.AC set (vmem.c, run.c).  IA32_EFER holds NXE alone
 * (no SYSCALL, no long mode), which makes bit 63 of a PAE entry XD.
 * MAXPHYADDR is 32 (leaf 0x80000008; QEMU's qemu32 has no such leaf, hence
 * 36): guest RAM ends below 4 GiB, so a physical address bit above 31 in
 * a paging entry is a reserved bit, and so is bit 63 while NXE is clear.
 * Hidden: SYSCALL (an AMD-only instruction in 32-bit mode), long mode,
 * XSAVE/OSXSAVE/AVX (the monitor switches only fxsave-sized state), VMX,
 * MTRR, MCE/MCA.  The local APIC is present (APIC_BASE MSR 0x1B, at
 * 0xFEE00000).
 *
 * Leaf 7 names SMEP, SMAP, UMIP and IA32_ARCH_CAPABILITIES, which
 * says what the processor underneath is not vulnerable to (this host is an
 * AMD EPYC: not to Meltdown, MDS, TAA, the MMIO stale-data family, GDS or
 * RFDS; speculative store bypass is not claimed).  Linux then skips the
 * VERW buffer clearing it would otherwise do on every return to user mode.
 * Leaves 2 to 6 are empty (no cache or power descriptions).
 */
#include <string.h>
#include <x86intrin.h>

#include <Zydis/Zydis.h>

#include "emulate.h"

#include "../cache/tc.h"
#include "../devices/board.h"
#include "../mem/shadow.h"
#include "../mem/vmem.h"

#define CPUID_MAX_BASIC 0x7u
/* IA32_ARCH_CAPABILITIES: RDCL_NO, MDS_NO, IF_PSCHANGE_MC_NO, TAA_NO,
 * SBDR_SSDP_NO, FBSDP_NO, PSDP_NO, GDS_NO, RFDS_NO. */
#define CPU_ARCH_CAPABILITIES ((1u << 0) | (1u << 5) | (1u << 6) | (1u << 8) | (1u << 13) | (1u << 14) | \
			       (1u << 15) | (1u << 26) | (1u << 27))
#define CPUID_MAX_EXT 0x80000008u

void cpu_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
	static const char brand[48] = "bt86 virtual CPU";
	memset(out, 0, 4 * sizeof out[0]);
	switch (leaf) {
	case 0:
		out[0] = CPUID_MAX_BASIC;
		memcpy(&out[1], "Genu", 4); /* ebx, edx, ecx spell GenuineIntel */
		memcpy(&out[3], "ineI", 4);
		memcpy(&out[2], "ntel", 4);
		break;
	case 1:
		out[0] = 0x000006F1;       /* family 6, model 15, stepping 1 */
		out[1] = 8u << 8;          /* CLFLUSH line 64 bytes, APIC ID 0 */
		out[2] = (1u << 0) | (1u << 9) | (1u << 19) | (1u << 20) | (1u << 23);
		out[3] = (1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) | (1u << 9) |
			 (1u << 11) | (1u << 13) | (1u << 15) | (1u << 19) | (1u << 23) | (1u << 24) | (1u << 25) |
			 (1u << 26);
		break;
	case 7:
		if (subleaf == 0) {
			out[1] = (1u << 7) | (1u << 20); /* SMEP, SMAP */
			out[2] = 1u << 2;  /* UMIP */
			out[3] = 1u << 29; /* IA32_ARCH_CAPABILITIES */
		}
		break;
	case 0x80000000u:
		out[0] = CPUID_MAX_EXT;
		break;
	case 0x80000001u:
		out[3] = (1u << 20) | (1u << 27); /* NX, RDTSCP */
		break;
	case 0x80000002u:
	case 0x80000003u:
	case 0x80000004u:
		memcpy(out, brand + 16 * (leaf - 0x80000002u), 16);
		break;
	case 0x80000008u:
		out[0] = 0x2020; /* 32 physical and 32 linear address bits */
		break;
	default:
		/* Leaves past the maximum return the highest basic leaf, as
		 * Intel processors do. */
		if (leaf > CPUID_MAX_BASIC && leaf < 0x80000000u)
			cpu_cpuid(CPUID_MAX_BASIC, 0, out);
		break;
	}
}

bool cpu_fpu_insn(const ZydisDecodedInstruction *d)
{
	switch (d->mnemonic) {
	case ZYDIS_MNEMONIC_SFENCE:
	case ZYDIS_MNEMONIC_LFENCE:
	case ZYDIS_MNEMONIC_MFENCE:
	case ZYDIS_MNEMONIC_MOVNTI:
	case ZYDIS_MNEMONIC_POPCNT:
	case ZYDIS_MNEMONIC_CRC32:
		return false; /* SSE-era instructions on integer state */
	default:
		break;
	}
	if (d->meta.category == ZYDIS_CATEGORY_PREFETCH)
		return false;
	switch (d->meta.isa_ext) {
	case ZYDIS_ISA_EXT_X87:
	case ZYDIS_ISA_EXT_MMX:
	case ZYDIS_ISA_EXT_SSE:
	case ZYDIS_ISA_EXT_SSE2:
	case ZYDIS_ISA_EXT_SSE3:
	case ZYDIS_ISA_EXT_SSSE3:
	case ZYDIS_ISA_EXT_SSE4:
	case ZYDIS_ISA_EXT_AES:
	case ZYDIS_ISA_EXT_PCLMULQDQ:
		return true;
	default:
		return false;
	}
}

bool cpu_bitscan_without_rep(const ZydisDecodedInstruction *d, const uint8_t *bytes, uint8_t *out)
{
	unsigned n = d->raw.prefix_count, f3 = 0, k = 0;

	if (d->mnemonic != ZYDIS_MNEMONIC_TZCNT && d->mnemonic != ZYDIS_MNEMONIC_LZCNT)
		return false;
	for (unsigned i = 0; i < n; i++)
		f3 += bytes[i] == 0xF3;
	/* Each F3 becomes a DS override placed first, so that any other
	 * segment override still comes last and wins. */
	for (; k < f3; k++)
		out[k] = 0x3E;
	for (unsigned i = 0; i < d->length; i++)
		if (i >= n || bytes[i] != 0xF3)
			out[k++] = bytes[i];
	return true;
}

/* The guest's TSC is the host's plus an offset that stays 0 until the
 * guest writes IA32_TIME_STAMP_COUNTER; while it is 0 translated code runs
 * rdtsc natively (XMODE_TSC_NATIVE). */
uint64_t cpu_rdtsc(struct vcpu *v)
{
	return __rdtsc() + v->tsc_virtual;
}

bool cpu_rdmsr(struct vcpu *v, uint32_t msr, uint64_t *val)
{
	switch (msr) {
	case 0x10: /* IA32_TIME_STAMP_COUNTER */
		*val = cpu_rdtsc(v);
		return true;
	case 0x1B: /* IA32_APIC_BASE: the bootstrap processor, enabled */
		*val = LAPIC_DEFAULT_BASE | 0x100 | (v->board->lapic.global_enable ? 0x800 : 0);
		return true;
	case 0x1A0: /* IA32_MISC_ENABLE: fast strings on, as QEMU reports */
		*val = 1;
		return true;
	case 0x10A: /* IA32_ARCH_CAPABILITIES */
		*val = CPU_ARCH_CAPABILITIES;
		return true;
	case 0x174: /* IA32_SYSENTER_CS */
		*val = v->sysenter_cs;
		return true;
	case 0x175: /* IA32_SYSENTER_ESP */
		*val = v->sysenter_esp;
		return true;
	case 0x176: /* IA32_SYSENTER_EIP */
		*val = v->sysenter_eip;
		return true;
	case 0xC0000080u: /* IA32_EFER */
		*val = v->efer;
		return true;
	case 0xC0000103u: /* IA32_TSC_AUX */
		*val = v->hot->tsc_aux;
		return true;
	case 0x17: /* IA32_PLATFORM_ID */
	case 0x8B: /* IA32_BIOS_SIGN_ID */
		*val = 0;
		return true;
	default:
		return false;
	}
}

bool cpu_wrmsr(struct vcpu *v, uint32_t msr, uint64_t val)
{
	switch (msr) {
	case 0x10:
		v->tsc_virtual += val - cpu_rdtsc(v);
		return true; /* the mode changes, so blocks built for a native rdtsc are not reused */
	case 0x8B:
	case 0x1A0:
		return true;
	case 0xC0000080u:
		/* NXE alone: SCE, LME and the rest are reserved here (the SDM's
		 * #GP; QEMU 7.2 ignores them). */
		if (val & ~(uint64_t)EFER_NXE)
			return false;
		if ((v->efer ^ val) & EFER_NXE) {
			/* Bit 63 of a PAE entry changes meaning: every cached
			 * translation and fetch check goes. */
			v->efer = (uint32_t)val;
			v->shadow->nxe = vmem_nxe(v);
			vmem_tlb_flush(v);
			if (v->cr0 & CR0_PG) {
				shadow_flush(v->shadow, false, SHFLUSH_MODE);
				tc_jtab_clear(v->tc);
			}
		}
		return true;
	case 0xC0000103u: /* bits 63:32 reserved */
		if (val >> 32)
			return false;
		v->hot->tsc_aux = (uint32_t)val;
		return true;
	case 0x174:
		v->sysenter_cs = (uint16_t)val;
		return true;
	case 0x175:
		v->sysenter_esp = (uint32_t)val;
		return true;
	case 0x176:
		v->sysenter_eip = (uint32_t)val;
		return true;
	case 0x1B:
		/* The base stays put (relocating it is not modelled); the
		 * global enable bit is honoured. */
		if ((val & 0xFFFFF000u) != LAPIC_DEFAULT_BASE)
			return false;
		v->board->lapic.global_enable = val & 0x800;
		v->board->lapic.update(v->board->lapic.opaque);
		return true;
	default:
		return false;
	}
}
