/*
 * A snapshot's byte stream, as the devices see it: each device saves its
 * state with snap_put and takes it back with snap_get, in the same order,
 * and checks on load what its code relies on (indexes within their
 * arrays), so that a damaged or crafted file is refused instead of
 * reaching out of bounds.  Errors are sticky: after the first, puts do
 * nothing and gets return false.
 */
#ifndef BT86_SNAP_STREAM_H
#define BT86_SNAP_STREAM_H

#include <stdbool.h>
#include <stddef.h>

struct snap;

void snap_put(struct snap *s, const void *p, size_t n);
/* false at the end of the stream or after an error. */
bool snap_get(struct snap *s, void *p, size_t n);
/* A device's state failed its checks: the load fails with `what`. */
bool snap_bad(struct snap *s, const char *what);

#endif
