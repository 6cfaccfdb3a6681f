/*
 * Sampling profile of translated code: a SIGPROF timer attributes each sample
 * to the block whose code was running, for the hottest-blocks report.
 * Counting executions inside blocks would need flag-changing instructions on
 * the hot path; sampling costs nothing when off and little when on.
 */
#ifndef BT86_PROFILE_H
#define BT86_PROFILE_H

struct tc;
struct stats;

/* Starts sampling at `hz` samples per second of CPU time; 0 or -1. */
int profile_start(struct tc *tc, struct stats *stats, unsigned hz);
void profile_stop(void);

#endif
