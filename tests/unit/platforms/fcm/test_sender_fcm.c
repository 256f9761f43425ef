/*
 * test_sender_fcm.c - table tests of the FCM sender's pure halves: the
 * neutral payload -> v1 message mapping (exact JSON out), and the
 * classification of every row of PROTOCOLS.md 2.7 plus malformed bodies.
 * Also sender_for().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platforms/fcm/auth_fcm.h"
#include "base/push.h"
#include "platforms/sender.h"
#include "platforms/fcm/sender_fcm.h"
#include "tap.h"

#define S 1000000LL
#define NOW (1800000000LL * S)

struct map_case {
	const char *name;
	const char *payload;
	enum push_priority prio;
	const char *collapse;
	int64_t expires_at_us;
	/* expected: a body, or an outcome and a reason */
	const char *body;
	enum push_outcome outcome;
	const char *reason;
};

static const struct map_case map_cases[] = {
	{ "title and body", "{\"title\":\"Hi\",\"body\":\"There\"}",
	  PUSH_PRIORITY_NORMAL, NULL, 0,
	  "{\"message\":{\"token\":\"tok-1\",\"notification\":{\"title\":"
	  "\"Hi\",\"body\":\"There\"},\"android\":{\"priority\":\"NORMAL\"}}}",
	  0, NULL },
	{ "empty payload, low priority", "{}", PUSH_PRIORITY_LOW, NULL, 0,
	  "{\"message\":{\"token\":\"tok-1\",\"android\":{\"priority\":"
	  "\"NORMAL\"}}}", 0, NULL },
	{ "data values become strings",
	  "{\"data\":{\"s\":\"x/y\",\"n\":1,\"f\":1.5,\"b\":true,"
	  "\"o\":{\"a\":[1,\"2\"]},\"z\":null}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0,
	  "{\"message\":{\"token\":\"tok-1\",\"data\":{\"s\":\"x/y\",\"n\":"
	  "\"1\",\"f\":\"1.5\",\"b\":\"true\",\"o\":\"{\\\"a\\\":[1,\\\"2\\\"]}"
	  "\",\"z\":\"null\"},\"android\":{\"priority\":\"NORMAL\"}}}",
	  0, NULL },
	{ "everything mapped",
	  "{\"title\":\"T\",\"body\":\"B\",\"image\":\"https://i/x.png\","
	  "\"badge\":3,\"sound\":\"ding\",\"category\":\"CAT\","
	  "\"thread_id\":\"th\",\"subtitle\":\"Sub\",\"data\":{\"k\":\"v\"},"
	  "\"apns\":{\"ignored\":true}}",
	  PUSH_PRIORITY_HIGH, "ck", NOW + 3600 * S,
	  "{\"message\":{\"token\":\"tok-1\",\"notification\":{\"title\":"
	  "\"T\",\"body\":\"B\",\"image\":\"https://i/x.png\"},\"data\":"
	  "{\"k\":\"v\"},\"android\":{\"collapse_key\":\"ck\",\"priority\":"
	  "\"HIGH\",\"ttl\":\"3600s\",\"notification\":{\"sound\":\"ding\","
	  "\"notification_count\":3,\"click_action\":\"CAT\"}},\"apns\":"
	  "{\"headers\":{\"apns-collapse-id\":\"ck\",\"apns-expiration\":"
	  "\"1800003600\"},\"payload\":{\"aps\":{\"alert\":{\"title\":\"T\","
	  "\"body\":\"B\",\"subtitle\":\"Sub\"},\"badge\":3,\"sound\":"
	  "\"ding\",\"category\":\"CAT\",\"thread-id\":\"th\"}}}}}",
	  0, NULL },
	{ "ttl clamped to 4 weeks", "{}", PUSH_PRIORITY_HIGH, NULL,
	  NOW + 10LL * 7 * 86400 * S,
	  "{\"message\":{\"token\":\"tok-1\",\"android\":{\"priority\":"
	  "\"HIGH\",\"ttl\":\"2419200s\"},\"apns\":{\"headers\":"
	  "{\"apns-expiration\":\"1806048000\"}}}}", 0, NULL },
	{ "ttl under a second is 0s", "{}", PUSH_PRIORITY_NORMAL, NULL,
	  NOW + S / 2,
	  "{\"message\":{\"token\":\"tok-1\",\"android\":{\"priority\":"
	  "\"NORMAL\",\"ttl\":\"0s\"},\"apns\":{\"headers\":"
	  "{\"apns-expiration\":\"1800000000\"}}}}", 0, NULL },
	{ "long collapse key: android only", "{}", PUSH_PRIORITY_NORMAL,
	  "0123456789012345678901234567890123456789012345678901234567890"
	  "12345", 0,
	  "{\"message\":{\"token\":\"tok-1\",\"android\":{\"collapse_key\":"
	  "\"012345678901234567890123456789012345678901234567890123456789"
	  "012345\",\"priority\":\"NORMAL\"}}}", 0, NULL },
	{ "fcm override merged last",
	  "{\"title\":\"a\",\"body\":\"b\",\"data\":{\"k\":\"v\"},"
	  "\"fcm\":{\"notification\":{\"title\":null},\"data\":{\"n\":5},"
	  "\"android\":{\"priority\":\"HIGH\",\"notification\":"
	  "{\"channel_id\":\"c\"}},\"fcm_options\":{\"analytics_label\":"
	  "\"L\"}}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0,
	  "{\"message\":{\"token\":\"tok-1\",\"notification\":{\"body\":"
	  "\"b\"},\"data\":{\"k\":\"v\",\"n\":\"5\"},\"android\":"
	  "{\"priority\":\"HIGH\",\"notification\":{\"channel_id\":\"c\"}},"
	  "\"fcm_options\":{\"analytics_label\":\"L\"}}}", 0, NULL },
	{ "expired", "{}", PUSH_PRIORITY_NORMAL, NULL, NOW - S, NULL,
	  PUSH_OUTCOME_EXPIRED, "expired before sending" },
	{ "expiring right now", "{}", PUSH_PRIORITY_NORMAL, NULL, NOW, NULL,
	  PUSH_OUTCOME_EXPIRED, "expired before sending" },
	{ "reserved key from", "{\"data\":{\"from\":\"x\"}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0, NULL, PUSH_OUTCOME_FAILED,
	  "reserved data key: from" },
	{ "reserved key message_type", "{\"data\":{\"message_type\":\"x\"}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0, NULL, PUSH_OUTCOME_FAILED,
	  "reserved data key: message_type" },
	{ "reserved key google*", "{\"data\":{\"google.c.a\":\"x\"}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0, NULL, PUSH_OUTCOME_FAILED,
	  "reserved data key: google.c.a" },
	{ "reserved key gcm*", "{\"data\":{\"gcm_x\":1}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0, NULL, PUSH_OUTCOME_FAILED,
	  "reserved data key: gcm_x" },
	{ "reserved key via the override",
	  "{\"fcm\":{\"android\":{\"data\":{\"gcmfoo\":\"1\"}}}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0, NULL, PUSH_OUTCOME_FAILED,
	  "reserved data key: gcmfoo" },
	{ "not an object", "[1,2]", PUSH_PRIORITY_NORMAL, NULL, 0, NULL,
	  PUSH_OUTCOME_FAILED, "payload is not a JSON object" },
	{ "not JSON", "{\"title\":", PUSH_PRIORITY_NORMAL, NULL, 0, NULL,
	  PUSH_OUTCOME_FAILED, "payload is not a JSON object" },
	{ "override not an object", "{\"fcm\":[]}", PUSH_PRIORITY_NORMAL,
	  NULL, 0, NULL, PUSH_OUTCOME_FAILED,
	  "the fcm override is not an object" },
};

/* A payload with one data value of `n` bytes under key "k". */
static char *big_payload(size_t n)
{
	char *p = malloc(n + 32);

	strcpy(p, "{\"data\":{\"k\":\"");
	memset(p + strlen(p), 'x', n);
	strcpy(p + 14 + n, "\"}}");
	return p;
}

static void test_mapping(void)
{
	struct push_item item;
	struct push_result res;
	size_t i;
	char *body;

	for (i = 0; i < sizeof map_cases / sizeof *map_cases; i++) {
		const struct map_case *c = &map_cases[i];
		int rc;

		memset(&item, 0, sizeof item);
		item.token = (char *)"tok-1";
		item.payload = (char *)c->payload;
		item.priority = c->prio;
		item.collapse_key = (char *)c->collapse;
		item.expires_at_us = c->expires_at_us;
		body = NULL;
		rc = sender_fcm_build_body(&item, NOW, &body, &res);
		if (c->body != NULL) {
			if (is_int(rc, 0, "%s: built", c->name))
				is_str(body, c->body, "%s: body", c->name);
		} else {
			is_int(rc, -22, "%s: refused", c->name);
			is_str(push_outcome_name(res.outcome),
			       push_outcome_name(c->outcome), "%s: outcome",
			       c->name);
			is_str(res.reason, c->reason, "%s: reason", c->name);
		}
		free(body);
	}

	memset(&item, 0, sizeof item);
	item.token = (char *)"tok-1";
	item.payload = big_payload(4095);     /* "k" + 4095 = 4096 */
	body = NULL;
	is_int(sender_fcm_build_body(&item, NOW, &body, &res), 0,
	       "4096 bytes of content: accepted");
	free(body);
	free(item.payload);
	item.payload = big_payload(4096);
	body = NULL;
	is_int(sender_fcm_build_body(&item, NOW, &body, &res), -22,
	       "4097 bytes of content: refused");
	is_str(res.reason, "payload too large", "with the reason");
	is_int(res.outcome, PUSH_OUTCOME_FAILED, "as FAILED");
	free(item.payload);
	item.payload = (char *)"{}";
	item.token = (char *)"";
	is_int(sender_fcm_build_body(&item, NOW, &body, &res), -22,
	       "no token: refused");
}

struct cls_case {
	const char *name;
	long status;
	const char *body;
	const char *retry_after;
	int attempts;
	int64_t backoff_us;
	enum push_outcome outcome;
	const char *reason;
	const char *message_id;
	int64_t retry_in_us;         /* retry_at - NOW; -1: 0 expected */
	int reauth, auth_failure, throttled;
};

#define ERR(code, status, msg, details) \
	"{\"error\":{\"code\":" #code ",\"message\":\"" msg "\",\"status\":" \
	"\"" status "\"" details "}}"
#define FCMERR(c) ",\"details\":[{\"@type\":\"type.googleapis.com/google." \
	"firebase.fcm.v1.FcmError\",\"errorCode\":\"" c "\"}]"
#define FCMERR_FIELD(c, f) ",\"details\":[{\"@type\":\"type.googleapis." \
	"com/google.firebase.fcm.v1.FcmError\",\"errorCode\":\"" c "\"}," \
	"{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\"," \
	"\"fieldViolations\":[{\"field\":\"" f "\",\"description\":\"x\"}]}]"

static const struct cls_case cls_cases[] = {
	/* 2.7 row 1: 200 */
	{ "200 OK", 200, "{\"name\":\"projects/p/messages/0:123%abc\"}",
	  NULL, 1, S, PUSH_OUTCOME_SENT, "", "projects/p/messages/0:123%abc",
	  -1, 0, 0, 0 },
	/* row 2: 400 INVALID_ARGUMENT on message.token */
	{ "400 token fieldViolation", 400,
	  ERR(400, "INVALID_ARGUMENT", "Invalid registration",
	      FCMERR_FIELD("INVALID_ARGUMENT", "message.token")),
	  NULL, 1, S, PUSH_OUTCOME_INVALID_TOKEN, "INVALID_ARGUMENT", "",
	  -1, 0, 0, 0 },
	{ "400 not a valid FCM registration token", 400,
	  ERR(400, "INVALID_ARGUMENT", "The registration token is not a "
	      "valid FCM registration token", ""),
	  NULL, 1, S, PUSH_OUTCOME_INVALID_TOKEN, "INVALID_ARGUMENT", "",
	  -1, 0, 0, 0 },
	/* row 3: other 400 */
	{ "400 too big", 400,
	  ERR(400, "INVALID_ARGUMENT", "Message is too big",
	      FCMERR("INVALID_ARGUMENT")),
	  NULL, 1, S, PUSH_OUTCOME_FAILED, "INVALID_ARGUMENT", "", -1,
	  0, 0, 0 },
	{ "400 bad ttl field", 400,
	  ERR(400, "INVALID_ARGUMENT", "Invalid value at 'message.android."
	      "ttl'", FCMERR_FIELD("INVALID_ARGUMENT",
				   "message.android.ttl")),
	  NULL, 1, S, PUSH_OUTCOME_FAILED, "INVALID_ARGUMENT", "", -1,
	  0, 0, 0 },
	/* row 4: 401 UNAUTHENTICATED without FcmError */
	{ "401 UNAUTHENTICATED", 401,
	  ERR(401, "UNAUTHENTICATED", "Request had invalid authentication "
	      "credentials.", ""),
	  NULL, 1, S, PUSH_OUTCOME_FAILED, "UNAUTHENTICATED", "", -1,
	  1, 1, 0 },
	/* row 5: 401 THIRD_PARTY_AUTH_ERROR (and its old alias) */
	{ "401 THIRD_PARTY_AUTH_ERROR", 401,
	  ERR(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push "
	      "Service", FCMERR("THIRD_PARTY_AUTH_ERROR")),
	  NULL, 1, S, PUSH_OUTCOME_FAILED, "THIRD_PARTY_AUTH_ERROR", "", -1,
	  0, 1, 0 },
	{ "401 APNS_AUTH_ERROR", 401,
	  ERR(401, "UNAUTHENTICATED", "Auth error", FCMERR("APNS_AUTH_ERROR")),
	  NULL, 1, S, PUSH_OUTCOME_FAILED, "APNS_AUTH_ERROR", "", -1,
	  0, 1, 0 },
	/* row 6: 403 SENDER_ID_MISMATCH */
	{ "403 SENDER_ID_MISMATCH", 403,
	  ERR(403, "PERMISSION_DENIED", "SenderId mismatch",
	      FCMERR("SENDER_ID_MISMATCH")),
	  NULL, 1, S, PUSH_OUTCOME_INVALID_TOKEN, "SENDER_ID_MISMATCH", "",
	  -1, 0, 0, 0 },
	/* row 7: 403 PERMISSION_DENIED without FcmError */
	{ "403 PERMISSION_DENIED", 403,
	  ERR(403, "PERMISSION_DENIED", "The caller does not have "
	      "permission", ""),
	  NULL, 1, S, PUSH_OUTCOME_FAILED, "PERMISSION_DENIED", "", -1,
	  0, 1, 0 },
	/* row 8: 404 */
	{ "404 UNREGISTERED", 404,
	  ERR(404, "NOT_FOUND", "Requested entity was not found.",
	      FCMERR("UNREGISTERED")),
	  NULL, 1, S, PUSH_OUTCOME_INVALID_TOKEN, "UNREGISTERED", "", -1,
	  0, 0, 0 },
	{ "404 NOT_FOUND without details", 404,
	  ERR(404, "NOT_FOUND", "Requested entity was not found.", ""),
	  NULL, 1, S, PUSH_OUTCOME_INVALID_TOKEN, "NOT_FOUND", "", -1,
	  0, 0, 0 },
	/* row 9: 429 */
	{ "429 with Retry-After", 429,
	  ERR(429, "RESOURCE_EXHAUSTED", "Quota exceeded",
	      FCMERR("QUOTA_EXCEEDED")),
	  "30", 1, 5 * S, PUSH_OUTCOME_RETRY, "QUOTA_EXCEEDED", "", 30 * S,
	  0, 0, 1 },
	{ "429 without Retry-After waits for the quota minute", 429,
	  ERR(429, "RESOURCE_EXHAUSTED", "Quota exceeded",
	      FCMERR("QUOTA_EXCEEDED")),
	  NULL, 1, 5 * S, PUSH_OUTCOME_RETRY, "QUOTA_EXCEEDED", "", 60 * S,
	  0, 0, 1 },
	{ "429 with a longer backoff", 429, "", NULL, 1, 90 * S,
	  PUSH_OUTCOME_RETRY, "HTTP 429", "", 90 * S, 0, 0, 1 },
	/* row 10: 500 INTERNAL */
	{ "500 INTERNAL backoff", 500,
	  ERR(500, "INTERNAL", "Internal error", FCMERR("INTERNAL")),
	  NULL, 1, 3 * S, PUSH_OUTCOME_RETRY, "INTERNAL", "", 3 * S,
	  0, 0, 0 },
	{ "500 INTERNAL honours a later Retry-After", 500,
	  ERR(500, "INTERNAL", "Internal error", FCMERR("INTERNAL")),
	  "100", 1, 3 * S, PUSH_OUTCOME_RETRY, "INTERNAL", "", 100 * S,
	  0, 0, 0 },
	/* row 11: 503 UNAVAILABLE */
	{ "503 Retry-After above the backoff", 503,
	  ERR(503, "UNAVAILABLE", "unavailable", FCMERR("UNAVAILABLE")),
	  "10", 2, 2 * S, PUSH_OUTCOME_RETRY, "UNAVAILABLE", "", 10 * S,
	  0, 0, 0 },
	{ "503 backoff above the Retry-After", 503,
	  ERR(503, "UNAVAILABLE", "unavailable", FCMERR("UNAVAILABLE")),
	  "10", 2, 20 * S, PUSH_OUTCOME_RETRY, "UNAVAILABLE", "", 20 * S,
	  0, 0, 0 },
	{ "503 at max attempts fails", 503,
	  ERR(503, "UNAVAILABLE", "unavailable", FCMERR("UNAVAILABLE")),
	  "10", 5, 2 * S, PUSH_OUTCOME_FAILED, "UNAVAILABLE", "", -1,
	  0, 0, 0 },
	/* row 12: 502 / other 5xx with an HTML body */
	{ "502 HTML", 502, "<html><body><h1>502 Bad Gateway</h1></body>"
	  "</html>\n", NULL, 1, 4 * S, PUSH_OUTCOME_RETRY, "HTTP 502", "",
	  4 * S, 0, 0, 0 },
	{ "504 empty", 504, "", "Sun, 06 Nov 1994 08:49:37 GMT", 1, 4 * S,
	  PUSH_OUTCOME_RETRY, "HTTP 504", "", 4 * S, 0, 0, 0 },
	/* transport */
	{ "transport error", 0, NULL, NULL, 1, 7 * S, PUSH_OUTCOME_RETRY,
	  "transport: boom", "", 7 * S, 0, 0, 0 },
	{ "transport error at max attempts", 0, NULL, NULL, 5, 7 * S,
	  PUSH_OUTCOME_FAILED, "transport: boom", "", -1, 0, 0, 0 },
	/* malformed bodies */
	{ "200 not JSON", 200, "ok", NULL, 1, S, PUSH_OUTCOME_SENT, "", "",
	  -1, 0, 0, 0 },
	{ "200 name not a string", 200, "{\"name\":5}", NULL, 1, S,
	  PUSH_OUTCOME_SENT, "", "", -1, 0, 0, 0 },
	{ "200 pretty-printed", 200,
	  "{\n  \"name\": \"projects/p/messages/1\"\n}\n", NULL, 1, S,
	  PUSH_OUTCOME_SENT, "", "projects/p/messages/1", -1, 0, 0, 0 },
	{ "200 escaped name", 200, "{\"name\":\"projects/p/messages/a\\/b\"}",
	  NULL, 1, S, PUSH_OUTCOME_SENT, "", "projects/p/messages/a/b", -1,
	  0, 0, 0 },
	{ "200 more members", 200, "{\"name\":\"m/1\",\"x\":1}", NULL, 1,
	  S, PUSH_OUTCOME_SENT, "", "m/1", -1, 0, 0, 0 },
	{ "200 unterminated name", 200, "{\"name\":\"m/1}", NULL, 1, S,
	  PUSH_OUTCOME_SENT, "", "", -1, 0, 0, 0 },
	{ "400 truncated JSON", 400, "{\"error\":{\"status\":\"INVA", NULL,
	  1, S, PUSH_OUTCOME_FAILED, "HTTP 400", "", -1, 0, 0, 0 },
	{ "400 error is a string", 400, "{\"error\":\"bad\"}", NULL, 1, S,
	  PUSH_OUTCOME_FAILED, "HTTP 400", "", -1, 0, 0, 0 },
	{ "400 details not an array", 400,
	  "{\"error\":{\"status\":\"INVALID_ARGUMENT\",\"details\":{}}}",
	  NULL, 1, S, PUSH_OUTCOME_FAILED, "INVALID_ARGUMENT", "", -1,
	  0, 0, 0 },
	{ "400 odd details", 400,
	  "{\"error\":{\"details\":[null,1,{\"errorCode\":7},"
	  "{\"fieldViolations\":[null,{\"field\":3}]}]}}",
	  NULL, 1, S, PUSH_OUTCOME_FAILED, "HTTP 400", "", -1, 0, 0, 0 },
	{ "404 JSON array", 404, "[]", NULL, 1, S,
	  PUSH_OUTCOME_INVALID_TOKEN, "HTTP 404", "", -1, 0, 0, 0 },
	{ "503 null body and junk Retry-After", 503, "null", "soon", 1,
	  2 * S, PUSH_OUTCOME_RETRY, "HTTP 503", "", 2 * S, 0, 0, 0 },
	{ "418 unknown status", 418, "{}", NULL, 1, S, PUSH_OUTCOME_FAILED,
	  "HTTP 418", "", -1, 0, 0, 0 },
};

static void test_classify(void)
{
	size_t i;

	for (i = 0; i < sizeof cls_cases / sizeof *cls_cases; i++) {
		const struct cls_case *c = &cls_cases[i];
		struct sender_fcm_answer ans;
		struct push_result res;

		memset(&ans, 0, sizeof ans);
		ans.status = c->status;
		ans.body = c->body;
		ans.body_len = c->body ? strlen(c->body) : 0;
		ans.retry_after = c->retry_after;
		ans.error = c->status == 0 ? "boom" : NULL;
		sender_fcm_classify(&ans, c->attempts, 5, NOW, c->backoff_us,
				    &res);
		is_str(push_outcome_name(res.outcome),
		       push_outcome_name(c->outcome), "%s: outcome", c->name);
		is_str(res.reason, c->reason, "%s: reason", c->name);
		is_str(res.message_id, c->message_id, "%s: message id",
		       c->name);
		is_int(res.http_status, c->status, "%s: status", c->name);
		is_int(res.retry_at_us, c->retry_in_us < 0 ? 0
		       : NOW + c->retry_in_us, "%s: retry at", c->name);
		ok(res.reauth == c->reauth && res.auth_failure ==
		   c->auth_failure && res.throttled == c->throttled,
		   "%s: flags reauth=%d auth_failure=%d throttled=%d",
		   c->name, res.reauth, res.auth_failure, res.throttled);
	}
	{
		/* A body with a NUL inside and no terminator in reach. */
		static const char junk[] = { '{', '"', 0, 'x', '\xff', '}' };
		struct sender_fcm_answer ans = { 400, junk, sizeof junk,
						 NULL, NULL, HTTP_ERR_NONE };
		struct push_result res;

		sender_fcm_classify(&ans, 1, 5, NOW, S, &res);
		is_int(res.outcome, PUSH_OUTCOME_FAILED, "binary body: FAILED");
	}
}

/*
 * Without an fcm override the body is written directly, not through a
 * json-c tree: both must give the same bytes, the same refusals and the
 * same reasons, for the table above and for escaping and edge cases.
 */
static void test_direct_vs_tree(void)
{
	static const char *const payloads[] = {
		"{\"title\":\"quote \\\" backslash \\\\ slash / tab \\t\","
		"\"body\":\"nl \\n cr \\r bs \\b ff \\f ctl \\u0001 del \\u007f\"}",
		"{\"title\":\"Привет 👋\",\"body\":\"日本\",\"data\":{\"ключ\":"
		"\"значение\"}}",
		"{\"subtitle\":\"only a subtitle\"}",
		"{\"title\":7,\"body\":true,\"image\":null,\"sound\":1.25}",
		"{\"badge\":\"3\",\"sound\":\"s\"}",
		"{\"badge\":0,\"category\":{\"x\":1}}",
		"{\"data\":{}}",
		"{\"data\":[1,2]}",
		"{\"data\":{\"a\":{\"b\":[1,{\"c\":null}]},\"e\":\"\",\"q\":"
		"\"\\\"\"}}",
		"{\"data\":{\"ok\":\"1\",\"google.x\":\"2\"}}",
		"{\"thread_id\":\"t\",\"apns\":{\"x\":1},\"wns\":{}}",
		"{\"title\":\"\",\"body\":\"\"}",
	};
	static const char *const collapses[] = {
		NULL, "", "c",
		"0123456789012345678901234567890123456789012345678901234567890123",
		"01234567890123456789012345678901234567890123456789012345678901234",
	};
	struct push_item item;
	struct push_result r1, r2;
	size_t i, j, n = 0, same = 0;

	for (i = 0; i < sizeof map_cases / sizeof map_cases[0] +
		    sizeof payloads / sizeof payloads[0]; i++) {
		for (j = 0; j < sizeof collapses / sizeof collapses[0]; j++) {
			char *b1 = NULL, *b2 = NULL;
			int rc1, rc2;

			memset(&item, 0, sizeof item);
			item.token = (char *)"tok\"1";
			item.collapse_key = (char *)collapses[j];
			item.priority = j % 2 ? PUSH_PRIORITY_HIGH
					      : PUSH_PRIORITY_NORMAL;
			item.expires_at_us = j == 2 ? NOW + 90 * S : 0;
			item.payload = (char *)(i < sizeof map_cases /
						sizeof map_cases[0]
				? map_cases[i].payload
				: payloads[i - sizeof map_cases /
					   sizeof map_cases[0]]);
			rc1 = sender_fcm_build_body(&item, NOW, &b1, &r1);
			rc2 = sender_fcm_build_body_tree(&item, NOW, &b2, &r2);
			n++;
			if (rc1 == rc2 && (rc1 != 0 ? r1.outcome == r2.outcome &&
					   strcmp(r1.reason, r2.reason) == 0
					   : strcmp(b1, b2) == 0))
				same++;
			else
				diag("differs: %s collapse=%s: %s | %s",
				     item.payload, item.collapse_key
				     ? item.collapse_key : "(none)",
				     rc1 ? r1.reason : b1,
				     rc2 ? r2.reason : b2);
			free(b1);
			free(b2);
		}
	}
	is_int((int)same, (int)n, "direct writer == json-c tree for %zu "
	       "payload x collapse key cases", n);

	/* The size limit is measured the same way by both. */
	for (i = 4090; i <= 4100; i++) {
		char *b1 = NULL, *b2 = NULL;
		int rc1, rc2;

		memset(&item, 0, sizeof item);
		item.token = (char *)"tok-1";
		item.payload = big_payload(i);
		rc1 = sender_fcm_build_body(&item, NOW, &b1, &r1);
		rc2 = sender_fcm_build_body_tree(&item, NOW, &b2, &r2);
		if (rc1 != rc2)
			diag("size %zu: direct %d, tree %d", i, rc1, rc2);
		same = rc1 == rc2;
		free(b1);
		free(b2);
		free(item.payload);
		if (!same)
			break;
	}
	ok(same, "the 4096-byte limit falls at the same size for both");
}

static const enum http_err transport_kinds[] = {
	HTTP_ERR_NOT_SENT, HTTP_ERR_NO_ANSWER, HTTP_ERR_BAD_ANSWER,
	HTTP_ERR_CANCELLED, HTTP_ERR_NONE
};

/*
 * FCM has no retry_ambiguous: a transport failure of any kind is a
 * retry (an attempt), the error text kept for the reason.
 */
static void test_transport_kinds(void)
{
	size_t i;

	for (i = 0; i < sizeof transport_kinds / sizeof *transport_kinds;
	     i++) {
		struct sender_fcm_answer ans;
		struct push_result res;

		memset(&ans, 0, sizeof ans);
		ans.error = "no answer 300 ms after the request was sent";
		ans.err = transport_kinds[i];
		sender_fcm_classify(&ans, 1, 5, NOW, 3 * S, &res);
		is_str(push_outcome_name(res.outcome), "retry",
		       "transport, %s: retry", http_err_name(ans.err));
		is_int(res.retry_at_us, NOW + 3 * S, "  after the backoff");
		is_str(res.reason, "transport: no answer 300 ms after the "
		       "request was sent", "  reason");
	}
}

/*
 * The body's cap (no push the enqueue trigger accepts reaches it): a
 * token far past any limit makes the push FAILED, never a crash.
 */
static void test_body_cap(void)
{
	struct push_item it;
	struct push_result res;
	char *token = malloc(300 * 1024 + 1), *body = NULL;

	memset(token, 'a', 300 * 1024);
	token[300 * 1024] = '\0';
	memset(&it, 0, sizeof it);
	it.token = token;
	it.payload = (char *)"{\"title\":\"Hi\"}";
	is_int(sender_fcm_build_body(&it, NOW, &body, &res), -EINVAL,
	       "a body past the cap is refused");
	is_str(res.reason, "request body too large", "  FAILED, saying so");
	ok(body == NULL && res.outcome == PUSH_OUTCOME_FAILED, "  no body");
	free(token);
}

int main(void)
{
	is_ptr(sender_for(PUSH_PLATFORM_FCM), &sender_fcm_ops,
	       "sender_for(fcm)");
	is_str(sender_for(PUSH_PLATFORM_FCM)->name, "fcm", "its name");
	is_str(sender_for(PUSH_PLATFORM_APNS)->name, "apns",
	       "sender_for(apns): the apns sender");
	is_ptr(sender_for(PUSH_PLATFORM_COUNT), NULL, "out of range");
	test_mapping();
	test_direct_vs_tree();
	test_classify();
	test_transport_kinds();
	test_body_cap();
	is_int(oauth_cache_refresh_after(3599), 2880, "oauth: 1 h token "
	       "refreshed at 80 %%");
	is_int(oauth_cache_refresh_after(1200), 900, "20 min token: 5 min "
	       "before the end");
	is_int(oauth_cache_refresh_after(6), 3, "6 s token: at half");
	return done_testing();
}
