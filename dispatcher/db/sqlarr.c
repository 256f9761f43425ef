/*
 * sqlarr.c - see sqlarr.h.  The buffer always holds "{" plus the elements
 * so far; sqlarr_text() appends the closing brace in place (and the next
 * add takes it off again), so reading the text costs nothing.
 *
 * The buffer has no cap (BUF_NO_CAP): what goes in is one batch of the
 * daemon's own rows (at most --batch-size of them, each a number or a
 * short string it already holds), never bytes from a peer, so the size is
 * bounded by memory the process already uses; a cap below that could
 * only cut a valid batch.  A literal beyond PostgreSQL's 1 GB limit for
 * one value is refused by the server with an error the query reports.
 */
#include "db/sqlarr.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sqlarr_reset(struct sqlarr *a)
{
	buf_reset(&a->text);
	buf_addc(&a->text, '{');
	a->count = 0;
	a->closed = false;
}

/* Before an element: start the array if need be, reopen it, a comma. */
static void sep(struct sqlarr *a)
{
	if (a->text.len == 0)
		sqlarr_reset(a);
	if (a->closed) {
		/* Take off the "}" of sqlarr_text(); the NUL moves with it. */
		a->text.data[--a->text.len] = '\0';
		a->closed = false;
	}
	if (a->count++ > 0)
		buf_addc(&a->text, ',');
}

static void raw(struct sqlarr *a, const char *s, size_t n)
{
	buf_add(&a->text, s, n);
}

/*
 * Decimal digits of `v` written backwards from `end`; the start.  By
 * hand: an ack formats a dozen numbers per row, on the loop's hot path,
 * and snprintf() costs far more per number.
 */
static char *utoa_back(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return end;
}

static uint64_t magnitude(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

void sqlarr_add_int(struct sqlarr *a, int64_t v)
{
	char tmp[24], *end = tmp + sizeof tmp, *p;

	p = utoa_back(end, magnitude(v));
	if (v < 0)
		*--p = '-';
	sep(a);
	raw(a, p, (size_t)(end - p));
}

void sqlarr_add_milli(struct sqlarr *a, int64_t v)
{
	char tmp[32], *end = tmp + sizeof tmp, *p;
	uint64_t m = magnitude(v);

	p = utoa_back(end, 1000 + m % 1000);   /* "1ddd": keeps the zeros */
	*p = '.';
	p = utoa_back(p, m / 1000);
	if (v < 0)
		*--p = '-';
	sep(a);
	raw(a, p, (size_t)(end - p));
}

void sqlarr_add_double(struct sqlarr *a, double v)
{
	char tmp[64];
	int n = snprintf(tmp, sizeof tmp, "%.17g", v);

	sep(a);
	raw(a, tmp, (size_t)n);
}

void sqlarr_add_null(struct sqlarr *a)
{
	sep(a);
	raw(a, "NULL", 4);
}

void sqlarr_add_str(struct sqlarr *a, const char *s)
{
	size_t n;

	if (s == NULL) {
		sqlarr_add_null(a);
		return;
	}
	sep(a);
	buf_addc(&a->text, '"');
	/* Runs without a " or \ go in whole; each of those gets a \. */
	while (*s) {
		n = strcspn(s, "\"\\");
		buf_add(&a->text, s, n);
		s += n;
		if (*s) {
			buf_addc(&a->text, '\\');
			buf_addc(&a->text, *s++);
		}
	}
	buf_addc(&a->text, '"');
}

const char *sqlarr_text(struct sqlarr *a)
{
	if (a->text.len == 0)
		sqlarr_reset(a);
	if (!a->closed) {
		buf_addc(&a->text, '}');
		a->closed = true;
	}
	return buf_str(&a->text);
}

void sqlarr_free(struct sqlarr *a)
{
	buf_free(&a->text);
	memset(a, 0, sizeof *a);
}
