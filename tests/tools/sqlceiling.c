/*
 * sqlceiling.c - the raw SQL ceiling of `make bench` (tests/tools/bench.sh).
 *
 * Drains push.queue for one (app, fcm) - or (app, $BENCH_PLATFORM) - with
 * the daemon's own statements and no HTTP: CLAIM_SQL (dispatcher/core/claim.c)
 * for --batch rows at a time, every row turned into a `sent` outcome with ack_add() and written back with
 * ACK_SQL (dispatcher/core/ack.c) whenever ACK_BATCH_MAX rows are buffered (and
 * at the end) - the same parameters, builders and prepared statements as
 * `pgpushd run`.  Like the daemon it claims on one connection and acks on
 * another, concurrently (mode `pipe`, the default: a claim thread and an
 * ack thread); mode `seq` runs claim, ack, claim, ... on one connection.
 *
 *   sqlceiling CONNINFO APP_ID BATCH [pipe|seq]   prints one JSON object
 *   sqlceiling --print-sql                        prints CLAIM_SQL, ACK_SQL
 *
 * Built by bench.sh into its temp dir with dispatcher/{claim,ack,sqlarr,
 * push,mem}.c - the code the daemon links.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "core/ack.h"
#include "core/claim.h"
#include "base/push.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(PGconn *c, PGresult *r, const char *what)
{
	fprintf(stderr, "sqlceiling: %s: %s", what,
		r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	exit(1);
}

static double ack_time;
static long acks;

/* One ACK_SQL for the rows of b (at most ACK_BATCH_MAX); b is cleared. */
static void flush(PGconn *c, struct ack_buf *b, const char *owner)
{
	char *params[ACK_NPARAMS];
	double t0 = now_s();

	if (b->len == 0)
		return;
	ack_build_params(b, owner, params);
	PGresult *r = PQexecPrepared(c, "ack", ACK_NPARAMS,
				     (const char *const *)params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		die(c, r, "ack");
	if ((size_t)atol(PQgetvalue(r, 0, 0)) != b->len) {
		fprintf(stderr, "sqlceiling: ack wrote %s of %zu rows\n",
			PQgetvalue(r, 0, 0), b->len);
		exit(1);
	}
	PQclear(r);
	ack_free_params(params);
	ack_clear(b);
	ack_time += now_s() - t0;
	acks++;
}

static PGconn *connect_prepared(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK)
		die(c, NULL, "connect");
	PGresult *r = PQexec(c, WORK_SESSION_SQL);   /* as the daemon does */
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		die(c, r, "session settings");
	PQclear(r);
	r = PQprepare(c, "claim", CLAIM_SQL, CLAIM_NPARAMS, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die(c, r, "prepare claim");
	PQclear(r);
	r = PQprepare(c, "ack", ACK_SQL, ACK_NPARAMS, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die(c, r, "prepare ack");
	PQclear(r);
	return c;
}

static char owner[64];
static int app, batch;
/* BENCH_PLATFORM (bench.sh): the platform of the app's queue rows. */
static enum push_platform platform = PUSH_PLATFORM_FCM;
static long seq_no;
static double claim_time;
static long claims;

/* One CLAIM_SQL; every row becomes a `sent` outcome appended to out. */
static int claim_once(PGconn *c, struct claim_req *req, struct ack_buf *out)
{
	const char *params[CLAIM_NPARAMS];

	claim_req_reset(req);
	claim_req_add(req, app, platform, 1, batch);
	claim_req_params(req, owner, "120", params);
	double t0 = now_s();
	PGresult *r = PQexecPrepared(c, "claim", CLAIM_NPARAMS, params, NULL,
				     NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		die(c, r, "claim");
	claim_time += now_s() - t0;
	claims++;
	int n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		const char *v[CLAIM_NCOLS];
		struct push_item *it;
		struct push_result res;
		bool gone;

		for (int k = 0; k < CLAIM_NCOLS; k++)
			v[k] = PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k);
		if (claim_parse_row(v, &it, &gone) < 0) {
			fprintf(stderr, "sqlceiling: bad claim row\n");
			exit(1);
		}
		memset(&res, 0, sizeof res);
		res.outcome = PUSH_OUTCOME_SENT;
		res.http_status = 200;
		snprintf(res.message_id, sizeof res.message_id,
			 "projects/sink/messages/0:%ld", ++seq_no);
		it->sent_at_us = push_now_us();
		ack_add(out, it, &res, push_now_us());
		push_item_free(it);
	}
	PQclear(r);
	return n;
}

/* pipe mode: the claim thread hands rows to the ack thread. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct ack_buf shared;
static bool claim_done;
static const char *conninfo;

static void *ack_thread(void *arg)
{
	PGconn *c = connect_prepared(conninfo);
	struct ack_buf mine = {0}, chunk = {0};

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&mu);
		while (shared.len < ACK_BATCH_MAX && !claim_done)
			pthread_cond_wait(&cv, &mu);
		bool last = claim_done;
		ack_move(&mine, &shared);
		pthread_mutex_unlock(&mu);
		/* Full statements of ACK_BATCH_MAX rows; the rest waits
		 * for more unless the claims are over. */
		size_t off = 0;
		while (mine.len - off >= ACK_BATCH_MAX ||
		       (last && off < mine.len)) {
			size_t k = mine.len - off < ACK_BATCH_MAX
				? mine.len - off : ACK_BATCH_MAX;
			chunk.len = 0;
			for (size_t i = 0; i < k; i++) {
				struct ack_buf one = { &mine.rows[off + i], 1, 1 };
				ack_move(&chunk, &one);
			}
			flush(c, &chunk, owner);
			off += k;
		}
		if (off > 0) {
			memmove(mine.rows, mine.rows + off,
				(mine.len - off) * sizeof *mine.rows);
			mine.len -= off;
		}
		if (last && mine.len == 0)
			break;
	}
	ack_free(&chunk);
	ack_free(&mine);
	PQfinish(c);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--print-sql") == 0) {
		printf("-- CLAIM_SQL\n%s;\n-- ACK_SQL\n%s;\n", CLAIM_SQL,
		       ACK_SQL);
		return 0;
	}
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: sqlceiling CONNINFO APP_ID BATCH "
			"[pipe|seq] | --print-sql\n");
		return 2;
	}
	conninfo = argv[1];
	app = atoi(argv[2]);
	batch = atoi(argv[3]);
	bool pipe_mode = argc == 4 || strcmp(argv[4], "seq") != 0;
	snprintf(owner, sizeof owner, "sqlceiling-%ld", (long)getpid());
	if (getenv("BENCH_PLATFORM") != NULL &&
	    push_platform_parse(getenv("BENCH_PLATFORM"), &platform) < 0)
		return 2;

	PGconn *c = connect_prepared(conninfo);
	struct claim_req req;
	struct ack_buf buf = {0};
	long rows = 0;
	pthread_t acker;
	double t_start = now_s();

	memset(&req, 0, sizeof req);
	if (pipe_mode && pthread_create(&acker, NULL, ack_thread, NULL) != 0)
		return 1;
	for (;;) {
		int n = claim_once(c, &req, &buf);
		rows += n;
		if (pipe_mode) {
			pthread_mutex_lock(&mu);
			ack_move(&shared, &buf);
			if (n == 0)
				claim_done = true;
			pthread_cond_signal(&cv);
			pthread_mutex_unlock(&mu);
		} else {
			while (buf.len >= ACK_BATCH_MAX) {
				struct ack_buf chunk = {0};
				for (size_t i = 0; i < ACK_BATCH_MAX; i++) {
					struct ack_buf one = { &buf.rows[i], 1, 1 };
					ack_move(&chunk, &one);
				}
				memmove(buf.rows, buf.rows + ACK_BATCH_MAX,
					(buf.len - ACK_BATCH_MAX) * sizeof *buf.rows);
				buf.len -= ACK_BATCH_MAX;
				flush(c, &chunk, owner);
				ack_free(&chunk);
			}
		}
		if (n == 0)
			break;
	}
	if (pipe_mode)
		pthread_join(acker, NULL);
	else
		flush(c, &buf, owner);
	double secs = now_s() - t_start;

	printf("{\"mode\":\"%s\",\"rows\":%ld,\"seconds\":%.3f,"
	       "\"rows_per_s\":%.0f,\"batch\":%d,\"ack_batch\":%d,"
	       "\"claims\":%ld,\"acks\":%ld,\"claim_s\":%.3f,\"ack_s\":%.3f}\n",
	       pipe_mode ? "pipe" : "seq", rows, secs,
	       secs > 0 ? rows / secs : 0.0, batch, ACK_BATCH_MAX, claims,
	       acks, claim_time, ack_time);
	claim_req_free(&req);
	ack_free(&buf);
	PQfinish(c);
	return 0;
}
