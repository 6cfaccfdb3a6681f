/*
 * A VGA adapter in the 80x25 colour text mode (mode 3) that PC firmware
 * leaves it in: the registers a text console programs (miscellaneous output,
 * sequencer, CRTC with its cursor and start address, graphics controller,
 * attribute controller with its index/data flip-flop, input status 1, the
 * DAC), at the ports of the colour or, when the miscellaneous register says
 * so, the monochrome layout.  Values and masks follow QEMU's VGA model, so a
 * guest reads back what it reads there.
 *
 * The text memory at 0xB8000 is guest RAM: character/attribute words read
 * back as written, at the speed of memory.  The device reads it only to
 * show the screen (vga_dump_text), from the CRTC's start address.
 */
#ifndef BT86_VGA_H
#define BT86_VGA_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The adapter's port range: 0x3B0-0x3DF. */
#define VGA_PORT_BASE 0x3B0
#define VGA_PORT_COUNT 0x30
#define VGA_TEXT_BASE 0xB8000u
#define VGA_TEXT_COLS 80
#define VGA_TEXT_ROWS 25

struct gmem;

struct vga {
	uint8_t misc;            /* miscellaneous output; bit 0 = colour ports */
	uint8_t feature;         /* feature control */
	uint8_t st01;            /* input status 1 as last read */
	uint8_t seq_index, seq[8];
	uint8_t gc_index, gc[16];
	uint8_t crtc_index, crtc[256];
	uint8_t attr_index, attr[32];
	uint8_t attr_flip;       /* 0: the next 0x3C0 write is an index */
	uint8_t dac_read, dac_write, dac_sub, dac_state, pel_mask;
	uint8_t palette[768];
};

/* The registers as the VGA BIOS sets mode 3; the text memory cleared to
 * grey-on-black blanks. */
void vga_init(struct vga *g, struct gmem *mem);
uint32_t vga_read(void *dev, uint16_t offset, unsigned size);
void vga_write(void *dev, uint16_t offset, unsigned size, uint32_t val);
/* The character cells of the 80x25 screen as text, one line a row, trailing
 * blanks dropped; returns -1 on a write error. */
int vga_dump_text(const struct vga *g, const struct gmem *mem, FILE *out);

/* The snapshot (snapshot.h): the state fields, and on load the checks of
 * what this device's code relies on. */
struct snap;
void vga_save(const struct vga *d, struct snap *s);
bool vga_load(struct vga *d, struct snap *s);

#endif
