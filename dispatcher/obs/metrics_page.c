/*
 * metrics_page.c - see metrics_page.h.
 */
#include "obs/metrics_page.h"

#include <inttypes.h>

#include "base/buf.h"
#include "net/http.h"
#include "obs/metrics.h"
#include "obs/snapshot.h"
#include "obs/sqltime.h"
#include "obs/stats.h"
#include "obs/trace.h"

void metrics_page_render(const struct obs_snapshot *s, struct buf *b)
{
	metrics_printf(b, "# HELP pgpush_info This dispatcher.\n"
		       "# TYPE pgpush_info gauge\npgpush_info{id=\"");
	metrics_label_value(b, s->id);
	metrics_printf(b, "\",version=\"%s\"} 1\n", s->version);
	metrics_printf(b, "# HELP pgpush_start_time_seconds Process start, "
		       "Unix time.\n# TYPE pgpush_start_time_seconds gauge\n"
		       "pgpush_start_time_seconds %.3f\n",
		       (double)s->started_at_us / 1e6);
	metrics_printf(b, "# HELP pgpush_claims_total Claim statements.\n"
		       "# TYPE pgpush_claims_total counter\n"
		       "pgpush_claims_total %" PRIu64 "\n", s->claims);
	metrics_printf(b, "# HELP pgpush_claimed_rows_total Queue rows "
		       "claimed.\n# TYPE pgpush_claimed_rows_total counter\n"
		       "pgpush_claimed_rows_total %" PRIu64 "\n",
		       s->claimed_rows);
	metrics_printf(b, "# HELP pgpush_acks_total Ack statements "
		       "written.\n# TYPE pgpush_acks_total counter\n"
		       "pgpush_acks_total %" PRIu64 "\n", s->acks);
	metrics_printf(b, "# HELP pgpush_acked_rows_total Outcomes written "
		       "to push.deliveries.\n"
		       "# TYPE pgpush_acked_rows_total counter\n"
		       "pgpush_acked_rows_total %" PRIu64 "\n", s->acked_rows);
	metrics_printf(b, "# HELP pgpush_claim_seconds_total Time from "
		       "sending claims to their answers.\n"
		       "# TYPE pgpush_claim_seconds_total counter\n"
		       "pgpush_claim_seconds_total %.6f\n",
		       (double)s->claim_us / 1e6);
	metrics_printf(b, "# HELP pgpush_ack_seconds_total Time from "
		       "sending acks to their answers.\n"
		       "# TYPE pgpush_ack_seconds_total counter\n"
		       "pgpush_ack_seconds_total %.6f\n",
		       (double)s->ack_us / 1e6);
	metrics_printf(b, "# HELP pgpush_slow_statements_total Claims and "
		       "acks that took %d ms or more.\n"
		       "# TYPE pgpush_slow_statements_total counter\n"
		       "pgpush_slow_statements_total %" PRIu64 "\n",
		       SQLTIME_SLOW_US / 1000, s->slow_sql);
	metrics_printf(b, "# HELP pgpush_ack_backlog Outcomes waiting to be "
		       "written.\n# TYPE pgpush_ack_backlog gauge\n"
		       "pgpush_ack_backlog %zu\n",
		       s->ack_backlog);
	metrics_printf(b, "# HELP pgpush_in_flight Provider requests in "
		       "flight.\n# TYPE pgpush_in_flight gauge\n"
		       "pgpush_in_flight %d\n", s->in_flight);
	metrics_printf(b, "# HELP pgpush_pools Active pools.\n"
		       "# TYPE pgpush_pools gauge\npgpush_pools %zu\n",
		       s->npools);
	metrics_printf(b, "# HELP pgpush_pg_connections Postgres connections "
		       "up.\n# TYPE pgpush_pg_connections gauge\n"
		       "pgpush_pg_connections %d\n",
		       s->pg_connections);
	metrics_printf(b, "# HELP pgpush_pool_ring Pushes waiting in a pool's "
		       "ring.\n# TYPE pgpush_pool_ring gauge\n");
	for (size_t i = 0; i < s->npools; i++)
		metrics_printf(b, "pgpush_pool_ring{app_id=\"%d\","
			       "platform=\"%s\"} %zu\n", s->pools[i].app_id,
			       push_platform_name(s->pools[i].platform),
			       s->pools[i].ring);
	metrics_printf(b, "# HELP pgpush_pool_fill_percent Ring fill.\n"
		       "# TYPE pgpush_pool_fill_percent gauge\n");
	for (size_t i = 0; i < s->npools; i++)
		metrics_printf(b, "pgpush_pool_fill_percent{app_id=\"%d\","
			       "platform=\"%s\"} %d\n", s->pools[i].app_id,
			       push_platform_name(s->pools[i].platform),
			       s->pools[i].fill_percent);
	metrics_printf(b, "# HELP pgpush_pool_in_flight Requests in flight "
		       "per pool.\n# TYPE pgpush_pool_in_flight gauge\n");
	for (size_t i = 0; i < s->npools; i++)
		metrics_printf(b, "pgpush_pool_in_flight{app_id=\"%d\","
			       "platform=\"%s\"} %d\n", s->pools[i].app_id,
			       push_platform_name(s->pools[i].platform),
			       s->pools[i].in_flight);
	metrics_printf(b, "# HELP pgpush_debug_events_total Trace events of "
		       "debug pushes, by fate.\n"
		       "# TYPE pgpush_debug_events_total counter\n"
		       "pgpush_debug_events_total{state=\"recorded\"} %" PRIu64
		       "\npgpush_debug_events_total{state=\"written\"} %" PRIu64
		       "\npgpush_debug_events_total{state=\"dropped\"} %" PRIu64
		       "\n", s->trace->events, s->trace->written,
		       s->trace->dropped);
	if (s->http != NULL) {
		struct http_stats hs;

		http_get_stats(s->http, &hs);
		metrics_printf(b, "# HELP pgpush_http_requests_total Provider "
			       "requests finished (answered or not).\n"
			       "# TYPE pgpush_http_requests_total counter\n"
			       "pgpush_http_requests_total %" PRIu64 "\n",
			       hs.completed);
		metrics_printf(b, "# HELP pgpush_http_connects_total Provider "
			       "connections opened.\n"
			       "# TYPE pgpush_http_connects_total counter\n"
			       "pgpush_http_connects_total %" PRIu64 "\n",
			       hs.connects);
		metrics_printf(b, "# HELP pgpush_http_turned_back_total "
			       "Requests held back from a connection that had "
			       "not answered yet (APNs token auth).\n"
			       "# TYPE pgpush_http_turned_back_total counter\n"
			       "pgpush_http_turned_back_total %" PRIu64 "\n",
			       hs.turned_back);
		metrics_printf(b, "# HELP pgpush_http_requeued_total "
			       "Requests that waited past the connect timeout "
			       "for a free stream and were queued again (not "
			       "failed).\n"
			       "# TYPE pgpush_http_requeued_total counter\n"
			       "pgpush_http_requeued_total %" PRIu64 "\n",
			       hs.requeued);
		metrics_printf(b, "# HELP pgpush_http_rebuilds_total Times a "
			       "provider only failed and its connections were "
			       "rebuilt.\n"
			       "# TYPE pgpush_http_rebuilds_total counter\n"
			       "pgpush_http_rebuilds_total %" PRIu64 "\n",
			       hs.rebuilds);
	}
	stats_render_metrics(s->stats, b);
}
