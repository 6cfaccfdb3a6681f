/*
 * Protected-mode segmentation: descriptor fetch from the GDT/LDT and segment
 * register loads with the checks the SDM (vol. 3, ch. 5) prescribes.
 *
 * Translated code runs with CS, DS, ES and SS flat (base 0); FS and GS may
 * have any base, which hot->fs_base and hot->gs_base mirror.  A load that
 * would give CS, DS, ES or SS a non-zero base stops the VM with a diagnostic
 * rather than run the guest wrongly.
 *
 * A load of ES or DS from the GDT also records, in the hot state, the
 * selector, where its descriptor lies and the descriptor's bytes: ring-0
 * translated code skips a reload of the same selector whose descriptor is
 * unchanged (the result would be identical: same checks at CPL 0 or lower
 * privilege before, same descriptor, A already set).  For FS the last two
 * loads are kept with their bases, and ring-0 code repeating either one
 * sets the selector and base itself.
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

/* Loads CS for a far transfer at the same privilege level; raises #GP/#NP. */
void seg_load_cs(struct vcpu *v, uint16_t sel, unsigned new_cpl);

/* Checks `sel` as a stack segment for privilege `cpl` (SDM: RPL = DPL =
 * cpl, writable data, present) and decodes it into *c; returns 0 or the
 * exception vector (#TS, #SS) to raise with error code sel & ~3. */
unsigned seg_check_stack(struct vcpu *v, uint16_t sel, unsigned cpl, struct seg_cache *c);
/* Installs an already-checked cache into a segment register. */
void seg_set(struct vcpu *v, enum sreg s, uint16_t sel, const struct seg_cache *c);
/* On a return to an outer level: data segments the new CPL may not use
 * become null (SDM IRET/RET). */
void seg_null_inaccessible(struct vcpu *v);

/* Forgets what ES, DS and FS reloads may skip (the GDT moved: lgdt). */
void seg_reload_disarm(struct vcpu *v);
/* After translated code ran: FS as it left it (a repeated load of one of
 * the last two FS selectors) in seg[S_FS] too. */
void seg_sync_fs(struct vcpu *v);
/* Sets a segment register without checks (reset, boot protocol). */
void seg_set_flat(struct vcpu *v, enum sreg s, uint16_t sel, bool code);

#endif
