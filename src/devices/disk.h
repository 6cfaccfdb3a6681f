/*
 * A raw disk image file as a block backend: whole 512-byte sectors read
 * and written in place with pread/pwrite, so every guest write reaches the
 * host file when the command completes (nothing is cached in bt86), and
 * disk_flush/disk_close make it durable.  A trailing partial sector of the
 * file is not part of the disk, as with QEMU's raw format.
 *
 * Files are opened before the monitor is contained; at run time only
 * pread, pwrite and fdatasync on the open descriptor are needed.
 */
#ifndef BT86_DISK_H
#define BT86_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DISK_SECTOR 512u

struct disk {
	int fd;                 /* -1: no image */
	uint64_t sectors;
	const char *path;
	char *real_path;        /* the absolute path, which a snapshot records (malloc'd) */
};

/* Opens `path` for reading and writing.  On failure returns -1 with one
 * line in err naming the file. */
int disk_open(struct disk *d, const char *path, char *err, size_t errlen);
/* Whole sectors; false on a host I/O error or a range past the end. */
bool disk_read(struct disk *d, uint64_t lba, unsigned count, void *buf);
bool disk_write(struct disk *d, uint64_t lba, unsigned count, const void *buf);
bool disk_flush(struct disk *d);
void disk_close(struct disk *d);

#endif
