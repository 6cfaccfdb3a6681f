#include "ata.h"

#include <stddef.h>
#include <string.h>

#include "../snapshot/stream.h"

#define ATA_HEADS 16u  /* the logical CHS geometry IDENTIFY reports */
#define ATA_SPT 63u
#define ATA_ER_UNC 0x40
#define ATA_ER_DIAG_OK 0x01

static void ata_update_irq(struct ata_channel *c)
{
	bool level = c->pending && !(c->control & ATA_DC_NIEN);
	if (level != c->irq) {
		c->irq = level;
		c->set_irq(c->opaque, level);
	}
}

static void raise_irq(struct ata_channel *c)
{
	c->pending = true;
	ata_update_irq(c);
}

void ata_init(struct ata_channel *c, void (*set_irq)(void *, bool), void *opaque)
{
	memset(c, 0, sizeof *c);
	c->set_irq = set_irq;
	c->opaque = opaque;
	for (unsigned i = 0; i < 2; i++)
		c->drive[i].device = 0xA0 | (uint8_t)(i << 4);
}

/* The reset signature of an ATA (not packet) device. */
static void set_signature(struct ata_drive *d)
{
	d->device &= 0xF0;
	d->count = 1;
	d->lba_low = 1;
	d->lba_mid = 0;
	d->lba_high = 0;
}

void ata_attach(struct ata_channel *c, unsigned unit, struct disk *disk)
{
	struct ata_drive *d = &c->drive[unit];
	d->disk = disk;
	d->multiple = ATA_MAX_MULTIPLE; /* the power-on setting, QEMU's too */
	d->status = ATA_SR_DRDY | ATA_SR_DSC;
	d->error = ATA_ER_DIAG_OK;
	set_signature(d);
}

/* ATA strings: two characters a word, the first in the high byte, padded
 * with spaces. */
static void put_string(uint8_t *id, unsigned word, unsigned words, const char *s)
{
	size_t n = strlen(s);
	for (unsigned i = 0; i < words * 2; i++)
		id[word * 2 + (i ^ 1)] = (uint8_t)(i < n ? s[i] : ' ');
}

static void put_word(uint8_t *id, unsigned word, uint16_t v)
{
	id[word * 2] = (uint8_t)v;
	id[word * 2 + 1] = (uint8_t)(v >> 8);
}

static void identify(struct ata_channel *c, struct ata_drive *d)
{
	uint8_t *id = d->buf;
	uint64_t n = d->disk->sectors;
	uint64_t cyls = n / (ATA_HEADS * ATA_SPT);
	uint32_t lba28 = n > 0x0FFFFFFF ? 0x0FFFFFFF : (uint32_t)n;
	char serial[21];

	if (cyls > 16383)
		cyls = 16383;
	if (cyls == 0)
		cyls = 1;
	uint32_t chs = (uint32_t)cyls * ATA_HEADS * ATA_SPT;
	memset(id, 0, DISK_SECTOR);
	put_word(id, 0, 0x0040);                    /* fixed disk */
	put_word(id, 1, (uint16_t)cyls);
	put_word(id, 3, ATA_HEADS);
	put_word(id, 6, ATA_SPT);
	memcpy(serial, "BT86-0000", 10);
	serial[8] = (char)('1' + (d - c->drive));
	put_string(id, 10, 10, serial);
	put_string(id, 23, 4, "0.1.0");
	put_string(id, 27, 20, "BT86 HARDDISK");
	put_word(id, 47, 0x8000 | ATA_MAX_MULTIPLE);
	put_word(id, 49, 0x0200);                   /* LBA; no DMA */
	put_word(id, 51, 0x0200);
	put_word(id, 53, 0x0003);                   /* words 54-58 and 64-70 valid */
	put_word(id, 54, (uint16_t)cyls);
	put_word(id, 55, ATA_HEADS);
	put_word(id, 56, ATA_SPT);
	put_word(id, 57, (uint16_t)chs);
	put_word(id, 58, (uint16_t)(chs >> 16));
	if (d->multiple)
		put_word(id, 59, (uint16_t)(0x100 | d->multiple));
	put_word(id, 60, (uint16_t)lba28);
	put_word(id, 61, (uint16_t)(lba28 >> 16));
	put_word(id, 64, 0x0003);                   /* PIO modes 3 and 4 */
	for (unsigned w = 65; w <= 68; w++)
		put_word(id, w, 120);
	put_word(id, 80, 0x00F0);                   /* ATA-4 to ATA-7 */
	put_word(id, 82, 0x4020);                   /* write cache */
	put_word(id, 83, 0x7400);                   /* 48-bit, FLUSH CACHE (EXT) */
	put_word(id, 84, 0x4000);
	put_word(id, 85, 0x4020);
	put_word(id, 86, 0x3400);
	put_word(id, 87, 0x4000);
	for (unsigned w = 0; w < 4; w++)
		put_word(id, 100 + w, (uint16_t)(n >> (16 * w)));
	/* Integrity word: signature A5h, and a checksum making the 512 bytes
	 * sum to zero. */
	uint8_t sum = 0xA5;
	for (unsigned i = 0; i < 510; i++)
		sum = (uint8_t)(sum + id[i]);
	put_word(id, 255, (uint16_t)(0xA5 | (uint8_t)-sum << 8));
}

static uint64_t get_sector(const struct ata_drive *d)
{
	if (d->lba48)
		return (uint64_t)d->hob_lba_high << 40 | (uint64_t)d->hob_lba_mid << 32 |
		       (uint64_t)d->hob_lba_low << 24 | (uint32_t)d->lba_high << 16 | (uint32_t)d->lba_mid << 8 |
		       d->lba_low;
	if (d->device & 0x40)
		return (uint32_t)(d->device & 0x0F) << 24 | (uint32_t)d->lba_high << 16 |
		       (uint32_t)d->lba_mid << 8 | d->lba_low;
	uint32_t cyl = (uint32_t)d->lba_high << 8 | d->lba_mid;
	return ((uint64_t)cyl * ATA_HEADS + (d->device & 0x0F)) * ATA_SPT + d->lba_low - 1;
}

/* The task file follows the transfer, as QEMU's does: after each block it
 * addresses the next sector and counts the sectors left. */
static void set_sector(struct ata_drive *d, uint64_t lba)
{
	if (d->lba48) {
		d->hob_lba_high = (uint8_t)(lba >> 40);
		d->hob_lba_mid = (uint8_t)(lba >> 32);
		d->hob_lba_low = (uint8_t)(lba >> 24);
	} else if (d->device & 0x40) {
		d->device = (uint8_t)((d->device & 0xF0) | ((lba >> 24) & 0x0F));
	} else {
		uint32_t cyl = (uint32_t)(lba / (ATA_HEADS * ATA_SPT));
		uint32_t r = (uint32_t)(lba % (ATA_HEADS * ATA_SPT));
		d->device = (uint8_t)((d->device & 0xF0) | (r / ATA_SPT));
		d->lba_high = (uint8_t)(cyl >> 8);
		d->lba_mid = (uint8_t)cyl;
		d->lba_low = (uint8_t)(r % ATA_SPT + 1);
		return;
	}
	d->lba_high = (uint8_t)(lba >> 16);
	d->lba_mid = (uint8_t)(lba >> 8);
	d->lba_low = (uint8_t)lba;
}

static void command_done(struct ata_channel *c, struct ata_drive *d)
{
	d->status = ATA_SR_DRDY | ATA_SR_DSC;
	d->pos = d->len = 0;
	raise_irq(c);
}

static void command_error(struct ata_channel *c, struct ata_drive *d, uint8_t error)
{
	d->status = ATA_SR_DRDY | ATA_SR_ERR;
	d->error = error;
	d->pos = d->len = 0;
	raise_irq(c);
}

/* ATA requires IDNF for an address past the end; QEMU sets only ABRT
 * (docs/architecture.md lists the difference). */
static bool in_range(const struct ata_drive *d, uint64_t lba, unsigned n)
{
	uint64_t limit = d->lba48 ? d->disk->sectors : (d->disk->sectors < (1u << 28) ? d->disk->sectors : (1u << 28));
	return lba <= limit && n <= limit - lba;
}

static unsigned block_sectors(const struct ata_drive *d)
{
	return d->left < d->block ? d->left : d->block;
}

/* Moves n sectors between buf and the disk at d->lba and advances the
 * command past them; on failure ends the command with the error. */
static bool move_block(struct ata_channel *c, struct ata_drive *d, unsigned n)
{
	bool done;
	if (!in_range(d, d->lba, n)) {
		command_error(c, d, ATA_ER_IDNF | ATA_ER_ABRT);
		return false;
	}
	done = d->out ? disk_write(d->disk, d->lba, n, d->buf) : disk_read(d->disk, d->lba, n, d->buf);
	if (!done) {
		command_error(c, d, d->out ? ATA_ER_ABRT : ATA_ER_UNC);
		return false;
	}
	*(d->out ? &c->sectors_written : &c->sectors_read) += n;
	d->left -= n;
	d->lba += n;
	d->count = (uint8_t)d->left;
	set_sector(d, d->lba);
	return true;
}

/* PIO data-in: the next block into buf, DRQ and an interrupt. */
static void read_block(struct ata_channel *c, struct ata_drive *d)
{
	unsigned n = block_sectors(d);
	if (!move_block(c, d, n))
		return;
	d->pos = 0;
	d->len = n * DISK_SECTOR;
	d->status = ATA_SR_DRDY | ATA_SR_DSC | ATA_SR_DRQ;
	raise_irq(c);
}

/* PIO data-out: the host filled buf; write it, then ask for the next block
 * (DRQ) or end the command, each with an interrupt. */
static void write_block(struct ata_channel *c, struct ata_drive *d)
{
	if (!move_block(c, d, d->len / DISK_SECTOR))
		return;
	if (!d->left) {
		command_done(c, d);
		return;
	}
	d->pos = 0;
	d->len = block_sectors(d) * DISK_SECTOR;
	raise_irq(c);
}

static void block_done(struct ata_channel *c, struct ata_drive *d)
{
	if (d->out)
		write_block(c, d);
	else if (d->left)
		read_block(c, d);
	else
		command_done(c, d);
}

/* READ/WRITE SECTORS and MULTIPLE, 28- or 48-bit. */
static void start_transfer(struct ata_channel *c, struct ata_drive *d, bool out, bool lba48, bool multiple)
{
	if (multiple && !d->multiple) {
		command_error(c, d, ATA_ER_ABRT);
		return;
	}
	d->out = out;
	d->lba48 = lba48;
	d->block = multiple ? d->multiple : 1;
	d->lba = get_sector(d);
	d->left = lba48 ? ((uint32_t)d->hob_count << 8 | d->count) : d->count;
	if (!d->left)
		d->left = lba48 ? 65536 : 256;
	if (!out) {
		read_block(c, d);
		return;
	}
	/* The first block of a write is asked for without an interrupt. */
	d->pos = 0;
	d->len = block_sectors(d) * DISK_SECTOR;
	d->status = ATA_SR_DRDY | ATA_SR_DSC | ATA_SR_DRQ;
}

static void set_features(struct ata_channel *c, struct ata_drive *d)
{
	switch (d->feature) {
	case 0x03: /* transfer mode: PIO default or PIO flow control modes only */
		if (d->count <= 0x01 || (d->count >= 0x08 && d->count <= 0x0C))
			break;
		command_error(c, d, ATA_ER_ABRT);
		return;
	case 0x02: case 0x82: /* write cache on/off: writes reach the file either way */
	case 0x55: case 0xAA: /* read look-ahead */
	case 0x66: case 0xCC: /* reverting to power-on defaults */
		break;
	default:
		command_error(c, d, ATA_ER_ABRT);
		return;
	}
	command_done(c, d);
}

static void execute(struct ata_channel *c, uint8_t cmd)
{
	struct ata_drive *d = &c->drive[c->selected];

	if (!d->disk || (d->status & (ATA_SR_BSY | ATA_SR_DRQ)))
		return; /* nobody answers, or the drive is mid-transfer */
	d->error = 0;
	d->lba48 = false;
	d->pos = d->len = 0;
	switch (cmd) {
	case 0xEC: /* IDENTIFY DEVICE */
		identify(c, d);
		d->out = false;
		d->left = 0;
		d->len = DISK_SECTOR;
		d->status = ATA_SR_DRDY | ATA_SR_DSC | ATA_SR_DRQ;
		raise_irq(c);
		break;
	case 0x20: case 0x21: start_transfer(c, d, false, false, false); break;
	case 0x24: start_transfer(c, d, false, true, false); break;
	case 0xC4: start_transfer(c, d, false, false, true); break;
	case 0x29: start_transfer(c, d, false, true, true); break;
	case 0x30: case 0x31: start_transfer(c, d, true, false, false); break;
	case 0x34: start_transfer(c, d, true, true, false); break;
	case 0xC5: start_transfer(c, d, true, false, true); break;
	case 0x39: start_transfer(c, d, true, true, true); break;
	case 0x40: case 0x41: case 0x42: { /* READ VERIFY SECTORS (EXT) */
		d->lba48 = cmd == 0x42;
		unsigned n = d->lba48 ? ((unsigned)d->hob_count << 8 | d->count) : d->count;
		if (!n)
			n = d->lba48 ? 65536 : 256;
		if (in_range(d, get_sector(d), n))
			command_done(c, d);
		else
			command_error(c, d, ATA_ER_IDNF | ATA_ER_ABRT);
		break;
	}
	case 0xC6: /* SET MULTIPLE MODE: a power of two up to the maximum, 0 disables */
		if (d->count > ATA_MAX_MULTIPLE || (d->count & (d->count - 1))) {
			command_error(c, d, ATA_ER_ABRT);
		} else {
			d->multiple = d->count;
			command_done(c, d);
		}
		break;
	case 0xE7: case 0xEA: /* FLUSH CACHE (EXT) */
		if (disk_flush(d->disk))
			command_done(c, d);
		else
			command_error(c, d, ATA_ER_ABRT);
		break;
	case 0xEF:
		set_features(c, d);
		break;
	case 0xE5: case 0x98: /* CHECK POWER MODE: active or idle */
		d->count = 0xFF;
		command_done(c, d);
		break;
	case 0x90: /* EXECUTE DEVICE DIAGNOSTIC: both drives pass */
		for (unsigned i = 0; i < 2; i++) {
			set_signature(&c->drive[i]);
			c->drive[i].error = ATA_ER_DIAG_OK;
		}
		command_done(c, d);
		break;
	case 0x91:                                  /* INITIALIZE DEVICE PARAMETERS */
	case 0xE0: case 0xE1: case 0xE2: case 0xE3: /* STANDBY/IDLE (IMMEDIATE) */
	case 0x94: case 0x95: case 0x96: case 0x97: /* their old opcodes */
		command_done(c, d);
		break;
	default:
		if ((cmd & 0xF0) == 0x10 || (cmd & 0xF0) == 0x70) { /* RECALIBRATE, SEEK */
			command_done(c, d);
			break;
		}
		command_error(c, d, ATA_ER_ABRT);
		break;
	}
}

static struct ata_drive *transferring(struct ata_channel *c)
{
	struct ata_drive *d = &c->drive[c->selected];
	return d->disk && d->pos < d->len ? d : NULL;
}

uint32_t ata_read(void *dev, uint16_t offset, unsigned size)
{
	struct ata_channel *c = dev;
	struct ata_drive *d = &c->drive[c->selected];
	bool hob = c->control & ATA_DC_HOB;

	if (offset == ATA_DATA) {
		/* Reads during a data-out transfer are indeterminate: zero. */
		struct ata_drive *t = transferring(c);
		uint32_t v = 0;
		if (!t || t->out)
			return 0;
		for (unsigned i = 0; i < size && t->pos < t->len; i++)
			v |= (uint32_t)t->buf[t->pos++] << (8 * i);
		if (t->pos == t->len)
			block_done(c, t);
		return v;
	}
	if (!d->disk)
		return offset == ATA_DEVICE && (c->drive[0].disk || c->drive[1].disk) ? d->device : 0;
	switch (offset) {
	case ATA_ERROR: return hob ? d->hob_feature : d->error;
	case ATA_COUNT: return hob ? d->hob_count : d->count;
	case ATA_LBA_LOW: return hob ? d->hob_lba_low : d->lba_low;
	case ATA_LBA_MID: return hob ? d->hob_lba_mid : d->lba_mid;
	case ATA_LBA_HIGH: return hob ? d->hob_lba_high : d->lba_high;
	case ATA_DEVICE: return d->device;
	default:
		c->pending = false;
		ata_update_irq(c);
		return d->status;
	}
}

void ata_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	struct ata_channel *c = dev;
	uint8_t b = (uint8_t)val;

	if (offset == ATA_DATA) {
		struct ata_drive *t = transferring(c);
		if (!t || !t->out)
			return;
		for (unsigned i = 0; i < size && t->pos < t->len; i++)
			t->buf[t->pos++] = (uint8_t)(val >> (8 * i));
		if (t->pos == t->len)
			block_done(c, t);
		return;
	}
	if (offset != ATA_DEVICE)
		c->control &= (uint8_t)~ATA_DC_HOB;
	for (unsigned i = 0; i < 2; i++) {
		struct ata_drive *d = &c->drive[i];
		switch (offset) {
		case ATA_ERROR: d->hob_feature = d->feature; d->feature = b; break;
		case ATA_COUNT: d->hob_count = d->count; d->count = b; break;
		case ATA_LBA_LOW: d->hob_lba_low = d->lba_low; d->lba_low = b; break;
		case ATA_LBA_MID: d->hob_lba_mid = d->lba_mid; d->lba_mid = b; break;
		case ATA_LBA_HIGH: d->hob_lba_high = d->lba_high; d->lba_high = b; break;
		case ATA_DEVICE: d->device = (uint8_t)(b | 0xA0); break;
		default: break;
		}
	}
	if (offset == ATA_DEVICE) {
		c->selected = (b >> 4) & 1;
	} else if (offset == ATA_STATUS) {
		c->pending = false;
		ata_update_irq(c);
		execute(c, b);
	}
}

uint32_t ata_control_read(void *dev, uint16_t offset, unsigned size)
{
	struct ata_channel *c = dev;
	const struct ata_drive *d = &c->drive[c->selected];
	(void)offset;
	(void)size;
	return d->disk ? d->status : 0;
}

/* Device control: nIEN gates the line; SRST held high resets both drives
 * (BSY), and its release leaves them ready with the reset signature. */
void ata_control_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	struct ata_channel *c = dev;
	bool was = c->control & ATA_DC_SRST, now = val & ATA_DC_SRST;
	(void)offset;
	(void)size;
	for (unsigned i = 0; i < 2 && was != now; i++) {
		struct ata_drive *d = &c->drive[i];
		d->pos = d->len = 0;
		d->error = ATA_ER_DIAG_OK;
		if (now) {
			d->status = ATA_SR_BSY | ATA_SR_DSC;
		} else {
			d->status = d->disk ? ATA_SR_DRDY | ATA_SR_DSC : 0;
			set_signature(d);
		}
	}
	if (was != now)
		c->pending = false;
	c->control = (uint8_t)val;
	ata_update_irq(c);
}

unsigned ata_read_string(void *dev, uint16_t offset, unsigned size, void *buf, unsigned count)
{
	struct ata_channel *c = dev;
	struct ata_drive *t = transferring(c);

	if (offset != ATA_DATA || !t || t->out)
		return 0;
	unsigned n = (t->len - t->pos) / size;
	if (n > count)
		n = count;
	memcpy(buf, t->buf + t->pos, (size_t)n * size);
	t->pos += n * size;
	if (t->pos == t->len)
		block_done(c, t);
	return n;
}

unsigned ata_write_string(void *dev, uint16_t offset, unsigned size, const void *buf, unsigned count)
{
	struct ata_channel *c = dev;
	struct ata_drive *t = transferring(c);

	if (offset != ATA_DATA || !t || !t->out)
		return 0;
	unsigned n = (t->len - t->pos) / size;
	if (n > count)
		n = count;
	memcpy(t->buf + t->pos, buf, (size_t)n * size);
	t->pos += n * size;
	if (t->pos == t->len)
		block_done(c, t);
	return n;
}

void ata_save(const struct ata_channel *c, struct snap *s)
{
	for (unsigned i = 0; i < 2; i++)
		snap_put(s, &c->drive[i], offsetof(struct ata_drive, disk));
	snap_put(s, &c->selected, offsetof(struct ata_channel, set_irq) - offsetof(struct ata_channel, selected));
}

bool ata_load(struct ata_channel *c, struct snap *s)
{
	for (unsigned i = 0; i < 2; i++)
		if (!snap_get(s, &c->drive[i], offsetof(struct ata_drive, disk)))
			return false;
	if (!snap_get(s, &c->selected, offsetof(struct ata_channel, set_irq) - offsetof(struct ata_channel, selected)))
		return false;
	for (unsigned i = 0; i < 2; i++) {
		const struct ata_drive *d = &c->drive[i];
		if (d->multiple > ATA_MAX_MULTIPLE || d->block > ATA_MAX_MULTIPLE || d->len > sizeof d->buf ||
		    d->pos > d->len)
			return snap_bad(s, "the ATA drives' state");
	}
	return c->selected < 2 ? true : snap_bad(s, "the ATA channel's state");
}
