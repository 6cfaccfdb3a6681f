/*
 * The exit port (QEMU's isa-debug-exit): writing v ends the run with status
 * (v << 1) | 1, so the same guest test images run under bt86 and QEMU.
 */
#ifndef BT86_DEBUG_EXIT_H
#define BT86_DEBUG_EXIT_H

#include <stdint.h>

struct debug_exit {
	void (*exit)(void *opaque, int status);
	void *opaque;
};

void debug_exit_write(void *dev, uint16_t offset, unsigned size, uint32_t val);

#endif
