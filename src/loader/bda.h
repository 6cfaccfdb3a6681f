/*
 * The BIOS data area (0x400-0x4FF) and the extended BIOS data area that PC
 * firmware (SeaBIOS, under QEMU's -kernel) leaves for a kernel to read: the
 * COM port table, the EBDA segment, the equipment word, the base memory
 * size, the keyboard buffer pointers and the video mode state (mode 3,
 * 80x25, CRTC at 0x3D4).  Kernels look here for the MP floating pointer
 * (EBDA first, then the top of base memory) and for the serial ports.
 */
#ifndef BT86_BDA_H
#define BT86_BDA_H

#include <stdint.h>

/* The EBDA: the last KiB of base memory, reserved in the memory map. */
#define BDA_EBDA_ADDR 0x9FC00u

struct gmem;

/* Fills the BIOS data area for a machine whose first serial port is at
 * `com1`; the rest of the page stays zero. */
void bda_write(struct gmem *mem, uint16_t com1);

#endif
