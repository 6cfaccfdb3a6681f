/* Compute: deep recursion, jump tables, indirect calls and integer loops,
 * the shape of most kernel code.  Results are printed, so QEMU checks them. */
#include "rt/rt.h"

static u32 depth_sum(u32 n)
{
	return n == 0 ? 0 : n + depth_sum(n - 1);
}

static u32 fib(u32 n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static u32 __attribute__((noinline)) dispatch(u32 op, u32 x)
{
	switch (op) { /* dense: a jump table */
	case 0: return x + 1;
	case 1: return x * 3;
	case 2: return x ^ 0x5A5A;
	case 3: return x >> 1;
	case 4: return x - 7;
	case 5: return x << 2;
	case 6: return ~x;
	case 7: return x * x;
	case 8: return x | 0x100;
	default: return x & 0xFFFF;
	}
}

static u32 add1(u32 x) { return x + 1; }
static u32 dbl(u32 x) { return x * 2; }
static u32 half(u32 x) { return x / 2; }
static u32 (*const ops[])(u32) = {add1, dbl, half};

static u8 sieve_buf[200001];

static u32 sieve(u32 n)
{
	u32 count = 0;
	for (u32 i = 2; i <= n; i++)
		sieve_buf[i] = 1;
	for (u32 i = 2; i * i <= n; i++)
		if (sieve_buf[i])
			for (u32 j = i * i; j <= n; j += i)
				sieve_buf[j] = 0;
	for (u32 i = 2; i <= n; i++)
		count += sieve_buf[i];
	return count;
}

static u32 crc32(const u8 *p, u32 n)
{
	u32 c = 0xFFFFFFFF;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & -(c & 1));
	}
	return ~c;
}

static u32 sort_check(void)
{
	static u32 a[2000];
	u32 seed = 12345;
	for (int i = 0; i < 2000; i++) {
		seed = seed * 1103515245 + 12345;
		a[i] = seed >> 8;
	}
	for (int i = 1; i < 2000; i++) { /* insertion sort */
		u32 v = a[i];
		int j = i - 1;
		while (j >= 0 && a[j] > v) {
			a[j + 1] = a[j];
			j--;
		}
		a[j + 1] = v;
	}
	for (int i = 1; i < 2000; i++)
		if (a[i - 1] > a[i])
			return 0;
	return a[1000];
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(7);
	is_u32(depth_sum(10000), 50005000, "recursion 10000 deep");
	is_u32(fib(24), 46368, "fib(24) by recursion");
	u32 x = 1;
	for (u32 i = 0; i < 100000; i++)
		x = dispatch(i % 10, x);
	printf_serial("# jump table result %08x\n", x);
	ok(x != 1, "100000 jump-table dispatches");
	u32 y = 5;
	for (u32 i = 0; i < 30000; i++)
		y = ops[i % 3](y);
	printf_serial("# indirect call result %u\n", y);
	ok(1, "30000 indirect calls");
	is_u32(sieve(200000), 17984, "primes below 200000");
	u32 c = crc32(sieve_buf, sizeof sieve_buf);
	printf_serial("# crc32 %08x\n", c);
	ok(c != 0, "crc32 over 200 KB");
	u32 s = sort_check();
	printf_serial("# median %u\n", s);
	ok(s != 0, "insertion sort of 2000 numbers");
}
