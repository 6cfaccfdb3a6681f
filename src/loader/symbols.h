/*
 * The function symbols of a guest kernel's ELF image, for the log's
 * block records (-d exec): QEMU's lookup_symbol names the STT_FUNC
 * symbol whose [value, value + size) holds an address, and so does
 * symbols_find.  An image with no symbol table (a stripped kernel, an
 * a.out-kludge image, a bzImage) has none, as under QEMU.
 */
#ifndef BT86_SYMBOLS_H
#define BT86_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

struct symbol {
	uint32_t start, end; /* [start, end) */
	const char *name;    /* in symbols.names */
};

struct symbols {
	struct symbol *sym; /* by start address */
	size_t n;
	char *names;
};

/* Reads the function symbols of the image at path into s (none when it
 * is not an ELF file or has no symbol table).  Fails, with a message in
 * err, only when the file cannot be read or memory runs out. */
int symbols_load(struct symbols *s, const char *path, char *err, size_t errlen);

/* The name of the function holding addr, or "" (as QEMU prints). */
const char *symbols_find(const struct symbols *s, uint32_t addr);

void symbols_free(struct symbols *s);

#endif
