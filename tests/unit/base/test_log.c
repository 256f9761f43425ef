/*
 * test_log.c - unit tests for log.c: level names, filtering, quoting,
 * the one-line rule and the line cap.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "tap.h"

/* What one log_emit call writes; free the result. */
static char *emit(enum log_level level, const char *msg, const char *kv,
		  const char *s, int i)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	log_set_output(out);
	log_emit(level, msg, kv, s, i);
	log_set_output(NULL);
	fclose(out);
	return buf;
}

static void test_levels(void)
{
	static const char *const names[] = { "debug", "info", "warn",
					     "error" };
	enum log_level l = LOG_LEVEL_ERROR;
	size_t i;

	for (i = 0; i < 4; i++) {
		is_int(log_parse_level(names[i], &l), 0, "parses %s",
		       names[i]);
		is_int(l, i, "%s is level %zu", names[i], i);
		is_str(log_level_name(l), names[i], "name of level %zu", i);
	}
	is_int(log_parse_level("warning", &l), -EINVAL, "rejects warning");
	is_int(l, LOG_LEVEL_ERROR, "and leaves the level alone");
	is_str(log_level_name((enum log_level)42), "unknown",
	       "an out-of-range level has a name");
	is_int(log_get_level(), LOG_LEVEL_INFO, "the default level is info");
}

static void test_format(void)
{
	char *line;

	line = emit(LOG_LEVEL_INFO, "applied migration",
		    "file=%s ms=%d", "0001_a.sql", 12);
	ok(strncmp(line, "ts=", 3) == 0, "starts with ts=");
	ok(strlen(line) > 28 && line[13] == 'T' && line[22] == '.' &&
	   line[26] == 'Z',
	   "ts is RFC 3339 UTC with milliseconds");
	like_str(line, " level=info msg=\"applied migration\" "
		 "file=0001_a.sql ms=12\n", "the fields follow");
	ok(strchr(line, '\n') == line + strlen(line) - 1, "one line");
	free(line);

	line = emit(LOG_LEVEL_ERROR, "bad\nthing \"q\"",
		    "error=%s n=%d", "a b=\"c\"\\\n\x01", -3);
	like_str(line, "level=error msg=\"bad\\nthing \\\"q\\\"\"",
		 "msg escaped");
	like_str(line, "error=\"a b=\\\"c\\\"\\\\\\n\\x01\" n=-3\n",
		 "a %%s value with spaces, quotes, newline is quoted");
	ok(strchr(line, '\n') == line + strlen(line) - 1,
	   "still one line");
	free(line);

	line = emit(LOG_LEVEL_WARN, "m", "empty=%s n=%d", "", 1);
	like_str(line, "empty=\"\" n=1", "an empty value is quoted");
	free(line);
	line = emit(LOG_LEVEL_WARN, "m", "v=%s n=%d", NULL, 1);
	like_str(line, "v=null n=1", "a NULL value prints null");
	free(line);
	line = emit(LOG_LEVEL_WARN, "m", "pct=100%% v=%s n=%05d", "x", 42);
	like_str(line, "pct=100% v=x n=00042", "%% and widths work");
	free(line);
}

static void test_filter(void)
{
	char *buf = NULL, *line;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	log_set_output(out);
	log_set_level(LOG_LEVEL_WARN);
	log_debug("d", NULL);
	log_info("i", NULL);
	log_warn("w", NULL);
	log_error("e", NULL);
	log_set_level(LOG_LEVEL_INFO);
	log_set_output(NULL);
	fclose(out);
	ok(strstr(buf, "msg=\"d\"") == NULL, "debug dropped at warn");
	ok(strstr(buf, "msg=\"i\"") == NULL, "info dropped at warn");
	like_str(buf, "level=warn msg=\"w\"\n", "warn kept");
	like_str(buf, "level=error msg=\"e\"\n", "error kept");
	free(buf);

	line = emit(LOG_LEVEL_DEBUG, "d", "x=%s n=%d", "y", 1);
	is_str(line, "", "debug dropped at the default level");
	free(line);
}

static void test_cap(void)
{
	char *big = malloc(3 * LOG_LINE_MAX), *line;

	memset(big, 'x', 3 * LOG_LINE_MAX - 1);
	big[3 * LOG_LINE_MAX - 1] = '\0';
	line = emit(LOG_LEVEL_INFO, "big", "v=%s n=%d", big, 1);
	is_int(strlen(line), LOG_LINE_MAX + 1, "a huge line is capped");
	like_str(line, "xxx...\n", "and ends in ...");
	free(line);
	free(big);
}

int main(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out;

	test_levels();
	test_format();
	test_filter();
	test_cap();

	/* Every supported conversion, checked in one line. */
	out = open_memstream(&buf, &len);
	log_set_output(out);
	log_info("m", "a=%ld b=%lld c=%zu d=%u e=%.2f f=%x g=%c", -1L,
		 1234567890123LL, (size_t)7, 8u, 1.5, 255u, 'z');
	log_set_output(NULL);
	fclose(out);
	like_str(buf, "a=-1 b=1234567890123 c=7 d=8 e=1.50 f=ff g=z\n",
		 "long, long long, size_t, unsigned, double, hex, char");
	free(buf);
	return done_testing();
}
