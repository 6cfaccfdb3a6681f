/*
 * The exit statuses of a bt86 run.
 *
 * A guest ends a run through the exit port with status (V << 1) | 1, as
 * QEMU's isa-debug-exit does: always odd.  Every way bt86 itself ends a
 * run is an even number, so a test runner that reads the status can never
 * take a stop of bt86's (a bad image, a guest it cannot run, a triple
 * fault, containment) for a guest's own report, 1 ("passed") included.
 */
#ifndef BT86_EXIT_STATUS_H
#define BT86_EXIT_STATUS_H

enum bt86_exit_status {
	BT86_EXIT_HALTED = 0,       /* halted for good, reset, powered off, Ctrl-A x, killed from GDB */
	BT86_EXIT_USAGE = 2,        /* a bad command line */
	BT86_EXIT_PANIC = 4,        /* the guest kernel panicked (panic_watch.h) */
	BT86_EXIT_BAD_INPUT = 6,    /* a kernel, module or disk image bt86 cannot use, or the host refused it a resource at start-up */
	BT86_EXIT_UNSUPPORTED = 8,  /* the guest did what bt86 cannot run (the message names the EIP) */
	BT86_EXIT_TRIPLE_FAULT = 10, /* a fault while delivering #DF: a PC would shut down */
	BT86_EXIT_SIGNALLED = 12,   /* stopped by SIGINT or SIGTERM from the host */
	BT86_EXIT_CONTAINED = 98,   /* guest code or the translation cache made a host system call */
};

#endif
