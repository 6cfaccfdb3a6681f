/* The compute kernel the harness times natively, at ring 0 and at ring 3:
 * table-driven CRC-32 over a buffer, a shape common in kernel and user code
 * (loads, shifts, xors, a loop-carried dependency). */
#ifndef BT86_BENCH_COMPUTE_KERNEL_H
#define BT86_BENCH_COMPUTE_KERNEL_H

#define KERNEL_BYTES 65536u

static unsigned int crc_table[256];

static void crc_init(void)
{
	for (unsigned int i = 0; i < 256; i++) {
		unsigned int c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & -(c & 1));
		crc_table[i] = c;
	}
}

static unsigned int __attribute__((noinline)) crc_kernel(const unsigned char *p, unsigned int n)
{
	unsigned int c = 0xFFFFFFFFu;
	while (n--)
		c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return ~c;
}

#endif
