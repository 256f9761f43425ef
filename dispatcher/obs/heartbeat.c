/*
 * heartbeat.c - see heartbeat.h.
 */
#include "obs/heartbeat.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "obs/health.h"
#include "obs/snapshot.h"

const char HEARTBEAT_SQL[] =
	"INSERT INTO push.dispatchers AS x (id, host, pid, version, state,"
	" started_at, heartbeat_at, stopped_at, cpu_user_seconds,"
	" cpu_system_seconds, rss_bytes, open_fds, pg_connections, pools,"
	" in_flight, queue_depth, claims_per_second, acks_per_second,"
	" pool_detail, last_error, heartbeat_interval_ms)"
	" VALUES ($1, $2, $3::int, $4, $5, to_timestamp($6::bigint / 1e6),"
	"  now(), CASE WHEN $5 = 'stopped' THEN now() END, $7::float8,"
	"  $8::float8, $9::bigint, $10::int, $11::int, $12::int, $13::int,"
	"  (SELECT greatest(reltuples, 0)::bigint FROM pg_class"
	"   WHERE oid = 'push.queue'::regclass),"
	"  $14::float8, $15::float8, $16::jsonb, nullif($17, ''), $18::int)"
	" ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state,"
	"  heartbeat_at = now(), stopped_at = EXCLUDED.stopped_at,"
	"  cpu_user_seconds = EXCLUDED.cpu_user_seconds,"
	"  cpu_system_seconds = EXCLUDED.cpu_system_seconds,"
	"  rss_bytes = EXCLUDED.rss_bytes, open_fds = EXCLUDED.open_fds,"
	"  pg_connections = EXCLUDED.pg_connections, pools = EXCLUDED.pools,"
	"  in_flight = EXCLUDED.in_flight, queue_depth = EXCLUDED.queue_depth,"
	"  claims_per_second = EXCLUDED.claims_per_second,"
	"  acks_per_second = EXCLUDED.acks_per_second,"
	"  pool_detail = EXCLUDED.pool_detail,"
	"  last_error = EXCLUDED.last_error,"
	"  heartbeat_interval_ms = EXCLUDED.heartbeat_interval_ms";

#define WHAT "heartbeat failed"

void heartbeat_init(struct heartbeat *hb, struct db_async *conn,
		    struct health *health, void (*on_answer)(void *arg),
		    void *answer_arg)
{
	*hb = (struct heartbeat){0};
	hb->conn = conn;
	hb->health = health;
	hb->on_answer = on_answer;
	hb->answer_arg = answer_arg;
}

static long rss_bytes(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static int open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	if (dir == NULL)
		return 0;
	while (readdir(dir) != NULL)
		n++;
	closedir(dir);
	return n > 3 ? n - 3 : 0;   /* ., .. and the directory's own fd */
}

char *heartbeat_pool_detail(const struct obs_snapshot *s)
{
	struct buf b;

	/* Per-pool sizes as a JSON array (built by hand: numbers only). */
	buf_init(&b, HEARTBEAT_DETAIL_MAX);
	buf_addc(&b, '[');
	for (size_t i = 0; i < s->npools; i++) {
		const struct obs_pool *p = &s->pools[i];
		buf_printf(&b, "%s{\"app_id\":%d,\"platform\":\"%s\","
			   "\"ring\":%zu,\"fill_percent\":%d,\"window\":%d,"
			   "\"in_flight\":%d,\"paused\":%s}", i ? "," : "",
			   p->app_id, push_platform_name(p->platform),
			   p->ring, p->fill_percent, p->window, p->in_flight,
			   p->paused ? "true" : "false");
	}
	buf_addc(&b, ']');
	if (buf_full(&b)) {
		log_error("heartbeat pool_detail too large, sent empty",
			  "pools=%zu max_bytes=%u", s->npools,
			  HEARTBEAT_DETAIL_MAX);
		buf_free(&b);
		return mem_strdup("[]");
	}
	return buf_take(&b);
}

static void on_done(void *arg, const struct db_result *res)
{
	struct heartbeat *hb = arg;

	hb->inflight = false;
	if (!db_result_ok(res)) {
		health_db_result(hb->health, WHAT, res);
	} else {
		health_ok(hb->health, WHAT);
		if (hb->final)
			log_debug("final heartbeat written", NULL);
	}
	if (hb->on_answer != NULL)
		hb->on_answer(hb->answer_arg);
}

void heartbeat_send(struct heartbeat *hb, const struct obs_snapshot *s)
{
	struct rusage ru;
	char v[HEARTBEAT_NPARAMS][64];
	const char *params[HEARTBEAT_NPARAMS];
	int64_t now = push_now_us();
	double secs = hb->last_us ? (double)(now - hb->last_us) / 1e6 : 0;

	if (hb->inflight)
		return;
	if (!s->running && !db_async_is_up(hb->conn))
		return;
	getrusage(RUSAGE_SELF, &ru);
	char *json = heartbeat_pool_detail(s);

	snprintf(v[2], 64, "%d", (int)getpid());
	snprintf(v[5], 64, "%" PRId64, s->started_at_us);
	snprintf(v[6], 64, "%.3f", (double)ru.ru_utime.tv_sec +
		 (double)ru.ru_utime.tv_usec / 1e6);
	snprintf(v[7], 64, "%.3f", (double)ru.ru_stime.tv_sec +
		 (double)ru.ru_stime.tv_usec / 1e6);
	snprintf(v[8], 64, "%ld", rss_bytes());
	snprintf(v[9], 64, "%d", open_fds());
	snprintf(v[10], 64, "%d", s->pg_connections);
	snprintf(v[11], 64, "%zu", s->npools);
	snprintf(v[12], 64, "%d", s->in_flight);
	snprintf(v[13], 64, "%.1f", secs > 0
		 ? (double)(s->claimed_rows - hb->claims_at_last) / secs : 0);
	snprintf(v[14], 64, "%.1f", secs > 0
		 ? (double)(s->acked_rows - hb->acked_at_last) / secs : 0);
	params[0] = s->id;
	params[1] = s->host;
	params[2] = v[2];
	params[3] = s->version;
	params[4] = s->running ? "running" : s->stopped ? "stopped"
						       : "draining";
	params[5] = v[5];
	for (int k = 6; k <= 14; k++)
		params[k] = v[k];
	params[15] = json;
	params[16] = s->last_error;
	snprintf(v[17], 64, "%d", s->heartbeat_interval_ms);
	params[17] = v[17];
	hb->claims_at_last = s->claimed_rows;
	hb->acked_at_last = s->acked_rows;
	hb->last_us = now;
	hb->inflight = true;
	hb->final = !s->running && s->stopped;
	if (db_async_exec_prepared(hb->conn, "heartbeat", HEARTBEAT_NPARAMS,
				   params, on_done, hb) < 0)
		hb->inflight = false;
	free(json);
}

bool heartbeat_busy(const struct heartbeat *hb)
{
	return hb->inflight;
}
