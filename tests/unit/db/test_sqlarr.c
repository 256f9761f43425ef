/*
 * test_sqlarr.c - unit tests for sqlarr.c on its struct buf: a zeroed
 * struct works, the closing brace comes off again when more is added,
 * reset keeps nothing of the old array, long strings are escaped whole,
 * and an array far larger than any batch is built without a cut.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/sqlarr.h"
#include "tap.h"

static void test_reopen(void)
{
	struct sqlarr a = {0};

	is_str(sqlarr_text(&a), "{}", "a zeroed struct reads as {}");
	is_str(sqlarr_text(&a), "{}", "reading twice changes nothing");
	sqlarr_add_int(&a, 7);
	is_str(sqlarr_text(&a), "{7}", "an add after reading reopens");
	sqlarr_add_null(&a);
	sqlarr_add_milli(&a, 1500);
	is_str(sqlarr_text(&a), "{7,NULL,1.500}", "and goes on with commas");
	sqlarr_reset(&a);
	is_int((long long)a.count, 0, "reset: no elements");
	is_str(sqlarr_text(&a), "{}", "reset: nothing of the old array");
	sqlarr_free(&a);
	sqlarr_add_str(&a, "x");
	is_str(sqlarr_text(&a), "{\"x\"}", "usable again after free");
	sqlarr_free(&a);
}

static void test_escapes(void)
{
	struct sqlarr a = {0};
	char in[4001], want[8010];
	size_t i, n = 0;

	for (i = 0; i < sizeof(in) - 1; i++)
		in[i] = "ab\"c\\"[i % 5];
	in[sizeof(in) - 1] = '\0';
	want[n++] = '{';
	want[n++] = '"';
	for (i = 0; in[i]; i++) {
		if (in[i] == '"' || in[i] == '\\')
			want[n++] = '\\';
		want[n++] = in[i];
	}
	want[n++] = '"';
	want[n++] = '}';
	want[n] = '\0';
	sqlarr_add_str(&a, in);
	is_str(sqlarr_text(&a), want, "a long string with quotes and "
	       "backslashes is escaped whole");
	sqlarr_reset(&a);
	sqlarr_add_str(&a, "\"\\");
	is_str(sqlarr_text(&a), "{\"\\\"\\\\\"}", "only specials");
	sqlarr_free(&a);
}

static void test_large(void)
{
	struct sqlarr a = {0};
	const char *t;
	size_t len;
	int i;

	/* Twenty times the largest --batch-size (10000). */
	for (i = 0; i < 200000; i++)
		sqlarr_add_int(&a, INT64_MIN);
	t = sqlarr_text(&a);
	len = strlen(t);
	is_int((long long)len, 2 + 200000LL * 21 - 1,
	       "200000 elements: nothing cut");
	ok(t[len - 1] == '}' && t[len - 2] == '8', "ends with the last "
	   "element and the brace");
	sqlarr_free(&a);
}

int main(void)
{
	test_reopen();
	test_escapes();
	test_large();
	return done_testing();
}
