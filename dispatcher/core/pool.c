/*
 * pool.c - see pool.h.
 *
 * The ring is a circular array of item pointers.  The window changes in
 * pool_tick(), at most every RESIZE_EVERY_US: up by half (at least one)
 * while the ring is more than 10% full, down by a quarter (at least one)
 * after IDLE_AFTER_US without waiting items; and in pool_pump(), up by
 * half when the window is full and the oldest waiting push has waited
 * WAIT_GROW_US for a slot (at most every WAIT_GROW_US).  The 10% rule
 * alone reacts to a ring of 1,024 only once about a hundred pushes wait:
 * at 2,000 pushes/s that is 50 ms of latency before the window moves.
 * pool_pump() is the only
 * place a send starts, and the sender's done callback is the only place
 * an in-flight slot is given back.
 */
#include "core/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"

#define RING_MIN        64
#define RING_MAX        8192
#define RESIZE_EVERY_US 100000    /* 100 ms between window changes */
#define IDLE_AFTER_US   2000000   /* shrink after 2 s without a backlog */
#define WAIT_GROW_US    5000      /* a push waiting this long for a slot */

/*
 * Eight windows: a claim goes out while the ring still holds more than
 * the window's worth, and a second one (rows on their way count as held)
 * before the first has been sent, so the sends never wait for a claim's
 * round trip.
 */
static size_t ring_cap_for(const struct pool_limits *lim)
{
	size_t cap = (size_t)lim->max_window * 8;

	if (cap < RING_MIN)
		cap = RING_MIN;
	if (cap > RING_MAX)
		cap = RING_MAX;
	return cap;
}

static int clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

struct pool *pool_new(int32_t app_id, enum push_platform platform,
		      int credential_id, const struct sender_ops *ops,
		      struct sender_cred *cred, const struct pool_limits *lim,
		      pool_finish_fn finish, void *finish_arg)
{
	static uint64_t serials;
	struct pool *p = mem_alloc_zero(1, sizeof *p);

	p->serial = ++serials;
	p->app_id = app_id;
	p->platform = platform;
	p->credential_id = credential_id;
	p->ops = ops;
	p->cred = cred;
	p->lim = *lim;
	if (p->lim.min_window < 1)
		p->lim.min_window = 1;
	if (p->lim.max_window < p->lim.min_window)
		p->lim.max_window = p->lim.min_window;
	p->cap = ring_cap_for(&p->lim);
	p->ring = mem_alloc_zero(p->cap, sizeof *p->ring);
	p->window = p->lim.min_window;
	p->finish = finish;
	p->finish_arg = finish_arg;
	return p;
}

void pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	free(p->ring);
	free(p);
}

void pool_set_limits(struct pool *p, const struct pool_limits *lim)
{
	p->lim = *lim;
	if (p->lim.min_window < 1)
		p->lim.min_window = 1;
	if (p->lim.max_window < p->lim.min_window)
		p->lim.max_window = p->lim.min_window;
	p->window = clamp(p->window, p->lim.min_window, p->lim.max_window);
	/* The ring keeps its size: items may be in it.  A larger maximum
	 * takes effect when the pool is rebuilt. */
}

int pool_claim_want(const struct pool *p, int max_batch)
{
	/* Rows already asked for count as if they were in the ring. */
	size_t held = p->len + (size_t)p->claim_pending;

	if (p->lim.paused)
		return 0;
	if (held * 2 > p->cap)
		return 0;    /* over half full: send what we have first */
	size_t room = p->cap - held;
	return (int)(room < (size_t)max_batch ? room : (size_t)max_batch);
}

void pool_add(struct pool *p, struct push_item *item, int64_t now_us)
{
	if (p->len == p->cap) {
		/* The claim never asks for more than the room; if a reload
		 * shrank anything, grow rather than lose a push. */
		struct push_item **ring = mem_alloc_zero(p->cap * 2,
							 sizeof *ring);
		for (size_t i = 0; i < p->len; i++)
			ring[i] = p->ring[(p->head + i) % p->cap];
		free(p->ring);
		p->ring = ring;
		p->head = 0;
		p->cap *= 2;
	}
	item->pooled_at_us = now_us;
	p->ring[(p->head + p->len) % p->cap] = item;
	p->len++;
	p->stats.claimed++;
}

static struct push_item *ring_pop(struct pool *p)
{
	struct push_item *it = p->ring[p->head];

	p->ring[p->head] = NULL;
	p->head = (p->head + 1) % p->cap;
	p->len--;
	return it;
}

static void finish_now(struct pool *p, struct push_item *it,
		       enum push_outcome outcome, const char *reason)
{
	struct push_result res;

	push_result_set(&res, outcome, reason);
	p->stats.finished++;
	p->finish(p->finish_arg, p, it, &res);
}

static void on_sent(void *arg, struct push_item *item,
		    const struct push_result *res)
{
	struct pool *p = arg;

	p->in_flight--;
	if (p->gate != NULL)
		p->gate->unacked++;   /* until the daemon's ack is written */
	p->stats.finished++;
	p->finish(p->finish_arg, p, item, res);
	/* A slot is free: keep the pipe full without waiting for a tick. */
	pool_pump(p, push_now_us());
}

/* Pushes wait for a slot while the window is full: grow it, unless it
 * grew a moment ago or is at the app's maximum. */
static bool grow_for_waiting(struct pool *p, int64_t now_us)
{
	if (p->len == 0 || p->in_flight < p->window ||
	    p->window >= p->lim.max_window ||
	    now_us - p->ring[p->head]->pooled_at_us < WAIT_GROW_US ||
	    now_us - p->resized_at_us < WAIT_GROW_US)
		return false;
	int step = p->window / 2 > 0 ? p->window / 2 : 1;
	p->window = clamp(p->window + step, p->lim.min_window,
			  p->lim.max_window);
	p->resized_at_us = now_us;
	log_debug("pool window grown", "app=%d platform=%s window=%d "
		  "reason=waiting", p->app_id,
		  push_platform_name(p->platform), p->window);
	return true;
}

void pool_pump(struct pool *p, int64_t now_us)
{
	bool banned = p->lim.banned_until_us > now_us;

	if (p->closed)
		return;
again:
	while (p->len > 0 && (banned || (p->in_flight < p->window &&
		(p->gate == NULL || p->gate->unacked < p->gate->max)))) {
		struct push_item *it = ring_pop(p);

		if (banned) {
			char why[192];
			snprintf(why, sizeof why, "app banned: %s",
				 p->lim.ban_reason[0] ? p->lim.ban_reason
						      : "no reason given");
			finish_now(p, it, PUSH_OUTCOME_DROPPED_BANNED, why);
			continue;
		}
		if (it->send_by_us != 0 && it->send_by_us <= now_us) {
			p->stats.finished++;
			p->finish(p->finish_arg, p, it, NULL);
			continue;
		}
		if (it->expires_at_us != 0 && it->expires_at_us <= now_us) {
			finish_now(p, it, PUSH_OUTCOME_EXPIRED,
				   "time to live passed before it was sent");
			continue;
		}
		if (p->cred == NULL || p->ops == NULL) {
			char why[256];
			snprintf(why, sizeof why, "credential unusable: %s",
				 p->cred_error[0] ? p->cred_error
						  : "not loaded");
			finish_now(p, it, PUSH_OUTCOME_FAILED, why);
			continue;
		}
		p->in_flight++;
		p->stats.sent_requests++;
		it->sent_at_us = now_us;
		p->ops->send(p->cred, it, p->lim.max_attempts, on_sent, p);
	}
	if (!banned && grow_for_waiting(p, now_us))
		goto again;
	if (p->len > 0 || p->in_flight > 0)
		p->active_at_us = now_us;
}

void pool_acked(struct pool_gate *g, int n)
{
	g->unacked -= n;
	if (g->unacked < 0)
		g->unacked = 0;
}

void pool_close_cred(struct pool *p)
{
	struct sender_cred *cred = p->cred;

	p->closed = true;
	p->cred = NULL;
	if (cred != NULL && p->ops != NULL)
		p->ops->cred_close(cred);
}

void pool_tick(struct pool *p, int64_t now_us)
{
	if (now_us - p->resized_at_us < RESIZE_EVERY_US)
		return;
	if (p->len * 10 > p->cap && p->window < p->lim.max_window) {
		int step = p->window / 2 > 0 ? p->window / 2 : 1;
		p->window = clamp(p->window + step, p->lim.min_window,
				  p->lim.max_window);
		p->resized_at_us = now_us;
		log_debug("pool window grown", "app=%d platform=%s window=%d",
			  p->app_id, push_platform_name(p->platform),
			  p->window);
	} else if (p->len == 0 && p->window > p->lim.min_window &&
		   now_us - p->active_at_us > IDLE_AFTER_US) {
		int step = p->window / 4 > 0 ? p->window / 4 : 1;
		p->window = clamp(p->window - step, p->lim.min_window,
				  p->lim.max_window);
		p->resized_at_us = now_us;
		log_debug("pool window shrunk", "app=%d platform=%s window=%d",
			  p->app_id, push_platform_name(p->platform),
			  p->window);
	}
}

size_t pool_take_unsent(struct pool *p, struct push_item **out)
{
	size_t n = 0;

	while (p->len > 0)
		out[n++] = ring_pop(p);
	return n;
}

bool pool_idle(const struct pool *p)
{
	return p->len == 0 && p->in_flight == 0;
}

int pool_fill_percent(const struct pool *p)
{
	return (int)(p->len * 100 / p->cap);
}
