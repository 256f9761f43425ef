/*
 * send.c - the shared life cycle of a send (send.h).
 */
#include "platforms/send.h"

#include <stdio.h>
#include <string.h>

#include "base/backoff.h"
#include "base/log.h"
#include "net/http.h"
#include "platforms/oauth_cache.h"

static struct send *send_of(struct sendq_item *it)
{
	return sendq_entry(it, struct send, qi);
}

/* A result decided inside send(), delivered by the queue's timer. */
static void finish_deferred(struct sendq_item *it, struct push_result *res)
{
	send_finish(send_of(it), res);
}

void send_cred_init(struct send_cred *c, const struct sender_env *env,
		    const struct send_kind *kind)
{
	c->env = *env;
	c->kind = kind;
	c->closing = false;
	sendq_init(&c->q, env->loop, finish_deferred);
}

bool send_cred_cancel_all(struct send_cred *c)
{
	if (c->closing)
		return false;
	c->closing = true;
	while (c->q.sends != NULL)
		c->kind->cancel(send_of(c->q.sends));
	sendq_flush(&c->q);
	return true;
}

bool send_begin(struct send *s, struct send_cred *c, struct push_item *item,
		int max_attempts, sender_done_fn done, void *arg)
{
	struct push_result res;

	s->cred = c;
	s->item = item;
	s->max_attempts = max_attempts > 0 ? max_attempts
			  : c->env.max_attempts;
	s->done = done;
	s->arg = arg;
	sendq_add(&c->q, &s->qi);
	if (c->closing) {
		sendq_set_cancelled(&res);
		sendq_finish_later(&c->q, &s->qi, &res);
		return false;
	}
	return true;
}

void send_finish(struct send *s, struct push_result *res)
{
	const struct send_kind *kind = s->cred->kind;
	struct push_item *item = s->item;
	const char *extra = NULL;

	sendq_remove(&s->cred->q, &s->qi);
	if (kind->finishing != NULL)
		extra = kind->finishing(s, res);
	if (item->debug && kind->done_field == NULL)
		log_info(kind->done_event, "push_id=%lld outcome=%s status=%d "
			 "reason=%s", (long long)item->push_id,
			 push_outcome_name(res->outcome), res->http_status,
			 res->reason);
	else if (item->debug)
		log_info(kind->done_event, "push_id=%lld outcome=%s status=%d "
			 "reason=%s %s=%s", (long long)item->push_id,
			 push_outcome_name(res->outcome), res->http_status,
			 res->reason, kind->done_field, extra);
	/* The pool sees a final result; a reauth happened in here. */
	res->reauth = false;
	s->done(s->arg, item, res);
	kind->free(s);
}

void send_finish_later(struct send *s, const struct push_result *res)
{
	sendq_finish_later(&s->cred->q, &s->qi, res);
}

void send_settle(struct send *s, struct push_result *res)
{
	if (s->in_send)
		send_finish_later(s, res);
	else
		send_finish(s, res);
}

void send_cancel(struct send *s)
{
	struct push_result res;

	sendq_set_cancelled(&res);
	send_finish(s, &res);
}

bool send_cancel_if_closing(struct send *s)
{
	if (!s->cred->closing)
		return false;
	send_cancel(s);
	return true;
}

int64_t send_retry_delay(const struct send *s)
{
	const struct send_kind *kind = s->cred->kind;

	return backoff_delay_us(s->item->attempts, kind->backoff_base_us,
				kind->backoff_cap_us, NULL, NULL);
}

void send_retry_or_fail(struct push_result *res, int attempts,
			int max_attempts, int64_t at)
{
	if (max_attempts > 0 && attempts >= max_attempts) {
		res->outcome = PUSH_OUTCOME_FAILED;
		res->retry_at_us = 0;
	} else {
		res->outcome = PUSH_OUTCOME_RETRY;
		res->retry_at_us = at;
	}
}

void send_retry(const struct send *s, struct push_result *res, int64_t at)
{
	send_retry_or_fail(res, s->item->attempts, s->max_attempts, at);
}

void send_submit_failed(const struct send *s, int rc,
			struct push_result *res)
{
	memset(res, 0, sizeof *res);
	snprintf(res->reason, sizeof res->reason,
		 "transport: cannot start the request: %s", strerror(-rc));
	send_retry(s, res, push_now_us() + send_retry_delay(s));
}

void send_auth_failed(const struct send *s,
		      const struct oauth_cache_error *err, size_t reason_max,
		      struct push_result *res)
{
	int64_t at;

	memset(res, 0, sizeof *res);
	snprintf(res->reason, sizeof res->reason, "%.*s",
		 reason_max > 0 ? (int)reason_max : (int)sizeof res->reason,
		 err->reason);
	if (s->cred->closing) {
		sendq_set_cancelled(res);
	} else if (err->permanent) {
		res->outcome = PUSH_OUTCOME_FAILED;
		res->auth_failure = true;
	} else {
		at = push_now_us() + send_retry_delay(s);
		if (err->retry_at_us > at)
			at = err->retry_at_us;
		send_retry(s, res, at);
	}
}

void send_post_init(struct http_request *req, const struct send_cred *c,
		    const char *url, const char *ca_path)
{
	memset(req, 0, sizeof *req);
	req->method = "POST";
	req->url = url;
	req->ca_path = ca_path;
	req->connect_timeout_ms = c->env.connect_timeout_ms;
	req->timeout_ms = c->env.request_timeout_ms;
}
