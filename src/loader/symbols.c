#include "symbols.h"

#include <gelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_file.h"

static int by_start(const void *a, const void *b)
{
	const struct symbol *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Whether a symbol table entry names a function with code (QEMU drops
 * the others as well). */
static bool is_function(const GElf_Sym *sym)
{
	return GELF_ST_TYPE(sym->st_info) == STT_FUNC && sym->st_shndx != SHN_UNDEF &&
	       sym->st_shndx < SHN_LORESERVE && sym->st_size > 0;
}

/* Copies the functions of one SHT_SYMTAB section into s, names packed
 * into s->names (sized by the first pass over the same section). */
static int take_table(struct symbols *s, Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0, n = 0, bytes = 0;
	GElf_Sym sym;

	if (!data)
		return 0;
	for (size_t i = 0; i < count && gelf_getsym(data, (int)i, &sym); i++) {
		const char *name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (is_function(&sym) && name) {
			n++;
			bytes += strlen(name) + 1;
		}
	}
	if (!n)
		return 0;
	s->sym = malloc(n * sizeof *s->sym);
	s->names = malloc(bytes);
	if (!s->sym || !s->names)
		return -1;
	char *at = s->names;
	for (size_t i = 0; i < count && gelf_getsym(data, (int)i, &sym); i++) {
		const char *name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!is_function(&sym) || !name)
			continue;
		size_t len = strlen(name) + 1;
		memcpy(at, name, len);
		s->sym[s->n++] = (struct symbol){.start = (uint32_t)sym.st_value,
						 .end = (uint32_t)(sym.st_value + sym.st_size),
						 .name = at};
		at += len;
	}
	qsort(s->sym, s->n, sizeof *s->sym, by_start);
	return 0;
}

int symbols_load(struct symbols *s, const char *path, char *err, size_t errlen)
{
	size_t len;
	int rc = 0;

	*s = (struct symbols){0};
	uint8_t *img = image_file_read(path, &len, err, errlen);
	if (!img)
		return -1;
	elf_version(EV_CURRENT);
	Elf *elf = elf_memory((char *)img, len);
	GElf_Shdr sh;
	if (elf && elf_kind(elf) == ELF_K_ELF)
		for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn; scn = elf_nextscn(elf, scn))
			if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB) {
				rc = take_table(s, elf, scn, &sh);
				break;
			}
	if (rc) {
		snprintf(err, errlen, "%s: out of memory for its symbols", path);
		symbols_free(s);
	}
	if (elf)
		elf_end(elf);
	free(img);
	return rc;
}

const char *symbols_find(const struct symbols *s, uint32_t addr)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) { /* the last symbol starting at or below addr */
		size_t mid = lo + (hi - lo) / 2;
		if (s->sym[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && addr < s->sym[lo - 1].end ? s->sym[lo - 1].name : "";
}

void symbols_free(struct symbols *s)
{
	free(s->sym);
	free(s->names);
	*s = (struct symbols){0};
}
