/* Native references for the benchmark harness: the compute kernel the guest
 * runs (the same source, built for this host), and the host's own costs of
 * the operations that have a native analogue.  Prints "bench NAME
 * CYCLES_x100" like the guest.  Built twice: -m32 (bench_native32), the
 * reference where the host runs 32-bit programs, and 64-bit for hosts that
 * do not (IA-32 emulation off); the harness says which it used. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <x86intrin.h>

#include "../compute_kernel.h"

static void report(const char *name, uint64_t cycles, uint64_t ops)
{
	printf("bench %s %llu\n", name, (unsigned long long)(cycles * 100 / ops));
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 && !strcmp(argv[1], "quick") ? 2000 : 20000;
	static unsigned char buffer[KERNEL_BYTES];
	volatile unsigned sink;
	uint64_t t;

	crc_init();
	for (unsigned i = 0; i < KERNEL_BYTES; i++)
		buffer[i] = (unsigned char)(i * 7 + 3);
	t = __rdtsc();
	for (int r = 0; r < 8; r++)
		sink = crc_kernel(buffer, KERNEL_BYTES);
	report("compute_native", __rdtsc() - t, 8ull * KERNEL_BYTES);

	t = __rdtsc();
	for (unsigned i = 0; i < n / 10; i++)
		syscall(SYS_getpid);
	report("syscall", __rdtsc() - t, n / 10);

	const unsigned pages = 256;
	t = __rdtsc();
	for (int r = 0; r < 4; r++) {
		volatile unsigned char *p = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
						 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		for (unsigned i = 0; i < pages; i++)
			sink = p[i * 4096];
		munmap((void *)p, pages * 4096);
	}
	report("user_page_fault", __rdtsc() - t, 4ull * pages);

	int a[2], b[2];
	char c = 0;
	if (pipe(a) || pipe(b))
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		for (unsigned i = 0; i < n / 10; i++)
			if (read(a[0], &c, 1) != 1 || write(b[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	t = __rdtsc();
	for (unsigned i = 0; i < n / 10; i++)
		if (write(a[1], &c, 1) != 1 || read(b[0], &c, 1) != 1)
			return 1;
	report("context_switch", __rdtsc() - t, 2ull * (n / 10));
	waitpid(pid, NULL, 0);
	(void)sink;
	return 0;
}
