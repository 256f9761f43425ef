/*
 * hdrcheck.c - checks on values that go into headers and URLs (see
 * hdrcheck.h for why).  Byte by byte; ASCII only decides.
 */
#include "net/hdrcheck.h"

#include <string.h>
#include <strings.h>

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

bool hdrcheck_value_ok(const char *v)
{
	size_t n;

	if (v == NULL)
		return false;
	n = strlen(v);
	if (n > 0 && (v[0] == ' ' || v[n - 1] == ' '))
		return false;
	for (; *v != '\0'; v++)
		if (is_ctl((unsigned char)*v))
			return false;
	return true;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

bool hdrcheck_segment_ok(const char *s)
{
	const char *p;

	if (s == NULL || s[0] == '\0' || strcmp(s, ".") == 0 ||
	    strcmp(s, "..") == 0)
		return false;
	for (p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~!$&'()*+,;=:@", c))
			continue;
		if (c == '%' && is_hex(p[1]) && is_hex(p[2])) {
			p += 2;
			continue;
		}
		return false;
	}
	return true;
}

bool hdrcheck_url_ok(const char *u)
{
	if (u == NULL || strncasecmp(u, "https://", 8) != 0)
		return false;
	for (; *u != '\0'; u++)
		if ((unsigned char)*u <= 0x20 || (unsigned char)*u >= 0x7f)
			return false;
	return true;
}
