/*
 * The monitor's side of the ring-3 host process (direct.h): starting the
 * stub, the mapping queue, and runs handed over through the control page.
 */
#include "direct.h"

#include "../mem/gmem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* How long the monitor sleeps on the futex before it looks whether the
 * stub is still there (a seccomp kill wakes nobody). */
#define DIRECT_POLL_NS 20000000L

static void direct_hand_over(struct direct *d)
{
	__atomic_store_n(&d->ctl->turn, DIRECT_TURN_STUB, __ATOMIC_RELEASE);
	syscall(SYS_futex, &d->ctl->turn, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Why the stub is gone, once it is. */
static bool direct_gone(struct direct *d, char *err, size_t errlen)
{
	struct pollfd p = {.fd = d->pidfd, .events = POLLIN};
	if (poll(&p, 1, 0) <= 0)
		return false;
	siginfo_t si = {0};
	d->dead = true;
	if (syscall(SYS_waitid, P_PIDFD, d->pidfd, &si, WEXITED | WNOHANG, NULL) == 0 && si.si_pid) {
		if (si.si_code == CLD_EXITED)
			snprintf(err, errlen, "the ring-3 host process exited with status %d", si.si_status);
		else
			snprintf(err, errlen, "the ring-3 host process was killed by %s%s", strsignal(si.si_status),
				 si.si_status == SIGSYS ? " (a system call its filter refuses)" : "");
	} else
		snprintf(err, errlen, "the ring-3 host process is gone");
	return true;
}

/* Waits for the stub's move; kicks it once when *attn turns nonzero. */
static int direct_wait(struct direct *d, const volatile uint64_t *attn, char *err, size_t errlen)
{
	bool kicked = false;
	for (unsigned spin = 0; spin < DIRECT_SPIN; spin++)
		if (__atomic_load_n(&d->ctl->turn, __ATOMIC_ACQUIRE) == DIRECT_TURN_MONITOR)
			return 0;
		else
			__builtin_ia32_pause();
	for (;;) {
		if (__atomic_load_n(&d->ctl->turn, __ATOMIC_ACQUIRE) == DIRECT_TURN_MONITOR)
			return 0;
		if (attn && *attn && !kicked) {
			syscall(SYS_tgkill, d->pid, d->pid, SIGUSR1);
			kicked = true;
		}
		struct timespec t = {0, DIRECT_POLL_NS};
		if (syscall(SYS_futex, &d->ctl->turn, FUTEX_WAIT, DIRECT_TURN_STUB, &t, NULL, 0) != 0 &&
		    errno != EAGAIN && direct_gone(d, err, errlen))
			return -1;
	}
}

int direct_start(struct direct *d, const struct gmem *mem, char *err, size_t errlen)
{
	memset(d, 0, sizeof *d);
	d->pidfd = -1;
	int ctl_fd = memfd_create("bt86-ring3-ctl", MFD_CLOEXEC);
	if (ctl_fd < 0 || ftruncate(ctl_fd, sizeof *d->ctl) != 0) {
		snprintf(err, errlen, "ring-3 host process: control page: %s", strerror(errno));
		goto fail;
	}
	d->ctl = mmap(NULL, sizeof *d->ctl, PROT_READ | PROT_WRITE, MAP_SHARED, ctl_fd, 0);
	if (d->ctl == MAP_FAILED) {
		d->ctl = NULL;
		snprintf(err, errlen, "ring-3 host process: control page: %s", strerror(errno));
		goto fail;
	}
	d->ctl->turn = DIRECT_TURN_STUB;

	char a_ctl[16], a_ram[16], a_pid[16], a_low[16];
	snprintf(a_ctl, sizeof a_ctl, "%d", ctl_fd);
	snprintf(a_ram, sizeof a_ram, "%d", mem->fd);
	snprintf(a_pid, sizeof a_pid, "%d", (int)getpid());
	snprintf(a_low, sizeof a_low, "%u", mem->low_hole);
	char *argv[] = {"bt86-ring3", DIRECT_STUB_ARG, a_ctl, a_ram, a_pid, a_low, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	/* dup2 onto itself clears close-on-exec: the stub inherits these two. */
	posix_spawn_file_actions_adddup2(&fa, ctl_fd, ctl_fd);
	posix_spawn_file_actions_adddup2(&fa, mem->fd, mem->fd);
	int rc = posix_spawn(&d->pid, "/proc/self/exe", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(ctl_fd);
	ctl_fd = -1;
	if (rc != 0) {
		snprintf(err, errlen, "ring-3 host process: cannot start it: %s", strerror(rc));
		goto fail;
	}
	d->pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
	if (d->pidfd < 0) {
		snprintf(err, errlen, "ring-3 host process: pidfd_open: %s", strerror(errno));
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		goto fail;
	}
	if (direct_wait(d, NULL, err, errlen))
		goto fail;
	if (d->ctl->ev_kind != DIRECT_EV_READY) {
		snprintf(err, errlen, "ring-3 host process: unexpected first event %u", d->ctl->ev_kind);
		direct_stop(d);
		return -1;
	}
	struct direct_seg flat[DIRECT_SEGS];
	for (unsigned i = 0; i < DIRECT_SEGS; i++)
		flat[i] = (struct direct_seg){0, 0xFFFFFFFFu, 0};
	direct_set_segs(d, flat);
	return 0;
fail:
	if (ctl_fd >= 0)
		close(ctl_fd);
	if (d->pidfd >= 0)
		close(d->pidfd);
	if (d->ctl)
		munmap(d->ctl, sizeof *d->ctl);
	d->ctl = NULL;
	d->pid = 0;
	return -1;
}

void direct_stop(struct direct *d)
{
	if (!d->ctl)
		return;
	if (!d->dead) {
		d->ctl->cmd = DIRECT_QUIT;
		direct_hand_over(d);
		syscall(SYS_waitid, P_PIDFD, d->pidfd, &(siginfo_t){0}, WEXITED, NULL);
	}
	close(d->pidfd);
	munmap(d->ctl, sizeof *d->ctl);
	d->ctl = NULL;
}

static int direct_flush_maps(struct direct *d)
{
	char err[160];
	d->ctl->cmd = DIRECT_MAP;
	direct_hand_over(d);
	return direct_wait(d, NULL, err, sizeof err);
}

int direct_map(struct direct *d, uint32_t lin, uint32_t len, uint32_t phys, uint32_t prot)
{
	struct direct_ctl *c = d->ctl;
	if (c->nmaps) {
		/* One mapping for pages next to the last queued, onto the frames
		 * next to its (or reserved, as it is). */
		struct direct_map *m = &c->map[c->nmaps - 1];
		if (m->prot == prot && m->lin + m->len == lin && (prot == 0 || m->phys + m->len == phys)) {
			m->len += len;
			return 0;
		}
	}
	if (c->nmaps == DIRECT_MAPS && direct_flush_maps(d))
		return -1;
	c->map[c->nmaps++] = (struct direct_map){.lin = lin, .len = len, .phys = phys, .prot = prot};
	return 0;
}

void direct_set_segs(struct direct *d, const struct direct_seg seg[DIRECT_SEGS])
{
	if (d->seg_gen && memcmp(d->ctl->seg, seg, sizeof d->ctl->seg) == 0)
		return;
	memcpy(d->ctl->seg, seg, sizeof d->ctl->seg);
	d->ctl->seg_gen = ++d->seg_gen;
}

int direct_run(struct direct *d, struct direct_regs *r, uint8_t fx[512], const volatile uint64_t *attn,
	       char *err, size_t errlen)
{
	struct direct_ctl *c = d->ctl;
	if (d->dead) {
		snprintf(err, errlen, "the ring-3 host process is gone");
		return -1;
	}
	c->r = *r;
	memcpy(c->fx, fx, sizeof c->fx);
	c->cmd = DIRECT_RUN;
	direct_hand_over(d);
	if (direct_wait(d, attn, err, errlen))
		return -1;
	*r = c->r;
	memcpy(fx, c->fx, sizeof c->fx);
	return (int)c->ev_kind;
}
