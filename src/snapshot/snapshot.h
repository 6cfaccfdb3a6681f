/*
 * Snapshots: the whole machine (VCPU, devices, RAM) in one file, written by
 * the monitor's savevm and read by -loadvm.
 *
 * The file: a header (magic "BT86SNAP", the format number, a layout
 * signature of the saved structures, the RAM size), then one zstd frame
 * with its checksum holding the sections in order: the disks (path, size,
 * modification time; their contents are not copied), the CPU, the board's
 * clock, each device, RAM as runs of nonzero pages, an end mark.  Device
 * state is saved as the bytes of each device's state fields (stream.h),
 * so a file is only for the bt86 build whose layout it records: any other
 * is refused with one line naming both.
 *
 * What is derived is not saved: the translation cache, the shadow page
 * tables, the soft TLB, the decode cache start empty after a load, and
 * the board's clock and the TSC continue from their saved values.
 */
#ifndef BT86_SNAPSHOT_H
#define BT86_SNAPSHOT_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vcpu;
struct board;
struct gmem;

#define SNAPSHOT_DISKS 2
/* savevm's open, the one containment allows at run time (contain.c): a
 * file to write, never to read, not through a symbolic link. */
#define SNAPSHOT_OPEN_FLAGS (O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW)

struct snapshot_disk {
	bool present;
	uint64_t size;
	int64_t mtime_s, mtime_ns;
	char path[4096];
};

/* Writes the machine to path (on the VCPU thread, between instructions);
 * a one-line summary in done, or -1 with a message in err. */
int snapshot_save(const char *path, struct vcpu *v, struct board *b, char *done, size_t donelen, char *err,
		  size_t errlen);

/* Opens a snapshot and reads its header and disk list. */
struct snapshot_reader;
struct snapshot_reader *snapshot_open(const char *path, uint32_t *ram_bytes,
				      struct snapshot_disk disks[SNAPSHOT_DISKS], char *err, size_t errlen);
/* Whether disk image `path` is still as the snapshot saw it; if not, the
 * difference in err. */
bool snapshot_disk_unchanged(const struct snapshot_disk *d, char *err, size_t errlen);
/* Loads the rest into a machine built for it (RAM of the snapshot's size,
 * its disks attached), before the run; closes the reader. */
int snapshot_load(struct snapshot_reader *r, struct vcpu *v, struct board *b, char *err, size_t errlen);
void snapshot_close(struct snapshot_reader *r);

#endif
