/*
 * sender_fcm.h - the FCM HTTP v1 sender (struct sender_ops) and its two
 * pure halves, exposed for table tests: building the v1 request body from
 * a claimed push (payload_fcm.c), and classifying the answer into a push
 * result (sender_fcm.c).
 *
 * Only sender.c (the registry) and tests include this header; the
 * pipeline sees sender.h.
 */
#ifndef PGPUSH_SENDER_FCM_H
#define PGPUSH_SENDER_FCM_H

#include <stddef.h>
#include <stdint.h>

#include "base/push.h"
#include "net/http.h"
#include "platforms/sender.h"

/* Bytes of message content FCM allows for a token target. */
#define SENDER_FCM_MAX_CONTENT 4096
/* android.ttl range, seconds (4 weeks). */
#define SENDER_FCM_MAX_TTL_S 2419200
/* Retry backoff: full jitter from 1 s doubling, capped. */
#define SENDER_FCM_BACKOFF_BASE_US 1000000LL
#define SENDER_FCM_BACKOFF_CAP_US (600 * 1000000LL)
/* 429 without Retry-After: the quota refills within a minute. */
#define SENDER_FCM_QUOTA_WAIT_US (60 * 1000000LL)

extern const struct sender_ops sender_fcm_ops;

/*
 * Build the SendMessageRequest body ({"message": ...}) for `item` at
 * `now_us`.  Returns 0 and *body (malloc'd JSON text, free with free()),
 * or -EINVAL with `res` filled: outcome EXPIRED for a push past its
 * expiry, FAILED with a reason for a payload FCM would refuse (not a JSON
 * object, a reserved data key, too large).  The mapping is described at
 * the top of payload_fcm.c.
 */
int sender_fcm_build_body(const struct push_item *item, int64_t now_us,
			  char **body, struct push_result *res);

/*
 * The same through a json-c tree, which sender_fcm_build_body() uses only
 * for a push with an fcm override; for tests, which hold the two to the
 * same output.
 */
int sender_fcm_build_body_tree(const struct push_item *item, int64_t now_us,
			       char **body, struct push_result *res);

/* What came back for one request. */
struct sender_fcm_answer {
	long status;             /* HTTP status; 0: transport error */
	const char *body;        /* may be NULL or anything at all */
	size_t body_len;
	const char *retry_after; /* Retry-After header value or NULL */
	const char *error;       /* status 0: the transport error */
	enum http_err err;       /* status 0: its kind */
};

/*
 * Classify an answer (PROTOCOLS.md 2.7) into `res` (zeroed first).
 * `attempts` counts this one; at or past `max_attempts` a retryable
 * answer becomes FAILED.  `backoff_us` is the jittered delay to use when
 * the provider gave no Retry-After (or a smaller one, for 5xx).  Pure:
 * any body, however malformed, is handled.
 */
void sender_fcm_classify(const struct sender_fcm_answer *ans, int attempts,
			 int max_attempts, int64_t now_us, int64_t backoff_us,
			 struct push_result *res);

#endif
