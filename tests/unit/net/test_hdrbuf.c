/*
 * test_hdrbuf.c - response headers as both HTTP clients keep them
 * (http__header_add, h2.h): "name\0value\0" pairs in a struct buf capped
 * at HTTP_HEADERS_MAX; a pair that does not fit is dropped whole and a
 * later one that fits is still kept.
 */
#include <string.h>

#include "net/h2.h"
#include "base/buf.h"
#include "tap.h"

int main(void)
{
	struct buf b;
	static char big[HTTP_HEADERS_MAX];
	size_t before;

	buf_init(&b, HTTP_HEADERS_MAX);
	http__header_add(&b, "apns-id", 7, "abc", 3);
	http__header_add(&b, "retry-after", 11, "", 0);
	is_int((long long)b.len, 7 + 1 + 3 + 1 + 11 + 1 + 0 + 1,
	       "two pairs, each name and value NUL-terminated");
	ok(memcmp(b.data, "apns-id\0abc\0retry-after\0\0", b.len) == 0,
	   "in the order added");

	memset(big, 'x', sizeof big);
	before = b.len;
	http__header_add(&b, "x-big", 5, big, sizeof big - 16);
	is_int((long long)b.len, (long long)before,
	       "a pair past HTTP_HEADERS_MAX is dropped whole");
	ok(!buf_full(&b), "without marking the buffer full");
	http__header_add(&b, "x-small", 7, "1", 1);
	is_int((long long)b.len, (long long)(before + 7 + 1 + 1 + 1),
	       "a later pair that fits is kept");

	buf_reset(&b);
	http__header_add(&b, "a", 1, big, HTTP_HEADERS_MAX - 3);
	is_int((long long)b.len, HTTP_HEADERS_MAX,
	       "a pair filling the cap exactly fits");
	buf_free(&b);
	return done_testing();
}
