#include "panic_watch.h"

#include <stdio.h>
#include <string.h>

#define PANIC_BANNER "Kernel panic - not syncing: "
#define PANIC_END "---[ end Kernel panic"

bool panic_watch_byte(struct panic_watch *w, char c)
{
	if (c != '\n') {
		if (c != '\r' && w->len < sizeof w->line - 1)
			w->line[w->len++] = c;
		return false;
	}
	w->line[w->len] = 0;
	w->len = 0;
	/* The closing line repeats the banner: it ends a report, never starts one. */
	if (strstr(w->line, PANIC_END))
		return w->panicked;
	const char *banner = strstr(w->line, PANIC_BANNER);
	if (banner && !w->panicked) {
		w->panicked = true;
		snprintf(w->reason, sizeof w->reason, "%s", banner + strlen(PANIC_BANNER));
	}
	return false;
}
