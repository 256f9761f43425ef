/*
 * sender_mpns.h - the Microsoft Push Notification Service sender (Windows
 * Phone 7.x/8.x; struct sender_ops) and its pure halves, exposed for
 * table tests: building a push's requests (toast, tile, raw) and
 * classifying one answer.
 *
 * Only sender.c (the registry) and tests include this header.
 */
#ifndef PGPUSH_SENDER_MPNS_H
#define PGPUSH_SENDER_MPNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/push.h"
#include "net/http.h"
#include "platforms/parts.h"
#include "platforms/sender.h"

/* push.payload_limit('mpns'): toast and tile bodies at most this. */
#define SENDER_MPNS_MAX_PAYLOAD 3072
/* QueueFull and 503: "exponential backoff in minute increments". */
#define SENDER_MPNS_BACKOFF_BASE_US (60 * 1000000LL)
#define SENDER_MPNS_BACKOFF_CAP_US (3600 * 1000000LL)
/* 406 (daily limit) and 412 (device inactive): once an hour at most. */
#define SENDER_MPNS_HOLD_US (3600 * 1000000LL)
#define SENDER_MPNS_MAX_HEADERS 6

extern const struct sender_ops sender_mpns_ops;

struct sender_mpns_part {
	const char *name;                 /* "toast", "tile", "raw" */
	char *body;
	size_t body_len;
	char message_id[40];              /* the X-MessageID sent (UUID) */
	/* "Name: value" lines: Content-Type, X-WindowsPhone-Target (not
	 * for raw), X-NotificationClass, X-MessageID; NULL-terminated. */
	char *headers[SENDER_MPNS_MAX_HEADERS + 1];
};

struct sender_mpns_request {
	struct sender_mpns_part parts[PARTS_MAX];
	size_t n;
};

/*
 * Build the requests for `item` at `now_us` (mapping at the top of
 * sender_mpns.c).  Returns 0 and *out (free with
 * sender_mpns_request_free()), or -EINVAL with `res`: EXPIRED, or FAILED
 * for a payload MPNS would refuse or one with nothing to send.
 */
int sender_mpns_build(const struct push_item *item, int64_t now_us,
		      struct sender_mpns_request *out,
		      struct push_result *res);

void sender_mpns_request_free(struct sender_mpns_request *r);

struct sender_mpns_answer {
	long status;                  /* 0: transport error */
	const char *notification;     /* X-NotificationStatus */
	const char *subscription;     /* X-SubscriptionStatus */
	const char *device;           /* X-DeviceConnectionStatus */
	const char *content_type;
	const char *body;             /* may be NULL */
	size_t body_len;
	const char *message_id;       /* X-MessageID echoed */
	const char *error;            /* status 0: the transport error */
	enum http_err err;            /* status 0: its kind */
};

/*
 * Classify one answer (PROTOCOLS.md 4.3) into `res`; `res->reason` is a
 * short text for the part ("Received/Connected", ...).  Ambiguous answers
 * (a 200 without MPNS status headers or with an HTML page, a 5xx other
 * than the documented 503, a transport error of an ambiguous kind:
 * http_err_ambiguous()) are resent only when `retry_ambiguous`, else
 * UNCERTAIN; a request that was not sent is retried.  A 406
 * or 412 retries in an hour (and the sender holds the channel that long).
 */
void sender_mpns_classify(const struct sender_mpns_answer *ans,
			  int attempts, int max_attempts,
			  bool retry_ambiguous, int64_t now_us,
			  int64_t backoff_us, struct push_result *res);

#endif
