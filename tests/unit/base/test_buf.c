/*
 * test_buf.c - unit tests for buf.c: growth, the hard cap and its one
 * sticky error, printf, take and reset.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "tap.h"

static void test_grow(void)
{
	struct buf b;
	char big[5000];

	buf_init(&b, BUF_NO_CAP);
	is_str(buf_str(&b), "", "an empty buffer reads as \"\"");
	is_int(buf_addstr(&b, "abc"), 0, "append");
	is_int(buf_addc(&b, '-'), 0, "append a byte");
	is_int(buf_printf(&b, "%d/%s", 42, "x"), 0, "printf");
	is_str(buf_str(&b), "abc-42/x", "contents in order, NUL-terminated");
	memset(big, 'z', sizeof big);
	is_int(buf_add(&b, big, sizeof big), 0, "a large append grows it");
	is_int((long long)b.len, 8 + 5000, "length counts every byte");
	is_int(b.data[b.len], 0, "still NUL-terminated");
	buf_free(&b);
}

static void test_cap(void)
{
	struct buf b;

	buf_init(&b, 10);
	is_int(buf_addstr(&b, "0123456789"), 0, "exactly the cap fits");
	is_int(buf_addc(&b, 'x'), -ENOSPC, "one byte more is refused");
	ok(buf_full(&b), "the buffer says it is full");
	is_str(buf_str(&b), "0123456789", "what was there stays");
	buf_reset(&b);
	ok(!buf_full(&b), "reset clears full");
	is_int(buf_addstr(&b, "01234"), 0, "half");
	is_int(buf_printf(&b, "%s", "abcdef"), -ENOSPC,
	       "a printf past the cap is refused");
	is_str(buf_str(&b), "01234", "and appends nothing");
	is_int(buf_addstr(&b, "a"), -ENOSPC,
	       "every append after an overflow fails (one error)");
	buf_free(&b);
}

static void test_take(void)
{
	struct buf b;
	char *s;

	buf_init(&b, 100);
	s = buf_take(&b);
	is_str(s, "", "taking an empty buffer gives \"\"");
	free(s);
	buf_printf(&b, "%s", "hello");
	s = buf_take(&b);
	is_str(s, "hello", "take hands the string over");
	is_int((long long)b.len, 0, "and leaves the buffer empty");
	is_int((long long)b.max, 100, "with its cap");
	free(s);
	buf_addstr(&b, "secret");
	buf_wipe_free(&b);
	ok(b.data == NULL && b.len == 0, "wipe_free releases");
}

static void test_truncate_big_printf(void)
{
	struct buf b;

	buf_init(&b, BUF_NO_CAP);
	/* Longer than any first guess: formatted again after growing. */
	is_int(buf_printf(&b, "%0300d", 7), 0, "a long printf");
	is_int((long long)b.len, 300, "all of it");
	ok(b.data[299] == '7' && b.data[0] == '0', "formatted right");
	buf_truncate(&b, 2);
	is_str(buf_str(&b), "00", "truncate shortens");
	buf_truncate(&b, 10);
	is_str(buf_str(&b), "00", "truncate never lengthens");
	buf_free(&b);
}

int main(void)
{
	test_truncate_big_printf();
	test_grow();
	test_cap();
	test_take();
	return tap_done_testing();
}
