/* Small helpers every module uses: always-on assertions and the like. */
#ifndef BT86_UTIL_H
#define BT86_UTIL_H

#include <stdio.h>
#include <stdlib.h>

/* Internal invariants: on in every build; a failure is a monitor bug. */
#define BT86_ASSERT(cond)                                                                  \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "bt86: internal error: %s:%d: %s\n", __FILE__, __LINE__, \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
