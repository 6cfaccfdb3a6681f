/* The bundled demo guest: a Mandelbrot set in fixed-point integer
 * arithmetic, drawn on the serial console, then a prime count. */
#include "rt/rt.h"

static int mandel(int cx, int cy)
{
	int x = 0, y = 0, i;
	for (i = 0; i < 200; i++) {
		int xx = (x * x) >> 12, yy = (y * y) >> 12;
		if (xx + yy > 4 << 12)
			break;
		y = ((x * y) >> 11) + cy;
		x = xx - yy + cx;
	}
	return i;
}

void test_main(u32 magic, u32 mbi)
{
	static const char shade[] = " .:-=+*#%@";
	(void)magic;
	(void)mbi;
	puts_serial("# bt86 demo guest: 32-bit kernel code, translated\n");
	for (int row = 0; row < 24; row++) {
		putc_serial('#');
		putc_serial(' ');
		for (int col = 0; col < 72; col++) {
			int it = mandel(-2 * 4096 + col * 3 * 4096 / 72, -4096 * 5 / 4 + row * 10 * 4096 / 4 / 24);
			putc_serial(shade[it >= 200 ? 9 : it % 9]);
		}
		putc_serial('\n');
	}
	plan(1);
	u32 count = 0;
	for (u32 n = 2; n < 30000; n++) {
		u32 d = 2;
		while (d * d <= n && n % d)
			d++;
		count += d * d > n;
	}
	is_u32(count, 3245, "primes below 30000 by trial division");
}
