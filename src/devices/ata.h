/*
 * One ATA channel with up to two hard disks (master and slave) and PIO
 * transfers, as the legacy IDE interface of a PC presents them: the command
 * block (data, error/features, sector count, LBA low/mid/high, device,
 * status/command) and the control block (alternate status/device control),
 * one interrupt line.
 *
 * Commands: IDENTIFY DEVICE; READ/WRITE SECTORS and MULTIPLE, 28- and
 * 48-bit; SET MULTIPLE MODE; FLUSH CACHE (EXT); SET FEATURES; INITIALIZE
 * DEVICE PARAMETERS; READ VERIFY; SEEK; RECALIBRATE; CHECK POWER MODE and
 * the idle/standby family; EXECUTE DEVICE DIAGNOSTIC.  Anything else is
 * aborted (ERR, ABRT), as a drive does with a command it lacks.  No DMA.
 *
 * Invariants:
 *  - Writes to the command block reach both drives' task files (the
 *    registers are shadowed in each drive); reads and commands go to the
 *    selected drive.  An absent drive reads as zero, like QEMU's.
 *  - DRQ is set exactly while pos < len: the data port moves bytes of buf,
 *    and the end of a block starts the next one or ends the command.
 *  - The interrupt line is derived in one place (ata_update_irq) from the
 *    pending flag and nIEN; a status read or a command write clears it.
 */
#ifndef BT86_ATA_H
#define BT86_ATA_H

#include <stdbool.h>
#include <stdint.h>

#include "disk.h"

#define ATA_MAX_MULTIPLE 16u /* sectors per DRQ block that SET MULTIPLE accepts */

/* Command block offsets; the control block is its own one-port range. */
enum ata_reg { ATA_DATA, ATA_ERROR, ATA_COUNT, ATA_LBA_LOW, ATA_LBA_MID, ATA_LBA_HIGH, ATA_DEVICE, ATA_STATUS };

#define ATA_SR_BSY 0x80
#define ATA_SR_DRDY 0x40
#define ATA_SR_DSC 0x10
#define ATA_SR_DRQ 0x08
#define ATA_SR_ERR 0x01
#define ATA_ER_IDNF 0x10
#define ATA_ER_ABRT 0x04
#define ATA_DC_NIEN 0x02
#define ATA_DC_SRST 0x04
#define ATA_DC_HOB 0x80

struct ata_drive {
	uint8_t status, error;
	/* task file, current and previous ("high order byte") values */
	uint8_t feature, count, lba_low, lba_mid, lba_high;
	uint8_t hob_feature, hob_count, hob_lba_low, hob_lba_mid, hob_lba_high;
	uint8_t device;
	unsigned multiple;      /* SET MULTIPLE's block size; 0: disabled */
	/* the PIO command in progress */
	bool out, lba48;
	uint64_t lba;           /* the next sector to read into buf, or to write buf to */
	uint32_t left;          /* sectors of the command not yet read into buf, or not yet written */
	unsigned block;         /* sectors per DRQ block */
	unsigned pos, len;      /* data-port position in buf */
	uint8_t buf[ATA_MAX_MULTIPLE * DISK_SECTOR];
	/* Wiring, not state: a snapshot saves the fields above. */
	struct disk *disk;      /* NULL: nothing attached here */
};

struct ata_channel {
	struct ata_drive drive[2];
	unsigned selected;
	uint8_t control;        /* device control: nIEN, SRST, HOB */
	bool pending;           /* the drives' interrupt request */
	bool irq;               /* the line as last derived */
	uint64_t sectors_read, sectors_written;
	/* Wiring, not state: a snapshot saves the fields above. */
	void (*set_irq)(void *opaque, bool level);
	void *opaque;
};

void ata_init(struct ata_channel *c, void (*set_irq)(void *, bool), void *opaque);
/* Attaches an open disk as drive 0 (master) or 1 (slave). */
void ata_attach(struct ata_channel *c, unsigned unit, struct disk *disk);
uint32_t ata_read(void *dev, uint16_t offset, unsigned size);
void ata_write(void *dev, uint16_t offset, unsigned size, uint32_t val);
uint32_t ata_control_read(void *dev, uint16_t offset, unsigned size);
void ata_control_write(void *dev, uint16_t offset, unsigned size, uint32_t val);
/* rep ins/outs on the data port: moves up to `count` items of `size`
 * bytes at once, stopping at the end of the current DRQ block; returns how
 * many were moved (0 when the data port is not the one addressed). */
unsigned ata_read_string(void *dev, uint16_t offset, unsigned size, void *buf, unsigned count);
unsigned ata_write_string(void *dev, uint16_t offset, unsigned size, const void *buf, unsigned count);

/* The snapshot (snapshot.h): the state fields, and on load the checks of
 * what this device's code relies on.  The disks themselves stay attached. */
struct snap;
void ata_save(const struct ata_channel *c, struct snap *s);
bool ata_load(struct ata_channel *c, struct snap *s);

#endif
