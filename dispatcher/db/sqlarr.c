/*
 * sqlarr.c - see sqlarr.h.  The buffer always holds "{" plus the elements
 * so far; sqlarr_text() appends the closing brace in place (and the next
 * add overwrites it), so reading the text costs nothing.
 */
#include "db/sqlarr.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static void reserve(struct sqlarr *a, size_t more)
{
	if (a->len + more + 2 <= a->cap)
		return;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->len + more + 2)
		cap *= 2;
	a->buf = mem_realloc(a->buf, cap);
	a->cap = cap;
}

void sqlarr_reset(struct sqlarr *a)
{
	reserve(a, 1);
	a->buf[0] = '{';
	a->len = 1;
	a->count = 0;
}

static void sep(struct sqlarr *a)
{
	if (a->len == 0)
		sqlarr_reset(a);
	if (a->count++ > 0) {
		reserve(a, 1);
		a->buf[a->len++] = ',';
	}
}

static void raw(struct sqlarr *a, const char *s, size_t n)
{
	reserve(a, n);
	memcpy(a->buf + a->len, s, n);
	a->len += n;
}

/*
 * Decimal digits of `v` written backwards from `end`; the start.  By
 * hand: an ack formats a dozen numbers per row, and snprintf() was a
 * few percent of the daemon's instructions.
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
	if (s == NULL) {
		sqlarr_add_null(a);
		return;
	}
	sep(a);
	size_t n = strlen(s);
	reserve(a, 2 * n + 2);
	a->buf[a->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			a->buf[a->len++] = '\\';
		a->buf[a->len++] = s[i];
	}
	a->buf[a->len++] = '"';
}

const char *sqlarr_text(struct sqlarr *a)
{
	if (a->len == 0)
		sqlarr_reset(a);
	reserve(a, 1);
	a->buf[a->len] = '}';
	a->buf[a->len + 1] = '\0';
	return a->buf;
}

void sqlarr_free(struct sqlarr *a)
{
	free(a->buf);
	memset(a, 0, sizeof *a);
}
