/* The Multiboot loader: a good image, and one clear error for each kind of
 * bad one (built by corrupting copies of a real guest image). */
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader/multiboot.h"
#include "unit.h"

static uint8_t *image;
static size_t image_len;

static void load_image(void)
{
	char path[4096];
	const char *dir = getenv("BT86_GUEST_DIR");
	ck_assert_msg(dir, "BT86_GUEST_DIR is set by ctest");
	snprintf(path, sizeof path, "%s/hello.elf", dir);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f, "%s exists", path);
	fseek(f, 0, SEEK_END);
	image_len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	image = malloc(image_len);
	ck_assert(fread(image, 1, image_len, f) == image_len);
	fclose(f);
}

static const char *write_temp(const uint8_t *p, size_t n)
{
	static char path[64];
	strcpy(path, "/tmp/bt86-loader-XXXXXX");
	int fd = mkstemp(path);
	ck_assert(fd >= 0);
	ck_assert(write(fd, p, n) == (ssize_t)n);
	close(fd);
	return path;
}

static int try_load(const char *path, const char *cmdline, const char *mods, struct boot_state *bs,
		    char *err, size_t errlen)
{
	struct gmem mem;
	char e[256];
	ck_assert(gmem_init(&mem, 16u << 20, e, sizeof e) == 0);
	int rc = multiboot_load(&mem, path, cmdline, mods, bs, err, errlen);
	if (rc == 0) {
		uint32_t *mbi = (uint32_t *)(mem.ram + bs->ebx);
		ck_assert_uint_eq(mbi[0] & 0x24D, 0x24D); /* mem, cmdline, mmap, name (+mods) */
		ck_assert_uint_eq(mbi[2], (16u << 20) / 1024 - 1024 - 128);
		char *cmd = (char *)mem.ram + mbi[4];
		ck_assert_msg(strncmp(cmd, path, strlen(path)) == 0, "cmdline starts with the path: %s", cmd);
		if (cmdline)
			ck_assert(strstr(cmd, cmdline));
		if (mods) {
			ck_assert_uint_eq(mbi[5], 1);
			uint32_t *mod = (uint32_t *)(mem.ram + mbi[6]);
			ck_assert_uint_eq(mod[0] % 4096, 0);
			ck_assert_uint_eq(mod[1] - mod[0], 5);
			ck_assert_str_eq((char *)mem.ram + mod[2], mods);
		}
	}
	gmem_destroy(&mem);
	return rc;
}

static Elf32_Phdr *first_load(uint8_t *img)
{
	Elf32_Ehdr *eh = (Elf32_Ehdr *)img;
	for (int i = 0; i < eh->e_phnum; i++) {
		Elf32_Phdr *ph = (Elf32_Phdr *)(img + eh->e_phoff + i * eh->e_phentsize);
		if (ph->p_type == PT_LOAD)
			return ph;
	}
	return NULL;
}

#define EXPECT_ERROR(bytes, len, needle)                                                   \
	do {                                                                               \
		struct boot_state bs;                                                      \
		char err[512] = "";                                                        \
		const char *p = write_temp(bytes, len);                                    \
		ck_assert_int_eq(try_load(p, NULL, NULL, &bs, err, sizeof err), -1);       \
		ck_assert_msg(strstr(err, needle), "error '%s' mentions '%s'", err, needle); \
		ck_assert_msg(strstr(err, p), "error '%s' names the file", err);           \
		unlink(p);                                                                 \
	} while (0)

START_TEST(test_good_image)
{
	struct boot_state bs;
	char err[512];
	load_image();
	const char *mod = write_temp((const uint8_t *)"hello", 5);
	char mods[128];
	snprintf(mods, sizeof mods, "%s", mod);
	ck_assert_msg(try_load(write_temp(image, image_len), "console=ttyS0 quiet", mods, &bs, err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(bs.eax, MULTIBOOT_BOOTLOADER_MAGIC);
	ck_assert_uint_eq(bs.entry, ((Elf32_Ehdr *)image)->e_entry);
}
END_TEST

START_TEST(test_missing_file)
{
	struct boot_state bs;
	char err[512];
	ck_assert_int_eq(try_load("/nonexistent/kernel.elf", NULL, NULL, &bs, err, sizeof err), -1);
	ck_assert(strstr(err, "/nonexistent/kernel.elf") && strstr(err, "No such file"));
}
END_TEST

START_TEST(test_truncated_and_not_multiboot)
{
	load_image();
	EXPECT_ERROR(image, 200, "not a Multiboot kernel");
	EXPECT_ERROR((const uint8_t *)"", 0, "not a Multiboot kernel");
	uint8_t *copy = malloc(image_len);
	memcpy(copy, image, image_len);
	Elf32_Phdr *ph = first_load(copy);
	ph->p_filesz = (uint32_t)image_len * 4;
	ph->p_memsz = ph->p_filesz;
	EXPECT_ERROR(copy, image_len, "truncated");
	free(copy);
}
END_TEST

START_TEST(test_wrong_machine)
{
	load_image();
	uint8_t *copy = malloc(image_len);
	memcpy(copy, image, image_len);
	((Elf32_Ehdr *)copy)->e_machine = EM_X86_64;
	EXPECT_ERROR(copy, image_len, "not a 32-bit x86 ELF");
	free(copy);
}
END_TEST

START_TEST(test_segment_does_not_fit)
{
	load_image();
	uint8_t *copy = malloc(image_len);
	memcpy(copy, image, image_len);
	first_load(copy)->p_paddr = 0xFFFF0000u;
	EXPECT_ERROR(copy, image_len, "does not fit");
	free(copy);
}
END_TEST

START_TEST(test_missing_module)
{
	struct boot_state bs;
	char err[512];
	load_image();
	ck_assert_int_eq(try_load(write_temp(image, image_len), NULL, "/nonexistent/initrd", &bs, err, sizeof err), -1);
	ck_assert(strstr(err, "/nonexistent/initrd"));
}
END_TEST

Suite *loader_suite(void)
{
	Suite *s = suite_create("loader");
	TCase *t = tcase_create("multiboot");
	tcase_add_test(t, test_good_image);
	tcase_add_test(t, test_missing_file);
	tcase_add_test(t, test_truncated_and_not_multiboot);
	tcase_add_test(t, test_wrong_machine);
	tcase_add_test(t, test_segment_does_not_fit);
	tcase_add_test(t, test_missing_module);
	suite_add_tcase(s, t);
	return s;
}
