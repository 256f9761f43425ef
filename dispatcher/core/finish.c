/*
 * finish.c - see finish.h.
 */
#include "core/finish.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "core/acker.h"
#include "core/faults.h"
#include "core/pool.h"
#include "core/pools.h"
#include "core/release.h"
#include "obs/sqltime.h"
#include "obs/stats.h"
#include "obs/trace.h"

static void trace_finished(struct finisher *f, struct push_item *item,
			   const struct push_result *res);

void finish_push(struct finisher *f, struct push_item *item,
		 const struct push_result *res, bool gated)
{
	int64_t now = push_now_us();
	double latency = -1;

	if (item->sent_at_us && item->enqueued_at_us)
		latency = (double)(now - item->enqueued_at_us) / 1000.0;
	ack_add(&f->ack->wait, item, res, now);
	f->ack->wait.rows[f->ack->wait.len - 1].gated = gated;
	stats_add(f->stats, now, item->app_id, item->platform,
		  item->campaign_id, res->outcome, item->sent_at_us ? 1 : 0,
		  item->sent_at_us && item->payload
			  ? (int64_t)strlen(item->payload) : 0,
		  latency);
	if (item->debug)
		log_info("debug push finished",
			 "push=%" PRId64 " queue=%" PRId64 " outcome=%s "
			 "status=%d reason=%s",
			 item->push_id, item->queue_id,
			 push_outcome_name(res->outcome), res->http_status,
			 res->reason);
	if (item->debug)
		trace_finished(f, item, res);
	push_item_free(item);
	if (f->ack->wait.len >= ACK_BATCH_MAX)
		writer_flush(&f->ack->w);
	else
		writer_flush_soon(&f->ack->w, f->ack_interval_ms);
}

void finish_unsent(struct finisher *f, struct push_item *item,
		   enum push_outcome outcome, const char *reason)
{
	struct push_result res;

	push_result_set(&res, outcome, reason);
	finish_push(f, item, &res, false);
}

void finish_stop(struct finisher *f)
{
	f->stopped = true;
}

void finish_on_pool(void *arg, struct pool *pool, struct push_item *item,
		    const struct push_result *res)
{
	struct finisher *f = arg;

	if (res == NULL) {
		release_add(f->release, item);   /* waited too long: back */
		release_flush(f->release);
	} else {
		struct push_result r = *res;

		faults_on_finish(f->faults, item, &r, item->sent_at_us != 0,
				 pool->cred == NULL, !f->stopped,
				 push_now_us());
		/* A request went out (pool.c's on_sent counted it in the
		 * gate): it stays counted until this outcome is written. */
		finish_push(f, item, &r, item->sent_at_us != 0);
	}
	f->finished(f->arg);
}

void finish_on_acked(void *arg, const struct ack_buf *b, int64_t sent_us)
{
	struct finisher *f = arg;
	int gated = 0;

	f->acks++;
	f->acked_rows += b->len;
	sqltime_note(f->sqltime, "ack", sent_us, b->len, &f->ack_us,
		     !f->stopped && db_async_is_up(f->ask) ? f->ask : NULL);
	if (f->trace->nwait > 0) {
		int64_t *ids = mem_alloc((b->len + 1) * sizeof *ids);
		for (size_t i = 0; i < b->len; i++)
			ids[i] = b->rows[i].queue_id;
		trace_ack_done(f->trace, ids, b->len);
		free(ids);
	}
	for (size_t i = 0; i < b->len; i++)
		gated += b->rows[i].gated;
	pool_acked(f->gate, gated);
}

void finish_on_ack_freed(void *arg)
{
	struct finisher *f = arg;

	pools_pump(f->pools, push_now_us());
	f->kick(f->arg);    /* a claim may have waited for this */
}

void finish_on_sender_trace(void *arg, const struct push_item *item,
			    const char *step, const char *detail_json)
{
	struct trace *t = arg;

	if (item != NULL && item->debug)
		trace_event(t, 0, item, step, detail_json);
}

void finish_trace_claimed(struct finisher *f, struct push_item *item,
			  const struct pool *p)
{
	struct trace_json j;
	int64_t now = push_now_us();

	trace_json_begin(&j);
	trace_json_str(&j, "by", f->id);
	trace_json_int(&j, "attempt", item->attempts);
	trace_json_int(&j, "device_id", item->device_id);
	trace_json_str(&j, "priority", push_priority_name(item->priority));
	if (item->enqueued_at_us)
		trace_json_int(&j, "queued_ms",
			       (now - item->enqueued_at_us) / 1000);
	char *detail = trace_json_end(&j);
	trace_event(f->trace, now, item, "claimed", detail);
	free(detail);

	trace_json_begin(&j);
	trace_json_int(&j, "app_id", item->app_id);
	trace_json_str(&j, "platform", push_platform_name(item->platform));
	if (p != NULL) {
		trace_json_bool(&j, "found", true);
		trace_json_int(&j, "ring", (int64_t)p->len);
		trace_json_int(&j, "fill_percent", pool_fill_percent(p));
		trace_json_int(&j, "window", p->window);
		trace_json_int(&j, "in_flight", p->in_flight);
		trace_json_bool(&j, "paused", p->lim.paused);
	} else {
		trace_json_bool(&j, "found", false);
	}
	detail = trace_json_end(&j);
	trace_event(f->trace, now, item, "pool", detail);
	free(detail);
}

static void trace_finished(struct finisher *f, struct push_item *item,
			   const struct push_result *res)
{
	struct trace_json j;
	int64_t now = push_now_us();
	char *detail;

	if (item->sent_at_us) {
		trace_json_begin(&j);
		trace_json_int(&j, "status", res->http_status);
		trace_json_str(&j, "reason", res->reason);
		if (res->message_id[0])
			trace_json_str(&j, "message_id", res->message_id);
		trace_json_int(&j, "sent_ms_after_enqueue",
			       item->enqueued_at_us ? (item->sent_at_us -
			       item->enqueued_at_us) / 1000 : 0);
		trace_json_int(&j, "response_ms",
			       (now - item->sent_at_us) / 1000);
		detail = trace_json_end(&j);
		trace_event(f->trace, now, item, "response", detail);
		free(detail);
	}

	trace_json_begin(&j);
	trace_json_str(&j, "outcome", push_outcome_name(res->outcome));
	trace_json_str(&j, "reason", res->reason);
	trace_json_bool(&j, "sent", item->sent_at_us != 0);
	trace_json_bool(&j, "throttled", res->throttled);
	trace_json_bool(&j, "auth_failure", res->auth_failure);
	detail = trace_json_end(&j);
	trace_event(f->trace, now, item, "classified", detail);
	free(detail);

	trace_json_begin(&j);
	trace_json_bool(&j, "retry", res->outcome == PUSH_OUTCOME_RETRY);
	trace_json_int(&j, "attempt", item->attempts);
	if (res->outcome == PUSH_OUTCOME_RETRY && res->retry_at_us)
		trace_json_int(&j, "retry_in_ms",
			       (res->retry_at_us - now) / 1000);
	detail = trace_json_end(&j);
	trace_event(f->trace, now, item, "retry_decision", detail);
	free(detail);
	trace_ack_wait(f->trace, item, res->outcome);
}
