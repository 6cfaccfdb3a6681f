/*
 * Protected-mode segmentation: descriptor fetch from the GDT/LDT and segment
 * register loads with the checks the SDM (vol. 3, ch. 5) prescribes.
 *
 * Translated code runs with CS, DS, ES and SS flat (base 0) and 32-bit; FS
 * and GS may have any base, which hot->fs_base and hot->gs_base mirror.
 * While CS, DS, ES or SS has another base, CS or SS is 16-bit, or the CPU
 * is in real mode, the run loop has the emulator run every instruction
 * (vcpu_interpreted).  In real mode a load sets the selector and a base of
 * sixteen times it, and leaves limit and attributes alone.
 *
 * A load of ES, DS or FS at CPL 0 or from the GDT also records, in the hot
 * state, the selector, where its descriptor lies, the descriptor's bytes
 * and the base (one record for ES and for DS, the last two for FS, whose
 * kernel and user values alternate in Linux).  Ring-0 translated code
 * repeating a recorded load of an unchanged descriptor sets the selector
 * (and the FS base) itself: the result would be identical (the same
 * checks at CPL 0 or at lower privilege before, the same descriptor, A
 * already set; a null FS needs no descriptor).
 */
#ifndef BT86_SEGMENT_H
#define BT86_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "vcpu.h"

/* Reads the 8-byte descriptor for `sel`; false when it lies outside the
 * table (the caller raises #GP(sel)). */
bool seg_read_descriptor(struct vcpu *v, uint16_t sel, uint32_t *lo, uint32_t *hi);

/* Decodes a descriptor into a segment cache (selector not set). */
void seg_decode(uint32_t lo, uint32_t hi, struct seg_cache *c);

/* Loads a data or stack segment register (not CS) with full checks. */
void seg_load(struct vcpu *v, enum sreg s, uint16_t sel);
/* A task switch's load of segment register `s` from the new TSS (SDM vol.
 * 3 7.3, table 7-1): CS first, which makes its RPL the CPL, then the
 * others under that CPL; what will not do raises #TS(sel), what is not
 * present #NP (#SS for SS). */
void seg_load_task(struct vcpu *v, enum sreg s, uint16_t sel);

/* Loads CS for a far transfer at the same privilege level; raises #GP/#NP. */
void seg_load_cs(struct vcpu *v, uint16_t sel, unsigned new_cpl);
/* The same with its descriptor already read and decoded (`sel` not null,
 * inside its table; `hi` its high word, for the accessed bit), as exception
 * delivery has it. */
void seg_load_cs_decoded(struct vcpu *v, uint16_t sel, unsigned new_cpl, const struct seg_cache *desc, uint32_t hi);

/* Checks `sel` as a stack segment for privilege `cpl` (SDM: RPL = DPL =
 * cpl, writable data, present) and decodes it into *c; returns 0 or the
 * exception vector (#TS, #SS) to raise with error code sel & ~3. */
unsigned seg_check_stack(struct vcpu *v, uint16_t sel, unsigned cpl, struct seg_cache *c);
/* Installs an already-checked cache into a segment register. */
void seg_set(struct vcpu *v, enum sreg s, uint16_t sel, const struct seg_cache *c);
/* On a return to an outer level: data segments the new CPL may not use
 * become null (SDM IRET/RET). */
void seg_null_inaccessible(struct vcpu *v);

/* Forgets the recorded loads (the GDT moved: lgdt). */
void seg_reload_disarm(struct vcpu *v);
/* After translated code ran: ES, DS and FS as it left them (repeated
 * recorded loads) in seg[] too. */
void seg_sync_reloads(struct vcpu *v);
/* SYSENTER and SYSEXIT (SDM vol. 2B): CPL becomes `cpl`, CS the flat code
 * segment `cs` | cpl and SS the flat data segment after it, of that DPL,
 * without reading a descriptor. */
void seg_set_fast_system(struct vcpu *v, uint16_t cs, unsigned cpl);
/* Sets a segment register without checks (reset, boot protocol). */
void seg_set_flat(struct vcpu *v, enum sreg s, uint16_t sel, bool code);

#endif
