/*
 * test_backoff.c - unit tests for backoff.c: full-jitter bounds, the
 * doubling and the cap, and every Retry-After form.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/backoff.h"
#include "tap.h"

#define S 1000000LL

/* A random source that always returns *arg. */
static uint64_t fixed(void *arg)
{
	return *(uint64_t *)arg;
}

static void test_delay(void)
{
	uint64_t r = 0;
	int64_t lo = INT64_MAX, hi = 0, d;
	int i, bad = 0;

	is_int(backoff_delay_us(1, S, 60 * S, fixed, &r), 0,
	       "random 0 gives no delay");
	r = S;
	is_int(backoff_delay_us(1, S, 60 * S, fixed, &r), S,
	       "attempt 1: at most the base");
	r = 4 * S;
	is_int(backoff_delay_us(3, S, 60 * S, fixed, &r), 4 * S,
	       "attempt 3: at most base * 4");
	r = 4 * S + 1;
	is_int(backoff_delay_us(3, S, 60 * S, fixed, &r), 0,
	       "attempt 3: the range is [0, base * 4]");
	r = 60 * S;
	is_int(backoff_delay_us(30, S, 60 * S, fixed, &r), 60 * S,
	       "attempt 30: capped");
	r = UINT64_MAX;
	d = backoff_delay_us(1000000, S, 60 * S, fixed, &r);
	ok(d >= 0 && d <= 60 * S, "a huge attempt neither overflows nor "
	   "passes the cap (%lld)", (long long)d);
	r = 3;
	is_int(backoff_delay_us(0, S, 60 * S, fixed, &r), 3,
	       "attempt 0 counts as 1");
	is_int(backoff_delay_us(1, 0, 60 * S, fixed, &r), 0, "base 0");
	is_int(backoff_delay_us(1, S, 0, fixed, &r), 0, "cap 0");
	r = 7 * S;
	is_int(backoff_delay_us(1, 10 * S, 5 * S, fixed, &r),
	       7 * S % (5 * S + 1), "a base above the cap is capped");

	for (i = 0; i < 2000; i++) {
		d = backoff_delay_us(4, S, 60 * S, NULL, NULL);
		if (d < 0 || d > 8 * S)
			bad++;
		if (d < lo)
			lo = d;
		if (d > hi)
			hi = d;
	}
	is_int(bad, 0, "default source: every delay within [0, 8 s]");
	ok(lo < 2 * S && hi > 6 * S, "and spread over the range "
	   "(%lld..%lld)", (long long)lo, (long long)hi);
}

static void test_retry_after(void)
{
	/* 1994-11-06 08:49:37 UTC */
	const int64_t date = 784111777LL * S;
	int64_t now = date - 100 * S, at = -1;

	is_int(backoff_parse_retry_after("120", now, &at), 0, "delta");
	is_int(at, now + 120 * S, "delta is added to now");
	is_int(backoff_parse_retry_after(" 0 \r\n", now, &at), 0,
	       "blanks around");
	is_int(at, now, "0 means now");
	is_int(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
					 now, &at), 0, "IMF-fixdate");
	is_int(at, date, "IMF-fixdate value");
	at = -1;
	is_int(backoff_parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT",
					 now, &at), 0, "RFC 850 date");
	is_int(at, date, "RFC 850 value");
	at = -1;
	is_int(backoff_parse_retry_after("Sun Nov  6 08:49:37 1994", now,
					 &at), 0, "asctime date");
	is_int(at, date, "asctime value");
	is_int(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
					 date + 50 * S, &at), 0, "past date");
	is_int(at, date + 50 * S, "a past date means now");
	is_int(backoff_parse_retry_after("99999999999999999999999", now,
					 &at), 0, "huge delta");
	is_int(at, now + 366LL * 24 * 3600 * S, "capped at a year");

	at = 42;
	is_int(backoff_parse_retry_after(NULL, now, &at), -EINVAL, "NULL");
	is_int(backoff_parse_retry_after("", now, &at), -EINVAL, "empty");
	is_int(backoff_parse_retry_after("soon", now, &at), -EINVAL, "word");
	is_int(backoff_parse_retry_after("12a", now, &at), -EINVAL,
	       "digits then junk");
	is_int(backoff_parse_retry_after("-5", now, &at), -EINVAL,
	       "negative");
	is_int(backoff_parse_retry_after("1.5", now, &at), -EINVAL,
	       "fraction");
	is_int(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT x",
					 now, &at), -EINVAL, "date then junk");
	is_int(at, 42, "failures leave the output alone");
}

int main(void)
{
	test_delay();
	test_retry_after();
	return done_testing();
}
