/*
 * test_xml.c - the XML writer: structure, escaping of markup characters
 * in text and attributes, UTF-8 passed through, and repair of what XML
 * 1.0 cannot carry (invalid UTF-8, control characters, U+FFFE).
 */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "platforms/xml.h"

static char *esc(const char *s, size_t n)
{
	struct xml x;

	xml_init(&x);
	xml_escape(&x, s, n);
	return xml_finish(&x, NULL);
}

static void check_esc(const char *in, size_t n, const char *want,
		      const char *name)
{
	char *got = esc(in, n);

	is_str(got, want, "%s", name);
	free(got);
}

int main(void)
{
	struct xml x;
	char *doc;
	size_t len;

	plan(16);

	xml_init(&x);
	xml_decl(&x);
	xml_open(&x, "toast");
	xml_attr(&x, "launch", "{\"a\":\"<b & 'c'>\"}");
	xml_open(&x, "visual");
	xml_elem_text(&x, "text", "Tom & Jerry <3 \"quotes\"");
	xml_elem_text(&x, "text", NULL);
	xml_open(&x, "image");
	xml_attr(&x, "src", "https://x/y.png?a=1&b=2");
	xml_close(&x);
	doc = xml_finish(&x, &len);
	is_str(doc, "<?xml version=\"1.0\" encoding=\"utf-8\"?><toast launch="
	       "\"{&quot;a&quot;:&quot;&lt;b &amp; &apos;c&apos;&gt;&quot;}\">"
	       "<visual><text>Tom &amp; Jerry &lt;3 &quot;quotes&quot;</text>"
	       "<image src=\"https://x/y.png?a=1&amp;b=2\"/></visual></toast>",
	       "a document: attributes and text escaped, open elements "
	       "closed by xml_finish, empty ones self-closed");
	is_int((long long)len, (long long)strlen(doc), "its length");
	free(doc);

	xml_init(&x);
	doc = xml_finish(&x, NULL);
	is_str(doc, "", "an empty document is an empty string");
	free(doc);

	check_esc("plain", 5, "plain", "plain ASCII unchanged");
	check_esc("<&>\"'", 5, "&lt;&amp;&gt;&quot;&apos;",
		  "the five markup characters");
	check_esc("Grüße, 日本語, emoji \xF0\x9F\x98\x80",
		  strlen("Grüße, 日本語, emoji \xF0\x9F\x98\x80"),
		  "Grüße, 日本語, emoji \xF0\x9F\x98\x80",
		  "valid UTF-8 (2, 3 and 4 bytes) passes through");
	check_esc("a\xFF" "b", 3, "a\xEF\xBF\xBD" "b",
		  "a stray byte becomes U+FFFD");
	check_esc("\xC3", 1, "\xEF\xBF\xBD", "a truncated sequence at the "
		  "end becomes U+FFFD");
	check_esc("\xC0\xAF", 2, "\xEF\xBF\xBD\xEF\xBF\xBD",
		  "an overlong form is not accepted (each byte U+FFFD)");
	check_esc("\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD",
		  "an encoded surrogate is not accepted");
	check_esc("a\x01\x1F" "b\tc\nd\re", 10, "ab\tc\nd\re",
		  "control characters dropped, tab/newline/CR kept");
	check_esc("x\xEF\xBF\xBEy", 5, "x\xEF\xBF\xBDy",
		  "U+FFFE (not an XML character) becomes U+FFFD");
	check_esc("a\0b", 3, "ab", "a NUL inside the length is dropped");
	check_esc("", 0, "", "empty input");

	/* Past XML_MAX_LEN: no document, the builder fails the push. */
	{
		size_t n = XML_MAX_LEN / 2;
		char *big = malloc(n + 1);

		memset(big, '&', n);
		big[n] = '\0';
		xml_init(&x);
		xml_elem_text(&x, "text", big);
		len = 7;
		ok(xml_finish(&x, &len) == NULL, "a document past the cap: "
		   "NULL");
		is_int((long long)len, 7, "  no length");
		free(big);
	}
	return done_testing();
}
