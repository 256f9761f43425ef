/*
 * stats.c - see stats.h.  The live rows are a small array searched
 * linearly: between two flushes there are only as many keys as
 * (app, platform, campaign, outcome) combinations seen in a few seconds.
 */
#include "obs/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "db/sqlarr.h"
#include "obs/metrics.h"

const double stats_bucket_bounds_ms[STATS_BUCKETS - 1] = {
	1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
	30000, 60000
};

const char STATS_UPSERT_SQL[] =
	"INSERT INTO push.stats_minute AS s (minute, app_id, platform,"
	" campaign_id, outcome, count, attempts, bytes_sent, latency_ms_sum,"
	" latency_ms_min, latency_ms_max, latency_hist)"
	" SELECT to_timestamp(r.minute / 1e6), r.app_id, r.platform,"
	"  r.campaign_id, r.outcome, r.count, r.attempts, r.bytes,"
	"  r.lsum, r.lmin, r.lmax, r.hist::bigint[]"
	" FROM unnest($1::bigint[], $2::int[], $3::push.platform[],"
	"  $4::bigint[], $5::push.outcome[], $6::bigint[], $7::bigint[],"
	"  $8::bigint[], $9::float8[], $10::float8[], $11::float8[],"
	"  $12::text[])"
	"  AS r(minute, app_id, platform, campaign_id, outcome, count,"
	"   attempts, bytes, lsum, lmin, lmax, hist)"
	" ON CONFLICT (minute, app_id, platform, campaign_id, outcome)"
	" DO UPDATE SET count = s.count + EXCLUDED.count,"
	"  attempts = s.attempts + EXCLUDED.attempts,"
	"  bytes_sent = s.bytes_sent + EXCLUDED.bytes_sent,"
	"  latency_ms_sum = s.latency_ms_sum + EXCLUDED.latency_ms_sum,"
	"  latency_ms_min = least(s.latency_ms_min, EXCLUDED.latency_ms_min),"
	"  latency_ms_max = greatest(s.latency_ms_max,"
	"                            EXCLUDED.latency_ms_max),"
	"  latency_hist = push.hist_add(s.latency_hist, EXCLUDED.latency_hist)";

int stats_bucket(double latency_ms)
{
	for (int i = 0; i < STATS_BUCKETS - 1; i++) {
		if (latency_ms <= stats_bucket_bounds_ms[i])
			return i;
	}
	return STATS_BUCKETS - 1;
}

static struct stats_row *find_or_add(struct stats *s, int64_t minute_us,
				     int32_t app_id,
				     enum push_platform platform,
				     int64_t campaign_id,
				     enum push_outcome outcome)
{
	for (size_t i = 0; i < s->len; i++) {
		struct stats_row *r = &s->rows[i];
		if (r->minute_us == minute_us && r->app_id == app_id &&
		    r->platform == platform && r->campaign_id == campaign_id &&
		    r->outcome == outcome)
			return r;
	}
	if (s->len == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 32;
		s->rows = mem_realloc(s->rows, s->cap * sizeof *s->rows);
	}
	struct stats_row *r = &s->rows[s->len++];
	memset(r, 0, sizeof *r);
	r->minute_us = minute_us;
	r->app_id = app_id;
	r->platform = platform;
	r->campaign_id = campaign_id;
	r->outcome = outcome;
	return r;
}

/* The cumulative counter of one (app, platform, outcome); a handful. */
static struct stats_total *find_or_add_total(struct stats *s, int32_t app_id,
					     enum push_platform platform,
					     enum push_outcome outcome)
{
	for (size_t i = 0; i < s->ncum; i++) {
		struct stats_total *t = &s->cum[i];
		if (t->app_id == app_id && t->platform == platform &&
		    t->outcome == outcome)
			return t;
	}
	if (s->ncum == s->capcum) {
		s->capcum = s->capcum ? s->capcum * 2 : 16;
		s->cum = mem_realloc(s->cum, s->capcum * sizeof *s->cum);
	}
	struct stats_total *t = &s->cum[s->ncum++];
	memset(t, 0, sizeof *t);
	t->app_id = app_id;
	t->platform = platform;
	t->outcome = outcome;
	return t;
}

static void merge_row(struct stats_row *into, const struct stats_row *from)
{
	into->count += from->count;
	into->attempts += from->attempts;
	into->bytes_sent += from->bytes_sent;
	if (from->has_latency) {
		into->latency_sum_ms += from->latency_sum_ms;
		if (!into->has_latency ||
		    from->latency_min_ms < into->latency_min_ms)
			into->latency_min_ms = from->latency_min_ms;
		if (!into->has_latency ||
		    from->latency_max_ms > into->latency_max_ms)
			into->latency_max_ms = from->latency_max_ms;
		into->has_latency = 1;
	}
	for (int i = 0; i < STATS_BUCKETS; i++)
		into->hist[i] += from->hist[i];
}

void stats_add(struct stats *s, int64_t now_us, int32_t app_id,
	       enum push_platform platform, int64_t campaign_id,
	       enum push_outcome outcome, int attempts, int64_t bytes,
	       double latency_ms)
{
	struct stats_row one;

	if (s->off)
		return;
	memset(&one, 0, sizeof one);
	one.count = 1;
	one.attempts = attempts;
	one.bytes_sent = bytes;
	if (latency_ms >= 0) {
		one.has_latency = 1;
		one.latency_sum_ms = latency_ms;
		one.latency_min_ms = latency_ms;
		one.latency_max_ms = latency_ms;
		one.hist[stats_bucket(latency_ms)] = 1;
	}
	int64_t minute_us = now_us - now_us % 60000000;
	merge_row(find_or_add(s, minute_us, app_id, platform, campaign_id,
			      outcome), &one);
	if ((unsigned)outcome < PUSH_OUTCOME_COUNT)
		s->totals[outcome]++;
	struct stats_total *t = find_or_add_total(s, app_id, platform,
						  outcome);
	t->count++;
	t->attempts += (uint64_t)(attempts > 0 ? attempts : 0);
	t->bytes_sent += (uint64_t)(bytes > 0 ? bytes : 0);
	if (latency_ms >= 0) {
		s->cum_hist[stats_bucket(latency_ms)]++;
		s->cum_latency_sum_ms += latency_ms;
		s->cum_latency_count++;
	}
}

void stats_take(struct stats *s, struct stats_row **rows, size_t *n)
{
	*rows = s->rows;
	*n = s->len;
	s->rows = NULL;
	s->len = 0;
	s->cap = 0;
}

void stats_merge_back(struct stats *s, struct stats_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct stats_row *r = &rows[i];
		merge_row(find_or_add(s, r->minute_us, r->app_id, r->platform,
				      r->campaign_id, r->outcome), r);
	}
	free(rows);
}

void stats_build_params(const struct stats_row *rows, size_t n,
			char *params[STATS_NPARAMS])
{
	struct sqlarr a[STATS_NPARAMS];

	memset(a, 0, sizeof a);
	for (int k = 0; k < STATS_NPARAMS; k++)
		sqlarr_reset(&a[k]);
	for (size_t i = 0; i < n; i++) {
		const struct stats_row *r = &rows[i];
		char hist[STATS_BUCKETS * 21 + 3];
		size_t off = 0;

		sqlarr_add_int(&a[0], r->minute_us);
		sqlarr_add_int(&a[1], r->app_id);
		sqlarr_add_str(&a[2], push_platform_name(r->platform));
		if (r->campaign_id)
			sqlarr_add_int(&a[3], r->campaign_id);
		else
			sqlarr_add_null(&a[3]);
		sqlarr_add_str(&a[4], push_outcome_name(r->outcome));
		sqlarr_add_int(&a[5], r->count);
		sqlarr_add_int(&a[6], r->attempts);
		sqlarr_add_int(&a[7], r->bytes_sent);
		sqlarr_add_double(&a[8], r->latency_sum_ms);
		if (r->has_latency) {
			sqlarr_add_double(&a[9], r->latency_min_ms);
			sqlarr_add_double(&a[10], r->latency_max_ms);
		} else {
			sqlarr_add_null(&a[9]);
			sqlarr_add_null(&a[10]);
		}
		hist[off++] = '{';
		for (int b = 0; b < STATS_BUCKETS; b++)
			off += (size_t)snprintf(hist + off, sizeof hist - off,
						"%s%lld", b ? "," : "",
						(long long)r->hist[b]);
		snprintf(hist + off, sizeof hist - off, "}");
		sqlarr_add_str(&a[11], hist);
	}
	for (int k = 0; k < STATS_NPARAMS; k++) {
		params[k] = mem_strdup(sqlarr_text(&a[k]));
		sqlarr_free(&a[k]);
	}
}

void stats_free_params(char *params[STATS_NPARAMS])
{
	for (int k = 0; k < STATS_NPARAMS; k++) {
		free(params[k]);
		params[k] = NULL;
	}
}

static void render_counter(const struct stats *s, struct buf *b,
			   const char *name, const char *help, int which)
{
	metrics_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help,
		       name);
	for (size_t i = 0; i < s->ncum; i++) {
		const struct stats_total *t = &s->cum[i];
		const char *plat = push_platform_name(t->platform);
		const char *out = push_outcome_name(t->outcome);
		uint64_t v = which == 0 ? t->count
			     : which == 1 ? t->attempts : t->bytes_sent;

		metrics_printf(b, "%s{app_id=\"%d\",platform=\"%s\","
			       "outcome=\"%s\"} %llu\n", name, t->app_id,
			       plat ? plat : "unknown", out ? out : "unknown",
			       (unsigned long long)v);
	}
}

void stats_render_metrics(const struct stats *s, struct buf *b)
{
	uint64_t cum = 0;

	render_counter(s, b, "pgpush_pushes_total",
		       "Finished attempts by outcome since the process started "
		       "(as push.stats_minute.count).", 0);
	render_counter(s, b, "pgpush_attempts_total",
		       "Provider requests since the process started.", 1);
	render_counter(s, b, "pgpush_bytes_sent_total",
		       "Request body bytes sent since the process started.",
		       2);
	metrics_printf(b, "# HELP pgpush_latency_ms Enqueue to provider "
		       "response, milliseconds (push.latency_bounds_ms() "
		       "buckets).\n# TYPE pgpush_latency_ms histogram\n");
	for (int i = 0; i < STATS_BUCKETS; i++) {
		cum += s->cum_hist[i];
		if (i < STATS_BUCKETS - 1)
			metrics_printf(b, "pgpush_latency_ms_bucket{le=\"%g\"} "
				       "%llu\n", stats_bucket_bounds_ms[i],
				       (unsigned long long)cum);
		else
			metrics_printf(b, "pgpush_latency_ms_bucket"
				       "{le=\"+Inf\"} %llu\n",
				       (unsigned long long)cum);
	}
	metrics_printf(b, "pgpush_latency_ms_sum %.3f\n"
		       "pgpush_latency_ms_count %llu\n", s->cum_latency_sum_ms,
		       (unsigned long long)s->cum_latency_count);
	metrics_printf(b, "# HELP pgpush_stats_flushes_total Upserts into "
		       "push.stats_minute, by result.\n"
		       "# TYPE pgpush_stats_flushes_total counter\n"
		       "pgpush_stats_flushes_total{result=\"ok\"} %llu\n"
		       "pgpush_stats_flushes_total{result=\"error\"} %llu\n",
		       (unsigned long long)s->flushes,
		       (unsigned long long)s->flush_failures);
}

void stats_batch_take(struct stats *s, char *params[STATS_NPARAMS])
{
	stats_take(s, &s->busy, &s->nbusy);
	stats_build_params(s->busy, s->nbusy, params);
}

void stats_batch_written(struct stats *s)
{
	free(s->busy);
	s->busy = NULL;
	s->nbusy = 0;
	s->flushes++;
}

void stats_batch_failed(struct stats *s)
{
	s->flush_failures++;
}

void stats_batch_put_back(struct stats *s)
{
	stats_merge_back(s, s->busy, s->nbusy);
	s->busy = NULL;
	s->nbusy = 0;
}

void stats_free(struct stats *s)
{
	free(s->busy);
	free(s->rows);
	free(s->cum);
	memset(s, 0, sizeof *s);
}
