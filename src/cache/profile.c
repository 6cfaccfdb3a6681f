#include "profile.h"

#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <ucontext.h>

#include "stats.h"
#include "tc.h"

static struct tc *prof_tc;
static struct stats *prof_stats;

static void on_prof(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	uint64_t rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
	uint64_t base = (uint64_t)(uintptr_t)prof_tc->base;

	(void)sig;
	(void)si;
	prof_stats->samples++;
	if (rip < base || rip >= base + prof_tc->size)
		return;
	prof_stats->samples_in_tc++;
	struct tc_block *b = tc_block_at(prof_tc, (uint32_t)(rip - base));
	if (b)
		b->samples++;
}

int profile_start(struct tc *tc, struct stats *stats, unsigned hz)
{
	struct sigaction sa;
	struct itimerval it = {{0, (long)(1000000 / hz)}, {0, (long)(1000000 / hz)}};

	prof_tc = tc;
	prof_stats = stats;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_prof;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPROF, &sa, NULL) != 0)
		return -1;
	return setitimer(ITIMER_PROF, &it, NULL);
}

void profile_stop(void)
{
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_PROF, &off, NULL);
	signal(SIGPROF, SIG_IGN);
}
