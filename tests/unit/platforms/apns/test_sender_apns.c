/*
 * test_sender_apns.c - table tests of the APNs sender's pure halves and
 * of its token cache:
 *   - neutral payload -> exact APNs JSON body and apns-* header lines;
 *   - every row of PROTOCOLS.md 1.9 -> outcome, reason, flags, retry
 *     time, 410 timestamp, message id;
 *   - the provider token: JOSE header and claims exactly as Apple wants
 *     them, the ES256 signature checked with OpenSSL's verify path
 *     (EVP_DigestVerify over the DER form of r||s) against the public
 *     half of the key, a tampered token failing it;
 *   - the cache: one token per (team, key) shared, refresh at 50 min,
 *     never a mint within the 20-minute floor (ExpiredProviderToken
 *     storm), TooManyProviderTokenUpdates keeps the accepted token.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "platforms/apns/auth_apns.h"
#include "platforms/jwt.h"
#include "base/push.h"
#include "platforms/sender.h"
#include "platforms/apns/sender_apns.h"
#include "tap.h"

#define S 1000000LL
#define NOW (1800000000LL * S)
#define TOPIC "com.example.app"

struct map_case {
	const char *name;
	const char *payload;
	enum push_priority prio;
	const char *collapse;
	int64_t expires_at_us;
	/* expected: body and header lines joined by '|', or a failure */
	const char *body;
	const char *headers;
	enum push_outcome outcome;
	const char *reason;
};

static const struct map_case map_cases[] = {
	{ "title and body", "{\"title\":\"Hi\",\"body\":\"There\"}",
	  PUSH_PRIORITY_NORMAL, NULL, 0,
	  "{\"aps\":{\"alert\":{\"title\":\"Hi\",\"body\":\"There\"}}}",
	  "apns-topic: " TOPIC "|apns-push-type: alert|apns-priority: 10",
	  0, NULL },
	{ "everything mapped",
	  "{\"title\":\"T\",\"subtitle\":\"Sub\",\"body\":\"B\",\"badge\":3,"
	  "\"sound\":\"ding\",\"category\":\"CAT\",\"thread_id\":\"th\","
	  "\"mutable_content\":true,\"image\":\"https://i/x.png\","
	  "\"data\":{\"k\":\"v\",\"n\":1,\"o\":{\"a\":[1]}},"
	  "\"fcm\":{\"ignored\":true}}",
	  PUSH_PRIORITY_HIGH, "ck", NOW + 3600 * S,
	  "{\"aps\":{\"alert\":{\"title\":\"T\",\"subtitle\":\"Sub\","
	  "\"body\":\"B\"},\"badge\":3,\"sound\":\"ding\",\"category\":"
	  "\"CAT\",\"thread-id\":\"th\",\"mutable-content\":1},\"k\":\"v\","
	  "\"n\":1,\"o\":{\"a\":[1]}}",
	  "apns-topic: " TOPIC "|apns-push-type: alert|apns-priority: 10|"
	  "apns-expiration: 1800003600|apns-collapse-id: ck", 0, NULL },
	{ "low priority: 5", "{\"badge\":0}", PUSH_PRIORITY_LOW, NULL, 0,
	  "{\"aps\":{\"badge\":0}}",
	  "apns-topic: " TOPIC "|apns-push-type: alert|apns-priority: 5",
	  0, NULL },
	{ "content-available only: background at 5",
	  "{\"content_available\":true,\"data\":{\"sync\":\"1\"}}",
	  PUSH_PRIORITY_HIGH, NULL, 0,
	  "{\"aps\":{\"content-available\":1},\"sync\":\"1\"}",
	  "apns-topic: " TOPIC "|apns-push-type: background|"
	  "apns-priority: 5", 0, NULL },
	{ "content-available with an alert stays alert",
	  "{\"title\":\"x\",\"content_available\":1}", PUSH_PRIORITY_NORMAL,
	  NULL, 0,
	  "{\"aps\":{\"alert\":{\"title\":\"x\"},\"content-available\":1}}",
	  "apns-topic: " TOPIC "|apns-push-type: alert|apns-priority: 10",
	  0, NULL },
	{ "voip: explicit type, topic suffix, control keys not in the body",
	  "{\"data\":{\"call\":\"c1\"},\"apns\":{\"push_type\":\"voip\","
	  "\"priority\":10}}", PUSH_PRIORITY_NORMAL, NULL, 0,
	  "{\"call\":\"c1\"}",
	  "apns-topic: " TOPIC ".voip|apns-push-type: voip|apns-priority: 10",
	  0, NULL },
	{ "liveactivity suffix",
	  "{\"apns\":{\"push_type\":\"liveactivity\",\"aps\":{\"event\":"
	  "\"update\",\"timestamp\":1}}}", PUSH_PRIORITY_NORMAL, NULL, 0,
	  "{\"aps\":{\"event\":\"update\",\"timestamp\":1}}",
	  "apns-topic: " TOPIC ".push-type.liveactivity|apns-push-type: "
	  "liveactivity|apns-priority: 10", 0, NULL },
	{ "apns override merged last",
	  "{\"title\":\"a\",\"body\":\"b\",\"sound\":\"s\",\"data\":{\"k\":1},"
	  "\"apns\":{\"aps\":{\"alert\":{\"title\":null},\"sound\":"
	  "{\"critical\":1,\"name\":\"c\",\"volume\":0.5},"
	  "\"interruption-level\":\"time-sensitive\"},\"k\":2,\"x\":[1]}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0,
	  "{\"aps\":{\"alert\":{\"body\":\"b\"},\"sound\":{\"critical\":1,"
	  "\"name\":\"c\",\"volume\":0.5},\"interruption-level\":"
	  "\"time-sensitive\"},\"k\":2,\"x\":[1]}",
	  "apns-topic: " TOPIC "|apns-push-type: alert|apns-priority: 10",
	  0, NULL },
	{ "expiration under a second away", "{}", PUSH_PRIORITY_NORMAL,
	  NULL, NOW + S / 2, "{}",
	  "apns-topic: " TOPIC "|apns-push-type: alert|apns-priority: 10|"
	  "apns-expiration: 1800000000", 0, NULL },
	{ "64-byte collapse id",
	  "{}", PUSH_PRIORITY_NORMAL,
	  "0123456789012345678901234567890123456789012345678901234567890123",
	  0, "{}",
	  "apns-topic: " TOPIC "|apns-push-type: alert|apns-priority: 10|"
	  "apns-collapse-id: 012345678901234567890123456789012345678901234"
	  "5678901234567890123", 0, NULL },
	{ "65-byte collapse id", "{}", PUSH_PRIORITY_NORMAL,
	  "01234567890123456789012345678901234567890123456789012345678901234",
	  0, NULL, NULL, PUSH_OUTCOME_FAILED,
	  "BadCollapseId: collapse_key over 64 bytes" },
	{ "expired", "{}", PUSH_PRIORITY_NORMAL, NULL, NOW - S, NULL, NULL,
	  PUSH_OUTCOME_EXPIRED, "expired before sending" },
	{ "data key aps", "{\"data\":{\"aps\":1}}", PUSH_PRIORITY_NORMAL,
	  NULL, 0, NULL, NULL, PUSH_OUTCOME_FAILED,
	  "data key \"aps\" is reserved by APNs" },
	{ "unknown push type", "{\"apns\":{\"push_type\":\"fax\"}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0, NULL, NULL, PUSH_OUTCOME_FAILED,
	  "apns.push_type is not a known push type" },
	{ "bad priority", "{\"apns\":{\"priority\":7}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0, NULL, NULL, PUSH_OUTCOME_FAILED,
	  "apns.priority must be 10, 5 or 1" },
	{ "override not an object", "{\"apns\":[]}", PUSH_PRIORITY_NORMAL,
	  NULL, 0, NULL, NULL, PUSH_OUTCOME_FAILED,
	  "the apns override is not an object" },
	{ "not JSON", "{\"title\":", PUSH_PRIORITY_NORMAL, NULL, 0, NULL,
	  NULL, PUSH_OUTCOME_FAILED, "payload is not a JSON object" },
};

static char *join_headers(const struct sender_apns_msg *m)
{
	static char buf[2048];
	size_t i;

	buf[0] = '\0';
	for (i = 0; m->headers[i] != NULL; i++) {
		if (i > 0)
			strcat(buf, "|");
		strcat(buf, m->headers[i]);
	}
	return buf;
}

/* {"data":{"k":"xxx..."}} with n x's; its body is {"k":"xxx..."}. */
static char *big_payload(size_t n, const char *apns)
{
	char *p = malloc(n + 128);

	sprintf(p, "{%s\"data\":{\"k\":\"", apns);
	memset(p + strlen(p), 'x', n);
	strcpy(p + strlen(apns) + 14 + n, "\"}}");
	return p;
}

static void test_mapping(void)
{
	struct sender_apns_msg m;
	struct push_item item;
	struct push_result res;
	size_t i;
	char *p;

	for (i = 0; i < sizeof map_cases / sizeof *map_cases; i++) {
		const struct map_case *c = &map_cases[i];
		int rc;

		memset(&item, 0, sizeof item);
		item.token = (char *)"aa11";
		item.payload = (char *)c->payload;
		item.priority = c->prio;
		item.collapse_key = (char *)c->collapse;
		item.expires_at_us = c->expires_at_us;
		rc = sender_apns_build(&item, TOPIC, NOW, &m, &res);
		if (c->body != NULL) {
			if (is_int(rc, 0, "%s: built", c->name)) {
				is_str(m.body, c->body, "%s: body", c->name);
				is_int(m.body_len, strlen(c->body),
				       "%s: body length", c->name);
				is_str(join_headers(&m), c->headers,
				       "%s: headers", c->name);
			}
		} else {
			is_int(rc, -22, "%s: refused", c->name);
			is_str(push_outcome_name(res.outcome),
			       push_outcome_name(c->outcome), "%s: outcome",
			       c->name);
			is_str(res.reason, c->reason, "%s: reason", c->name);
		}
		sender_apns_msg_free(&m);
	}

	/* The limit is on the exact body: {"k":"..."} is n + 8 bytes. */
	memset(&item, 0, sizeof item);
	item.token = (char *)"aa11";
	item.payload = p = big_payload(4096 - 8, "");
	is_int(sender_apns_build(&item, TOPIC, NOW, &m, &res), 0,
	       "a 4096-byte body: accepted");
	is_int(m.body_len, 4096, "  and it is 4096 bytes");
	sender_apns_msg_free(&m);
	free(p);
	item.payload = p = big_payload(4097 - 8, "");
	is_int(sender_apns_build(&item, TOPIC, NOW, &m, &res), -22,
	       "a 4097-byte body: refused");
	is_str(res.reason, "PayloadTooLarge: 4097 bytes, APNs allows 4096",
	       "  with the reason");
	is_int(res.outcome, PUSH_OUTCOME_FAILED, "  as FAILED");
	free(p);
	item.payload = p = big_payload(5120 - 8,
				       "\"apns\":{\"push_type\":\"voip\"},");
	is_int(sender_apns_build(&item, TOPIC, NOW, &m, &res), 0,
	       "voip: a 5120-byte body accepted");
	sender_apns_msg_free(&m);
	free(p);
	item.payload = p = big_payload(5121 - 8,
				       "\"apns\":{\"push_type\":\"voip\"},");
	is_int(sender_apns_build(&item, TOPIC, NOW, &m, &res), -22,
	       "voip: 5121 bytes refused");
	free(p);

	item.payload = (char *)"{}";
	item.token = (char *)"";
	is_int(sender_apns_build(&item, TOPIC, NOW, &m, &res), -22,
	       "no token: refused");
}

static void test_uuid(void)
{
	char a[37], b[37];
	int i, good = 1;

	sender_apns_uuid(a);
	sender_apns_uuid(b);
	is_int(strlen(a), 36, "apns-id: 36 characters");
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			good &= a[i] == '-';
		else
			good &= (a[i] >= '0' && a[i] <= '9') ||
				(a[i] >= 'a' && a[i] <= 'f');
	}
	ok(good, "apns-id: lowercase 8-4-4-4-12 (%s)", a);
	ok(a[14] == '4', "apns-id: version 4");
	ok(strcmp(a, b) != 0, "apns-id: two differ");
}

struct cls_case {
	const char *name;
	long status;
	const char *body;
	int attempts;
	enum push_outcome outcome;
	const char *reason;
	int64_t retry_in_us;         /* retry_at - NOW; -1: 0 expected */
	int reauth, auth_failure, throttled;
	int64_t provider_ts_us;
};

#define R(x) "{\"reason\":\"" x "\"}"
#define B 2000000LL                  /* the backoff the tests pass */

static const struct cls_case cls_cases[] = {
	{ "200", 200, "", 1, PUSH_OUTCOME_SENT, "", -1, 0, 0, 0, 0 },
	{ "400 BadCollapseId", 400, R("BadCollapseId"), 1,
	  PUSH_OUTCOME_FAILED, "BadCollapseId", -1, 0, 0, 0, 0 },
	{ "400 BadDeviceToken", 400, R("BadDeviceToken"), 1,
	  PUSH_OUTCOME_INVALID_TOKEN, "BadDeviceToken", -1, 0, 0, 0, 0 },
	{ "400 BadExpirationDate", 400, R("BadExpirationDate"), 1,
	  PUSH_OUTCOME_FAILED, "BadExpirationDate", -1, 0, 0, 0, 0 },
	{ "400 BadMessageId", 400, R("BadMessageId"), 1,
	  PUSH_OUTCOME_FAILED, "BadMessageId", -1, 0, 0, 0, 0 },
	{ "400 BadPriority", 400, R("BadPriority"), 1,
	  PUSH_OUTCOME_FAILED, "BadPriority", -1, 0, 0, 0, 0 },
	{ "400 BadTopic", 400, R("BadTopic"), 1,
	  PUSH_OUTCOME_FAILED, "BadTopic", -1, 0, 0, 0, 0 },
	{ "400 DuplicateHeaders", 400, R("DuplicateHeaders"), 1,
	  PUSH_OUTCOME_FAILED, "DuplicateHeaders", -1, 0, 0, 0, 0 },
	{ "400 InvalidPushType", 400, R("InvalidPushType"), 1,
	  PUSH_OUTCOME_FAILED, "InvalidPushType", -1, 0, 0, 0, 0 },
	{ "400 MissingDeviceToken", 400, R("MissingDeviceToken"), 1,
	  PUSH_OUTCOME_FAILED, "MissingDeviceToken", -1, 0, 0, 0, 0 },
	{ "400 MissingTopic", 400, R("MissingTopic"), 1,
	  PUSH_OUTCOME_FAILED, "MissingTopic", -1, 0, 0, 0, 0 },
	{ "400 PayloadEmpty", 400, R("PayloadEmpty"), 1,
	  PUSH_OUTCOME_FAILED, "PayloadEmpty", -1, 0, 0, 0, 0 },
	{ "400 DeviceTokenNotForTopic", 400, R("DeviceTokenNotForTopic"), 1,
	  PUSH_OUTCOME_INVALID_TOKEN, "DeviceTokenNotForTopic", -1, 0, 0, 0,
	  0 },
	{ "400 TopicDisallowed", 400, R("TopicDisallowed"), 1,
	  PUSH_OUTCOME_FAILED, "TopicDisallowed", -1, 0, 1, 0, 0 },
	{ "400 IdleTimeout", 400, R("IdleTimeout"), 1,
	  PUSH_OUTCOME_RETRY, "IdleTimeout", 0, 0, 0, 0, 0 },
	{ "403 ExpiredProviderToken", 403, R("ExpiredProviderToken"), 1,
	  PUSH_OUTCOME_RETRY, "ExpiredProviderToken", B, 1, 0, 0, 0 },
	{ "403 InvalidProviderToken (a new token)", 403,
	  R("InvalidProviderToken"), 1, PUSH_OUTCOME_FAILED,
	  "InvalidProviderToken (refused on first use: check team_id, "
	  "key_id and signing_key)", -1, 1, 1, 0, 0 },
	{ "403 MissingProviderToken (a new token)", 403,
	  R("MissingProviderToken"), 1, PUSH_OUTCOME_FAILED,
	  "MissingProviderToken (refused on first use: check team_id, "
	  "key_id and signing_key)", -1, 1, 1, 0, 0 },
	{ "403 BadCertificate", 403, R("BadCertificate"), 1,
	  PUSH_OUTCOME_FAILED, "BadCertificate", -1, 0, 1, 0, 0 },
	{ "403 BadCertificateEnvironment", 403,
	  R("BadCertificateEnvironment"), 1, PUSH_OUTCOME_FAILED,
	  "BadCertificateEnvironment", -1, 0, 1, 0, 0 },
	{ "403 UnrelatedKeyIdInToken", 403, R("UnrelatedKeyIdInToken"), 1,
	  PUSH_OUTCOME_FAILED, "UnrelatedKeyIdInToken", -1, 0, 1, 0, 0 },
	{ "403 BadEnvironmentKeyIdInToken", 403,
	  R("BadEnvironmentKeyIdInToken"), 1, PUSH_OUTCOME_FAILED,
	  "BadEnvironmentKeyIdInToken", -1, 0, 1, 0, 0 },
	{ "403 Forbidden", 403, R("Forbidden"), 1, PUSH_OUTCOME_FAILED,
	  "Forbidden", -1, 0, 1, 0, 0 },
	{ "404 BadPath", 404, R("BadPath"), 1, PUSH_OUTCOME_FAILED,
	  "BadPath", -1, 0, 0, 0, 0 },
	{ "405 MethodNotAllowed", 405, R("MethodNotAllowed"), 1,
	  PUSH_OUTCOME_FAILED, "MethodNotAllowed", -1, 0, 0, 0, 0 },
	{ "410 Unregistered with timestamp", 410,
	  "{\"reason\":\"Unregistered\",\"timestamp\":1799999990123}", 1,
	  PUSH_OUTCOME_INVALID_TOKEN, "Unregistered", -1, 0, 0, 0,
	  1799999990123000LL },
	{ "410 ExpiredToken", 410, R("ExpiredToken"), 1,
	  PUSH_OUTCOME_INVALID_TOKEN, "ExpiredToken", -1, 0, 0, 0, 0 },
	{ "413 PayloadTooLarge", 413, R("PayloadTooLarge"), 1,
	  PUSH_OUTCOME_FAILED, "PayloadTooLarge", -1, 0, 0, 0, 0 },
	{ "429 TooManyRequests: at least the device wait", 429,
	  R("TooManyRequests"), 1, PUSH_OUTCOME_RETRY, "TooManyRequests",
	  SENDER_APNS_DEVICE_WAIT_US, 0, 0, 1, 0 },
	{ "429 TooManyProviderTokenUpdates", 429,
	  R("TooManyProviderTokenUpdates"), 1, PUSH_OUTCOME_RETRY,
	  "TooManyProviderTokenUpdates", B, 0, 0, 1, 0 },
	{ "500 InternalServerError", 500, R("InternalServerError"), 1,
	  PUSH_OUTCOME_RETRY, "InternalServerError", B, 0, 0, 0, 0 },
	{ "503 ServiceUnavailable", 503, R("ServiceUnavailable"), 1,
	  PUSH_OUTCOME_RETRY, "ServiceUnavailable", B, 0, 0, 0, 0 },
	{ "503 Shutdown", 503, R("Shutdown"), 1, PUSH_OUTCOME_RETRY,
	  "Shutdown", B, 0, 0, 0, 0 },
	{ "503 on the last attempt: failed", 503, R("Shutdown"), 8,
	  PUSH_OUTCOME_FAILED, "Shutdown", -1, 0, 0, 0, 0 },
	{ "502 HTML page", 502, "<html>bad gateway</html>", 1,
	  PUSH_OUTCOME_RETRY, "HTTP 502", B, 0, 0, 0, 0 },
	{ "400 without a body", 400, "", 1, PUSH_OUTCOME_FAILED,
	  "HTTP 400", -1, 0, 0, 0, 0 },
	{ "410 with a malformed body", 410, "{\"reason\":", 1,
	  PUSH_OUTCOME_INVALID_TOKEN, "HTTP 410", -1, 0, 0, 0, 0 },
	{ "418 unknown", 418, "[]", 1, PUSH_OUTCOME_FAILED, "HTTP 418", -1,
	  0, 0, 0, 0 },
	{ "transport error", 0, NULL, 1, PUSH_OUTCOME_RETRY,
	  "transport: Couldn't connect", B, 0, 0, 0, 0 },
};

static void test_classify(void)
{
	struct sender_apns_answer ans;
	struct push_result res;
	size_t i;

	for (i = 0; i < sizeof cls_cases / sizeof *cls_cases; i++) {
		const struct cls_case *c = &cls_cases[i];

		memset(&ans, 0, sizeof ans);
		ans.status = c->status;
		ans.body = c->body;
		ans.body_len = c->body ? strlen(c->body) : 0;
		ans.error = c->status == 0 ? "Couldn't connect" : NULL;
		ans.apns_id = "5e8b0a36-0d43-4f0a-9d1f-2bd0d3c1a7e2";
		sender_apns_classify(&ans, c->attempts, 8, NOW, B, &res);
		is_str(push_outcome_name(res.outcome),
		       push_outcome_name(c->outcome), "%s: outcome", c->name);
		is_str(res.reason, c->reason, "%s: reason", c->name);
		is_int(res.http_status, c->status, "%s: status", c->name);
		is_int(res.retry_at_us, c->retry_in_us < 0 ? 0 :
		       NOW + c->retry_in_us, "%s: retry time", c->name);
		is_int(res.reauth, c->reauth, "%s: reauth", c->name);
		is_int(res.auth_failure, c->auth_failure, "%s: auth failure",
		       c->name);
		is_int(res.throttled, c->throttled, "%s: throttled", c->name);
		is_int(res.provider_ts_us, c->provider_ts_us,
		       "%s: provider timestamp", c->name);
		is_str(res.message_id, ans.apns_id, "%s: message id", c->name);
	}

	/* A 410 whose device registered again at or after Apple's timestamp
	 * (ms) is stale: the token lives on, the push failed. */
	memset(&ans, 0, sizeof ans);
	ans.status = 410;
	ans.body = "{\"reason\":\"Unregistered\",\"timestamp\":1799999990123}";
	ans.body_len = strlen(ans.body);
	ans.device_seen_us = 1799999990123000LL;
	sender_apns_classify(&ans, 1, 8, NOW, B, &res);
	is_str(push_outcome_name(res.outcome), "failed",
	       "410, device seen at the timestamp: failed");
	is_str(res.reason, "Unregistered (stale: device re-registered after "
	       "Apple's timestamp)", "  the reason says why");
	ans.device_seen_us = 1799999990122999LL;
	sender_apns_classify(&ans, 1, 8, NOW, B, &res);
	is_str(push_outcome_name(res.outcome), "invalid_token",
	       "410, device last seen before the timestamp: invalid_token");
}

/* RECONNECT rows: the retry must go out on a new connection. */
static void test_reconnect(void)
{
	static const struct {
		long status;
		const char *body;
		bool reconnect;
	} rows[] = {
		{ 503, R("Shutdown"), true },
		{ 503, R("ServiceUnavailable"), true },
		{ 503, "", true },
		{ 400, R("IdleTimeout"), true },
		{ 500, R("InternalServerError"), false },
		{ 429, R("TooManyRequests"), false },
		{ 400, R("BadDeviceToken"), false },
		{ 403, R("ExpiredProviderToken"), false },
		{ 200, "", false },
		{ 0, NULL, false },
	};
	struct sender_apns_answer ans;
	struct push_result res;
	size_t i;

	for (i = 0; i < sizeof rows / sizeof *rows; i++) {
		memset(&ans, 0, sizeof ans);
		ans.status = rows[i].status;
		ans.body = rows[i].body;
		ans.body_len = rows[i].body ? strlen(rows[i].body) : 0;
		ans.error = rows[i].status == 0 ? "Couldn't connect" : NULL;
		is_int(sender_apns_classify(&ans, 1, 8, NOW, B, &res),
		       rows[i].reconnect, "%ld %s: %s", rows[i].status,
		       rows[i].body ? rows[i].body : "(transport)",
		       rows[i].reconnect ? "a new connection"
		       : "the connection is kept");
	}
}

/*
 * Apple's provider-token errors: a new token is minted (floor permitting)
 * and the push retried when one can help - ExpiredProviderToken always,
 * Invalid/MissingProviderToken for a token APNs had accepted before; a
 * token refused on first use means the credential is wrong: failed, an
 * auth failure, with a reason that says what to check.
 */
static void test_token_errors(void)
{
	static const struct {
		const char *reason;
		bool accepted;
		enum push_outcome outcome;
		const char *why;
		int auth_failure;
	} rows[] = {
		{ "ExpiredProviderToken", false, PUSH_OUTCOME_RETRY,
		  "ExpiredProviderToken", 0 },
		{ "ExpiredProviderToken", true, PUSH_OUTCOME_RETRY,
		  "ExpiredProviderToken", 0 },
		{ "InvalidProviderToken", true, PUSH_OUTCOME_RETRY,
		  "InvalidProviderToken", 0 },
		{ "MissingProviderToken", true, PUSH_OUTCOME_RETRY,
		  "MissingProviderToken", 0 },
		{ "InvalidProviderToken", false, PUSH_OUTCOME_FAILED,
		  "InvalidProviderToken (refused on first use: check "
		  "team_id, key_id and signing_key)", 1 },
		{ "MissingProviderToken", false, PUSH_OUTCOME_FAILED,
		  "MissingProviderToken (refused on first use: check "
		  "team_id, key_id and signing_key)", 1 },
	};
	struct sender_apns_answer ans;
	struct push_result res;
	char body[128];
	size_t i;

	for (i = 0; i < sizeof rows / sizeof *rows; i++) {
		const char *acc = rows[i].accepted ? "accepted before"
				  : "refused on first use";

		snprintf(body, sizeof body, "{\"reason\":\"%s\"}",
			 rows[i].reason);
		memset(&ans, 0, sizeof ans);
		ans.status = 403;
		ans.body = body;
		ans.body_len = strlen(body);
		ans.token_accepted = rows[i].accepted;
		sender_apns_classify(&ans, 1, 8, NOW, B, &res);
		is_str(push_outcome_name(res.outcome),
		       push_outcome_name(rows[i].outcome), "403 %s, token %s: "
		       "outcome", rows[i].reason, acc);
		is_str(res.reason, rows[i].why, "  reason");
		is_int(res.reauth, 1, "  the cache is told (reauth)");
		is_int(res.auth_failure, rows[i].auth_failure,
		       "  auth failure");
		is_int(res.retry_at_us, rows[i].outcome == PUSH_OUTCOME_RETRY
		       ? NOW + B : 0, "  retry time");
	}
}

/* ---- the provider token ------------------------------------------ */

static EVP_PKEY *keygen(char **pem)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	*pem = strndup(p, (size_t)n);
	BIO_free(b);
	return k;
}

static char *part(const char *jwt, int idx)
{
	const char *s = jwt, *e;
	unsigned char *out = NULL;
	size_t len;

	while (idx-- > 0)
		s = strchr(s, '.') + 1;
	e = strchr(s, '.');
	if (e == NULL)
		e = s + strlen(s);
	if (jwt_b64url_decode(s, (size_t)(e - s), &out, &len) < 0)
		return NULL;
	return (char *)out;
}

/* OpenSSL's verify: JOSE r||s -> DER ECDSA-Sig-Value -> DigestVerify. */
static int verify_es256(EVP_PKEY *pub, const char *jwt)
{
	const char *dot2 = strrchr(jwt, '.');
	unsigned char *raw = NULL, *der = NULL;
	size_t rawlen = 0;
	ECDSA_SIG *sig;
	EVP_MD_CTX *md;
	int derlen, rc = 0;

	if (dot2 == NULL || jwt_b64url_decode(dot2 + 1, strlen(dot2 + 1),
					      &raw, &rawlen) < 0)
		return 0;
	if (rawlen != 64) {
		free(raw);
		return 0;
	}
	sig = ECDSA_SIG_new();
	ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL),
		       BN_bin2bn(raw + 32, 32, NULL));
	derlen = i2d_ECDSA_SIG(sig, &der);
	md = EVP_MD_CTX_new();
	if (derlen > 0 &&
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1)
		rc = EVP_DigestVerify(md, der, (size_t)derlen,
				      (const unsigned char *)jwt,
				      (size_t)(dot2 - jwt)) == 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
	free(raw);
	return rc;
}

static void test_token(void)
{
	struct auth_apns *a, *b, *c, *other;
	struct auth_apns_stats st;
	char *pem, *pem2, *h, *cl, *t1, *t2, *bad;
	char err[256], expect[128];
	EVP_PKEY *pub = keygen(&pem), *pub2 = keygen(&pem2);
	int64_t ra = 0, at;
	const char *t;

	unsetenv("PGPUSH_APNS_JWT_REFRESH_S");
	unsetenv("PGPUSH_APNS_JWT_FLOOR_S");
	auth_apns_header_json("ABC123DEFG", expect, sizeof expect);
	is_str(expect, "{\"alg\":\"ES256\",\"kid\":\"ABC123DEFG\"}",
	       "JOSE header");
	auth_apns_claims_json("TEAM123456", 1800000000, expect, sizeof expect);
	is_str(expect, "{\"iss\":\"TEAM123456\",\"iat\":1800000000}",
	       "claims: iss and iat, no exp");

	is_int(auth_apns_get(&a, "TEAM123456", "ABC123DEFG", pem, err,
			     sizeof err), 0, "token cache made");
	is_int(auth_apns_get(&b, "TEAM123456", "ABC123DEFG", pem, err,
			     sizeof err), 0, "and found again");
	is_ptr(b, a, "one cache per (team, key): shared");
	is_int(auth_apns_get(&other, "TEAM654321", "KEY2KEY2KY", pem2, err,
			     sizeof err), 0, "another team's cache");
	ok(other != a, "  is another cache");
	is_int(auth_apns_get(&c, "TEAM123456", "ABC123DEFG", "nope", err,
			     sizeof err), -22, "a bad key is refused");
	ok(strstr(err, "nope") == NULL && strstr(err, "signing_key") != NULL,
	   "  with a reason that names the column, not the key (%s)", err);
	is_int(auth_apns_get(&c, "team", "ABC123DEFG", pem, err, sizeof err),
	       -22, "a malformed team id is refused");

	t = auth_apns_token(a, NOW, &ra);
	if (!ok(t != NULL, "a token is minted on first use"))
		return;
	t1 = strdup(t);
	h = part(t1, 0);
	cl = part(t1, 1);
	is_str(h, "{\"alg\":\"ES256\",\"kid\":\"ABC123DEFG\"}",
	       "its header, decoded");
	is_str(cl, "{\"iss\":\"TEAM123456\",\"iat\":1800000000}",
	       "its claims, decoded: iat = now");
	free(h);
	free(cl);
	ok(verify_es256(pub, t1), "the ES256 signature verifies with "
	   "OpenSSL against the key's public half");
	ok(!verify_es256(pub2, t1), "  and not against another key");
	bad = strdup(t1);
	bad[strlen("eyJ") + 3] ^= 1;
	ok(!verify_es256(pub, bad), "  and not once the header is altered");
	free(bad);
	is_str(auth_apns_token(b, NOW + 10 * S, &ra), t1,
	       "the other pool gets the same token");
	is_str(auth_apns_token(a, NOW + 2999 * S, &ra), t1,
	       "same token until 50 minutes");

	/* ExpiredProviderToken storm inside the floor: no new mint. */
	auth_apns_rejected(a, t1, NOW + 60 * S);
	t = auth_apns_token(a, NOW + 60 * S, &ra);
	is_ptr(t, NULL, "rejected within the floor: no token now");
	is_int(ra, NOW + 1200 * S, "  retry when the 20-minute floor ends");
	auth_apns_rejected(a, t1, NOW + 600 * S);
	is_ptr(auth_apns_token(a, NOW + 1199 * S, &ra), NULL,
	       "  still none at 19:59");
	auth_apns_get_stats(a, &st);
	is_int(st.mints, 1, "  one mint so far");
	t = auth_apns_token(a, NOW + 1200 * S, &ra);
	ok(t != NULL && strcmp(t, t1) != 0, "a new token at 20:00");
	t2 = strdup(t);
	auth_apns_get_stats(a, &st);
	is_int(st.mints, 2, "  two mints");
	is_int(st.refs, 2, "  two pools share it");

	auth_apns_get_stats(a, &st);
	is_int(st.rejected, 2, "  two rejections reported");

	/* TooManyProviderTokenUpdates for a refreshed token: back to the
	 * one APNs accepted (50 min old, still good); no mint for a
	 * floor. */
	{
		int64_t T = NOW + 10000 * S;
		char *o1, *o2;

		o1 = strdup(auth_apns_token(other, T, &ra));
		o2 = strdup(auth_apns_token(other, T + 3000 * S, &ra));
		ok(strcmp(o1, o2) != 0, "another team: refreshed at 50 min");
		at = auth_apns_too_many(other, o2, T + 3001 * S);
		is_str(auth_apns_token(other, T + 3001 * S, &ra), o1,
		       "TooManyProviderTokenUpdates: the accepted token "
		       "is used again");
		is_int(at, T + 3001 * S, "  retry at once with it");
		is_str(auth_apns_token(other, T + 3599 * S, &ra), o1,
		       "  kept (no mint) while it is under an hour old");
		is_ptr(auth_apns_token(other, T + 3600 * S, &ra), NULL,
		       "  at an hour old: no token");
		is_int(ra, T + 4201 * S, "  until the block ends (a floor "
		       "after the 429)");
		t = auth_apns_token(other, T + 4201 * S, &ra);
		ok(t != NULL && strcmp(t, o1) != 0 && strcmp(t, o2) != 0,
		   "  then a fresh token");
		auth_apns_get_stats(other, &st);
		is_int(st.mints, 3, "  three mints in all");
		is_int(st.too_many, 1, "  one too-many report");
		free(o1);
		free(o2);
	}

	/* Refresh at 50 minutes without any rejection. */
	{
		int64_t base = NOW + 1200 * S;
		char *t3 = strdup(auth_apns_token(a, base, &ra));

		is_str(auth_apns_token(a, base + 2999 * S, &ra), t3,
		       "refresh: same token at 49:59");
		t = auth_apns_token(a, base + 3000 * S, &ra);
		ok(t != NULL && strcmp(t, t3) != 0, "refresh: new at 50:00");
		free(t3);
	}
	free(t1);
	free(t2);
	auth_apns_put(b);
	auth_apns_put(a);
	auth_apns_put(other);
	/* After the last put, a get makes a fresh cache (no token yet). */
	is_int(auth_apns_get(&a, "TEAM123456", "ABC123DEFG", pem, err,
			     sizeof err), 0, "made again after the last put");
	auth_apns_get_stats(a, &st);
	is_int(st.mints, 0, "  with nothing minted");
	auth_apns_put(a);

	setenv("PGPUSH_APNS_JWT_FLOOR_S", "2", 1);
	setenv("PGPUSH_APNS_JWT_REFRESH_S", "1", 1);
	auth_apns_get(&a, "TEAM123456", "ABC123DEFG", pem, err, sizeof err);
	t1 = strdup(auth_apns_token(a, NOW, &ra));
	is_str(auth_apns_token(a, NOW + S, &ra), t1,
	       "test floor of 2 s: the refresh never goes below it");
	ok(strcmp(auth_apns_token(a, NOW + 2 * S, &ra), t1) != 0,
	   "  new token after 2 s");
	free(t1);
	auth_apns_put(a);
	unsetenv("PGPUSH_APNS_JWT_FLOOR_S");
	unsetenv("PGPUSH_APNS_JWT_REFRESH_S");

	EVP_PKEY_free(pub);
	EVP_PKEY_free(pub2);
	free(pem);
	free(pem2);
}

static const enum http_err transport_kinds[] = {
	HTTP_ERR_NOT_SENT, HTTP_ERR_NO_ANSWER, HTTP_ERR_BAD_ANSWER,
	HTTP_ERR_CANCELLED, HTTP_ERR_NONE
};

/*
 * A transport failure that reached the classifier is a retry (an
 * attempt) whatever its kind: the sender resends the not-sent ones
 * before (not an attempt) and only hands the classifier what is left.
 */
static void test_transport_kinds(void)
{
	size_t i;

	for (i = 0; i < sizeof transport_kinds / sizeof *transport_kinds;
	     i++) {
		struct sender_apns_answer ans;
		struct push_result res;

		memset(&ans, 0, sizeof ans);
		ans.error = "Recv failure: connection closed by the server";
		ans.err = transport_kinds[i];
		sender_apns_classify(&ans, 1, 8, NOW, B, &res);
		is_str(push_outcome_name(res.outcome), "retry",
		       "transport, %s: retry", http_err_name(ans.err));
		is_int(res.retry_at_us, NOW + B, "  after the backoff");
	}
	{
		struct sender_apns_answer ans;
		struct push_result res;

		memset(&ans, 0, sizeof ans);
		ans.error = "no answer 300 ms after the request was sent";
		ans.err = HTTP_ERR_NO_ANSWER;
		sender_apns_classify(&ans, 8, 8, NOW, B, &res);
		is_str(push_outcome_name(res.outcome), "failed",
		       "transport on the last attempt: failed");
	}
}

/* Which tokens APNs has accepted: the current and the previous one. */
static void test_accepted(void)
{
	struct auth_apns *a;
	char *pem, *t1, *t2, err[256];
	EVP_PKEY *k = keygen(&pem);
	int64_t ra;

	unsetenv("PGPUSH_APNS_JWT_REFRESH_S");
	unsetenv("PGPUSH_APNS_JWT_FLOOR_S");
	if (!ok(auth_apns_get(&a, "TEAMACCEPT", "KEYACCEPT1", pem, err,
			      sizeof err) == 0, "accepted: a cache"))
		return;
	t1 = strdup(auth_apns_token(a, NOW, &ra));
	ok(!auth_apns_was_accepted(a, t1), "a new token: not accepted yet");
	auth_apns_accepted(a, t1);
	ok(auth_apns_was_accepted(a, t1), "  accepted after a 200");
	t2 = strdup(auth_apns_token(a, NOW + 3000 * S, &ra));
	ok(strcmp(t1, t2) != 0, "refreshed at 50 minutes");
	ok(!auth_apns_was_accepted(a, t2), "  the new one: not accepted yet");
	ok(auth_apns_was_accepted(a, t1), "  the previous one still is");
	ok(!auth_apns_was_accepted(a, "eyJ.other.token"),
	   "an unknown token is not");
	ok(!auth_apns_was_accepted(a, NULL), "  nor no token");
	/* TooManyProviderTokenUpdates for t2: back to t1, accepted. */
	auth_apns_too_many(a, t2, NOW + 3001 * S);
	is_str(auth_apns_token(a, NOW + 3001 * S, &ra), t1,
	       "too many updates: back to the previous token");
	ok(auth_apns_was_accepted(a, t1), "  which is known accepted");
	free(t1);
	free(t2);
	auth_apns_put(a);
	EVP_PKEY_free(k);
	free(pem);
}

int main(void)
{
	is_ptr(sender_for(PUSH_PLATFORM_APNS), &sender_apns_ops,
	       "sender_for(apns)");
	is_str(sender_apns_ops.name, "apns", "its name");
	test_mapping();
	test_uuid();
	test_classify();
	test_transport_kinds();
	test_reconnect();
	test_token_errors();
	test_token();
	test_accepted();
	return done_testing();
}
