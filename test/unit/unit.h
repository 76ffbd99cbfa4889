/*
 * unit.h - a tiny assertion harness for the pure C core.
 *
 * Each CHECK counts as one test.  A failing check prints where and why and
 * the run goes on, so one broken case does not hide the others.  main()
 * ends with UNIT_DONE(), which prints "<file>: N passed, N failed" (the
 * line test/run.sh adds up) and sets the exit status.
 */
#ifndef BILLING_UNIT_H
#define BILLING_UNIT_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int	unit_passed;
static int	unit_failed;

#define CHECK(cond) \
	do { \
		if (cond) \
			unit_passed++; \
		else \
		{ \
			unit_failed++; \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		} \
	} while (0)

#define CHECK_I64(got, want) \
	do { \
		int64_t g_ = (int64_t) (got), w_ = (int64_t) (want); \
		if (g_ == w_) \
			unit_passed++; \
		else \
		{ \
			unit_failed++; \
			fprintf(stderr, "FAIL %s:%d: %s = %" PRId64 ", want %" PRId64 "\n", \
					__FILE__, __LINE__, #got, g_, w_); \
		} \
	} while (0)

#define CHECK_STR(got, want) \
	do { \
		const char *g_ = (got), *w_ = (want); \
		if (g_ && w_ && strcmp(g_, w_) == 0) \
			unit_passed++; \
		else \
		{ \
			unit_failed++; \
			fprintf(stderr, "FAIL %s:%d: %s = \"%s\", want \"%s\"\n", \
					__FILE__, __LINE__, #got, g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
		} \
	} while (0)

/* xorshift64: a reproducible pseudo-random stream for property loops */
static uint64_t unit_rng_state = 0x9e3779b97f4a7c15ULL;

static inline uint64_t
unit_rng(void)
{
	unit_rng_state ^= unit_rng_state << 13;
	unit_rng_state ^= unit_rng_state >> 7;
	unit_rng_state ^= unit_rng_state << 17;
	return unit_rng_state;
}

#define UNIT_DONE() \
	(printf("%s: %d passed, %d failed\n", __FILE__, unit_passed, unit_failed), \
	 unit_failed == 0 ? 0 : 1)

#endif
