#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int disk_open(struct disk *d, const char *path, char *err, size_t errlen)
{
	struct stat st;

	d->fd = -1;
	d->path = path;
	d->real_path = NULL;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "disk image %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "disk image %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size < DISK_SECTOR) {
		snprintf(err, errlen, "disk image %s: smaller than one 512-byte sector", path);
		close(fd);
		return -1;
	}
	d->fd = fd;
	d->sectors = (uint64_t)st.st_size / DISK_SECTOR;
	d->real_path = realpath(path, NULL);
	return 0;
}

static bool in_range(const struct disk *d, uint64_t lba, unsigned count)
{
	return d->fd >= 0 && lba <= d->sectors && count <= d->sectors - lba;
}

/* pread or pwrite of whole sectors, retried until done. */
static bool transfer(struct disk *d, uint64_t lba, unsigned count, void *buf, bool write)
{
	size_t len = (size_t)count * DISK_SECTOR;
	if (!in_range(d, lba, count))
		return false;
	for (size_t done = 0; done < len;) {
		off_t at = (off_t)(lba * DISK_SECTOR + done);
		ssize_t n = write ? pwrite(d->fd, (char *)buf + done, len - done, at)
				  : pread(d->fd, (char *)buf + done, len - done, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	return true;
}

bool disk_read(struct disk *d, uint64_t lba, unsigned count, void *buf)
{
	return transfer(d, lba, count, buf, false);
}

bool disk_write(struct disk *d, uint64_t lba, unsigned count, const void *buf)
{
	return transfer(d, lba, count, (void *)buf, true);
}

bool disk_flush(struct disk *d)
{
	return d->fd < 0 || fdatasync(d->fd) == 0;
}

void disk_close(struct disk *d)
{
	if (d->fd < 0)
		return;
	fdatasync(d->fd);
	close(d->fd);
	d->fd = -1;
	free(d->real_path);
	d->real_path = NULL;
}
