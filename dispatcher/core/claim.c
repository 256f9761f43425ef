/*
 * claim.c - see claim.h.
 */
#include "core/claim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

const char CLAIM_SQL[] =
	"WITH want AS ("
	" SELECT * FROM unnest($1::int[], $2::push.platform[], $3::int[])"
	"  AS w(app_id, platform, n)"
	"), picked AS ("
	" SELECT k.id"
	" FROM want w"
	" CROSS JOIN LATERAL ("
	"  SELECT q.id FROM push.queue q"
	"  WHERE q.app_id = w.app_id AND q.platform = w.platform"
	"    AND q.not_before <= now()"
	"    AND (q.lease_expires_at IS NULL OR q.lease_expires_at < now())"
	"  ORDER BY q.priority DESC, q.not_before"
	"  LIMIT w.n"
	"  FOR UPDATE SKIP LOCKED"
	" ) k"
	"), claimed AS ("
	/* By primary key, whatever the planner guesses of the batch size:
	 * an array of ids makes an index scan, never a scan of the queue. */
	" UPDATE push.queue q"
	" SET lease_owner = $4,"
	"  lease_expires_at = now() + make_interval(secs => $5::float8),"
	"  attempts = q.attempts + 1"
	" WHERE q.id = ANY (ARRAY(SELECT id FROM picked))"
	" RETURNING q.*"
	")"
	/* One index probe per claimed row into pushes and devices (LIMIT 1
	 * keeps each lookup a parameterised subquery, not a hash join over
	 * the whole history). */
	" SELECT c.id, c.push_id, c.app_id, c.platform,"
	"  coalesce(c.device_id, 0), coalesce(c.token, d.token), c.priority,"
	"  p.payload::text, p.collapse_key,"
	"  coalesce((extract(epoch FROM c.expires_at) * 1e6)::bigint, 0),"
	"  (extract(epoch FROM c.enqueued_at) * 1e6)::bigint, c.attempts,"
	"  coalesce(p.debug, false), coalesce(p.campaign_id, 0),"
	"  d.invalidated_at IS NOT NULL,"
	"  coalesce((extract(epoch FROM d.last_seen_at) * 1e6)::bigint, 0)"
	" FROM claimed c"
	" LEFT JOIN LATERAL (SELECT x.payload, x.collapse_key, x.debug,"
	"   x.campaign_id FROM push.pushes x WHERE x.id = c.push_id LIMIT 1)"
	"  p ON true"
	" LEFT JOIN LATERAL (SELECT x.token, x.invalidated_at, x.last_seen_at"
	"   FROM push.devices x WHERE x.id = c.device_id LIMIT 1) d ON true";

const char WORK_SESSION_SQL[] =
	"SELECT set_config('plan_cache_mode', 'force_generic_plan', false),"
	" set_config('jit', 'off', false)";

void claim_req_reset(struct claim_req *c)
{
	sqlarr_reset(&c->apps);
	sqlarr_reset(&c->platforms);
	sqlarr_reset(&c->counts);
	c->pools = 0;
	c->rows = 0;
}

void claim_req_add(struct claim_req *c, int32_t app_id,
		   enum push_platform platform, uint64_t pool_serial, int n)
{
	if (c->pools == c->asks_cap) {
		c->asks_cap = c->asks_cap ? c->asks_cap * 2 : 8;
		c->asks = mem_realloc(c->asks,
				      (size_t)c->asks_cap * sizeof *c->asks);
	}
	c->asks[c->pools].pool_serial = pool_serial;
	c->asks[c->pools].rows = n;
	sqlarr_add_int(&c->apps, app_id);
	sqlarr_add_str(&c->platforms, push_platform_name(platform));
	sqlarr_add_int(&c->counts, n);
	c->pools++;
	c->rows += n;
}

void claim_req_params(struct claim_req *c, const char *owner,
		      const char *lease_seconds,
		      const char *params[CLAIM_NPARAMS])
{
	/* Each sqlarr_text() closes its own buffer in place, so the three
	 * pointers stay valid together. */
	params[0] = sqlarr_text(&c->apps);
	params[1] = sqlarr_text(&c->platforms);
	params[2] = sqlarr_text(&c->counts);
	params[3] = owner;
	params[4] = lease_seconds;
}

void claim_req_free(struct claim_req *c)
{
	sqlarr_free(&c->apps);
	sqlarr_free(&c->platforms);
	sqlarr_free(&c->counts);
	free(c->asks);
	c->asks = NULL;
	c->asks_cap = 0;
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;

	if (s == NULL)
		return -EINVAL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

int claim_parse_row(const char *const *v, struct push_item **out,
		    bool *device_gone)
{
	struct push_item *it = mem_alloc_zero(1, sizeof *it);
	int64_t app, attempts;

	*out = NULL;
	if (parse_i64(v[0], &it->queue_id) || parse_i64(v[1], &it->push_id) ||
	    parse_i64(v[2], &app) || v[3] == NULL ||
	    push_platform_parse(v[3], &it->platform) ||
	    parse_i64(v[4], &it->device_id) || v[6] == NULL ||
	    push_priority_parse(v[6], &it->priority) ||
	    parse_i64(v[9], &it->expires_at_us) ||
	    parse_i64(v[10], &it->enqueued_at_us) ||
	    parse_i64(v[11], &attempts) ||
	    parse_i64(v[13], &it->campaign_id) ||
	    parse_i64(v[15], &it->device_seen_us)) {
		push_item_free(it);
		return -EINVAL;
	}
	it->app_id = (int32_t)app;
	it->attempts = (int)attempts;
	it->token = v[5] ? mem_strdup(v[5]) : NULL;
	/* A missing push row (purged while queued) leaves payload NULL; the
	 * daemon fails such an item instead of sending it. */
	it->payload = v[7] ? mem_strdup(v[7]) : NULL;
	it->collapse_key = v[8] ? mem_strdup(v[8]) : NULL;
	it->debug = v[12] && v[12][0] == 't';
	*device_gone = v[14] && v[14][0] == 't';
	*out = it;
	return 0;
}
