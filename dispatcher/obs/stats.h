/*
 * stats.h - per-minute delivery statistics, counted in memory and merged
 * into push.stats_minute every few seconds (never a write per push).
 *
 * Counters are keyed by (minute, app, platform, campaign, outcome) and
 * hold the count, attempts, request bytes, and the enqueue-to-response
 * latency as sum, min, max and a histogram whose bucket bounds are those
 * of push.latency_bounds_ms() in SQL.  stats_take() hands the current
 * counters to the caller as the parameters of STATS_UPSERT_SQL and starts
 * afresh; if that statement fails, stats_merge_back() returns them so
 * nothing is lost before the next try.
 */
#ifndef PGPUSH_STATS_H
#define PGPUSH_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/push.h"

/* Bucket upper bounds (ms), as push.latency_bounds_ms(); one more bucket
 * counts everything slower. */
#define STATS_BUCKETS 16

/* STATS_UPSERT_SQL's parameter count. */
#define STATS_NPARAMS 12
extern const double stats_bucket_bounds_ms[STATS_BUCKETS - 1];

struct stats_row {
	int64_t minute_us;         /* start of the minute */
	int32_t app_id;
	enum push_platform platform;
	int64_t campaign_id;       /* 0: none */
	enum push_outcome outcome;
	int64_t count;
	int64_t attempts;
	int64_t bytes_sent;
	double latency_sum_ms;
	double latency_min_ms;
	double latency_max_ms;
	int64_t hist[STATS_BUCKETS];
	int has_latency;
};

/* Since the process started, for the metrics endpoint. */
struct stats_total {
	int32_t app_id;
	enum push_platform platform;
	enum push_outcome outcome;
	uint64_t count;
	uint64_t attempts;
	uint64_t bytes_sent;
};

struct stats {
	struct stats_row *rows;
	size_t len;
	size_t cap;
	bool off;                              /* stats_add() does nothing */
	uint64_t totals[PUSH_OUTCOME_COUNT];   /* since start, for metrics */
	struct stats_total *cum;               /* since start, by key */
	size_t ncum, capcum;
	uint64_t cum_hist[STATS_BUCKETS];      /* since start, latency */
	double cum_latency_sum_ms;
	uint64_t cum_latency_count;
	uint64_t flushes, flush_failures;      /* upserts written, failed */
	struct stats_row *busy;                /* being written */
	size_t nbusy;
};

/* Count one finished attempt.  latency_ms < 0: no latency to record. */
void stats_add(struct stats *s, int64_t now_us, int32_t app_id,
	       enum push_platform platform, int64_t campaign_id,
	       enum push_outcome outcome, int attempts, int64_t bytes,
	       double latency_ms);

/* The bucket index for a latency (pure; exposed for tests). */
int stats_bucket(double latency_ms);

/*
 * Move the counters out: *rows (caller frees with free()) and *n.  The
 * stats are empty afterwards.
 */
void stats_take(struct stats *s, struct stats_row **rows, size_t *n);

/* Put rows taken earlier back (their write failed). Frees `rows`. */
void stats_merge_back(struct stats *s, struct stats_row *rows, size_t n);

/*
 * Fill the STATS_NPARAMS text parameters of STATS_UPSERT_SQL for `rows`;
 * the strings are heap copies the caller frees with stats_free_params().
 */
void stats_build_params(const struct stats_row *rows, size_t n,
			char *params[STATS_NPARAMS]);
void stats_free_params(char *params[STATS_NPARAMS]);

/*
 * The write of the counters as one batch (the batched writer's steps,
 * core/writer.h): take every row into s->busy and fill the parameters;
 * then either written (dropped, counted in flushes) or failed (counted
 * in flush_failures) and put back (merged into the counters).
 */
void stats_batch_take(struct stats *s, char *params[STATS_NPARAMS]);
void stats_batch_written(struct stats *s);
void stats_batch_failed(struct stats *s);
void stats_batch_put_back(struct stats *s);

void stats_free(struct stats *s);

struct buf;

/*
 * Append the counters since start in the Prometheus text format:
 * pgpush_pushes_total, pgpush_attempts_total, pgpush_bytes_sent_total
 * (by app_id, platform, outcome) and the pgpush_latency_ms histogram.
 */
void stats_render_metrics(const struct stats *s, struct buf *b);

/* One statement merges a batch of rows into push.stats_minute. */
extern const char STATS_UPSERT_SQL[];

#endif
