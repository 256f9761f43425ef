/*
 * backoff.c - exponential backoff with full jitter and Retry-After
 * parsing.  See backoff.h.
 *
 * Full jitter ("sleep = random_between(0, min(cap, base * 2^n))", the AWS
 * architecture blog's name) spreads retries of many pushes that failed
 * together, which FCM asks for ("independent random jitter").
 */
#include "base/backoff.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define USEC 1000000LL
#define RETRY_AFTER_MAX_S (366LL * 24 * 3600)

uint64_t backoff_rand_default(void *arg)
{
	static uint64_t state;

	(void)arg;
	if (state == 0) {
		if (getrandom(&state, sizeof state, 0) != sizeof state)
			state = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
		if (state == 0)
			state = 0x2545f4914f6cdd1dULL;
	}
	/* xorshift64* */
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 0x2545f4914f6cdd1dULL;
}

int64_t backoff_delay_us(int attempt, int64_t base_us, int64_t cap_us,
			 backoff_rand_fn rnd, void *rnd_arg)
{
	int64_t ceil = base_us;
	uint64_t r;
	int i;

	if (base_us <= 0 || cap_us <= 0)
		return 0;
	if (attempt < 1)
		attempt = 1;
	/* Doubling stops at the cap, so this cannot overflow. */
	for (i = 1; i < attempt && ceil < cap_us; i++)
		ceil = ceil > cap_us / 2 ? cap_us : ceil * 2;
	if (ceil > cap_us)
		ceil = cap_us;
	r = (rnd != NULL ? rnd : backoff_rand_default)(rnd_arg);
	return (int64_t)(r % ((uint64_t)ceil + 1));
}

/* Parse an HTTP-date (three forms) into seconds since the epoch. */
static int parse_http_date(const char *s, time_t *out)
{
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT",   /* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT",   /* RFC 850 */
		"%a %b %e %H:%M:%S %Y",        /* asctime */
	};
	size_t i;

	for (i = 0; i < sizeof fmts / sizeof *fmts; i++) {
		struct tm tm;
		const char *end;

		memset(&tm, 0, sizeof tm);
		end = strptime(s, fmts[i], &tm);
		if (end == NULL)
			continue;
		while (*end == ' ' || *end == '\t')
			end++;
		if (*end != '\0')
			continue;
		*out = timegm(&tm);
		return 0;
	}
	return -EINVAL;
}

int backoff_parse_retry_after(const char *value, int64_t now_us,
			      int64_t *at_us)
{
	char buf[64];
	size_t len;
	const char *p;

	if (value == NULL)
		return -EINVAL;
	while (*value == ' ' || *value == '\t')
		value++;
	len = strlen(value);
	while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t' ||
			   value[len - 1] == '\r' || value[len - 1] == '\n'))
		len--;
	if (len == 0 || len >= sizeof buf)
		return -EINVAL;
	memcpy(buf, value, len);
	buf[len] = '\0';

	if (isdigit((unsigned char)buf[0])) {
		long long secs = 0;

		for (p = buf; *p != '\0'; p++) {
			if (!isdigit((unsigned char)*p))
				return -EINVAL;
			if (secs < RETRY_AFTER_MAX_S)
				secs = secs * 10 + (*p - '0');
		}
		if (secs > RETRY_AFTER_MAX_S)
			secs = RETRY_AFTER_MAX_S;
		*at_us = now_us + secs * USEC;
		return 0;
	} else {
		time_t t;
		int64_t when;

		if (parse_http_date(buf, &t) < 0)
			return -EINVAL;
		when = (int64_t)t * USEC;
		*at_us = when > now_us ? when : now_us;
		return 0;
	}
}

bool backoff_retry_too_old(int64_t enqueued_at_us, int64_t max_age_us,
			   int64_t now_us)
{
	if (max_age_us <= 0 || enqueued_at_us <= 0)
		return false;
	return now_us - enqueued_at_us > max_age_us;
}
