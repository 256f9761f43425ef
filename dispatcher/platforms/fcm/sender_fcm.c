/*
 * sender_fcm.c - Firebase Cloud Messaging HTTP v1: classifying answers
 * (sender_fcm_classify) and sending (sender_fcm_ops).
 *
 * The request body is built by payload_fcm.c.
 *
 * Sending: a send takes the cached access token (auth_fcm.h makes the
 * oauth_cache) or waits for one, POSTs through the HTTP bridge, and
 * classifies the answer.  A 401 without an FcmError invalidates the token
 * and resends once with a new one (not an attempt); a second 401 is
 * FAILED with auth_failure.  The life cycle of a send (in flight,
 * finish, deferred finish, retry, cancel on close) is send.h's.
 */
#include "platforms/fcm/sender_fcm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/backoff.h"
#include "base/log.h"
#include "base/mem.h"
#include "net/hdrcheck.h"
#include "net/http.h"
#include "platforms/fcm/auth_fcm.h"
#include "platforms/jsonget.h"
#include "platforms/secret.h"
#include "platforms/send.h"

#define FCM_DEFAULT_ENDPOINT "https://fcm.googleapis.com"

/* ---- classification (pure) --------------------------------------- */

/* What an FCM error body says; fields point into `root`. */
struct fcm_error_info {
	const char *status;       /* error.status */
	const char *message;      /* error.message */
	const char *error_code;   /* details[FcmError].errorCode */
	bool token_violation;     /* a fieldViolation on message.token */
};

static bool code_is(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

static void parse_error(json_object *root, struct fcm_error_info *info)
{
	json_object *e = jsonget(root, "error"), *details;
	size_t i, n;

	memset(info, 0, sizeof *info);
	if (e == NULL || !json_object_is_type(e, json_type_object))
		return;
	info->status = jsonget_str(e, "status");
	info->message = jsonget_str(e, "message");
	details = jsonget(e, "details");
	if (details == NULL || !json_object_is_type(details, json_type_array))
		return;
	n = json_object_array_length(details);
	for (i = 0; i < n; i++) {
		json_object *d = json_object_array_get_idx(details, i);
		json_object *fv = jsonget(d, "fieldViolations");
		const char *code = jsonget_str(d, "errorCode");

		if (code != NULL && info->error_code == NULL)
			info->error_code = code;
		if (fv != NULL && json_object_is_type(fv, json_type_array)) {
			size_t j, m = json_object_array_length(fv);

			for (j = 0; j < m; j++) {
				const char *f = jsonget_str(
					json_object_array_get_idx(fv, j),
					"field");

				if (code_is(f, "message.token"))
					info->token_violation = true;
			}
		}
	}
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
			   *p == '\r'))
		p++;
	return p;
}

/*
 * True and the name in `out` when `body` is exactly one object with one
 * member "name" whose string has no escapes and fits; anything else
 * (other members, escapes, an error body) is left to the JSON parser.
 */
static bool plain_name(const char *body, size_t len, char *out,
		       size_t outlen)
{
	const char *p, *end, *q;

	if (body == NULL)
		return false;
	p = body;
	end = body + len;
	p = skip_ws(p, end);
	if (p == end || *p++ != '{')
		return false;
	p = skip_ws(p, end);
	if ((size_t)(end - p) < 6 || memcmp(p, "\"name\"", 6) != 0)
		return false;
	p = skip_ws(p + 6, end);
	if (p == end || *p++ != ':')
		return false;
	p = skip_ws(p, end);
	if (p == end || *p++ != '"')
		return false;
	for (q = p; q < end && *q != '"'; q++)
		if (*q == '\\' || (unsigned char)*q < 0x20)
			return false;
	if (q == end || (size_t)(q - p) >= outlen)
		return false;
	if (skip_ws(q + 1, end) == end || *skip_ws(q + 1, end) != '}' ||
	    skip_ws(skip_ws(q + 1, end) + 1, end) != end)
		return false;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return true;
}

void sender_fcm_classify(const struct sender_fcm_answer *ans, int attempts,
			 int max_attempts, int64_t now_us, int64_t backoff_us,
			 struct push_result *res)
{
	struct fcm_error_info info;
	json_object *root = NULL;
	int64_t ra = 0;
	bool has_ra;
	long st = ans->status;

	memset(res, 0, sizeof *res);
	res->http_status = (int)st;
	has_ra = backoff_parse_retry_after(ans->retry_after, now_us, &ra) == 0;

	if (st == 0) {
		snprintf(res->reason, sizeof res->reason, "transport: %s",
			 ans->error != NULL ? ans->error : "unknown error");
		send_retry_or_fail(res, attempts, max_attempts,
				   now_us + backoff_us);
		return;
	}
	/* The common answer, {"name": "projects/p/messages/id"}, without
	 * a JSON parser. */
	if (st >= 200 && st < 300 &&
	    plain_name(ans->body, ans->body_len, res->message_id,
		       sizeof res->message_id)) {
		res->outcome = PUSH_OUTCOME_SENT;
		return;
	}
	if (ans->body != NULL && ans->body_len > 0) {
		struct json_tokener *tok = json_tokener_new();

		root = json_tokener_parse_ex(tok, ans->body,
					     (int)ans->body_len);
		json_tokener_free(tok);
		if (root != NULL && !json_object_is_type(root,
							 json_type_object)) {
			json_object_put(root);
			root = NULL;
		}
	}
	parse_error(root, &info);
	if (info.error_code != NULL)
		snprintf(res->reason, sizeof res->reason, "%s",
			 info.error_code);
	else if (info.status != NULL)
		snprintf(res->reason, sizeof res->reason, "%s", info.status);
	else if (st != 200)
		snprintf(res->reason, sizeof res->reason, "HTTP %ld", st);

	if (st >= 200 && st < 300) {
		const char *name = jsonget_str(root, "name");

		res->outcome = PUSH_OUTCOME_SENT;
		res->reason[0] = '\0';
		if (name != NULL)
			snprintf(res->message_id, sizeof res->message_id, "%s",
				 name);
	} else if (st == 400) {
		if (info.token_violation || (info.message != NULL &&
		    strstr(info.message,
			   "not a valid FCM registration token") != NULL))
			res->outcome = PUSH_OUTCOME_INVALID_TOKEN;
		else
			res->outcome = PUSH_OUTCOME_FAILED;
	} else if (st == 401) {
		res->outcome = PUSH_OUTCOME_FAILED;
		res->auth_failure = true;
		/* No FcmError: our OAuth token was refused; refresh it. */
		if (!code_is(info.error_code, "THIRD_PARTY_AUTH_ERROR") &&
		    !code_is(info.error_code, "APNS_AUTH_ERROR"))
			res->reauth = true;
	} else if (st == 403) {
		if (code_is(info.error_code, "SENDER_ID_MISMATCH")) {
			res->outcome = PUSH_OUTCOME_INVALID_TOKEN;
		} else {
			res->outcome = PUSH_OUTCOME_FAILED;
			res->auth_failure = true;
		}
	} else if (st == 404) {
		res->outcome = PUSH_OUTCOME_INVALID_TOKEN;
	} else if (st == 429) {
		res->throttled = true;
		send_retry_or_fail(res, attempts, max_attempts,
				   has_ra ? ra : now_us +
				   (backoff_us > SENDER_FCM_QUOTA_WAIT_US
				    ? backoff_us : SENDER_FCM_QUOTA_WAIT_US));
	} else if (st >= 500 && st < 600) {
		int64_t at = now_us + backoff_us;

		if (has_ra && ra > at)
			at = ra;
		send_retry_or_fail(res, attempts, max_attempts, at);
	} else if (st == 408) {
		send_retry_or_fail(res, attempts, max_attempts,
				   now_us + backoff_us);
	} else {
		res->outcome = PUSH_OUTCOME_FAILED;
	}
	json_object_put(root);
}

/* ---- the sender -------------------------------------------------- */

struct sender_cred {
	struct send_cred base;          /* env, in-flight queue, closing */
	char *project_id;
	char *send_url;
	char *ca_path;
	struct oauth_cache *auth;
};

struct fcm_send {
	struct send base;               /* item, done, queue links */
	char *body;
	char *token;                    /* the bearer token sent */
	bool reauthed;
	struct oauth_cache_waiter waiter;
	struct http_xfer *xfer;
};

static struct sender_cred *cred_of(const struct fcm_send *s)
{
	return send_entry(s->base.cred, struct sender_cred, base);
}

static void fcm_free(struct send *b)
{
	struct fcm_send *s = send_entry(b, struct fcm_send, base);

	free(s->body);
	secret_free(s->token);
	free(s);
}

/* cred_close(): an answer on its way comes back cancelled. */
static void fcm_cancel(struct send *b)
{
	struct fcm_send *s = send_entry(b, struct fcm_send, base);
	struct sender_cred *cred = cred_of(s);

	if (s->xfer != NULL) {
		/* on_answer sees `closing` and finishes it. */
		http_cancel(cred->base.env.http, s->xfer);
	} else {
		oauth_cache_cancel(cred->auth, &s->waiter);
		send_cancel(b);
	}
}

static const struct send_kind fcm_kind = {
	.done_event = "fcm push done",
	.backoff_base_us = SENDER_FCM_BACKOFF_BASE_US,
	.backoff_cap_us = SENDER_FCM_BACKOFF_CAP_US,
	.free = fcm_free,
	.cancel = fcm_cancel,
};

static void post(struct fcm_send *s, const char *token);

static void on_auth(void *arg, const char *token,
		    const struct oauth_cache_error *err)
{
	struct fcm_send *s = arg;
	struct push_result res;

	if (token != NULL) {
		post(s, token);
		return;
	}
	send_auth_failed(&s->base, err, 0, &res);
	send_finish(&s->base, &res);
}

/* Answer headers a debug push's trace keeps. */
static const char *const fcm_trace_headers[] = { "retry-after",
						  "content-type", NULL };

static void on_answer(void *arg, const struct http_response *hr)
{
	struct fcm_send *s = arg;
	struct sender_cred *cred = cred_of(s);
	struct push_item *item = s->base.item;
	struct sender_fcm_answer ans;
	struct push_result res;
	const char *tok;

	s->xfer = NULL;
	if (send_cancel_if_closing(&s->base))
		return;
	memset(&ans, 0, sizeof ans);
	ans.status = hr->status;
	ans.body = hr->body;
	ans.body_len = hr->body_len;
	ans.error = hr->error;
	ans.err = hr->err;
	ans.retry_after = http_response_header(hr, "retry-after");
	send_trace_response(&cred->base.env, item, NULL, hr,
			    fcm_trace_headers);
	sender_fcm_classify(&ans, item->attempts, s->base.max_attempts,
			    push_now_us(), send_retry_delay(&s->base), &res);
	if (res.reauth && !s->reauthed) {
		s->reauthed = true;
		log_info("fcm access token refused, refreshing",
			 "project=%s push_id=%lld", cred->project_id,
			 (long long)item->push_id);
		oauth_cache_invalidate(cred->auth, s->token);
		tok = oauth_cache_token(cred->auth, push_now_us());
		if (tok != NULL)
			post(s, tok);
		else
			oauth_cache_wait(cred->auth, &s->waiter, on_auth, s);
		return;
	}
	send_finish(&s->base, &res);
}

/* POST the body with `token`; from the loop (or from send()). */
static void post(struct fcm_send *s, const char *token)
{
	struct sender_cred *cred = cred_of(s);
	struct http_request req;
	struct push_result res;
	const char *headers[3];
	char *auth;
	size_t alen = strlen(token) + 32;
	int rc;

	secret_free(s->token);
	s->token = mem_strdup(token);
	auth = mem_alloc(alen);
	snprintf(auth, alen, "Authorization: Bearer %s", token);
	headers[0] = auth;
	headers[1] = "Content-Type: application/json";
	headers[2] = NULL;

	send_post_init(&req, &cred->base, cred->send_url, cred->ca_path);
	req.headers = headers;
	req.body = s->body;
	req.body_len = strlen(s->body);
	/* fcm.googleapis.com speaks HTTP/2: the bridge's own client. */
	req.h2_direct = true;
	req.done = on_answer;
	req.arg = s;
	send_trace_request(&cred->base.env, s->base.item, NULL, &req);
	s->base.item->sent_at_us = push_now_us();
	rc = http_submit(cred->base.env.http, &req, &s->xfer);
	secret_free(auth);
	if (rc < 0) {
		s->xfer = NULL;
		send_submit_failed(&s->base, rc, &res);
		send_finish_later(&s->base, &res);
	}
}

static int fcm_send(struct sender_cred *cred, struct push_item *item,
		    int max_attempts, sender_done_fn done, void *arg)
{
	struct fcm_send *s = mem_alloc_zero(1, sizeof *s);
	struct push_result res;
	const char *tok;

	if (!send_begin(&s->base, &cred->base, item, max_attempts, done,
			arg))
		return 0;
	if (sender_fcm_build_body(item, push_now_us(), &s->body, &res) < 0) {
		send_finish_later(&s->base, &res);
		return 0;
	}
	tok = oauth_cache_token(cred->auth, push_now_us());
	if (tok != NULL)
		post(s, tok);
	else
		oauth_cache_wait(cred->auth, &s->waiter, on_auth, s);
	return 0;
}

static int fcm_cred_open(struct sender_cred **out,
			 const struct sender_env *env, const char *row_json,
			 char *err, size_t errlen)
{
	json_object *row, *sa, *sa_owned = NULL;
	const char *project, *endpoint, *token_url, *audience, *ca;
	struct auth_fcm_config cfg;
	struct sender_cred *cred;
	char aerr[200];
	size_t n;
	int rc = -EINVAL;

	row = json_tokener_parse(row_json != NULL ? row_json : "");
	if (row == NULL || !json_object_is_type(row, json_type_object)) {
		snprintf(err, errlen, "fcm credential: not a JSON object");
		json_object_put(row);
		return -EINVAL;
	}
	sa = jsonget(row, "service_account");
	if (sa != NULL && json_object_is_type(sa, json_type_string)) {
		sa_owned = json_tokener_parse(json_object_get_string(sa));
		sa = sa_owned;
	}
	if (sa == NULL || !json_object_is_type(sa, json_type_object)) {
		snprintf(err, errlen,
			 "fcm credential: service_account is not an object");
		goto out;
	}
	project = jsonget_nonempty(row, "project_id");
	if (project == NULL)
		project = jsonget_nonempty(sa, "project_id");
	if (project == NULL) {
		snprintf(err, errlen, "fcm credential: no project_id");
		goto out;
	}
	if (!hdrcheck_segment_ok(project)) {
		snprintf(err, errlen, "fcm credential: project_id is not a "
			 "valid URL path segment");
		goto out;
	}
	endpoint = jsonget_nonempty(row, "endpoint");
	if (endpoint == NULL)
		endpoint = FCM_DEFAULT_ENDPOINT;
	/* The assertion's audience is the service account's token_uri, as
	 * Google requires; token_endpoint only redirects the request (a
	 * proxy, or the test fake). */
	audience = jsonget_nonempty(sa, "token_uri");
	if (audience == NULL)
		audience = AUTH_FCM_TOKEN_URL;
	token_url = jsonget_nonempty(row, "token_endpoint");
	if (token_url == NULL)
		token_url = audience;
	ca = jsonget_nonempty(row, "ca_bundle_path");

	memset(&cfg, 0, sizeof cfg);
	cfg.client_email = jsonget_nonempty(sa, "client_email");
	cfg.private_key_pem = jsonget_nonempty(sa, "private_key");
	cfg.private_key_id = jsonget_nonempty(sa, "private_key_id");
	cfg.token_url = token_url;
	cfg.audience = audience;
	cfg.ca_path = ca;
	cfg.connect_timeout_ms = env->connect_timeout_ms;
	cfg.request_timeout_ms = env->request_timeout_ms;

	cred = mem_alloc_zero(1, sizeof *cred);
	rc = auth_fcm_new(&cred->auth, env->loop, env->http, &cfg, aerr,
			  sizeof aerr);
	if (rc < 0) {
		snprintf(err, errlen, "fcm credential: %s", aerr);
		free(cred);
		goto out;
	}
	cred->project_id = mem_strdup(project);
	n = strlen(endpoint);
	while (n > 0 && endpoint[n - 1] == '/')
		n--;
	cred->send_url = mem_alloc(n + strlen(project) + 32);
	sprintf(cred->send_url, "%.*s/v1/projects/%s/messages:send", (int)n,
		endpoint, project);
	cred->ca_path = ca != NULL ? mem_strdup(ca) : NULL;
	send_cred_init(&cred->base, env, &fcm_kind);
	*out = cred;
	rc = 0;
out:
	/* The row holds the private key: clear json-c's copy of it. */
	if (sa != NULL && json_object_is_type(sa, json_type_object)) {
		json_object *k = jsonget(sa, "private_key");

		if (k != NULL && json_object_is_type(k, json_type_string))
			explicit_bzero((char *)json_object_get_string(k),
				       (size_t)json_object_get_string_len(k));
	}
	json_object_put(sa_owned);
	json_object_put(row);
	return rc;
}

static void fcm_cred_close(struct sender_cred *cred)
{
	if (cred == NULL || !send_cred_cancel_all(&cred->base))
		return;
	oauth_cache_free(cred->auth);
	free(cred->project_id);
	free(cred->send_url);
	free(cred->ca_path);
	sendq_close(&cred->base.q, free, cred);
}

const struct sender_ops sender_fcm_ops = {
	.name = "fcm",
	.platform = PUSH_PLATFORM_FCM,
	.cred_open = fcm_cred_open,
	.cred_close = fcm_cred_close,
	.send = fcm_send,
};
