/*
 * test_hdrcheck.c - what may go into a header or a URL (hdrcheck.c), the
 * payload nesting limit (sender_parse_payload), and that the senders
 * fail a push carrying a value that is not, instead of sending it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "net/hdrcheck.h"
#include "base/push.h"
#include "platforms/sender.h"
#include "platforms/apns/sender_apns.h"
#include "platforms/fcm/sender_fcm.h"
#include "platforms/mpns/sender_mpns.h"
#include "platforms/wns/sender_wns.h"
#include "tap.h"

#define NOW (1800000000LL * 1000000LL)
#define TOK "0123456789abcdef0123456789abcdef" \
	    "0123456789abcdef0123456789abcdef"

/* {"title":"t","data":{"a":{"a":...}}}: `levels` objects in all. */
static char *nested(int levels)
{
	size_t cap = 64 + (size_t)levels * 16;
	char *s = malloc(cap), *p = s;
	int i;

	p += sprintf(p, "{\"title\":\"t\"");
	for (i = 1; i < levels; i++)
		p += sprintf(p, ",\"%s\":{\"z\":1", i == 1 ? "data" : "a");
	for (i = 1; i < levels; i++)
		*p++ = '}';
	*p++ = '}';
	*p = '\0';
	return s;
}

static void apns_case(const char *name, const char *token,
		      const char *collapse, const char *topic,
		      const char *payload, const char *want_reason)
{
	struct push_item it = { .platform = PUSH_PLATFORM_APNS,
				.priority = PUSH_PRIORITY_NORMAL };
	struct sender_apns_msg msg;
	struct push_result res;
	int rc;

	it.token = (char *)token;
	it.collapse_key = (char *)collapse;
	it.payload = (char *)payload;
	memset(&res, 0, sizeof res);
	rc = sender_apns_build(&it, topic, NOW, &msg, &res);
	if (want_reason == NULL) {
		is_int(rc, 0, "apns: %s is built", name);
		sender_apns_msg_free(&msg);
		return;
	}
	is_int(rc, -22, "apns: %s is not built", name);
	is_int(res.outcome, PUSH_OUTCOME_FAILED, "  %s: failed", name);
	ok(strstr(res.reason, want_reason) != NULL,
	   "  %s: reason '%s' has '%s'", name, res.reason, want_reason);
}

int main(void)
{
	char *ok16 = nested(16), *deep17 = nested(17);
	json_object *o;

	/* header values */
	ok(hdrcheck_value_ok("cart-42"), "a plain collapse key is a value");
	ok(hdrcheck_value_ok(""), "an empty value is a value");
	ok(hdrcheck_value_ok("two words"), "an inner space is fine");
	ok(hdrcheck_value_ok("gr\xc3\xbc\xc3\x9f"), "UTF-8 bytes are fine");
	ok(!hdrcheck_value_ok("ck\r\nx-injected: 1"), "CR LF is refused");
	ok(!hdrcheck_value_ok("ck\nx"), "a lone LF is refused");
	ok(!hdrcheck_value_ok("ck\rx"), "a lone CR is refused");
	ok(!hdrcheck_value_ok("a\tb"), "a tab is refused");
	ok(!hdrcheck_value_ok("a\x01" "b"), "other control characters too");
	ok(!hdrcheck_value_ok("a\x7f"), "and DEL");
	ok(!hdrcheck_value_ok(" ck"), "a leading space is refused");
	ok(!hdrcheck_value_ok("ck "), "a trailing space is refused");
	ok(!hdrcheck_value_ok(NULL), "NULL is not a value");

	/* path segments */
	ok(hdrcheck_segment_ok(TOK), "an APNs token is a segment");
	ok(hdrcheck_segment_ok("pgpush-test_1.x~"), "a project id is one");
	ok(hdrcheck_segment_ok("a%2Fb"), "a %%-escape is fine");
	ok(!hdrcheck_segment_ok("a/b"), "a '/' is refused");
	ok(!hdrcheck_segment_ok("a?b=1"), "a '?' is refused");
	ok(!hdrcheck_segment_ok("a#b"), "a '#' is refused");
	ok(!hdrcheck_segment_ok("a%2"), "a short %%-escape is refused");
	ok(!hdrcheck_segment_ok("a%zz"), "a bad %%-escape is refused");
	ok(!hdrcheck_segment_ok("a b"), "a space is refused");
	ok(!hdrcheck_segment_ok("ab\r\nx: 1"), "CR LF is refused");
	ok(!hdrcheck_segment_ok(".."), "'..' is refused");
	ok(!hdrcheck_segment_ok("."), "'.' is refused");
	ok(!hdrcheck_segment_ok(""), "an empty segment is refused");
	ok(!hdrcheck_segment_ok(NULL), "NULL is refused");

	/* channel URLs */
	ok(hdrcheck_url_ok("https://db5.notify.windows.com/?token=AwYAAAB%2b"),
	   "a WNS channel URL is a URL");
	ok(hdrcheck_url_ok("HTTPS://x.notify.live.net/throttled/01.00/Ab"),
	   "the scheme in any case");
	ok(!hdrcheck_url_ok("http://x.notify.windows.com/?token=a"),
	   "http is refused");
	ok(!hdrcheck_url_ok("https://x/?token=a b"), "a space is refused");
	ok(!hdrcheck_url_ok("https://x/?token=a\r\nx-injected: 1"),
	   "CR LF is refused");
	ok(!hdrcheck_url_ok("https://x/?token=a\x01"),
	   "a control character is refused");
	ok(!hdrcheck_url_ok("https://x/?token=a\x7f"), "DEL is refused");
	ok(!hdrcheck_url_ok("https://x/\xc3\xbc"), "raw UTF-8 is refused");
	ok(!hdrcheck_url_ok(NULL), "NULL is refused");

	/* the payload nesting limit, as the enqueue trigger's */
	o = sender_parse_payload(ok16);
	ok(o != NULL, "a payload nested 16 levels parses");
	json_object_put(o);
	o = sender_parse_payload(deep17);
	ok(o == NULL, "one nested 17 levels does not");
	json_object_put(o);
	is_str(sender_payload_why(deep17),
	       "payload nests deeper than 16 levels of objects and arrays",
	       "and the reason says so");
	is_str(sender_payload_why("[1]"), "payload is not a JSON object",
	       "an array is not an object");
	is_str(sender_payload_why("{"), "payload is not a JSON object",
	       "nor is broken JSON");

	/* the APNs sender: the header and path values it builds from rows */
	apns_case("a good push", TOK, "ck", "com.example.app",
		  "{\"title\":\"t\"}", NULL);
	apns_case("a payload nested 16 levels", TOK, NULL, "com.example.app",
		  ok16, NULL);
	apns_case("a payload nested 17 levels", TOK, NULL, "com.example.app",
		  deep17, "payload nests deeper than 16 levels");
	apns_case("collapse_key with CR LF", TOK, "ck\r\nx-injected: 1",
		  "com.example.app", "{\"title\":\"t\"}",
		  "BadCollapseId: collapse_key is not a valid header value");
	apns_case("collapse_key with a trailing space", TOK, "ck ",
		  "com.example.app", "{\"title\":\"t\"}", "BadCollapseId");
	apns_case("a token with a '/'", "abcd/../../x", NULL,
		  "com.example.app", "{\"title\":\"t\"}",
		  "BadDeviceToken: the device token is not a valid URL path");
	apns_case("a token with CR LF", "abcd\r\nx-injected: 1", NULL,
		  "com.example.app", "{\"title\":\"t\"}", "BadDeviceToken");
	apns_case("a topic with CR LF", TOK, NULL,
		  "com.example.app\r\nx-injected: 1", "{\"title\":\"t\"}",
		  "topic is not a valid header value");
	apns_case("apns.push_type with CR LF", TOK, NULL, "com.example.app",
		  "{\"title\":\"t\",\"apns\":{\"push_type\":"
		  "\"alert\\r\\nx-injected: 1\"}}",
		  "apns.push_type is not a known push type");
	apns_case("apns.priority as a string", TOK, NULL, "com.example.app",
		  "{\"title\":\"t\",\"apns\":{\"priority\":\"10\\r\\nx: 1\"}}",
		  "apns.priority must be 10, 5 or 1");

	free(ok16);
	free(deep17);
	return done_testing();
}
