/*
 * sender_apns.h - the APNs HTTP/2 provider API sender (struct sender_ops)
 * and its pure halves, exposed for table tests: building the request
 * (JSON body and apns-* headers) from a claimed push (payload_apns.c),
 * and classifying the answer into a push result (PROTOCOLS.md 1.9;
 * sender_apns.c).
 *
 * Only sender.c (the registry) and tests include this header; the
 * pipeline sees sender.h.
 */
#ifndef PGPUSH_SENDER_APNS_H
#define PGPUSH_SENDER_APNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/push.h"
#include "net/http.h"
#include "platforms/sender.h"

#define SENDER_APNS_MAX_PAYLOAD 4096
#define SENDER_APNS_MAX_PAYLOAD_VOIP 5120
#define SENDER_APNS_MAX_COLLAPSE_ID 64
/* Retry backoff: full jitter from 1 s doubling, capped at 10 minutes. */
#define SENDER_APNS_BACKOFF_BASE_US 1000000LL
#define SENDER_APNS_BACKOFF_CAP_US (600 * 1000000LL)
/* 429 TooManyRequests: wait at least this long before that device. */
#define SENDER_APNS_DEVICE_WAIT_US (5 * 1000000LL)
/* Requests GOAWAY/REFUSED_STREAM left unprocessed: resent this often at
 * most, without counting an attempt. */
#define SENDER_APNS_MAX_UNPROCESSED_RESENDS 5

#define SENDER_APNS_PROD_ENDPOINT "https://api.push.apple.com"
#define SENDER_APNS_SANDBOX_ENDPOINT "https://api.sandbox.push.apple.com"

extern const struct sender_ops sender_apns_ops;

/* One request, ready to send (but for apns-id and authorization). */
struct sender_apns_msg {
	char *body;               /* JSON, malloc'd */
	size_t body_len;
	char push_type[32];       /* apns-push-type */
	int priority;             /* apns-priority: 10, 5 or 1 */
	char *topic;              /* apns-topic, suffixed; malloc'd */
	int64_t expiration_s;     /* apns-expiration; -1: no header */
	char collapse_id[SENDER_APNS_MAX_COLLAPSE_ID + 1]; /* "": none */
	/* "name: value" lines of the above, NULL-ended; malloc'd. */
	char *headers[6];
};

/*
 * Build the request for `item` at `now_us`; `topic` is the credential's
 * bundle id.  The mapping is described at the top of payload_apns.c.
 * Returns 0 and fills *msg (free with sender_apns_msg_free), or -EINVAL
 * with `res` filled: EXPIRED for a push past its expiry, FAILED with a
 * reason for a payload APNs would refuse (not a JSON object, bad
 * override, collapse id over 64 bytes, body over 4096 / 5120 bytes).
 */
int sender_apns_build(const struct push_item *item, const char *topic,
		      int64_t now_us, struct sender_apns_msg *msg,
		      struct push_result *res);

void sender_apns_msg_free(struct sender_apns_msg *msg);

/* A random (version 4) UUID in Apple's lowercase 8-4-4-4-12 form. */
void sender_apns_uuid(char out[37]);

/* What came back for one request. */
struct sender_apns_answer {
	long status;             /* HTTP status; 0: transport error */
	const char *body;        /* may be NULL or anything at all */
	size_t body_len;
	const char *error;       /* status 0: the transport error */
	const char *apns_id;     /* the apns-id response header, or NULL */
	enum http_err err;       /* status 0: the transport error's kind */
	bool token_accepted;     /* token auth: APNs had accepted the
				  * provider token this request carried */
	int64_t device_seen_us;  /* the device's last_seen_at at the claim;
				  * 0: unknown (a token target) */
};

/*
 * Classify an answer into `res` (zeroed first): outcome, reason (Apple's
 * reason string), message id (apns-id), provider_ts_us (410 timestamp),
 * retry time, and the flags: reauth for Expired/Invalid/
 * MissingProviderToken, throttled for 429.  ExpiredProviderToken is
 * retried (a new token helps); Invalid/MissingProviderToken too if
 * `token_accepted`, else the push fails as an auth failure (a token
 * refused on first use: the credential is wrong).  `attempts` counts
 * this one; at or past `max_attempts` a retryable answer becomes FAILED.
 * `backoff_us` is the jittered delay for retries.  Pure: any body,
 * however malformed, is handled.  Returns true when the answer asks for
 * a new connection (503, 400 IdleTimeout: RECONNECT in PROTOCOLS.md): the
 * retry must not go out on the connection that carried this request.
 */
bool sender_apns_classify(const struct sender_apns_answer *ans,
			  int attempts, int max_attempts, int64_t now_us,
			  int64_t backoff_us, struct push_result *res);

#endif
