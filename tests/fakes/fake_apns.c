/*
 * fake_apns.c — Apple Push Notification service, HTTP/2 provider API
 * (PROTOCOLS.md section 1).
 *
 *   POST /3/device/<hex token>   apns-* headers, JSON payload
 *
 * Checks, in this order (first failure answers): :path (404 BadPath,
 * 400 MissingDeviceToken), method (405), repeated headers
 * (DuplicateHeaders), server-wide script mode, authentication,
 * apns-id, topic, collapse id, priority, push type (and its topic
 * suffix), expiration, token format, payload size, per-token script.
 *
 * Authentication: a connection with a client certificate from the test
 * CA is certificate-authenticated (topic defaults to the certificate's
 * UID); otherwise every request needs "authorization: bearer <JWT>",
 * ES256-signed by a key registered with --apns-key, iss = its team,
 * iat not older than apns_jwt_max_age (ExpiredProviderToken).  A JWT
 * never seen before is accepted only if its iat is at least
 * apns_jwt_min_refresh after the last accepted one for that key, else
 * 429 TooManyProviderTokenUpdates.  Token connections advertise one
 * concurrent stream until the first valid JWT, then apns_max_streams.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fake_conn.h"
#include "fake_jwt.h"
#include "fake_script.h"

#define SEEN_MAX 16

struct apns_key {
	char *kid, *team;
	EVP_PKEY *key;
	int have_iat;
	int64_t last_iat;	/* iat of the newest accepted JWT */
	char *seen[SEEN_MAX];	/* JWTs accepted so far (ring) */
	int nseen;
	struct apns_key *next;
};

static struct apns_key *keys;

/* Registers KID:TEAM:PEMFILE (a .p8 private key or a public key). */
int
fake_apns_add_key(const char *spec, char *err, size_t errlen)
{
	const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') :
	    NULL;
	struct apns_key *k;
	EVP_PKEY *pk;

	if (c1 == NULL || c2 == NULL) {
		snprintf(err, errlen, "--apns-key wants KID:TEAM:PEMFILE");
		return -1;
	}
	if ((pk = fake_key_load_file(c2 + 1)) == NULL) {
		snprintf(err, errlen, "cannot load APNs key %s", c2 + 1);
		return -1;
	}
	k = fake_xcalloc(1, sizeof *k);
	k->kid = fake_xstrndup(spec, (size_t)(c1 - spec));
	k->team = fake_xstrndup(c1 + 1, (size_t)(c2 - c1 - 1));
	k->key = pk;
	k->next = keys;
	keys = k;
	return 0;
}

void
fake_apns_free(void)
{
	int i;

	while (keys != NULL) {
		struct apns_key *k = keys;

		keys = k->next;
		for (i = 0; i < SEEN_MAX; i++)
			free(k->seen[i]);
		free(k->kid);
		free(k->team);
		EVP_PKEY_free(k->key);
		free(k);
	}
}

static const struct {
	const char *reason;
	int status;
} reasons[] = {
	{ "BadCollapseId", 400 }, { "BadDeviceToken", 400 },
	{ "BadExpirationDate", 400 }, { "BadMessageId", 400 },
	{ "BadPriority", 400 }, { "BadTopic", 400 },
	{ "DeviceTokenNotForTopic", 400 }, { "DuplicateHeaders", 400 },
	{ "IdleTimeout", 400 }, { "InvalidPushType", 400 },
	{ "MissingDeviceToken", 400 }, { "MissingTopic", 400 },
	{ "PayloadEmpty", 400 }, { "TopicDisallowed", 400 },
	{ "BadCertificate", 403 }, { "BadCertificateEnvironment", 403 },
	{ "ExpiredProviderToken", 403 }, { "Forbidden", 403 },
	{ "InvalidProviderToken", 403 }, { "MissingProviderToken", 403 },
	{ "UnrelatedKeyIdInToken", 403 },
	{ "BadEnvironmentKeyIdInToken", 403 }, { "BadPath", 404 },
	{ "MethodNotAllowed", 405 }, { "ExpiredToken", 410 },
	{ "Unregistered", 410 }, { "PayloadTooLarge", 413 },
	{ "TooManyProviderTokenUpdates", 429 }, { "TooManyRequests", 429 },
	{ "InternalServerError", 500 }, { "ServiceUnavailable", 503 },
	{ "Shutdown", 503 },
};

static const char *
default_reason(int status)
{
	switch (status) {
	case 403: return "Forbidden";
	case 404: return "BadPath";
	case 405: return "MethodNotAllowed";
	case 410: return "Unregistered";
	case 413: return "PayloadTooLarge";
	case 429: return "TooManyRequests";
	case 500: return "InternalServerError";
	case 503: return "ServiceUnavailable";
	default: return "BadDeviceToken";
	}
}

/* The error answer: {"reason":...} plus "timestamp" (ms) on 410. */
static void
fail(struct fake_resp *r, int status, const char *reason, int64_t ts)
{
	json_object *o = json_object_new_object();
	size_t i;

	if (reason == NULL)
		reason = default_reason(status);
	if (status == 0) {
		status = 400;
		for (i = 0; i < sizeof reasons / sizeof *reasons; i++)
			if (strcmp(reasons[i].reason, reason) == 0)
				status = reasons[i].status;
	}
	json_object_object_add(o, "reason", json_object_new_string(reason));
	if (status == 410)
		json_object_object_add(o, "timestamp",
		    json_object_new_int64(ts ? ts : fake_now_ms()));
	fake_resp_json(r, status, o);
}

static int
is_uuid(const char *s)
{
	int i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

static int
all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a > b && strcmp(s + a - b, suffix) == 0;
}

static const struct {
	const char *type, *suffix;
} push_types[] = {
	{ "alert", NULL }, { "background", NULL }, { "mdm", NULL },
	{ "controls", NULL }, { "voip", ".voip" },
	{ "complication", ".complication" },
	{ "fileprovider", ".pushkit.fileprovider" },
	{ "liveactivity", ".push-type.liveactivity" },
	{ "location", ".location-query" }, { "pushtotalk", ".voip-ptt" },
	{ "widgets", ".push-type.widgets" },
};

static int
seen(struct apns_key *k, const char *jwt)
{
	int i;

	for (i = 0; i < SEEN_MAX; i++)
		if (k->seen[i] != NULL && strcmp(k->seen[i], jwt) == 0)
			return 1;
	return 0;
}

/* Token auth; returns 0 or renders the failure into r. */
static int
check_jwt(struct fake_req *req, struct fake_resp *r)
{
	const char *auth = fake_req_header(req, "authorization");
	const char *alg, *kid, *iss, *jwt;
	struct fake_conn *c = req->conn;
	struct apns_key *k;
	struct fake_jwt j;
	int64_t iat, now = fake_now();
	int rc = -1;

	if (auth == NULL) {
		fail(r, 403, "MissingProviderToken", 0);
		return -1;
	}
	if (strncasecmp(auth, "bearer ", 7) != 0) {
		fail(r, 403, "InvalidProviderToken", 0);
		return -1;
	}
	jwt = auth + 7;
	if (fake_jwt_parse(jwt, &j) != 0)
		goto invalid;
	alg = fake_jwt_str(j.header, "alg");
	kid = fake_jwt_str(j.header, "kid");
	iss = fake_jwt_str(j.claims, "iss");
	if (alg == NULL || strcmp(alg, "ES256") != 0 || kid == NULL ||
	    iss == NULL || fake_jwt_int(j.claims, "iat", &iat) != 0)
		goto invalid;
	for (k = keys; k != NULL; k = k->next)
		if (strcmp(k->kid, kid) == 0)
			break;
	if (k == NULL || strcmp(k->team, iss) != 0 ||
	    !fake_jwt_verify(&j, "ES256", k->key) || iat > now + 60)
		goto invalid;
	if (c->apns_team != NULL && strcmp(c->apns_team, k->team) != 0) {
		fail(r, 403, "UnrelatedKeyIdInToken", 0);
		goto out;
	}
	if (now - iat > fake_cfg.apns_jwt_max_age) {
		fail(r, 403, "ExpiredProviderToken", 0);
		goto out;
	}
	if (!seen(k, jwt)) {
		if (k->have_iat &&
		    iat < k->last_iat + fake_cfg.apns_jwt_min_refresh) {
			fail(r, 429, "TooManyProviderTokenUpdates", 0);
			goto out;
		}
		k->have_iat = 1;
		k->last_iat = iat;
		free(k->seen[k->nseen]);
		k->seen[k->nseen] = fake_xstrdup(jwt);
		k->nseen = (k->nseen + 1) % SEEN_MAX;
	}
	if (c->apns_team == NULL)
		c->apns_team = fake_xstrdup(k->team);
	if (!c->apns_authed) {
		c->apns_authed = 1;
		fake_h2_set_max_streams(c, (uint32_t)(
		    fake_cfg.max_streams_override ?
		    fake_cfg.max_streams_override :
		    fake_cfg.apns_max_streams));
	}
	rc = 0;
	goto out;
invalid:
	fail(r, 403, "InvalidProviderToken", 0);
out:
	fake_jwt_free(&j);
	return rc;
}

/* Header checks after authentication; 0 or r rendered. */
static int
check_headers(struct fake_req *req, struct fake_resp *r, const char *topic,
    const char **push_type)
{
	const char *v, *prio = fake_req_header(req, "apns-priority");
	size_t i;

	if ((v = fake_req_header(req, "apns-collapse-id")) != NULL &&
	    strlen(v) > 64) {
		fail(r, 400, "BadCollapseId", 0);
		return -1;
	}
	if (prio != NULL && strcmp(prio, "10") && strcmp(prio, "5") &&
	    strcmp(prio, "1")) {
		fail(r, 400, "BadPriority", 0);
		return -1;
	}
	if ((v = fake_req_header(req, "apns-push-type")) != NULL) {
		for (i = 0; i < sizeof push_types / sizeof *push_types; i++)
			if (strcmp(push_types[i].type, v) == 0)
				break;
		if (i == sizeof push_types / sizeof *push_types) {
			fail(r, 400, "InvalidPushType", 0);
			return -1;
		}
		*push_type = v;
		if (push_types[i].suffix != NULL &&
		    !ends_with(topic, push_types[i].suffix)) {
			fail(r, 400, "BadTopic", 0);
			return -1;
		}
		/* Background pushes must not be sent at priority 10. */
		if (strcmp(v, "background") == 0 &&
		    (prio == NULL || strcmp(prio, "10") == 0)) {
			fail(r, 400, "BadPriority", 0);
			return -1;
		}
	}
	if ((v = fake_req_header(req, "apns-expiration")) != NULL &&
	    !all_digits(v)) {
		fail(r, 400, "BadExpirationDate", 0);
		return -1;
	}
	return 0;
}

static int
token_ok(const char *t)
{
	size_t n = strlen(t), i;

	if (n < 64 || n > 200 || n % 2 != 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)t[i]))
			return 0;
	return 1;
}

static void
handle(struct fake_req *req, struct fake_resp *r)
{
	struct fake_conn *c = req->conn;
	const char *token, *topic, *id, *push_type = "";
	struct fake_rule rule;
	size_t limit;

	if (strncmp(req->path, "/3/device/", 10) != 0 ||
	    strchr(req->path + 10, '/') != NULL ||
	    strchr(req->path + 10, '?') != NULL) {
		fail(r, 404, "BadPath", 0);
		return;
	}
	token = req->path + 10;
	if (*token != '\0')
		r->token = fake_xstrdup(token);
	if (strcmp(req->method, "POST") != 0) {
		fail(r, 405, "MethodNotAllowed", 0);
		return;
	}
	if (*token == '\0') {
		fail(r, 400, "MissingDeviceToken", 0);
		return;
	}
	if (req->dup_header != NULL) {
		fail(r, 400, "DuplicateHeaders", 0);
		return;
	}
	if (fake_script_mode(FAKE_APNS, &rule)) {
		fail(r, rule.status, rule.reason, rule.timestamp);
		fake_rule_apply(&rule, r);
		fake_rule_clear(&rule);
		return;
	}
	if (c->client_cert) {
		r->auth = "certificate";
	} else {
		r->auth = "token";
		if (check_jwt(req, r) != 0)
			return;
	}
	id = fake_req_header(req, "apns-id");
	if (id != NULL && !is_uuid(id)) {
		fail(r, 400, "BadMessageId", 0);
		return;
	}
	topic = fake_req_header(req, "apns-topic");
	if (topic == NULL && c->client_cert)
		topic = c->cert_uid;
	if (topic == NULL || *topic == '\0') {
		fail(r, 400, "MissingTopic", 0);
		return;
	}
	if (c->client_cert && c->cert_uid != NULL &&
	    strncmp(topic, c->cert_uid, strlen(c->cert_uid)) != 0) {
		fail(r, 400, "TopicDisallowed", 0);
		return;
	}
	if (check_headers(req, r, topic, &push_type) != 0)
		return;
	if (!token_ok(token)) {
		fail(r, 400, "BadDeviceToken", 0);
		return;
	}
	if (req->body_total == 0) {
		fail(r, 400, "PayloadEmpty", 0);
		return;
	}
	limit = strcmp(push_type, "voip") == 0 ? 5120 : 4096;
	if (req->body_total > limit) {
		fail(r, 413, "PayloadTooLarge", 0);
		return;
	}
	if (fake_script_match(FAKE_APNS, token, &rule)) {
		if (rule.status != 0 && rule.status != 200)
			fail(r, rule.status, rule.reason, rule.timestamp);
		else if (rule.status == 0 && rule.reason != NULL)
			fail(r, 0, rule.reason, rule.timestamp);
		fake_rule_apply(&rule, r);
		fake_rule_clear(&rule);
		if (r->status != 0)
			return;
	}
	r->status = 200;
}

void
fake_apns_handle(struct fake_req *req, struct fake_resp *r)
{
	const char *id = fake_req_header(req, "apns-id");
	char uuid[37], uid[37];

	handle(req, r);
	/* Every answer carries apns-id: the request's, or a new one. */
	if (id != NULL && is_uuid(id)) {
		fake_resp_header(r, "apns-id", id);
	} else {
		fake_uuid(uuid);
		fake_resp_header(r, "apns-id", uuid);
	}
	fake_uuid(uid);
	fake_resp_header(r, "apns-unique-id", uid);
}
