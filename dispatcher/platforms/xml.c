/*
 * xml.c - see xml.h.  The UTF-8 check follows RFC 3629 (no overlong
 * forms, nothing above U+10FFFF, no surrogates).
 */
#include "platforms/xml.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


static void put(struct xml *x, const char *s, size_t n)
{
	/* Past the cap: xml_finish() reports it. */
	(void)buf_add(&x->b, s, n);
}

static void puts_(struct xml *x, const char *s)
{
	put(x, s, strlen(s));
}

void xml_init(struct xml *x)
{
	memset(x, 0, sizeof *x);
	buf_init(&x->b, XML_MAX_LEN);
}

void xml_decl(struct xml *x)
{
	puts_(x, "<?xml version=\"1.0\" encoding=\"utf-8\"?>");
}

/* End a start tag still open, before content. */
static void end_tag(struct xml *x)
{
	if (x->in_tag) {
		put(x, ">", 1);
		x->in_tag = false;
	}
}

void xml_open(struct xml *x, const char *name)
{
	assert(x->depth < XML_MAX_DEPTH);
	end_tag(x);
	put(x, "<", 1);
	puts_(x, name);
	x->names[x->depth++] = name;
	x->in_tag = true;
}

void xml_attr(struct xml *x, const char *name, const char *value)
{
	assert(x->in_tag);
	put(x, " ", 1);
	puts_(x, name);
	put(x, "=\"", 2);
	xml_escape(x, value, strlen(value));
	put(x, "\"", 1);
}

void xml_text(struct xml *x, const char *text)
{
	assert(x->depth > 0);
	end_tag(x);
	xml_escape(x, text, strlen(text));
}

void xml_close(struct xml *x)
{
	assert(x->depth > 0);
	x->depth--;
	if (x->in_tag) {
		put(x, "/>", 2);
		x->in_tag = false;
		return;
	}
	put(x, "</", 2);
	puts_(x, x->names[x->depth]);
	put(x, ">", 1);
}

void xml_elem_text(struct xml *x, const char *name, const char *text)
{
	if (text == NULL)
		return;
	xml_open(x, name);
	xml_text(x, text);
	xml_close(x);
}

char *xml_finish(struct xml *x, size_t *len)
{
	char *out = NULL;

	while (x->depth > 0)
		xml_close(x);
	if (!buf_full(&x->b)) {
		if (len != NULL)
			*len = x->b.len;
		out = buf_take(&x->b);
	}
	xml_free(x);
	return out;
}

void xml_free(struct xml *x)
{
	buf_free(&x->b);
	memset(x, 0, sizeof *x);
}

/*
 * Length of the valid UTF-8 sequence at s (n bytes left) and its code
 * point, or 0 when the bytes there are not valid UTF-8.
 */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c;
	size_t len, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		len = 2;
		c = s[0] & 0x1F;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		len = 3;
		c = s[0] & 0x0F;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		len = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

void xml_escape(struct xml *x, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;

	/* Copy runs of plain bytes at once; handle the rest one by one. */
	while (i < n) {
		uint32_t cp = 0;
		size_t len = utf8_seq(s + i, n - i, &cp);
		const char *rep = NULL;

		if (len == 0)
			rep = "\xEF\xBF\xBD";            /* U+FFFD */
		else if (cp == '&')
			rep = "&amp;";
		else if (cp == '<')
			rep = "&lt;";
		else if (cp == '>')
			rep = "&gt;";
		else if (cp == '"')
			rep = "&quot;";
		else if (cp == '\'')
			rep = "&apos;";
		else if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r')
			rep = "";                       /* not XML 1.0 */
		else if (cp == 0xFFFE || cp == 0xFFFF)
			rep = "\xEF\xBF\xBD";
		if (rep == NULL) {
			run += len;
			i += len;
			continue;
		}
		put(x, (const char *)s + i - run, run);
		run = 0;
		puts_(x, rep);
		i += len ? len : 1;
	}
	put(x, (const char *)s + i - run, run);
}
