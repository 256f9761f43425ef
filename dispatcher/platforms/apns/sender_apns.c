/*
 * sender_apns.c - Apple Push Notification service, HTTP/2 provider API
 * (PROTOCOLS.md section 1): classifying answers (sender_apns_classify)
 * and sending (sender_apns_ops).  The request is built by payload_apns.c.
 *
 * Sending: token auth takes the shared token of its (team, key) from
 * auth_apns; certificate auth presents the credential's client
 * certificate.  Connections are grouped per (team, key) for token auth
 * and per credential for certificate auth (http.h conn_group), so a
 * connection only ever carries one team's tokens; token groups are
 * warm-up groups (http.h conn_warmup: a new connection carries one request
 * until APNs has accepted a JWT on it).  Inside a send, not counted as
 * attempts: ExpiredProviderToken, and InvalidProviderToken /
 * MissingProviderToken for a token APNs had accepted before, resend once
 * with a new token when one can be minted (never faster than the
 * 20-minute floor; until then the push is retried when it allows); the
 * latter two for a token APNs never accepted (auth_apns_was_accepted)
 * fail the push: the credential is wrong; a request that was not
 * processed (refused stream, GOAWAY, "Connection died", not sent whole,
 * TLS handshake failed) is resent after 0.1 s, 0.2 s, ... up to
 * SENDER_APNS_MAX_UNPROCESSED_RESENDS times (the `later` list and its
 * timer).  TooManyProviderTokenUpdates stops minting and retries the push
 * later.  503 and 400 IdleTimeout retire the group's connections
 * (http_retire_group), so the retry goes out on a new one.  A push
 * waiting for the mint floor is retried with the last HTTP status it got
 * (it is not a transport failure).  The life cycle of a send (in flight,
 * finish, deferred finish, retry, cancel on close) is send.h's.
 */
#include "platforms/apns/sender_apns.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "base/backoff.h"
#include "base/log.h"
#include "base/mem.h"
#include "net/http.h"
#include "platforms/apns/auth_apns.h"
#include "platforms/jsonget.h"
#include "platforms/secret.h"
#include "platforms/send.h"

/* ---- classification (pure) --------------------------------------- */

static bool is(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

bool sender_apns_classify(const struct sender_apns_answer *ans,
			  int attempts, int max_attempts, int64_t now_us,
			  int64_t backoff_us, struct push_result *res)
{
	json_object *root = NULL, *v;
	const char *reason = NULL;
	long st = ans->status;
	int64_t ts_ms = 0;
	bool reconnect = false;

	memset(res, 0, sizeof *res);
	res->http_status = (int)st;
	if (ans->apns_id != NULL)
		snprintf(res->message_id, sizeof res->message_id, "%s",
			 ans->apns_id);
	if (st == 0) {
		snprintf(res->reason, sizeof res->reason, "transport: %s",
			 ans->error != NULL ? ans->error : "unknown error");
		send_retry_or_fail(res, attempts, max_attempts,
				   now_us + backoff_us);
		return false;
	}
	if (ans->body != NULL && ans->body_len > 0) {
		struct json_tokener *tok = json_tokener_new();

		root = json_tokener_parse_ex(tok, ans->body,
					     (int)ans->body_len);
		json_tokener_free(tok);
	}
	if ((v = jsonget(root, "reason")) != NULL &&
	    json_object_is_type(v, json_type_string))
		reason = json_object_get_string(v);
	if ((v = jsonget(root, "timestamp")) != NULL &&
	    (json_object_is_type(v, json_type_int) ||
	     json_object_is_type(v, json_type_double)))
		ts_ms = json_object_get_int64(v);
	if (reason != NULL)
		snprintf(res->reason, sizeof res->reason, "%s", reason);
	else if (st != 200)
		snprintf(res->reason, sizeof res->reason, "HTTP %ld", st);

	if (st == 200) {
		res->outcome = PUSH_OUTCOME_SENT;
		res->reason[0] = '\0';
	} else if (st == 400) {
		if (is(reason, "BadDeviceToken") ||
		    is(reason, "DeviceTokenNotForTopic")) {
			res->outcome = PUSH_OUTCOME_INVALID_TOKEN;
		} else if (is(reason, "IdleTimeout")) {
			/* The connection was idle: at once, on a new one. */
			send_retry_or_fail(res, attempts, max_attempts, now_us);
			reconnect = true;
		} else if (is(reason, "TopicDisallowed")) {
			res->outcome = PUSH_OUTCOME_FAILED;
			res->auth_failure = true;
		} else {
			res->outcome = PUSH_OUTCOME_FAILED;
		}
	} else if (st == 403) {
		bool bad_token = is(reason, "InvalidProviderToken") ||
				 is(reason, "MissingProviderToken");

		if (is(reason, "ExpiredProviderToken") ||
		    (bad_token && ans->token_accepted)) {
			/* A new token helps: an old one, or one APNs took
			 * before and refuses now.  Minted when the floor
			 * allows; the push waits for it. */
			res->reauth = true;
			send_retry_or_fail(res, attempts, max_attempts,
					   now_us + backoff_us);
		} else if (bad_token) {
			/* Refused on first use: a new token signed with the
			 * same key, team and key id would be refused too. */
			res->reauth = true;
			res->outcome = PUSH_OUTCOME_FAILED;
			res->auth_failure = true;
			snprintf(res->reason, sizeof res->reason,
				 "%s (refused on first use: check team_id, "
				 "key_id and signing_key)", reason);
		} else {
			/* BadCertificate(Environment), Forbidden,
			 * UnrelatedKeyIdInToken, BadEnvironmentKeyIdInToken:
			 * the credential's configuration. */
			res->outcome = PUSH_OUTCOME_FAILED;
			res->auth_failure = true;
		}
	} else if (st == 410) {
		res->outcome = PUSH_OUTCOME_INVALID_TOKEN;
		if (ts_ms > 0 && ts_ms < INT64_MAX / 1000)
			res->provider_ts_us = ts_ms * 1000;
		/* Registered again after Apple's timestamp: the token lives
		 * on, so the push failed and no token died (the ack checks
		 * again, for a registration since the claim). */
		if (res->provider_ts_us > 0 && ans->device_seen_us > 0 &&
		    ans->device_seen_us >= res->provider_ts_us) {
			res->outcome = PUSH_OUTCOME_FAILED;
			snprintf(res->reason, sizeof res->reason, "%s "
				 "(stale: device re-registered after "
				 "Apple's timestamp)",
				 reason != NULL ? reason : "invalid");
		}
	} else if (st == 429) {
		res->throttled = true;
		if (is(reason, "TooManyProviderTokenUpdates"))
			send_retry_or_fail(res, attempts, max_attempts,
					   now_us + backoff_us);
		else
			send_retry_or_fail(res, attempts, max_attempts,
				now_us + (backoff_us >
					  SENDER_APNS_DEVICE_WAIT_US
					  ? backoff_us
					  : SENDER_APNS_DEVICE_WAIT_US));
	} else if (st >= 500 && st < 600) {
		send_retry_or_fail(res, attempts, max_attempts,
				   now_us + backoff_us);
		/* This server is going away or overloaded: another one. */
		reconnect = st == 503;
	} else {
		/* 404 BadPath, 405 MethodNotAllowed, 413 PayloadTooLarge
		 * and anything unknown: not retried as it is. */
		res->outcome = PUSH_OUTCOME_FAILED;
	}
	json_object_put(root);
	return reconnect;
}

/* ---- the sender -------------------------------------------------- */

struct sender_cred {
	struct send_cred base;          /* env, in-flight queue, closing */
	int id;
	char *topic;
	char *base_url;                 /* endpoint + "/3/device/" */
	char *ca_path;
	char *group;                    /* http conn_group */
	struct auth_apns *auth;         /* token auth; NULL: certificate */
	char *cert_pem, *key_pem;       /* certificate auth */
	unsigned char *p12;
	size_t p12_len;
	char *key_password;
	struct sendq_item *later;       /* to resend at their resend_at */
	uv_timer_t resend;              /* fires for the earliest on `later` */
};

struct apns_send {
	struct send base;               /* item, done, queue links: on
					 * cred's queue or on `later` */
	struct sender_apns_msg msg;
	char apns_id[37];
	char *url;
	char *token;                    /* the JWT sent; NULL: cert auth */
	bool reauthed;
	int unprocessed;                /* resends after refused streams */
	int last_status;                /* of the last answer; 0: none */
	int64_t resend_at_us;           /* when on `later` */
	struct http_xfer *xfer;
};

static struct apns_send *send_of(struct sendq_item *it)
{
	return send_entry(sendq_entry(it, struct send, qi), struct apns_send,
			  base);
}

static struct sender_cred *cred_of(const struct apns_send *s)
{
	return send_entry(s->base.cred, struct sender_cred, base);
}

static void apns_free(struct send *b)
{
	struct apns_send *s = send_entry(b, struct apns_send, base);

	sender_apns_msg_free(&s->msg);
	free(s->url);
	secret_free(s->token);
	free(s);
}

/* cred_close(): an answer on its way comes back cancelled. */
static void apns_cancel(struct send *b)
{
	struct apns_send *s = send_entry(b, struct apns_send, base);

	if (s->xfer != NULL)
		/* on_answer sees `closing` and finishes it. */
		http_cancel(cred_of(s)->base.env.http, s->xfer);
	else
		send_cancel(b);
}

/*
 * The delivery row names the apns-id we sent, even without an answer, so
 * it can be matched to Apple's logs; so does the debug log line.
 */
static const char *apns_finishing(struct send *b, struct push_result *res)
{
	struct apns_send *s = send_entry(b, struct apns_send, base);

	if (res->message_id[0] == '\0' && s->apns_id[0] != '\0')
		snprintf(res->message_id, sizeof res->message_id, "%s",
			 s->apns_id);
	return s->apns_id;
}

static const struct send_kind apns_kind = {
	.done_event = "apns push done",
	.backoff_base_us = SENDER_APNS_BACKOFF_BASE_US,
	.backoff_cap_us = SENDER_APNS_BACKOFF_CAP_US,
	.free = apns_free,
	.cancel = apns_cancel,
	.finishing = apns_finishing,
	.done_field = "apns_id",
};

/* No token to send now: retry at `at`, or fail (signing is broken). */
static void no_token(struct apns_send *s, int64_t at, const char *why,
		     struct push_result *res)
{
	int64_t now = push_now_us(), min = now + send_retry_delay(&s->base);

	memset(res, 0, sizeof *res);
	/* Not a transport failure: the last answer (403/429) stands. */
	res->http_status = s->last_status;
	if (at == 0) {
		res->outcome = PUSH_OUTCOME_FAILED;
		snprintf(res->reason, sizeof res->reason,
			 "cannot sign an APNs provider token");
		res->auth_failure = true;
		return;
	}
	/* Our own wait for the mint floor, not the provider throttling. */
	snprintf(res->reason, sizeof res->reason, "%s", why);
	send_retry(&s->base, res, at > min ? at : min);
}

/*
 * A transport error where the request never reached APNs whole
 * (HTTP_ERR_NOT_SENT): no connection or a failed TLS handshake, a
 * stream refused or past a GOAWAY's last stream id, libcurl giving up
 * after its own resends of such streams, a request that could not be
 * sent whole (APNs acts on a stream's end only).
 */
static bool unprocessed(const struct http_response *hr)
{
	return hr->status == 0 && hr->err == HTTP_ERR_NOT_SENT;
}

static void post(struct apns_send *s);

/* Resend what is due on `later`; re-arm for the rest. */
static void on_resend(uv_timer_t *t)
{
	struct sender_cred *cred = t->data;
	int64_t now = push_now_us(), next = 0;
	struct sendq_item *it, *nx;

	for (it = cred->later; it != NULL; it = nx) {
		struct apns_send *s = send_of(it);

		nx = it->next;
		if (s->resend_at_us <= now) {
			sendq_list_remove(&cred->later, it);
			sendq_add(&cred->base.q, it);
			post(s);
		} else if (next == 0 || s->resend_at_us < next) {
			next = s->resend_at_us;
		}
	}
	if (next != 0)
		uv_timer_start(&cred->resend, on_resend,
			       (uint64_t)((next - now) / 1000 + 1), 0);
}

/*
 * Resend `s` after a pause (100 ms doubling each time, half of it
 * jittered), on a new connection once libcurl has dropped the dead one:
 * not an attempt.
 */
static void resend_later(struct apns_send *s)
{
	struct sender_cred *cred = cred_of(s);
	int64_t step = 100000LL << s->unprocessed;
	int64_t delay = step / 2 + backoff_delay_us(1, step / 2, step, NULL,
						    NULL);

	sendq_remove(&cred->base.q, &s->base.qi);
	s->resend_at_us = push_now_us() + delay;
	sendq_list_push(&cred->later, &s->base.qi);
	if (!uv_is_active((uv_handle_t *)&cred->resend) ||
	    uv_timer_get_due_in(&cred->resend) > (uint64_t)(delay / 1000))
		uv_timer_start(&cred->resend, on_resend,
			       (uint64_t)(delay / 1000 + 1), 0);
}

/* Answer headers a debug push's trace keeps. */
static const char *const apns_trace_headers[] = { "apns-id",
						   "apns-unique-id", NULL };

static void on_answer(void *arg, const struct http_response *hr)
{
	struct apns_send *s = arg;
	struct sender_cred *cred = cred_of(s);
	struct push_item *item = s->base.item;
	struct sender_apns_answer ans;
	struct push_result res;
	int64_t now, at;
	const char *tok;

	s->xfer = NULL;
	if (send_cancel_if_closing(&s->base))
		return;
	send_trace_response(&cred->base.env, item, NULL, hr,
			    apns_trace_headers);
	if (unprocessed(hr) &&
	    s->unprocessed < SENDER_APNS_MAX_UNPROCESSED_RESENDS) {
		log_debug("apns request not processed, resending",
			  "push_id=%lld error=%s", (long long)item->push_id,
			  hr->error);
		resend_later(s);
		s->unprocessed++;
		return;
	}
	if (hr->status != 0)
		s->last_status = (int)hr->status;
	memset(&ans, 0, sizeof ans);
	ans.status = hr->status;
	ans.body = hr->body;
	ans.body_len = hr->body_len;
	ans.error = hr->error;
	ans.err = hr->err;
	ans.apns_id = http_response_header(hr, "apns-id");
	ans.device_seen_us = item->device_seen_us;
	ans.token_accepted = cred->auth != NULL &&
			     auth_apns_was_accepted(cred->auth, s->token);
	if (hr->status == 200 && cred->auth != NULL)
		auth_apns_accepted(cred->auth, s->token);
	now = push_now_us();
	if (sender_apns_classify(&ans, item->attempts, s->base.max_attempts,
				 now, send_retry_delay(&s->base), &res))
		http_retire_group(cred->base.env.http, hr);
	if (res.reauth && cred->auth != NULL) {
		int64_t ra = 0;

		auth_apns_rejected(cred->auth, s->token, now);
		/* Resend once with a new token, if one can help and be had
		 * now; else the retry waits for the floor. */
		tok = res.outcome == PUSH_OUTCOME_RETRY
		      ? auth_apns_token(cred->auth, now, &ra) : NULL;
		if (!s->reauthed && tok != NULL &&
		    (s->token == NULL || strcmp(tok, s->token) != 0)) {
			s->reauthed = true;
			post(s);
			return;
		}
		if (res.outcome == PUSH_OUTCOME_RETRY && tok == NULL &&
		    ra > res.retry_at_us)
			res.retry_at_us = ra;
	} else if (res.throttled && cred->auth != NULL &&
		   strcmp(res.reason, "TooManyProviderTokenUpdates") == 0) {
		at = auth_apns_too_many(cred->auth, s->token, now);
		if (res.outcome == PUSH_OUTCOME_RETRY && at > res.retry_at_us)
			res.retry_at_us = at;
	}
	send_finish(&s->base, &res);
}

/* POST the request (again); from the loop or from send(). */
static void post(struct apns_send *s)
{
	struct sender_cred *cred = cred_of(s);
	struct http_request req;
	struct push_result res;
	const char *headers[12];
	char idh[64], *auth = NULL;
	size_t i, n = 0;
	int rc;

	if (cred->auth != NULL) {
		int64_t ra = 0;
		const char *tok = auth_apns_token(cred->auth, push_now_us(),
						  &ra);

		if (tok == NULL) {
			no_token(s, ra, "provider token refused; waiting "
				 "to mint a new one", &res);
			send_finish_later(&s->base, &res);
			return;
		}
		if (s->token == NULL || strcmp(s->token, tok) != 0) {
			secret_free(s->token);
			s->token = mem_strdup(tok);
		}
		auth = mem_alloc(strlen(tok) + 32);
		sprintf(auth, "authorization: bearer %s", tok);
		headers[n++] = auth;
	}
	/* A new apns-id per request: a resend is a new notification to
	 * Apple only if the first was never processed. */
	sender_apns_uuid(s->apns_id);
	snprintf(idh, sizeof idh, "apns-id: %s", s->apns_id);
	headers[n++] = idh;
	for (i = 0; s->msg.headers[i] != NULL; i++)
		headers[n++] = s->msg.headers[i];
	headers[n++] = "content-type: application/json";
	headers[n] = NULL;

	send_post_init(&req, &cred->base, s->url, cred->ca_path);
	req.headers = headers;
	req.body = s->msg.body;
	req.body_len = s->msg.body_len;
	req.conn_group = cred->group;
	req.conn_warmup = cred->auth != NULL;
	req.client_cert = cred->cert_pem;
	req.client_key = cred->key_pem;
	req.client_p12 = cred->p12;
	req.client_p12_len = cred->p12_len;
	req.client_key_password = cred->key_password;
	req.done = on_answer;
	req.arg = s;
	s->base.item->sent_at_us = push_now_us();
	send_trace_request(&cred->base.env, s->base.item, NULL, &req);
	rc = http_submit(cred->base.env.http, &req, &s->xfer);
	secret_free(auth);
	if (rc < 0) {
		s->xfer = NULL;
		send_submit_failed(&s->base, rc, &res);
		send_finish_later(&s->base, &res);
	}
}

static int apns_send(struct sender_cred *cred, struct push_item *item,
		     int max_attempts, sender_done_fn done, void *arg)
{
	struct apns_send *s = mem_alloc_zero(1, sizeof *s);
	struct push_result res;

	if (!send_begin(&s->base, &cred->base, item, max_attempts, done,
			arg))
		return 0;
	if (sender_apns_build(item, cred->topic, push_now_us(), &s->msg,
			      &res) < 0) {
		send_finish_later(&s->base, &res);
		return 0;
	}
	s->url = mem_alloc(strlen(cred->base_url) + strlen(item->token) + 1);
	sprintf(s->url, "%s%s", cred->base_url, item->token);
	post(s);
	return 0;
}

/* ---- credentials ------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A bytea as row_to_json renders it ("\x0a1b..."); 0 or -EINVAL. */
static int bytea_decode(const char *s, unsigned char **out, size_t *len)
{
	size_t n, i;

	if (strncmp(s, "\\x", 2) != 0)
		return -EINVAL;
	s += 2;
	n = strlen(s);
	if (n == 0 || n % 2 != 0)
		return -EINVAL;
	*out = mem_alloc(n / 2);
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(*out);
			*out = NULL;
			return -EINVAL;
		}
		(*out)[i] = (unsigned char)(hi << 4 | lo);
	}
	*len = n / 2;
	return 0;
}

/* Wipe json-c's copies of the secret columns. */
static void wipe_row(json_object *row)
{
	static const char *const secret[] = {
		"signing_key", "private_key_pem", "pkcs12", "pkcs12_password",
	};
	size_t i;

	for (i = 0; i < sizeof secret / sizeof *secret; i++) {
		json_object *v = jsonget(row, secret[i]);

		if (v != NULL && json_object_is_type(v, json_type_string))
			OPENSSL_cleanse((char *)json_object_get_string(v),
				(size_t)json_object_get_string_len(v));
	}
}

static void cred_free(struct sender_cred *cred)
{
	auth_apns_put(cred->auth);
	free(cred->topic);
	free(cred->base_url);
	free(cred->ca_path);
	free(cred->group);
	free(cred->cert_pem);
	secret_free(cred->key_pem);
	secret_free(cred->key_password);
	if (cred->p12 != NULL) {
		OPENSSL_cleanse(cred->p12, cred->p12_len);
		free(cred->p12);
	}
}

static int apns_cred_open(struct sender_cred **out,
			  const struct sender_env *env, const char *row_json,
			  char *err, size_t errlen)
{
	const char *method, *topic, *envname, *endpoint, *ca, *s;
	struct sender_cred *cred;
	json_object *row, *v;
	char aerr[200];
	size_t n;
	int rc = -EINVAL;

	row = json_tokener_parse(row_json != NULL ? row_json : "");
	if (row == NULL || !json_object_is_type(row, json_type_object)) {
		snprintf(err, errlen, "apns credential: not a JSON object");
		json_object_put(row);
		return -EINVAL;
	}
	cred = mem_alloc_zero(1, sizeof *cred);
	method = jsonget_nonempty(row, "auth_method");
	topic = jsonget_nonempty(row, "topic");
	envname = jsonget_nonempty(row, "environment");
	endpoint = jsonget_nonempty(row, "endpoint");
	ca = jsonget_nonempty(row, "ca_bundle_path");
	if ((v = jsonget(row, "id")) != NULL)
		cred->id = json_object_get_int(v);
	if (topic == NULL) {
		snprintf(err, errlen, "apns credential: no topic");
		goto fail;
	}
	if (endpoint == NULL)
		endpoint = envname != NULL && strcmp(envname, "sandbox") == 0
			   ? SENDER_APNS_SANDBOX_ENDPOINT
			   : SENDER_APNS_PROD_ENDPOINT;
	if (method == NULL || strcmp(method, "token") == 0) {
		const char *team = jsonget_nonempty(row, "team_id");
		const char *kid = jsonget_nonempty(row, "key_id");

		rc = auth_apns_get(&cred->auth, team, kid,
				   jsonget_nonempty(row, "signing_key"), aerr,
				   sizeof aerr);
		if (rc < 0) {
			snprintf(err, errlen, "apns credential: %s", aerr);
			goto fail;
		}
		n = strlen(team) + strlen(kid) + 16;
		cred->group = mem_alloc(n);
		snprintf(cred->group, n, "apns:%s:%s", team, kid);
	} else if (strcmp(method, "certificate") == 0) {
		if ((s = jsonget_nonempty(row, "pkcs12")) != NULL) {
			if (bytea_decode(s, &cred->p12, &cred->p12_len) < 0) {
				snprintf(err, errlen, "apns credential: "
					 "pkcs12 is not a bytea");
				goto fail;
			}
		} else if (jsonget_nonempty(row, "certificate_pem") != NULL &&
			   jsonget_nonempty(row, "private_key_pem") != NULL) {
			cred->cert_pem = mem_strdup(jsonget_nonempty(row,
						"certificate_pem"));
			cred->key_pem = mem_strdup(jsonget_nonempty(row,
						"private_key_pem"));
		} else {
			snprintf(err, errlen, "apns credential: certificate "
				 "auth needs certificate_pem and "
				 "private_key_pem, or pkcs12");
			goto fail;
		}
		if ((s = jsonget_nonempty(row, "pkcs12_password")) != NULL)
			cred->key_password = mem_strdup(s);
		cred->group = mem_alloc(48);
		snprintf(cred->group, 48, "apns-cert:%d", cred->id);
	} else {
		snprintf(err, errlen, "apns credential: unknown auth_method");
		goto fail;
	}
	cred->topic = mem_strdup(topic);
	n = strlen(endpoint);
	while (n > 0 && endpoint[n - 1] == '/')
		n--;
	cred->base_url = mem_alloc(n + 16);
	sprintf(cred->base_url, "%.*s/3/device/", (int)n, endpoint);
	cred->ca_path = ca != NULL ? mem_strdup(ca) : NULL;
	send_cred_init(&cred->base, env, &apns_kind);
	uv_timer_init(env->loop, &cred->resend);
	cred->resend.data = cred;
	wipe_row(row);
	json_object_put(row);
	*out = cred;
	return 0;
fail:
	cred_free(cred);
	free(cred);
	wipe_row(row);
	json_object_put(row);
	return rc < 0 ? rc : -EINVAL;
}

static void on_resend_closed(uv_handle_t *h)
{
	struct sender_cred *cred = h->data;

	sendq_close(&cred->base.q, free, cred);
}

static void apns_cred_close(struct sender_cred *cred)
{
	if (cred == NULL || cred->base.closing)
		return;
	/* Sends waiting to be resent are in flight too: cancel them with
	 * the rest. */
	while (cred->later != NULL) {
		struct sendq_item *it = cred->later;

		sendq_list_remove(&cred->later, it);
		sendq_add(&cred->base.q, it);
	}
	send_cred_cancel_all(&cred->base);
	cred_free(cred);
	/* The second close frees cred: run it after the first is done. */
	uv_close((uv_handle_t *)&cred->resend, on_resend_closed);
}

const struct sender_ops sender_apns_ops = {
	.name = "apns",
	.platform = PUSH_PLATFORM_APNS,
	.cred_open = apns_cred_open,
	.cred_close = apns_cred_close,
	.send = apns_send,
};
