/* check.h - the few assertion macros of mqseal's unit tests. A failed CHECK prints where and
 * what, and makes the test's main return 1 (via check_failures); it does not stop the test. */
#ifndef PX_CHECK_H
#define PX_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			check_failures++;                                              \
		}                                                                      \
	} while (0)

#define CHECK_EQ(a, b)                                                                 \
	do {                                                                           \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);        \
		if (check_a_ != check_b_) {                                            \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", \
				__FILE__, __LINE__, #a, #b, check_a_, check_b_);       \
			check_failures++;                                              \
		}                                                                      \
	} while (0)

#define CHECK_MEM(a, b, n)                                                             \
	do {                                                                           \
		if (memcmp((a), (b), (n)) != 0) {                                      \
			fprintf(stderr, "%s:%d: CHECK_MEM failed: %s vs %s (%zu bytes)\n", \
				__FILE__, __LINE__, #a, #b, (size_t)(n));              \
			check_failures++;                                              \
		}                                                                      \
	} while (0)

#define CHECK_DONE()                                                                   \
	do {                                                                           \
		if (check_failures)                                                    \
			fprintf(stderr, "%d check(s) failed\n", check_failures);       \
		return check_failures ? 1 : 0;                                         \
	} while (0)

/* Decodes a hex string into out (at most cap bytes); returns the byte count or -1. */
static inline long check_unhex(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = strlen(hex), i;
	if (n % 2 || n / 2 > cap)
		return -1;
	for (i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return (long)(n / 2);
}

#endif
