#include "bda.h"

#include "../mem/gmem.h"
#include "../devices/vga.h"

#define BDA 0x400u
/* The equipment word: x87 present (bit 1), 80x25 colour video (bits 5-4 =
 * 10), one serial port (bits 11-9).  No floppy, no parallel port and no
 * PS/2 mouse, as this board has none. */
#define EQUIPMENT 0x0222u
/* Keyboard buffer: 16 words from offset 0x1E of the BDA segment. */
#define KBD_BUFFER_START 0x1Eu
#define KBD_BUFFER_END 0x3Eu

void bda_write(struct gmem *mem, uint16_t com1)
{
	gmem_write(mem, BDA + 0x00, 2, com1);
	gmem_write(mem, BDA + 0x0E, 2, BDA_EBDA_ADDR >> 4);
	gmem_write(mem, BDA + 0x10, 2, EQUIPMENT);
	gmem_write(mem, BDA + 0x13, 2, BDA_EBDA_ADDR >> 10); /* KiB of base memory */
	gmem_write(mem, BDA + 0x1A, 2, KBD_BUFFER_START);    /* head */
	gmem_write(mem, BDA + 0x1C, 2, KBD_BUFFER_START);    /* tail: empty */
	gmem_write(mem, BDA + 0x80, 2, KBD_BUFFER_START);
	gmem_write(mem, BDA + 0x82, 2, KBD_BUFFER_END);
	gmem_write(mem, BDA + 0x96, 1, 0x10);                /* a 101-key keyboard */
	gmem_write(mem, BDA + 0x7C, 1, 0x0A);                /* COM1 timeout */
	/* video: mode 3, 80 columns, 4 KiB pages, page 0 with its cursor at
	 * the top left, cursor scan lines 6-7, CRTC at 0x3D4, 25 rows of a
	 * 16-line font */
	gmem_write(mem, BDA + 0x49, 1, 3);
	gmem_write(mem, BDA + 0x4A, 2, VGA_TEXT_COLS);
	gmem_write(mem, BDA + 0x4C, 2, 0x1000);
	gmem_write(mem, BDA + 0x60, 2, 0x0607);
	gmem_write(mem, BDA + 0x63, 2, 0x3D4);
	gmem_write(mem, BDA + 0x84, 1, VGA_TEXT_ROWS - 1);
	gmem_write(mem, BDA + 0x85, 2, 16);
	gmem_write(mem, BDA + 0x87, 1, 0x60);
	gmem_write(mem, BDA + 0x88, 1, 0xF9);
	gmem_write(mem, BDA + 0x89, 1, 0x51);
	gmem_write(mem, BDA + 0x8A, 1, 0x08);
	/* The EBDA's first byte is its size in KiB. */
	gmem_write(mem, BDA_EBDA_ADDR, 1, 1);
}
