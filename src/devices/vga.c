#include "vga.h"

#include <stddef.h>
#include <stdbool.h>
#include <string.h>

#include "../mem/gmem.h"
#include "../snapshot/stream.h"

/* Ports as offsets from VGA_PORT_BASE. */
enum {
	MONO_CRTC_INDEX = 0x04, /* 0x3B4 */
	MONO_CRTC_DATA = 0x05,
	MONO_STATUS = 0x0A,     /* 0x3BA: input status 1 / feature control */
	ATTR_INDEX = 0x10,      /* 0x3C0 */
	ATTR_DATA_READ = 0x11,
	MISC_WRITE = 0x12,      /* 0x3C2; reads give input status 0 */
	SEQ_INDEX = 0x14,
	SEQ_DATA = 0x15,
	PEL_MASK = 0x16,
	DAC_READ_INDEX = 0x17,  /* reads give the DAC state */
	DAC_WRITE_INDEX = 0x18,
	DAC_DATA = 0x19,
	FEATURE_READ = 0x1A,    /* 0x3CA */
	MISC_READ = 0x1C,       /* 0x3CC */
	GC_INDEX = 0x1E,
	GC_DATA = 0x1F,
	COLOUR_CRTC_INDEX = 0x24, /* 0x3D4 */
	COLOUR_CRTC_DATA = 0x25,
	COLOUR_STATUS = 0x2A,   /* 0x3DA */
};

#define MISC_COLOUR 0x01
#define ST01_RETRACE 0x09       /* display disabled | vertical retrace */
#define CRTC_OVERFLOW 0x07
#define CRTC_V_SYNC_END 0x11
#define CRTC_LOCK_0_7 0x80      /* in V_SYNC_END: registers 0-7 read-only */
#define ATTR_REGS 21

/* Writable bits of each register. */
static const uint8_t seq_mask[8] = {0x03, 0x3D, 0x0F, 0x3F, 0x0E, 0x00, 0x00, 0xFF};
static const uint8_t gc_mask[16] = {0x0F, 0x0F, 0x0F, 0x1F, 0x03, 0x7B, 0x0F, 0x0F, 0xFF};

/* Mode 3 as the VGA BIOS programs it. */
static const uint8_t mode3_seq[5] = {0x03, 0x00, 0x03, 0x00, 0x02};
static const uint8_t mode3_gc[9] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E, 0x0F, 0xFF};
static const uint8_t mode3_crtc[25] = {0x5F, 0x4F, 0x50, 0x82, 0x55, 0x81, 0xBF, 0x1F, 0x00,
				       0x4F, 0x0D, 0x0E, 0x00, 0x00, 0x00, 0x00, 0x9C, 0x8E,
				       0x8F, 0x28, 0x1F, 0x96, 0xB9, 0xA3, 0xFF};
static const uint8_t mode3_attr[ATTR_REGS] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14,
					      0x07, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D,
					      0x3E, 0x3F, 0x0C, 0x00, 0x0F, 0x08, 0x00};

void vga_init(struct vga *g, struct gmem *mem)
{
	memset(g, 0, sizeof *g);
	g->misc = 0x67;
	g->pel_mask = 0xFF;
	memcpy(g->seq, mode3_seq, sizeof mode3_seq);
	memcpy(g->gc, mode3_gc, sizeof mode3_gc);
	memcpy(g->crtc, mode3_crtc, sizeof mode3_crtc);
	memcpy(g->attr, mode3_attr, sizeof mode3_attr);
	/* The 64 EGA colours in the first DAC entries, where the attribute
	 * palette points: 2/3 intensity for a primary bit (rgb), 1/3 for a
	 * secondary one (RGB, bits 5-3). */
	for (unsigned i = 0; i < 64; i++) {
		uint8_t *p = &g->palette[i * 3];
		p[0] = (uint8_t)(((i >> 2) & 1) * 0x2A + ((i >> 5) & 1) * 0x15);
		p[1] = (uint8_t)(((i >> 1) & 1) * 0x2A + ((i >> 4) & 1) * 0x15);
		p[2] = (uint8_t)((i & 1) * 0x2A + ((i >> 3) & 1) * 0x15);
	}
	for (uint32_t cell = 0; cell < VGA_TEXT_COLS * VGA_TEXT_ROWS; cell++)
		gmem_write(mem, VGA_TEXT_BASE + cell * 2, 2, 0x0720);
}

/* The colour ports (0x3Dx) answer only in colour mode, the monochrome ones
 * (0x3Bx) only in monochrome mode. */
static bool decoded(const struct vga *g, uint16_t offset)
{
	if (g->misc & MISC_COLOUR)
		return offset >= 0x10;
	return offset < 0x20;
}

static uint8_t read_byte(struct vga *g, uint16_t offset)
{
	uint8_t v;

	if (!decoded(g, offset))
		return 0xFF;
	switch (offset) {
	case ATTR_INDEX:
		return g->attr_flip ? 0 : g->attr_index;
	case ATTR_DATA_READ:
		return (g->attr_index & 0x1F) < ATTR_REGS ? g->attr[g->attr_index & 0x1F] : 0;
	case SEQ_INDEX:
		return g->seq_index;
	case SEQ_DATA:
		return g->seq[g->seq_index];
	case PEL_MASK:
		return g->pel_mask;
	case DAC_READ_INDEX:
		return g->dac_state;
	case DAC_WRITE_INDEX:
		return g->dac_write;
	case DAC_DATA:
		v = g->palette[g->dac_read * 3 + g->dac_sub];
		if (++g->dac_sub == 3) {
			g->dac_sub = 0;
			g->dac_read++;
		}
		return v;
	case FEATURE_READ:
		return g->feature;
	case MISC_READ:
		return g->misc;
	case GC_INDEX:
		return g->gc_index;
	case GC_DATA:
		return g->gc[g->gc_index];
	case MONO_CRTC_INDEX:
	case COLOUR_CRTC_INDEX:
		return g->crtc_index;
	case MONO_CRTC_DATA:
	case COLOUR_CRTC_DATA:
		return g->crtc[g->crtc_index];
	case MONO_STATUS:
	case COLOUR_STATUS:
		/* No display timing: each read flips retrace, so a guest that
		 * waits for either edge sees it at once. The read also resets
		 * the attribute flip-flop to "index". */
		g->st01 ^= ST01_RETRACE;
		g->attr_flip = 0;
		return g->st01;
	default:
		return 0;
	}
}

static void write_attr(struct vga *g, uint8_t val)
{
	if (!g->attr_flip) {
		g->attr_index = val & 0x3F;
	} else {
		unsigned i = g->attr_index & 0x1F;
		if (i < 0x10)
			g->attr[i] = val & 0x3F; /* palette */
		else if (i == 0x10)
			g->attr[i] = val & ~0x10; /* mode control */
		else if (i == 0x11)
			g->attr[i] = val;         /* overscan colour */
		else if (i == 0x12)
			g->attr[i] = val & ~0xC0; /* colour plane enable */
		else if (i < ATTR_REGS)
			g->attr[i] = val & ~0xF0; /* pixel panning, colour select */
	}
	g->attr_flip ^= 1;
}

static void write_byte(struct vga *g, uint16_t offset, uint8_t val)
{
	if (!decoded(g, offset))
		return;
	switch (offset) {
	case ATTR_INDEX:
		write_attr(g, val);
		break;
	case MISC_WRITE:
		g->misc = val & ~0x10;
		break;
	case SEQ_INDEX:
		g->seq_index = val & 7;
		break;
	case SEQ_DATA:
		g->seq[g->seq_index] = val & seq_mask[g->seq_index];
		break;
	case PEL_MASK:
		g->pel_mask = val;
		break;
	case DAC_READ_INDEX:
		g->dac_read = val;
		g->dac_sub = 0;
		g->dac_state = 3;
		break;
	case DAC_WRITE_INDEX:
		g->dac_write = val;
		g->dac_sub = 0;
		g->dac_state = 0;
		break;
	case DAC_DATA:
		g->palette[g->dac_write * 3 + g->dac_sub] = val;
		if (++g->dac_sub == 3) {
			g->dac_sub = 0;
			g->dac_write++;
		}
		break;
	case GC_INDEX:
		g->gc_index = val & 0x0F;
		break;
	case GC_DATA:
		g->gc[g->gc_index] = val & gc_mask[g->gc_index];
		break;
	case MONO_CRTC_INDEX:
	case COLOUR_CRTC_INDEX:
		g->crtc_index = val;
		break;
	case MONO_CRTC_DATA:
	case COLOUR_CRTC_DATA:
		if ((g->crtc[CRTC_V_SYNC_END] & CRTC_LOCK_0_7) && g->crtc_index <= CRTC_OVERFLOW) {
			/* Locked: only the overflow register's line-compare bit
			 * still takes writes. */
			if (g->crtc_index == CRTC_OVERFLOW)
				g->crtc[CRTC_OVERFLOW] = (uint8_t)((g->crtc[CRTC_OVERFLOW] & ~0x10) | (val & 0x10));
			break;
		}
		g->crtc[g->crtc_index] = val;
		break;
	case MONO_STATUS:
	case COLOUR_STATUS:
		g->feature = val & 0x10;
		break;
	default:
		break;
	}
}

/* Wider accesses are that many byte accesses at consecutive ports, low byte
 * first: `outw 0x3D4` writes an index and its data in one go. */
uint32_t vga_read(void *dev, uint16_t offset, unsigned size)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)(offset + i < VGA_PORT_COUNT ? read_byte(dev, (uint16_t)(offset + i)) : 0xFF)
		     << (8 * i);
	return v;
}

void vga_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	for (unsigned i = 0; i < size && offset + i < VGA_PORT_COUNT; i++)
		write_byte(dev, (uint16_t)(offset + i), (uint8_t)(val >> (8 * i)));
}

int vga_dump_text(const struct vga *g, const struct gmem *mem, FILE *out)
{
	/* The text window is 32 KiB of cells from 0xB8000; the start address
	 * counts cells and wraps inside it. */
	uint32_t start = (uint32_t)g->crtc[0x0C] << 8 | g->crtc[0x0D];
	for (unsigned row = 0; row < VGA_TEXT_ROWS; row++) {
		char line[VGA_TEXT_COLS + 1];
		unsigned len = 0;
		for (unsigned col = 0; col < VGA_TEXT_COLS; col++) {
			uint32_t cell = (start + row * VGA_TEXT_COLS + col) & 0x3FFF;
			uint8_t ch = (uint8_t)gmem_read(mem, VGA_TEXT_BASE + cell * 2, 1);
			/* Code page 437 beyond ASCII shows as '.'. */
			line[col] = ch == 0 ? ' ' : ch >= 0x20 && ch < 0x7F ? (char)ch : '.';
			if (line[col] != ' ')
				len = col + 1;
		}
		line[len] = '\0';
		if (fprintf(out, "%s\n", line) < 0)
			return -1;
	}
	return fflush(out);
}

void vga_save(const struct vga *d, struct snap *s)
{
	snap_put(s, d, sizeof *d);
}

bool vga_load(struct vga *d, struct snap *s)
{
	if (!snap_get(s, d, sizeof *d))
		return false;
	return d->seq_index < sizeof d->seq && d->gc_index < sizeof d->gc && d->dac_sub < 3 ? true : snap_bad(s, "the VGA's register indexes");
}
