#include "console.h"

#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved;
static int saved_fd = -1;

void console_restore(void)
{
	if (saved_fd >= 0)
		tcsetattr(saved_fd, TCSAFLUSH, &saved);
}

bool console_raw_begin(int fd)
{
	struct termios raw;

	if (!isatty(fd) || tcgetattr(fd, &saved) != 0)
		return false;
	raw = saved;
	raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
	raw.c_cflag |= CS8;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &raw) != 0)
		return false;
	saved_fd = fd;
	atexit(console_restore);
	return true;
}

size_t console_escape(struct console_escape *st, uint8_t *buf, size_t n, bool *quit, size_t *used)
{
	size_t out = 0;

	*used = n;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = buf[i];
		if (!st->pending) {
			if (c == CONSOLE_ESCAPE)
				st->pending = true;
			else
				buf[out++] = c;
			continue;
		}
		st->pending = false;
		switch (c) {
		case 'x':
		case 'X':
			*quit = true;
			*used = i + 1;
			return out;
		case 'c':
		case 'C':
			st->monitor = !st->monitor;
			*used = i + 1;
			return out;
		case CONSOLE_ESCAPE:
			buf[out++] = c;
			break;
		case 'h':
		case 'H':
		case '?':
			fputs("\r\nC-a h    print this help\r\n"
			      "C-a x    exit bt86\r\n"
			      "C-a c    switch between the console and the monitor\r\n"
			      "C-a C-a  send C-a to the guest\r\n", stderr);
			break;
		default:
			break;
		}
	}
	return out;
}
