/*
 * health.c - see health.h.
 */
#include "obs/health.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/push.h"

#define PG_DOWN_WHAT "postgres connection down"

void health_set(struct health *h, const char *what, const char *err)
{
	if (h == NULL)
		return;
	snprintf(h->last_error, sizeof h->last_error, "%s: %s", what, err);
	h->last_error_what = what;
}

void health_error(struct health *h, const char *what, const char *err)
{
	health_set(h, what, err);
	log_warn(what, "error=%s", err);
}

void health_db_error(struct health *h, const char *what,
		     enum db_status status, const char *err)
{
	if (status == DB_ERR_NOT_SENT)
		log_debug(what, "error=%s", err);
	else
		health_error(h, what, err);
}

void health_db_result(struct health *h, const char *what,
		      const struct db_result *res)
{
	health_db_error(h, what, db_result_status(res),
			db_result_error(res));
}

void health_ok(struct health *h, const char *what)
{
	if (h != NULL && h->last_error_what != NULL &&
	    strcmp(h->last_error_what, what) == 0) {
		h->last_error[0] = '\0';
		h->last_error_what = NULL;
	}
}

const char *health_last_error(const struct health *h, const char *except)
{
	if (h->last_error_what != NULL &&
	    strcmp(h->last_error_what, except) == 0)
		return "";
	return h->last_error;
}

void health_pg_down(struct health *h, const char *error, uint64_t step_ms,
		    bool closing)
{
	int64_t now = push_now_us();
	const char *hint = db_connect_hint(error);

	health_set(h, PG_DOWN_WHAT, error);
	if (closing)
		return;
	if (h->pg_down && hint == h->pg_said_hint &&
	    step_ms <= h->pg_said_step_ms &&
	    now - h->pg_said_us < (int64_t)step_ms * 1000)
		return;
	if (!h->pg_down)
		h->pg_down_since_us = now;
	log_warn(h->pg_down ? "postgres still unreachable"
			    : "postgres unreachable",
		 "error=%s down_s=%lld retry_in_ms=%llu hint=%s",
		 error, (long long)((now - h->pg_down_since_us) / 1000000),
		 (unsigned long long)step_ms,
		 hint != NULL ? hint : "outcomes wait in memory, nothing is "
		 "claimed until it is back");
	h->pg_down = true;
	h->pg_said_step_ms = step_ms;
	h->pg_said_us = now;
	h->pg_said_hint = hint;
}

void health_pg_up(struct health *h)
{
	health_ok(h, PG_DOWN_WHAT);
	if (!h->pg_down)
		return;
	h->pg_down = false;
	h->pg_said_hint = NULL;
	log_info("postgres reachable again", "down_s=%lld",
		 (long long)((push_now_us() - h->pg_down_since_us) / 1000000));
}
