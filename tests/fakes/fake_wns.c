/*
 * fake_wns.c — Windows Push Notification Services (PROTOCOLS.md
 * section 3), HTTP/1.1 only.
 *
 *   POST /accesstoken.srf              client credentials (live.com)
 *   POST /<tenant>/oauth2/v2.0/token   client credentials (Entra ID)
 *   POST /<anything>?token=<channel>   a notification
 *
 * Notifications need "Authorization: Bearer" with a token we issued and
 * that has not expired, X-WNS-Type, the matching Content-Type, and
 * valid optional headers (Cache-Policy, RequestForStatus, Tag for
 * tiles only, TTL, PRIORITY 1-4); payloads above 5000 bytes get 413.
 * Answers carry X-WNS-Status, X-WNS-Msg-ID, X-WNS-Debug-Trace and, on
 * errors, X-WNS-Error-Description.  Script rules are keyed by the
 * channel's token parameter.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fake_conn.h"
#include "fake_script.h"

struct client {
	char *sid, *secret;
	struct client *next;
};

struct token {
	char *value;
	int64_t expires_ms;
	struct token *next;
};

static struct client *clients;
static struct token *tokens;

/* Registers SID:SECRET (the package SID may itself contain ':'). */
int
fake_wns_add_client(const char *spec, char *err, size_t errlen)
{
	const char *c = strrchr(spec, ':');
	struct client *cl;

	if (c == NULL || c == spec || c[1] == '\0') {
		snprintf(err, errlen, "--wns-client wants SID:SECRET");
		return -1;
	}
	cl = fake_xcalloc(1, sizeof *cl);
	cl->sid = fake_xstrndup(spec, (size_t)(c - spec));
	cl->secret = fake_xstrdup(c + 1);
	cl->next = clients;
	clients = cl;
	return 0;
}

void
fake_wns_expire_tokens(void)
{
	struct token *t;

	for (t = tokens; t != NULL; t = t->next)
		t->expires_ms = 0;
}

void
fake_wns_free(void)
{
	while (clients != NULL) {
		struct client *c = clients;

		clients = c->next;
		free(c->sid);
		free(c->secret);
		free(c);
	}
	while (tokens != NULL) {
		struct token *t = tokens;

		tokens = t->next;
		free(t->value);
		free(t);
	}
}

static const char *
description(int status)
{
	switch (status) {
	case 400: return "One or more headers were specified incorrectly "
	    "or conflict with another header.";
	case 401: return "The cloud service did not present a valid "
	    "authentication ticket.";
	case 403: return "The cloud service is not authorized to send a "
	    "notification to this URI even though they are authenticated.";
	case 404: return "The channel URI is not valid or is not "
	    "recognized by WNS.";
	case 405: return "Invalid method; only POST is allowed.";
	case 406: return "The cloud service exceeded its throttle limit.";
	case 410: return "The channel expired.";
	case 413: return "The notification payload exceeds the 5000 byte "
	    "size limit.";
	case 500: return "An internal failure caused notification "
	    "delivery to fail.";
	case 503: return "The server is currently unavailable.";
	default: return "Error.";
	}
}

static void
ids(struct fake_req *req, struct fake_resp *r)
{
	char id[17], trace[33];
	const char *cv = fake_req_header(req, "ms-cv");

	fake_rand_hex(id, 16);
	fake_rand_hex(trace, 32);
	fake_resp_header(r, "X-WNS-Msg-ID", id);
	fake_resp_header(r, "X-WNS-Debug-Trace", trace);
	if (cv != NULL)
		fake_resp_header(r, "MS-CV", cv);
}

static void
fail(struct fake_req *req, struct fake_resp *r, int status,
    const char *desc)
{
	r->status = status;
	fake_resp_header(r, "X-WNS-Error-Description",
	    desc ? desc : description(status));
	if (status == 406)
		fake_resp_header(r, "Retry-After", "60");
	ids(req, r);
}

static void
oauth_error(struct fake_resp *r, const char *err, const char *desc)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(err));
	json_object_object_add(o, "error_description",
	    json_object_new_string(desc));
	fake_resp_json(r, 400, o);
}

static void
handle_token(struct fake_req *req, struct fake_resp *r, int entra)
{
	const char *ct = fake_req_header(req, "content-type");
	const char *want = entra ? "https://wns.windows.com/.default" :
	    "notify.windows.com";
	char *grant = NULL, *id = NULL, *secret = NULL, *scope = NULL;
	char tok[80];
	struct client *c;
	struct token *t;
	json_object *o;

	if (strcmp(req->method, "POST") != 0) {
		r->status = 405;
		return;
	}
	if (ct == NULL || strncasecmp(ct,
	    "application/x-www-form-urlencoded", 33) != 0) {
		oauth_error(r, "invalid_request", "Content-Type must be "
		    "application/x-www-form-urlencoded");
		return;
	}
	grant = fake_form_get(req->body, "grant_type");
	id = fake_form_get(req->body, "client_id");
	secret = fake_form_get(req->body, "client_secret");
	scope = fake_form_get(req->body, "scope");
	if (id != NULL)
		r->token = fake_xstrdup(id);
	if (grant == NULL || strcmp(grant, "client_credentials") != 0) {
		oauth_error(r, "unsupported_grant_type",
		    "The provided value for the input parameter 'grant_type' "
		    "is not valid.");
		goto out;
	}
	for (c = clients; c != NULL && id != NULL; c = c->next)
		if (strcmp(c->sid, id) == 0)
			break;
	if (id == NULL || c == NULL || secret == NULL ||
	    strcmp(c->secret, secret) != 0) {
		oauth_error(r, "invalid_client", "Invalid client id or "
		    "client secret");
		goto out;
	}
	if (scope == NULL || strcmp(scope, want) != 0) {
		oauth_error(r, "invalid_scope", "The provided value for the "
		    "input parameter 'scope' is not valid.");
		goto out;
	}
	strcpy(tok, "EgAcAQMAAAAEgAAAC-fake-");
	fake_rand_hex(tok + strlen(tok), 40);
	t = fake_xcalloc(1, sizeof *t);
	t->value = fake_xstrdup(tok);
	t->expires_ms = fake_now_ms() +
	    (int64_t)fake_cfg.wns_token_ttl * 1000;
	t->next = tokens;
	tokens = t;
	o = json_object_new_object();
	json_object_object_add(o, "token_type",
	    json_object_new_string("bearer"));
	json_object_object_add(o, "access_token", json_object_new_string(tok));
	json_object_object_add(o, "expires_in",
	    json_object_new_int(fake_cfg.wns_token_ttl));
	fake_resp_json(r, 200, o);
out:
	free(grant);
	free(id);
	free(secret);
	free(scope);
}

static int
check_auth(struct fake_req *req, struct fake_resp *r)
{
	const char *a = fake_req_header(req, "authorization");
	struct token *t = NULL;

	if (a != NULL && strncasecmp(a, "Bearer ", 7) == 0)
		for (t = tokens; t != NULL; t = t->next)
			if (strcmp(t->value, a + 7) == 0)
				break;
	if (t == NULL) {
		fail(req, r, 401, NULL);
		fake_resp_header(r, "WWW-Authenticate", "Bearer error="
		    "\"invalid_request\",error_description=\"Invalid token\"");
		return -1;
	}
	if (t->expires_ms <= fake_now_ms()) {
		fail(req, r, 401, "Token expired");
		fake_resp_header(r, "WWW-Authenticate", "Bearer error="
		    "\"invalid_request\",error_description=\"Token has "
		    "expired\"");
		return -1;
	}
	return 0;
}

static int
alnum_max(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++)
		if (!isalnum((unsigned char)*s))
			return 0;
	return n > 0 && n <= max;
}

static int
digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* The XML root element is <toast>, <tile> or <badge> as X-WNS-Type. */
static int
xml_root_ok(const char *body, const char *type)
{
	char want[16];

	while (isspace((unsigned char)*body))
		body++;
	if (strncmp(body, "<?xml", 5) == 0) {
		body = strstr(body, "?>");
		if (body == NULL)
			return 0;
		body += 2;
		while (isspace((unsigned char)*body))
			body++;
	}
	snprintf(want, sizeof want, "<%s", type);
	return strncmp(body, want, strlen(want)) == 0 &&
	    (body[strlen(want)] == '>' || isspace((unsigned char)
	    body[strlen(want)]) || body[strlen(want)] == '/');
}

static int
check_request(struct fake_req *req, struct fake_resp *r)
{
	const char *type = fake_req_header(req, "x-wns-type");
	const char *ct = fake_req_header(req, "content-type");
	const char *v, *kind;
	int raw;

	if (type == NULL || strncmp(type, "wns/", 4) != 0 ||
	    (strcmp(type + 4, "toast") && strcmp(type + 4, "tile") &&
	    strcmp(type + 4, "badge") && strcmp(type + 4, "raw"))) {
		fail(req, r, 400, "X-WNS-Type header missing or invalid");
		return -1;
	}
	kind = type + 4;
	raw = strcmp(kind, "raw") == 0;
	if (ct == NULL || strncasecmp(ct, raw ? "application/octet-stream" :
	    "text/xml", raw ? 24 : 8) != 0) {
		fail(req, r, 400, "Content-Type does not match X-WNS-Type");
		return -1;
	}
	if ((v = fake_req_header(req, "x-wns-cache-policy")) != NULL &&
	    strcmp(v, "cache") && strcmp(v, "no-cache")) {
		fail(req, r, 400, "Invalid X-WNS-Cache-Policy");
		return -1;
	}
	if ((v = fake_req_header(req, "x-wns-requestforstatus")) != NULL &&
	    strcmp(v, "true") && strcmp(v, "false")) {
		fail(req, r, 400, "Invalid X-WNS-RequestForStatus");
		return -1;
	}
	if ((v = fake_req_header(req, "x-wns-tag")) != NULL &&
	    (strcmp(kind, "tile") != 0 || !alnum_max(v, 16))) {
		fail(req, r, 400, "X-WNS-Tag is for tiles, at most 16 "
		    "alphanumeric characters");
		return -1;
	}
	if ((v = fake_req_header(req, "x-wns-ttl")) != NULL && !digits(v)) {
		fail(req, r, 400, "Invalid X-WNS-TTL");
		return -1;
	}
	if ((v = fake_req_header(req, "x-wns-priority")) != NULL &&
	    (strlen(v) != 1 || v[0] < '1' || v[0] > '4')) {
		fail(req, r, 400, "Invalid X-WNS-PRIORITY");
		return -1;
	}
	if (fake_req_header(req, "x-wns-suppresspopup") != NULL ||
	    fake_req_header(req, "x-wns-group") != NULL ||
	    fake_req_header(req, "x-wns-match") != NULL) {
		fail(req, r, 400, "Header valid only for Windows Phone "
		    "channels");
		return -1;
	}
	if (req->body_total > 5000) {
		fail(req, r, 413, NULL);
		return -1;
	}
	if (raw && req->body_total == 0) {
		fail(req, r, 400, "Raw notification payload is empty");
		return -1;
	}
	if (!raw && !xml_root_ok(req->body, kind)) {
		fail(req, r, 400, "The XML payload does not match "
		    "X-WNS-Type");
		return -1;
	}
	return 0;
}

/* Renders a scripted answer: status + reason (X-WNS-Status on 200). */
static void
render(struct fake_req *req, struct fake_resp *r, const struct fake_rule *s)
{
	if (s->status == 0 || s->status == 200) {
		r->status = 200;
		fake_resp_header(r, "X-WNS-Status",
		    s->reason ? s->reason : "received");
		ids(req, r);
		return;
	}
	fail(req, r, s->status, s->reason);
}

void
fake_wns_handle(struct fake_req *req, struct fake_resp *r)
{
	char *q = strchr(req->path, '?');
	char *token = q ? fake_form_get(q + 1, "token") : NULL;
	const char *rfs;
	struct fake_rule rule;
	size_t n = strlen(req->path);

	if (strcmp(req->path, "/accesstoken.srf") == 0) {
		handle_token(req, r, 0);
		return;
	}
	if (n >= 18 && strcmp(req->path + n - 18, "/oauth2/v2.0/token") == 0) {
		handle_token(req, r, 1);
		return;
	}
	if (token == NULL || *token == '\0') {
		free(token);
		fail(req, r, 404, NULL);
		return;
	}
	r->token = token;
	if (fake_script_mode(FAKE_WNS, &rule)) {
		render(req, r, &rule);
		fake_rule_apply(&rule, r);
		fake_rule_clear(&rule);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		fail(req, r, 405, NULL);
		return;
	}
	r->auth = "oauth2";
	if (check_auth(req, r) != 0 || check_request(req, r) != 0)
		return;
	rfs = fake_req_header(req, "x-wns-requestforstatus");
	if (fake_script_match(FAKE_WNS, token, &rule)) {
		render(req, r, &rule);
		if (r->status == 200 && rfs && strcmp(rfs, "true") == 0)
			fake_resp_header(r, "X-WNS-DeviceConnectionStatus",
			    "connected");
		fake_rule_apply(&rule, r);	/* its headers win */
		fake_rule_clear(&rule);
		return;
	}
	r->status = 200;
	fake_resp_header(r, "X-WNS-Status", "received");
	ids(req, r);
	if (rfs != NULL && strcmp(rfs, "true") == 0)
		fake_resp_header(r, "X-WNS-DeviceConnectionStatus",
		    "connected");
}
