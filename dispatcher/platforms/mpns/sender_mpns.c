/*
 * sender_mpns.c - Microsoft Push Notification Service, Windows Phone
 * (PROTOCOLS.md 4).  Retired by Microsoft, kept for the deployments that
 * still hold these channels.
 *
 * A push becomes one request per part (sender_mpns_build); text and a
 * count cannot travel together, so:
 *
 *   toast  when the payload has a title or body (mpns.toast false: none):
 *          <wp:Notification xmlns:wp="WPNotification"><wp:Toast>
 *          <wp:Text1>title</wp:Text1><wp:Text2>body</wp:Text2>
 *          <wp:Param>mpns.param</wp:Param></wp:Toast></wp:Notification>
 *   tile   when the payload has a badge or an mpns.tile object (false:
 *          none): <wp:Tile Id="id"> with BackgroundImage, Count (badge, or
 *          mpns.tile.count), Title, BackBackgroundImage, BackTitle,
 *          BackContent from mpns.tile's background_image, count, title,
 *          back_background_image, back_title, back_content
 *   raw    mpns.raw (a string) as it is, or, for a data-only push (no
 *          toast, no tile), the JSON text of data
 *
 * Headers: Content-Type text/xml (raw: application/octet-stream),
 * X-WindowsPhone-Target toast / token (none for raw), X-NotificationClass
 * by the push's priority (high: immediate 2/1/3 for toast/tile/raw;
 * normal: within 450 s, 12/11/13; low: within 900 s, 22/21/23), a fresh
 * X-MessageID UUID per request (stored as the delivery's message id), and
 * an empty Expect:.  Bodies are at most 3072 bytes.
 *
 * Sending: unauthenticated, or with the credential's TLS client
 * certificate (its own connection group, so an authenticated connection
 * is never used for another credential).  The channel URL's host must be
 * in channel_hosts.  Parts go out at once; the push's result is
 * parts_combine()'s, and accepted parts are not resent by a retry.  After
 * a 406 or 412 the channel is held for an hour: pushes to it wait
 * without a request (MPNS blocks senders that retry an inactive device
 * more often).  Ambiguous answers are not resent unless the app's
 * retry_ambiguous is true (NULL means false for MPNS): a duplicate toast
 * annoys people more than a missing one.  The multi-part send, the
 * holds (multipart.h) and the life cycle of a send (send.h) are shared.
 */
#include "platforms/mpns/sender_mpns.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "base/backoff.h"
#include "base/log.h"
#include "base/mem.h"
#include "net/hdrcheck.h"
#include "net/hostlist.h"
#include "net/http.h"
#include "platforms/jsonget.h"
#include "platforms/multipart.h"
#include "platforms/secret.h"
#include "platforms/xml.h"

#define USEC 1000000LL
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define DEFAULT_HOSTS "*.notify.live.net"

/* ---- building (pure) --------------------------------------------- */

static bool is_false(json_object *v)
{
	return v != NULL && json_object_is_type(v, json_type_boolean) &&
	       !json_object_get_boolean(v);
}

static void hdr(struct sender_mpns_part *p, const char *fmt, const char *v)
{
	size_t i = 0, n = strlen(fmt) + strlen(v) + 1;

	while (p->headers[i] != NULL)
		i++;
	if (i >= SENDER_MPNS_MAX_HEADERS)
		return;
	p->headers[i] = mem_alloc(n);
	snprintf(p->headers[i], n, fmt, v);
}

static void uuid(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t r[2] = { backoff_rand_default(NULL),
			  backoff_rand_default(NULL) };
	int k = 0;

	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			out[i] = '-';
			continue;
		}
		out[i] = hex[(r[k / 16] >> (4 * (k % 16))) & 15];
		k++;
	}
	out[14] = '4';                          /* version 4 */
	out[19] = hex[8 | ((r[1] >> 60) & 3)];  /* variant 10xx */
	out[36] = '\0';
}

static void notification_open(struct xml *x)
{
	xml_decl(x);
	xml_open(x, "wp:Notification");
	xml_attr(x, "xmlns:wp", "WPNotification");
}

static char *toast_xml(json_object *pl, json_object *mp)
{
	struct xml x;

	xml_init(&x);
	notification_open(&x);
	xml_open(&x, "wp:Toast");
	xml_elem_text(&x, "wp:Text1", jsonget_str(pl, "title"));
	xml_elem_text(&x, "wp:Text2", jsonget_str(pl, "body"));
	xml_elem_text(&x, "wp:Param", jsonget_str(mp, "param"));
	return xml_finish(&x, NULL);
}

static char *tile_xml(json_object *pl, json_object *tile)
{
	json_object *c = jsonget(tile, "count");
	char buf[32];
	struct xml x;

	if (c == NULL)
		c = jsonget(pl, "badge");
	xml_init(&x);
	notification_open(&x);
	xml_open(&x, "wp:Tile");
	if (jsonget_str(tile, "id") != NULL)
		xml_attr(&x, "Id", jsonget_str(tile, "id"));
	xml_elem_text(&x, "wp:BackgroundImage",
		      jsonget_str(tile, "background_image"));
	if (c != NULL && json_object_is_type(c, json_type_int)) {
		snprintf(buf, sizeof buf, "%" PRId64, json_object_get_int64(c));
		xml_elem_text(&x, "wp:Count", buf);
	}
	xml_elem_text(&x, "wp:Title", jsonget_str(tile, "title"));
	xml_elem_text(&x, "wp:BackBackgroundImage",
		      jsonget_str(tile, "back_background_image"));
	xml_elem_text(&x, "wp:BackTitle", jsonget_str(tile, "back_title"));
	xml_elem_text(&x, "wp:BackContent", jsonget_str(tile, "back_content"));
	return xml_finish(&x, NULL);
}

static void add_part(struct sender_mpns_request *r, const char *name,
		     char *body, enum push_priority prio)
{
	struct sender_mpns_part *p = &r->parts[r->n++];
	int base = strcmp(name, "tile") == 0 ? 1
		   : strcmp(name, "toast") == 0 ? 2 : 3;
	int cls = base + (prio == PUSH_PRIORITY_HIGH ? 0
			  : prio == PUSH_PRIORITY_NORMAL ? 10 : 20);
	char buf[16];

	memset(p, 0, sizeof *p);
	p->name = name;
	p->body = body;
	/* NULL: an XML document past its cap (xml.h), over the limit. */
	p->body_len = body != NULL ? strlen(body) : SENDER_MPNS_MAX_PAYLOAD + 1;
	uuid(p->message_id);
	hdr(p, "Content-Type: %s", base == 3 ? "application/octet-stream"
	    : "text/xml");
	if (base != 3)
		hdr(p, "X-WindowsPhone-Target: %s", base == 1 ? "token"
		    : "toast");
	snprintf(buf, sizeof buf, "%d", cls);
	hdr(p, "X-NotificationClass: %s", buf);
	hdr(p, "X-MessageID: %s", p->message_id);
}

void sender_mpns_request_free(struct sender_mpns_request *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->parts[i].body);
		for (size_t j = 0; r->parts[i].headers[j] != NULL; j++)
			free(r->parts[i].headers[j]);
	}
	memset(r, 0, sizeof *r);
}

int sender_mpns_build(const struct push_item *item, int64_t now_us,
		      struct sender_mpns_request *out,
		      struct push_result *res)
{
	json_object *pl, *mp, *v, *tile;
	char why[128];
	int rc = -EINVAL;

	memset(out, 0, sizeof *out);
	if (item->expires_at_us != 0 && item->expires_at_us <= now_us) {
		push_result_set(res, PUSH_OUTCOME_EXPIRED,
				"expired before sending");
		return -EINVAL;
	}
	pl = sender_parse_payload(item->payload);
	if (pl == NULL || !json_object_is_type(pl, json_type_object)) {
		json_object_put(pl);
		push_result_set(res, PUSH_OUTCOME_FAILED,
				sender_payload_why(item->payload));
		return -EINVAL;
	}
	mp = jsonget(pl, "mpns");
	if (mp != NULL && !json_object_is_type(mp, json_type_object)) {
		push_result_set(res, PUSH_OUTCOME_FAILED,
				"the mpns override is not an object");
		goto out;
	}
	if (!is_false(jsonget(mp, "toast")) && (jsonget_str(pl, "title") ||
					    jsonget_str(pl, "body")))
		add_part(out, "toast", toast_xml(pl, mp), item->priority);
	tile = jsonget(mp, "tile");
	if (tile != NULL && json_object_is_type(tile, json_type_object))
		add_part(out, "tile", tile_xml(pl, tile), item->priority);
	else if (!is_false(tile) && (v = jsonget(pl, "badge")) != NULL &&
		 json_object_is_type(v, json_type_int))
		add_part(out, "tile", tile_xml(pl, NULL), item->priority);
	v = jsonget(mp, "raw");
	if (v != NULL && json_object_is_type(v, json_type_string))
		add_part(out, "raw", mem_strdup(json_object_get_string(v)),
			 item->priority);
	else if (out->n == 0 && (v = jsonget(pl, "data")) != NULL &&
		 json_object_is_type(v, json_type_object))
		add_part(out, "raw", mem_strdup(json_object_to_json_string_ext(
				 v, JSON_FLAGS)), item->priority);
	if (out->n == 0) {
		push_result_set(res, PUSH_OUTCOME_FAILED, "nothing to send to "
				"MPNS (no title, body, badge, data or mpns "
				"part)");
		goto out;
	}
	for (size_t i = 0; i < out->n; i++) {
		const struct sender_mpns_part *p = &out->parts[i];

		if (p->body_len == 0 ||
		    p->body_len > SENDER_MPNS_MAX_PAYLOAD) {
			snprintf(why, sizeof why, "mpns %s payload %s",
				 p->name, p->body_len ? "over 3072 bytes"
				 : "is empty");
			push_result_set(res, PUSH_OUTCOME_FAILED, why);
			goto out;
		}
	}
	rc = 0;
out:
	if (rc < 0)
		sender_mpns_request_free(out);
	json_object_put(pl);
	return rc;
}

/* ---- classification (pure) --------------------------------------- */

static void ambiguous(struct push_result *res, bool retry_ambiguous,
		      int attempts, int max_attempts, int64_t at)
{
	if (retry_ambiguous)
		send_retry_or_fail(res, attempts, max_attempts, at);
	else
		res->outcome = PUSH_OUTCOME_UNCERTAIN;
}

static bool looks_html(const struct sender_mpns_answer *a)
{
	if (a->content_type != NULL &&
	    strncasecmp(a->content_type, "text/html", 9) == 0)
		return true;
	return a->body != NULL && a->body_len > 0 &&
	       (strcasestr(a->body, "<html") != NULL ||
		strcasestr(a->body, "<!doctype html") != NULL);
}

static const char *or_dash(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "-";
}

void sender_mpns_classify(const struct sender_mpns_answer *ans,
			  int attempts, int max_attempts,
			  bool retry_ambiguous, int64_t now_us,
			  int64_t backoff_us, struct push_result *res)
{
	long st = ans->status;
	const char *n = ans->notification;
	int64_t at = now_us + SENDER_MPNS_BACKOFF_BASE_US + backoff_us;

	memset(res, 0, sizeof *res);
	res->http_status = (int)st;
	if (ans->message_id != NULL)
		snprintf(res->message_id, sizeof res->message_id, "%s",
			 ans->message_id);
	if (st == 0) {
		snprintf(res->reason, sizeof res->reason, "transport: %.60s",
			 ans->error ? ans->error : "unknown error");
		if (http_err_ambiguous(ans->err))
			ambiguous(res, retry_ambiguous, attempts,
				  max_attempts, at);
		else
			send_retry_or_fail(res, attempts, max_attempts,
					   now_us + backoff_us);
		return;
	}
	/* "Received/Connected", "Dropped/Expired", ... */
	snprintf(res->reason, sizeof res->reason, "%s/%s/%s", or_dash(n),
		 or_dash(ans->device), or_dash(ans->subscription));
	if (st == 200) {
		if (n == NULL || looks_html(ans)) {
			snprintf(res->reason, sizeof res->reason, "%s",
				 looks_html(ans) ? "HTML page, no MPNS status"
				 : "no MPNS status");
			ambiguous(res, retry_ambiguous, attempts,
				  max_attempts, at);
		} else if (strcasecmp(n, "Received") == 0 ||
			   strcasecmp(n, "Suppressed") == 0) {
			/* Suppressed: accepted, the channel does not show
			 * this class; not to be retried (4.3). */
			res->outcome = PUSH_OUTCOME_SENT;
		} else if (strcasecmp(n, "QueueFull") == 0) {
			res->throttled = true;
			send_retry_or_fail(res, attempts, max_attempts, at);
		} else {
			res->outcome = PUSH_OUTCOME_FAILED;
		}
		return;
	}
	switch (st) {
	case 404:
		res->outcome = PUSH_OUTCOME_INVALID_TOKEN;
		break;
	case 401:
		/* Certificate problems or a bad target: configuration. */
		res->outcome = PUSH_OUTCOME_FAILED;
		res->auth_failure = true;
		break;
	case 406:
	case 412:
		res->throttled = true;
		send_retry_or_fail(res, attempts, max_attempts,
				   now_us + SENDER_MPNS_HOLD_US);
		break;
	case 503:
		/* Documented: not processed; resend in minutes. */
		send_retry_or_fail(res, attempts, max_attempts, at);
		break;
	default:
		if (st >= 500 && st < 600)
			ambiguous(res, retry_ambiguous, attempts,
				  max_attempts, at);
		else
			res->outcome = PUSH_OUTCOME_FAILED;  /* 400, 405 */
		break;
	}
	if (res->reason[0] == '-' && res->reason[1] == '/')
		snprintf(res->reason, sizeof res->reason, "HTTP %ld", st);
}

/* ---- the sender -------------------------------------------------- */

struct sender_cred {
	struct multipart_cred base;     /* env, queue, closing, memo, holds */
	char *endpoint;                 /* origin override or NULL */
	char *ca_path;
	char *cert_pem, *key_pem;       /* client certificate or NULL */
	char conn_group[48];            /* with a certificate: its own */
	bool retry_ambiguous;
	struct hostlist *hosts;
};

struct mpns_send {
	struct multipart_send mp;       /* item, done, parts, url */
	struct sender_mpns_request req;
};

static struct mpns_send *mpns_of(const struct multipart_part *p)
{
	return send_entry(p->send, struct mpns_send, mp);
}

static struct sender_cred *cred_of(const struct multipart_part *p)
{
	return send_entry(multipart_cred_of(p->send), struct sender_cred,
			  base);
}

static void mpns_free(struct send *b)
{
	struct mpns_send *s = send_entry(multipart_of(b), struct mpns_send,
					 mp);

	multipart_send_release(&s->mp);
	sender_mpns_request_free(&s->req);
	free(s);
}

static const struct send_kind mpns_kind = {
	.done_event = "mpns push done",
	.backoff_base_us = SENDER_MPNS_BACKOFF_BASE_US,
	.backoff_cap_us = SENDER_MPNS_BACKOFF_CAP_US,
	.free = mpns_free,
	.cancel = multipart_cancel,
};

/* Answer headers a debug push's trace keeps. */
static const char *const mpns_trace_headers[] = { "x-notificationstatus",
	"x-subscriptionstatus", "x-deviceconnectionstatus", "x-messageid",
	"content-type", NULL };

static void on_answer(void *arg, const struct http_response *hr)
{
	struct multipart_part *p = arg;
	struct sender_cred *cred = cred_of(p);
	const struct sender_mpns_part *part = &mpns_of(p)->req.parts[p->index];
	struct push_item *item = p->send->base.item;
	struct sender_mpns_answer ans;
	struct push_result res;

	p->xfer = NULL;
	if (multipart_part_cancel_if_closing(p))
		return;
	send_trace_response(&cred->base.base.env, item, part->name, hr,
			    mpns_trace_headers);
	memset(&ans, 0, sizeof ans);
	ans.status = hr->status;
	ans.error = hr->error;
	ans.err = hr->err;
	ans.body = hr->body;
	ans.body_len = hr->body_len;
	ans.notification = http_response_header(hr, "x-notificationstatus");
	ans.subscription = http_response_header(hr, "x-subscriptionstatus");
	ans.device = http_response_header(hr, "x-deviceconnectionstatus");
	ans.content_type = http_response_header(hr, "content-type");
	sender_mpns_classify(&ans, item->attempts, p->send->base.max_attempts,
			     cred->retry_ambiguous, push_now_us(),
			     send_retry_delay(&p->send->base), &res);
	/* The id we sent is the one MPNS keys its logs on. */
	snprintf(res.message_id, sizeof res.message_id, "%s",
		 part->message_id);
	if (res.outcome != PUSH_OUTCOME_SENT || item->debug)
		log_info("mpns answer", "push_id=%lld part=%s status=%ld "
			 "message_id=%s reason=%s error=%s",
			 (long long)item->push_id, part->name,
			 hr->status, part->message_id, res.reason,
			 hr->error ? hr->error : "");
	multipart_part_done(p, &res);
}

/* POST one part (multipart start). */
static void post(struct multipart_part *p)
{
	struct mpns_send *s = mpns_of(p);
	struct sender_cred *cred = cred_of(p);
	const struct sender_mpns_part *part = &s->req.parts[p->index];
	const char *headers[SENDER_MPNS_MAX_HEADERS + 2];
	struct http_request req;
	struct push_result res;
	size_t n = 0;
	int rc;

	for (size_t i = 0; part->headers[i] != NULL; i++)
		headers[n++] = part->headers[i];
	headers[n++] = "Expect:";
	headers[n] = NULL;
	send_post_init(&req, &cred->base.base, s->mp.url, cred->ca_path);
	req.headers = headers;
	req.body = part->body;
	req.body_len = part->body_len;
	if (cred->cert_pem != NULL) {
		req.conn_group = cred->conn_group;
		req.client_cert = cred->cert_pem;
		req.client_key = cred->key_pem;
	}
	req.done = on_answer;
	req.arg = p;
	if (s->mp.base.item->sent_at_us == 0)
		s->mp.base.item->sent_at_us = push_now_us();
	p->active = true;
	send_trace_request(&cred->base.base.env, s->mp.base.item, part->name,
			   &req);
	rc = http_submit(cred->base.base.env.http, &req, &p->xfer);
	if (rc < 0) {
		p->xfer = NULL;
		send_submit_failed(&s->mp.base, rc, &res);
		multipart_part_done(p, &res);
	}
}

static const struct multipart_ops mpns_parts = {
	.start = post,
	.hold_us = SENDER_MPNS_HOLD_US,
};

static int mpns_send(struct sender_cred *cred, struct push_item *item,
		     int max_attempts, sender_done_fn done, void *arg)
{
	struct mpns_send *s = mem_alloc_zero(1, sizeof *s);
	const char *names[PARTS_MAX];
	struct push_result res;
	int64_t now = push_now_us();

	if (!multipart_begin(&s->mp, &cred->base, item, max_attempts, done,
			     arg) ||
	    !multipart_channel(&s->mp, cred->hosts, cred->endpoint,
			       "mpns channel refused"))
		return 0;
	if (sender_mpns_build(item, now, &s->req, &res) < 0) {
		multipart_refuse(&s->mp, &res);
		return 0;
	}
	for (size_t i = 0; i < s->req.n; i++)
		names[i] = s->req.parts[i].name;
	multipart_run(&s->mp, s->req.n, names, now);
	return 0;
}

static int mpns_cred_open(struct sender_cred **out,
			  const struct sender_env *env, const char *row_json,
			  char *err, size_t errlen)
{
	json_object *row, *v;
	struct sender_cred *cred;
	const char *cert, *key;
	char herr[200];
	int rc = -EINVAL;

	row = json_tokener_parse(row_json != NULL ? row_json : "");
	if (row == NULL || !json_object_is_type(row, json_type_object)) {
		snprintf(err, errlen, "mpns credential: not a JSON object");
		json_object_put(row);
		return -EINVAL;
	}
	cred = mem_alloc_zero(1, sizeof *cred);
	cred->hosts = hostlist_new();
	if (hostlist_add_json(cred->hosts, jsonget(row, "channel_hosts"),
			      DEFAULT_HOSTS, herr, sizeof herr) < 0) {
		snprintf(err, errlen, "mpns credential: %s", herr);
		hostlist_free(cred->hosts);
		free(cred);
		goto out;
	}
	cert = jsonget_nonempty(row, "certificate_pem");
	key = jsonget_nonempty(row, "private_key_pem");
	if ((cert == NULL) != (key == NULL)) {
		snprintf(err, errlen, "mpns credential: certificate_pem and "
			 "private_key_pem go together");
		hostlist_free(cred->hosts);
		free(cred);
		goto out;
	}
	if (cert != NULL) {
		cred->cert_pem = mem_strdup(cert);
		cred->key_pem = mem_strdup(key);
		v = jsonget(row, "id");
		snprintf(cred->conn_group, sizeof cred->conn_group,
			 "mpns-cert-%lld", v != NULL
			 ? (long long)json_object_get_int64(v) : 0LL);
	}
	cred->endpoint = jsonget_nonempty(row, "endpoint")
			 ? mem_strdup(jsonget_nonempty(row, "endpoint")) : NULL;
	cred->ca_path = jsonget_nonempty(row, "ca_bundle_path")
			? mem_strdup(jsonget_nonempty(row, "ca_bundle_path"))
			: NULL;
	/* The app's retry_ambiguous; NULL: the MPNS default, do not. */
	v = jsonget(row, "retry_ambiguous");
	cred->retry_ambiguous = v != NULL &&
		json_object_is_type(v, json_type_boolean) &&
		json_object_get_boolean(v);
	multipart_cred_init(&cred->base, env, &mpns_kind, &mpns_parts);
	*out = cred;
	rc = 0;
out:
	/* The row holds the private key: clear json-c's copy. */
	v = jsonget(row, "private_key_pem");
	if (v != NULL && json_object_is_type(v, json_type_string))
		explicit_bzero((char *)json_object_get_string(v),
			       (size_t)json_object_get_string_len(v));
	json_object_put(row);
	return rc;
}

static void mpns_cred_close(struct sender_cred *cred)
{
	if (cred == NULL || !send_cred_cancel_all(&cred->base.base))
		return;
	hostlist_free(cred->hosts);
	multipart_cred_free(&cred->base);
	secret_free(cred->cert_pem);
	secret_free(cred->key_pem);
	free(cred->endpoint);
	free(cred->ca_path);
	sendq_close(&cred->base.base.q, free, cred);
}

const struct sender_ops sender_mpns_ops = {
	.name = "mpns",
	.platform = PUSH_PLATFORM_MPNS,
	.cred_open = mpns_cred_open,
	.cred_close = mpns_cred_close,
	.send = mpns_send,
};
