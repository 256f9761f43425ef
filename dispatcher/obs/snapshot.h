/*
 * snapshot.h - the numbers the heartbeat (push.dispatchers) and the
 * Prometheus page print, gathered by the daemon at that moment.
 *
 * The modules that keep the numbers (pools, claims, acks, stats, trace,
 * the HTTP client) stay unknown to the printers: the daemon fills a
 * struct obs_snapshot and hands it over; nothing in it is owned by the
 * snapshot except `pools` (the daemon frees it).
 */
#ifndef PGPUSH_SNAPSHOT_H
#define PGPUSH_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/push.h"

struct http;
struct stats;
struct trace;

/* One active pool's sizes. */
struct obs_pool {
	int32_t app_id;
	enum push_platform platform;
	size_t ring;                /* pushes waiting in its ring */
	int fill_percent;
	int window;
	int in_flight;
	bool paused;
};

struct obs_snapshot {
	const char *id;             /* this dispatcher */
	const char *host;
	const char *version;        /* PGPUSH_VERSION */
	int64_t started_at_us;
	bool running;               /* not draining */
	bool stopped;               /* drained: the final writes are done */
	int heartbeat_interval_ms;
	const char *last_error;     /* "" when none */

	uint64_t claims, claimed_rows;  /* statements, rows */
	uint64_t acks, acked_rows;
	uint64_t claim_us, ack_us;      /* sent to answered, summed */
	uint64_t slow_sql;              /* claims and acks that were slow */
	size_t ack_backlog;             /* outcomes not written yet */
	int pg_connections;             /* Postgres connections up */
	int in_flight;                  /* provider requests */

	const struct obs_pool *pools;   /* the active pools */
	size_t npools;

	const struct trace *trace;      /* debug events' counters */
	const struct stats *stats;      /* pushes' counters since start */
	struct http *http;              /* its counters; NULL: none */
};

#endif
