/*
 * ack.c - see ack.h.  Times travel as microseconds since the epoch in
 * bigint arrays and become timestamptz in SQL (to_timestamp(x / 1e6)).
 */
#include "core/ack.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "db/sqlarr.h"

const char ACK_SQL[] =
	"WITH r AS ("
	" SELECT * FROM unnest($2::bigint[], $3::push.outcome[], $4::int[],"
	"  $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[],"
	"  $10::float8[], $11::bigint[], $12::bigint[])"
	"  AS r(queue_id, outcome, status, reason, message_id, retry_at,"
	"   sent_at, finished_at, latency_ms, provider_ts, campaign_id)"
	/* Each step returns what the later ones need, so nothing below joins
	 * two batches (which the planner would do row by row). */
	"), done AS ("
	" DELETE FROM push.queue q USING r"
	" WHERE q.id = r.queue_id AND q.lease_owner = $1"
	"   AND r.outcome <> 'retry'"
	" RETURNING q.id, q.push_id, q.app_id, q.platform, q.device_id,"
	"  q.enqueued_at, q.attempts, r.*"
	"), again AS ("
	" UPDATE push.queue q"
	" SET not_before = to_timestamp(r.retry_at / 1e6), lease_owner = NULL,"
	"  lease_expires_at = NULL, last_error = r.reason"
	" FROM r"
	" WHERE q.id = r.queue_id AND q.lease_owner = $1"
	"   AND r.outcome = 'retry'"
	" RETURNING q.id, q.push_id, q.app_id, q.platform, q.device_id,"
	"  q.enqueued_at, q.attempts, r.*"
	"), history AS ("
	" INSERT INTO push.deliveries (finished_at, push_id, queue_id, app_id,"
	"  platform, device_id, campaign_id, outcome, attempt,"
	"  provider_status, provider_reason, provider_message_id,"
	"  enqueued_at, sent_at, latency_ms, retry_at, dispatcher)"
	" SELECT to_timestamp(x.finished_at / 1e6), x.push_id, x.id,"
	"  x.app_id, x.platform, x.device_id, x.campaign_id,"
	"  CASE WHEN x.stale THEN 'failed' ELSE x.outcome END,"
	"  x.attempts, x.status,"
	"  CASE WHEN x.stale THEN coalesce(x.reason, 'invalid')"
	"   || ' (stale: device re-registered after Apple''s timestamp)'"
	"   ELSE x.reason END,"
	"  x.message_id, x.enqueued_at,"
	"  to_timestamp(x.sent_at / 1e6), x.latency_ms,"
	"  to_timestamp(x.retry_at / 1e6), $1"
	/* A dead token whose device registered again after the provider's
	 * timestamp (APNs 410) keeps its device (`dead` below): the push
	 * failed, no token died. */
	" FROM (SELECT y.*, CASE WHEN y.outcome = 'invalid_token'"
	"   AND y.provider_ts IS NOT NULL THEN EXISTS ("
	"    SELECT 1 FROM push.devices d WHERE d.id = y.device_id"
	"     AND d.invalidated_at IS NULL"
	"     AND d.last_seen_at >= to_timestamp(y.provider_ts / 1e6))"
	"   ELSE false END AS stale"
	"  FROM (SELECT * FROM done UNION ALL SELECT * FROM again) y) x"
	" RETURNING 1"
	"), dead AS ("
	" UPDATE push.devices d"
	" SET invalidated_at = now(),"
	"  invalid_reason = x.platform || ':' || coalesce(x.reason, 'invalid')"
	" FROM done x"
	" WHERE x.outcome = 'invalid_token' AND d.id = x.device_id"
	"   AND d.invalidated_at IS NULL"
	"   AND d.last_seen_at < to_timestamp(coalesce(x.provider_ts,"
	"        x.sent_at, x.finished_at) / 1e6)"
	" RETURNING 1"
	")"
	" SELECT (SELECT count(*) FROM history), (SELECT count(*) FROM dead)";

void ack_add(struct ack_buf *b, const struct push_item *item,
	     const struct push_result *res, int64_t now_us)
{
	if (b->len == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 256;
		b->rows = mem_realloc(b->rows, b->cap * sizeof *b->rows);
	}
	struct ack_row *r = &b->rows[b->len++];

	memset(r, 0, sizeof *r);
	r->queue_id = item->queue_id;
	r->campaign_id = item->campaign_id;
	r->outcome = res->outcome;
	r->http_status = res->http_status;
	r->reason = res->reason[0] ? mem_strdup(res->reason) : NULL;
	r->message_id = res->message_id[0] ? mem_strdup(res->message_id)
					   : NULL;
	r->retry_at_us = res->retry_at_us;
	r->sent_at_us = item->sent_at_us;
	r->finished_at_us = now_us;
	r->latency_us = item->sent_at_us && item->enqueued_at_us
		? now_us - item->enqueued_at_us : -1;
	r->provider_ts_us = res->provider_ts_us;
	if (r->outcome == PUSH_OUTCOME_RETRY && r->retry_at_us == 0)
		r->retry_at_us = now_us;
}

static void add_opt_int(struct sqlarr *a, int64_t v)
{
	if (v)
		sqlarr_add_int(a, v);
	else
		sqlarr_add_null(a);
}

void ack_build_params(const struct ack_buf *b, const char *owner,
		      char *params[ACK_NPARAMS])
{
	struct sqlarr a[ACK_NPARAMS];

	memset(a, 0, sizeof a);
	for (int k = 1; k < ACK_NPARAMS; k++)
		sqlarr_reset(&a[k]);
	for (size_t i = 0; i < b->len; i++) {
		const struct ack_row *r = &b->rows[i];

		sqlarr_add_int(&a[1], r->queue_id);
		sqlarr_add_str(&a[2], push_outcome_name(r->outcome));
		add_opt_int(&a[3], r->http_status);
		sqlarr_add_str(&a[4], r->reason);
		sqlarr_add_str(&a[5], r->message_id);
		add_opt_int(&a[6], r->retry_at_us);
		add_opt_int(&a[7], r->sent_at_us);
		sqlarr_add_int(&a[8], r->finished_at_us);
		if (r->latency_us >= 0)      /* ms, exact to the µs */
			sqlarr_add_milli(&a[9], r->latency_us);
		else
			sqlarr_add_null(&a[9]);
		add_opt_int(&a[10], r->provider_ts_us);
		add_opt_int(&a[11], r->campaign_id);
	}
	params[0] = mem_strdup(owner);
	for (int k = 1; k < ACK_NPARAMS; k++) {
		params[k] = mem_strdup(sqlarr_text(&a[k]));
		sqlarr_free(&a[k]);
	}
}

void ack_free_params(char *params[ACK_NPARAMS])
{
	for (int k = 0; k < ACK_NPARAMS; k++) {
		free(params[k]);
		params[k] = NULL;
	}
}

static void row_free(struct ack_row *r)
{
	free(r->reason);
	free(r->message_id);
}

void ack_move(struct ack_buf *to, struct ack_buf *from)
{
	for (size_t i = 0; i < from->len; i++) {
		if (to->len == to->cap) {
			to->cap = to->cap ? to->cap * 2 : 256;
			to->rows = mem_realloc(to->rows,
					       to->cap * sizeof *to->rows);
		}
		to->rows[to->len++] = from->rows[i];
	}
	from->len = 0;
}

void ack_clear(struct ack_buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		row_free(&b->rows[i]);
	b->len = 0;
}

void ack_free(struct ack_buf *b)
{
	ack_clear(b);
	free(b->rows);
	memset(b, 0, sizeof *b);
}
