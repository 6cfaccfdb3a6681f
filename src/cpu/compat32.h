/*
 * Whether this host can run 32-bit code in compatibility mode, through a
 * code segment in the process's LDT: what direct execution of guest ring 3
 * needs (issue 14).  Linux hosts with IA-32 emulation can; the machines
 * this project builds on cannot (their kernel turns it off, and an LDT
 * code selector faults).  The probe runs in a child process before
 * containment, so a fault costs the monitor nothing.
 */
#ifndef BT86_COMPAT32_H
#define BT86_COMPAT32_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Forks a child that enters a 32-bit LDT code segment and comes back to
 * 64-bit code; true when it did.  `why` says what was seen either way. */
bool compat32_probe(char *why, size_t n);

#endif
