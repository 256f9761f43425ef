/*
 * fake_fcm.c — Firebase Cloud Messaging HTTP v1 (PROTOCOLS.md
 * section 2); the OAuth2 token endpoint is in fake_fcm_auth.c.
 *
 *   POST /token                          JWT-bearer grant -> access token
 *   POST /v1/projects/<id>/messages:send Bearer <access token we issued>
 *
 * The access token must be live and belong to a service account of
 * project <id>.  Messages are validated field by field (one target,
 * string-only data, reserved keys, TTL format, size) and errors use
 * the real shape:
 * {"error":{"code","message","status","details":[FcmError,...]}}.
 * Script rules and modes are keyed by the target (token, topic or
 * condition); on the token endpoint by the service-account email.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fake_fcm.h"
#include "fake_script.h"

#define FCMERR "type.googleapis.com/google.firebase.fcm.v1.FcmError"
#define BADREQ "type.googleapis.com/google.rpc.BadRequest"
#define QUOTA "type.googleapis.com/google.rpc.QuotaFailure"

static uint64_t msg_seq;

/* The Google API error body; errcode NULL: no FcmError detail. */
static void
fcm_error(struct fake_resp *r, int http, const char *status,
    const char *msg, const char *errcode, const char *field)
{
	json_object *o = json_object_new_object(), *e, *d, *x;

	e = json_object_new_object();
	json_object_object_add(e, "code", json_object_new_int(http));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(e, "status", json_object_new_string(status));
	if (errcode != NULL || field != NULL) {
		d = json_object_new_array();
		if (errcode != NULL) {
			x = json_object_new_object();
			json_object_object_add(x, "@type",
			    json_object_new_string(FCMERR));
			json_object_object_add(x, "errorCode",
			    json_object_new_string(errcode));
			json_object_array_add(d, x);
		}
		if (errcode != NULL && strcmp(errcode, "QUOTA_EXCEEDED") == 0) {
			json_object *qv = json_object_new_array(), *v;

			v = json_object_new_object();
			json_object_object_add(v, "subject",
			    json_object_new_string("target"));
			json_object_object_add(v, "description",
			    json_object_new_string("Device message rate "
			    "exceeded."));
			json_object_array_add(qv, v);
			x = json_object_new_object();
			json_object_object_add(x, "@type",
			    json_object_new_string(QUOTA));
			json_object_object_add(x, "violations", qv);
			json_object_array_add(d, x);
		}
		if (field != NULL) {
			json_object *fv = json_object_new_array(), *v;

			v = json_object_new_object();
			json_object_object_add(v, "field",
			    json_object_new_string(field));
			json_object_object_add(v, "description",
			    json_object_new_string(msg));
			json_object_array_add(fv, v);
			x = json_object_new_object();
			json_object_object_add(x, "@type",
			    json_object_new_string(BADREQ));
			json_object_object_add(x, "fieldViolations", fv);
			json_object_array_add(d, x);
		}
		json_object_object_add(e, "details", d);
	}
	json_object_object_add(o, "error", e);
	fake_resp_json(r, http, o);
}

static void
bad(struct fake_resp *r, const char *msg, const char *field)
{
	fcm_error(r, 400, "INVALID_ARGUMENT", msg, "INVALID_ARGUMENT", field);
}

static const struct {
	const char *code;
	int http;
	const char *status, *msg;
	int fcmerror;
} errtab[] = {
	{ "INVALID_ARGUMENT", 400, "INVALID_ARGUMENT",
	  "The registration token is not a valid FCM registration token", 1 },
	{ "UNREGISTERED", 404, "NOT_FOUND",
	  "Requested entity was not found.", 1 },
	{ "SENDER_ID_MISMATCH", 403, "PERMISSION_DENIED",
	  "SenderId mismatch", 1 },
	{ "QUOTA_EXCEEDED", 429, "RESOURCE_EXHAUSTED",
	  "Quota exceeded for quota metric 'Send requests'.", 1 },
	{ "UNAVAILABLE", 503, "UNAVAILABLE",
	  "The service is currently unavailable.", 1 },
	{ "INTERNAL", 500, "INTERNAL", "Internal error encountered.", 1 },
	{ "THIRD_PARTY_AUTH_ERROR", 401, "UNAUTHENTICATED",
	  "Auth error from APNS or Web Push Service", 1 },
	{ "APNS_AUTH_ERROR", 401, "UNAUTHENTICATED",
	  "Auth error from APNS or Web Push Service", 1 },
	{ "UNSPECIFIED_ERROR", 500, "INTERNAL", "Unspecified error.", 1 },
	{ "UNAUTHENTICATED", 401, "UNAUTHENTICATED",
	  "Request had invalid authentication credentials. Expected OAuth "
	  "2 access token, login cookie or other valid authentication "
	  "credential. See https://developers.google.com/identity/sign-in/"
	  "web/devconsole-project.", 0 },
	{ "PERMISSION_DENIED", 403, "PERMISSION_DENIED",
	  "The caller does not have permission", 0 },
};

static const char *
default_code(int status)
{
	switch (status) {
	case 400: return "INVALID_ARGUMENT";
	case 401: return "UNAUTHENTICATED";
	case 403: return "SENDER_ID_MISMATCH";
	case 404: return "UNREGISTERED";
	case 429: return "QUOTA_EXCEEDED";
	case 503: return "UNAVAILABLE";
	default: return "INTERNAL";
	}
}

/* Renders a scripted failure of the send endpoint. */
static void
render_send(const struct fake_rule *rule, struct fake_resp *r)
{
	const char *code = rule->reason;
	size_t i;

	if (rule->status == 502 && code == NULL) {
		r->status = 502;
		fake_resp_header(r, "content-type", "text/html");
		fake_resp_body_str(r, "<html><body><h1>502 Bad Gateway</h1>"
		    "</body></html>\n");
		return;
	}
	if (code == NULL)
		code = default_code(rule->status);
	for (i = 0; i < sizeof errtab / sizeof *errtab; i++)
		if (strcmp(errtab[i].code, code) == 0)
			break;
	if (i == sizeof errtab / sizeof *errtab) {
		fcm_error(r, rule->status ? rule->status : 500, "INTERNAL",
		    code, code, NULL);
		return;
	}
	fcm_error(r, rule->status ? rule->status : errtab[i].http,
	    errtab[i].status, errtab[i].msg,
	    errtab[i].fcmerror ? errtab[i].code : NULL,
	    strcmp(code, "INVALID_ARGUMENT") == 0 ? "message.token" : NULL);
}


static int
charset_ok(const char *s, const char *extra)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return 0;
	return 1;
}

static int
known(const char *key, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(key, *list) == 0)
			return 1;
	return 0;
}

/* Checks that o is an object with only the listed keys. */
static int
check_fields(json_object *o, const char *const *list, const char *where,
    struct fake_resp *r)
{
	char msg[512];

	if (!json_object_is_type(o, json_type_object)) {
		snprintf(msg, sizeof msg, "Invalid value at '%s': must be an "
		    "object", where);
		bad(r, msg, where);
		return -1;
	}
	json_object_object_foreach(o, k, v) {
		(void)v;
		if (!known(k, list)) {
			snprintf(msg, sizeof msg, "Invalid JSON payload "
			    "received. Unknown name \"%s\" at '%s': Cannot "
			    "find field.", k, where);
			bad(r, msg, where);
			return -1;
		}
	}
	return 0;
}

/* Checks a data map; adds its size to *size. */
static int
check_data(json_object *d, const char *where, size_t *size,
    struct fake_resp *r)
{
	char msg[512];

	if (!json_object_is_type(d, json_type_object)) {
		bad(r, "Invalid value: data must be a map", where);
		return -1;
	}
	json_object_object_foreach(d, k, v) {
		if (!json_object_is_type(v, json_type_string)) {
			snprintf(msg, sizeof msg, "Invalid value at '%s[%s]' "
			    "(TYPE_STRING)", where, k);
			bad(r, msg, where);
			return -1;
		}
		if (strcmp(k, "from") == 0 || strcmp(k, "message_type") == 0 ||
		    strncmp(k, "google", 6) == 0 || strncmp(k, "gcm", 3) == 0) {
			snprintf(msg, sizeof msg, "Invalid data payload key: "
			    "%s", k);
			bad(r, msg, where);
			return -1;
		}
		*size += strlen(k) + (size_t)json_object_get_string_len(v);
	}
	return 0;
}

/*
 * Checks the scalar fields of o; strict: strings only (Notification),
 * else also numbers, booleans and arrays (AndroidNotification).
 */
static int
check_strings(json_object *o, const char *where, int strict, size_t *size,
    struct fake_resp *r)
{
	char msg[256];

	json_object_object_foreach(o, k, v) {
		if (strict && !json_object_is_type(v, json_type_string)) {
			snprintf(msg, sizeof msg, "Invalid value at '%s.%s' "
			    "(TYPE_STRING)", where, k);
			bad(r, msg, where);
			return -1;
		}
		if (json_object_is_type(v, json_type_object))
			continue;
		if (!json_object_is_type(v, json_type_string) &&
		    !json_object_is_type(v, json_type_int) &&
		    !json_object_is_type(v, json_type_boolean) &&
		    !json_object_is_type(v, json_type_array)) {
			snprintf(msg, sizeof msg, "Invalid value at '%s.%s'",
			    where, k);
			bad(r, msg, where);
			return -1;
		}
		if (json_object_is_type(v, json_type_string))
			*size += strlen(k) +
			    (size_t)json_object_get_string_len(v);
	}
	return 0;
}

static int
check_ttl(const char *s)
{
	char *e;
	double v = strtod(s, &e);

	if (!isdigit((unsigned char)*s) || strcmp(e, "s") != 0)
		return -1;
	return v >= 0 && v <= 2419200 ? 0 : -1;
}

static int
check_android(json_object *a, size_t *size, struct fake_resp *r)
{
	static const char *const f[] = { "collapse_key", "priority", "ttl",
	    "restricted_package_name", "data", "notification",
	    "fcm_options", "direct_boot_ok", NULL };
	json_object *v;

	if (check_fields(a, f, "message.android", r))
		return -1;
	if (json_object_object_get_ex(a, "priority", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	    (strcmp(json_object_get_string(v), "NORMAL") &&
	    strcmp(json_object_get_string(v), "HIGH")))) {
		bad(r, "Invalid value at 'message.android.priority' "
		    "(type.googleapis.com/google.firebase.fcm.v1."
		    "AndroidMessagePriority)", "message.android.priority");
		return -1;
	}
	if (json_object_object_get_ex(a, "ttl", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	    check_ttl(json_object_get_string(v)))) {
		bad(r, "Invalid value at 'message.android.ttl' "
		    "(type.googleapis.com/google.protobuf.Duration)",
		    "message.android.ttl");
		return -1;
	}
	if (json_object_object_get_ex(a, "collapse_key", &v) &&
	    !json_object_is_type(v, json_type_string)) {
		bad(r, "Invalid value at 'message.android.collapse_key'",
		    "message.android.collapse_key");
		return -1;
	}
	if (json_object_object_get_ex(a, "data", &v) &&
	    check_data(v, "message.android.data", size, r))
		return -1;
	if (json_object_object_get_ex(a, "notification", &v) &&
	    (!json_object_is_type(v, json_type_object) ||
	    check_strings(v, "message.android.notification", 0, size,
	    r))) {
		if (r->status == 0)
			bad(r, "Invalid value at 'message.android."
			    "notification'", "message.android.notification");
		return -1;
	}
	return 0;
}

/*
 * Validates a SendMessageRequest; returns 0 and the target, or -1 with
 * the error rendered into r.
 */
static int
check_message(json_object *root, const char **target, int *is_topic,
    int *validate_only, struct fake_resp *r)
{
	static const char *const top[] = { "message", "validate_only", NULL };
	static const char *const mf[] = { "name", "token", "topic",
	    "condition", "notification", "data", "android", "apns",
	    "webpush", "fcm_options", NULL };
	static const char *const nf[] = { "title", "body", "image", NULL };
	static const char *const apf[] = { "headers", "payload",
	    "fcm_options", "live_activity_token", NULL };
	static const char *const wpf[] = { "headers", "data", "notification",
	    "fcm_options", NULL };
	json_object *m, *v;
	const char *tnames[3] = { "token", "topic", "condition" };
	size_t size = 0;
	int i, ntarget = 0;
	char msg[256];

	if (check_fields(root, top, "", r))
		return -1;
	if (json_object_object_get_ex(root, "validate_only", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			bad(r, "Invalid value at 'validate_only' (TYPE_BOOL)",
			    "validate_only");
			return -1;
		}
		*validate_only = json_object_get_boolean(v);
	}
	if (!json_object_object_get_ex(root, "message", &m)) {
		bad(r, "Request contains an invalid argument.", "message");
		return -1;
	}
	if (check_fields(m, mf, "message", r))
		return -1;
	for (i = 0; i < 3; i++) {
		if (!json_object_object_get_ex(m, tnames[i], &v))
			continue;
		if (!json_object_is_type(v, json_type_string)) {
			snprintf(msg, sizeof msg, "Invalid value at "
			    "'message.%s' (TYPE_STRING)", tnames[i]);
			bad(r, msg, "message");
			return -1;
		}
		if (ntarget++ > 0) {
			snprintf(msg, sizeof msg, "Invalid value at 'message' "
			    "(oneof), oneof field 'target' is already set. "
			    "Cannot set '%s'", tnames[i]);
			bad(r, msg, "message");
			return -1;
		}
		*target = json_object_get_string(v);
		*is_topic = i == 1;
		if (i == 0 && !charset_ok(*target, "_:-")) {
			bad(r, "The registration token is not a valid FCM "
			    "registration token", "message.token");
			return -1;
		}
		if (i == 1 && !charset_ok(*target, "-_.~%")) {
			bad(r, "Invalid topic name", "message.topic");
			return -1;
		}
	}
	if (ntarget == 0) {
		bad(r, "Recipient of the message is not set.", "message");
		return -1;
	}
	if (json_object_object_get_ex(m, "notification", &v) &&
	    (check_fields(v, nf, "message.notification", r) ||
	    check_strings(v, "message.notification", 1, &size, r)))
		return -1;
	if (json_object_object_get_ex(m, "data", &v) &&
	    check_data(v, "message.data", &size, r))
		return -1;
	if (json_object_object_get_ex(m, "android", &v) &&
	    check_android(v, &size, r))
		return -1;
	if (json_object_object_get_ex(m, "apns", &v)) {
		json_object *h;

		if (check_fields(v, apf, "message.apns", r))
			return -1;
		if (json_object_object_get_ex(v, "headers", &h) &&
		    check_data(h, "message.apns.headers", &size, r))
			return -1;
		if (json_object_object_get_ex(v, "payload", &h)) {
			if (!json_object_is_type(h, json_type_object)) {
				bad(r, "Invalid value at "
				    "'message.apns.payload'",
				    "message.apns.payload");
				return -1;
			}
			size += strlen(json_object_to_json_string_ext(h,
			    JSON_C_TO_STRING_PLAIN));
		}
	}
	if (json_object_object_get_ex(m, "webpush", &v) &&
	    check_fields(v, wpf, "message.webpush", r))
		return -1;
	if (size > (*is_topic ? 2048u : 4096u)) {
		fcm_error(r, 400, "INVALID_ARGUMENT", "Message is too big",
		    "INVALID_ARGUMENT", NULL);
		return -1;
	}
	return 0;
}

static void
handle_send(struct fake_req *req, struct fake_resp *r, const char *proj,
    size_t projlen)
{
	const char *auth = fake_req_header(req, "authorization");
	const char *ct = fake_req_header(req, "content-type");
	const char *target = NULL;
	int is_topic = 0, validate_only = 0;
	struct fake_rule rule;
	const char *project = NULL;
	json_object *root, *o;
	json_tokener *tok;
	char name[512];
	int expired = 0;

	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
		project = fake_fcm__project(auth + 7, &expired);
	if (project == NULL) {
		fcm_error(r, 401, "UNAUTHENTICATED", errtab[9].msg, NULL,
		    NULL);
		fake_resp_header(r, "www-authenticate", expired ?
		    "Bearer realm=\"https://accounts.google.com/\", "
		    "error=\"invalid_token\"" :
		    "Bearer realm=\"https://accounts.google.com/\"");
		return;
	}
	r->auth = "oauth2";
	if (strlen(project) != projlen ||
	    strncmp(project, proj, projlen) != 0) {
		fcm_error(r, 403, "PERMISSION_DENIED", "Permission "
		    "'cloudmessaging.messages.create' denied on resource "
		    "(or it may not exist).", NULL, NULL);
		return;
	}
	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
		bad(r, "Invalid JSON payload received. Content-Type must be "
		    "application/json.", "");
		return;
	}
	tok = json_tokener_new();
	root = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
	if (root == NULL || json_tokener_get_error(tok) !=
	    json_tokener_success ||
	    (size_t)json_tokener_get_parse_end(tok) != req->body_len) {
		json_tokener_free(tok);
		json_object_put(root);
		bad(r, "Invalid JSON payload received. Unexpected token.", "");
		return;
	}
	json_tokener_free(tok);
	if (check_message(root, &target, &is_topic, &validate_only, r)) {
		json_object_put(root);
		return;
	}
	r->token = fake_xstrdup(target);
	json_object_put(root);
	if (fake_script_match(FAKE_FCM, r->token, &rule)) {
		if ((rule.status != 0 && rule.status != 200) ||
		    (rule.status == 0 && rule.reason != NULL))
			render_send(&rule, r);
		fake_rule_apply(&rule, r);
		fake_rule_clear(&rule);
		if (r->status != 0)
			return;
	}
	if (validate_only)
		snprintf(name, sizeof name, "projects/%.*s/messages/"
		    "fake_message_id", (int)projlen, proj);
	else
		snprintf(name, sizeof name, "projects/%.*s/messages/0:%lld%%"
		    "%016llx", (int)projlen, proj, (long long)fake_now_ms(),
		    (unsigned long long)++msg_seq);
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	fake_resp_json(r, 200, o);
}

void
fake_fcm_handle(struct fake_req *req, struct fake_resp *r)
{
	const char *p = req->path, *proj, *end;
	struct fake_rule mode;

	if (strcmp(p, "/token") == 0 || strcmp(p, "/oauth2/v4/token") == 0) {
		fake_fcm__token(req, r);
		return;
	}
	if (strncmp(p, "/v1/projects/", 13) != 0 ||
	    (end = strstr(p + 13, "/messages:send")) == NULL ||
	    end[14] != '\0' || end == p + 13 ||
	    memchr(p + 13, '/', (size_t)(end - p - 13)) != NULL) {
		fcm_error(r, 404, "NOT_FOUND", "The requested URL was not "
		    "found on this server.", NULL, NULL);
		return;
	}
	proj = p + 13;
	if (fake_script_mode(FAKE_FCM, &mode)) {
		render_send(&mode, r);
		fake_rule_apply(&mode, r);
		fake_rule_clear(&mode);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		fcm_error(r, 405, "INVALID_ARGUMENT", "Method not allowed",
		    NULL, NULL);
		return;
	}
	handle_send(req, r, proj, (size_t)(end - proj));
}
