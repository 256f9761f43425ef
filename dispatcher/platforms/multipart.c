/*
 * multipart.c - the multi-part send shared by WNS and MPNS (multipart.h).
 */
#include "platforms/multipart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "net/hdrcheck.h"
#include "net/hostlist.h"
#include "net/http.h"
#include "platforms/secret.h"

struct multipart_send *multipart_of(struct send *b)
{
	return send_entry(b, struct multipart_send, base);
}

struct multipart_cred *multipart_cred_of(const struct multipart_send *s)
{
	return send_entry(s->base.cred, struct multipart_cred, base);
}

void multipart_cred_init(struct multipart_cred *c,
			 const struct sender_env *env,
			 const struct send_kind *kind,
			 const struct multipart_ops *ops)
{
	send_cred_init(&c->base, env, kind);
	c->ops = ops;
	c->memo = parts_memo_new(MULTIPART_MEMO_CAP);
	c->holds = ops->hold_us != 0 ? parts_memo_new(MULTIPART_HOLD_CAP)
		   : NULL;
}

void multipart_cred_free(struct multipart_cred *c)
{
	parts_memo_free(c->memo);
	parts_memo_free(c->holds);
	c->memo = c->holds = NULL;
}

bool multipart_begin(struct multipart_send *s, struct multipart_cred *c,
		     struct push_item *item, int max_attempts,
		     sender_done_fn done, void *arg)
{
	snprintf(s->key, sizeof s->key, "%lld", (long long)item->queue_id);
	return send_begin(&s->base, &c->base, item, max_attempts, done, arg);
}

/* True when the channel is held: finished as a throttled retry. */
static bool held(struct multipart_send *s, int64_t now_us)
{
	struct multipart_cred *c = multipart_cred_of(s);
	struct push_result res;
	int64_t until = 0;

	if (c->holds == NULL ||
	    !parts_memo_get(c->holds, s->base.item->token, now_us, NULL, NULL,
			    &until))
		return false;
	/* 406/412 earlier: not before the hold is up. */
	memset(&res, 0, sizeof res);
	snprintf(res.reason, sizeof res.reason, "channel held for an hour "
		 "after a 406/412; not sent");
	res.throttled = true;
	send_retry(&s->base, &res, until);
	send_finish_later(&s->base, &res);
	return true;
}

bool multipart_channel(struct multipart_send *s, const struct hostlist *hosts,
		       const char *endpoint, const char *refused_event)
{
	const struct push_item *item = s->base.item;
	struct push_result res;
	char why[200];

	if (item->token == NULL || !hdrcheck_url_ok(item->token) ||
	    hostlist_check_url(hosts, item->token, why, sizeof why) < 0) {
		push_result_set(&res, PUSH_OUTCOME_FAILED,
				item->token == NULL ? "no channel URL"
				: !hdrcheck_url_ok(item->token)
				? HDRCHECK_URL_REASON : why);
		log_warn(refused_event, "push_id=%lld app=%d reason=%s",
			 (long long)item->push_id, item->app_id, res.reason);
		send_finish_later(&s->base, &res);
		return false;
	}
	if (held(s, push_now_us()))
		return false;
	s->url = hostlist_rebase_url(item->token, endpoint);
	if (s->url == NULL) {
		push_result_set(&res, PUSH_OUTCOME_FAILED,
				"channel URL cannot be used");
		send_finish_later(&s->base, &res);
		return false;
	}
	return true;
}

void multipart_refuse(struct multipart_send *s,
		      const struct push_result *res)
{
	parts_memo_del(multipart_cred_of(s)->memo, s->key);
	send_finish_later(&s->base, res);
}

/* Every part has answered: combine, remember, hand back. */
static void complete(struct multipart_send *s)
{
	struct multipart_cred *c = multipart_cred_of(s);
	struct part_result prs[PARTS_MAX] = { 0 };
	struct push_result res;
	unsigned acc = 0, unc = 0;
	int64_t hold = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct push_result *r = &s->ps[i].pr.res;

		prs[i] = s->ps[i].pr;
		if (prs[i].skipped ? !prs[i].was_uncertain
		    : r->outcome == PUSH_OUTCOME_SENT)
			acc |= 1u << i;
		if (prs[i].skipped ? prs[i].was_uncertain
		    : r->outcome == PUSH_OUTCOME_UNCERTAIN)
			unc |= 1u << i;
		if (c->holds != NULL && !prs[i].skipped &&
		    (r->http_status == 406 || r->http_status == 412))
			hold = push_now_us() + c->ops->hold_us;
	}
	parts_combine(prs, s->n, &res);
	if (hold != 0 && !c->base.closing)
		parts_memo_put(c->holds, s->base.item->token, 0, 0, hold);
	if (res.outcome == PUSH_OUTCOME_RETRY && !c->base.closing)
		parts_memo_put(c->memo, s->key, acc, unc,
			       push_now_us() + MULTIPART_MEMO_AGE_US);
	else if (res.outcome != PUSH_OUTCOME_RETRY)
		parts_memo_del(c->memo, s->key);
	send_settle(&s->base, &res);
}

void multipart_part_done(struct multipart_part *p,
			 const struct push_result *r)
{
	struct multipart_send *s = p->send;

	p->active = false;
	p->pr.res = *r;
	if (--s->pending == 0)
		complete(s);
}

bool multipart_part_cancel_if_closing(struct multipart_part *p)
{
	struct push_result res;

	if (!p->send->base.cred->closing)
		return false;
	sendq_set_cancelled(&res);
	multipart_part_done(p, &res);
	return true;
}

void multipart_run(struct multipart_send *s, size_t n,
		   const char *const *names, int64_t now_us)
{
	struct multipart_cred *c = multipart_cred_of(s);
	unsigned acc = 0, unc = 0;

	parts_memo_get(c->memo, s->key, now_us, &acc, &unc, NULL);
	s->base.in_send = true;
	s->n = n;
	s->pending = n;
	for (size_t i = 0; i < n; i++) {
		struct multipart_part *p = &s->ps[i];

		p->send = s;
		p->index = i;
		p->pr.name = names[i];
		if ((acc | unc) & (1u << i)) {
			p->pr.skipped = true;
			p->pr.was_uncertain = (unc & (1u << i)) != 0;
			s->pending--;
		}
	}
	if (s->pending == 0) {
		complete(s);    /* deferred: in_send */
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!s->ps[i].pr.skipped)
			c->ops->start(&s->ps[i]);
	/* `s` may be on the ready list now; it is still valid. */
	s->base.in_send = false;
}

void multipart_cancel(struct send *b)
{
	struct multipart_send *s = multipart_of(b);
	struct multipart_cred *c = multipart_cred_of(s);
	struct multipart_part *p = NULL;
	struct push_result res;

	for (size_t i = 0; i < s->n && p == NULL; i++)
		if (s->ps[i].active)
			p = &s->ps[i];
	if (p == NULL) {
		send_cancel(b);               /* nothing outstanding */
	} else if (p->xfer != NULL) {
		/* The answer handler sees `closing` and settles the part. */
		http_cancel(c->base.env.http, p->xfer);
	} else {
		if (c->ops->unwait != NULL)
			c->ops->unwait(p);
		sendq_set_cancelled(&res);
		multipart_part_done(p, &res);
	}
}

void multipart_send_release(struct multipart_send *s)
{
	for (size_t i = 0; i < PARTS_MAX; i++)
		secret_free(s->ps[i].token);
	free(s->url);
}
