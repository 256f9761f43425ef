/*
 * sender.h - what the pipeline sees of a push platform.
 *
 * Each platform (fcm/, apns/, wns/, mpns/) fills one struct sender_ops;
 * the life cycle of a send is written once, in send.h.  The claim/ack
 * pipeline and the pools include only this header, never a platform's
 * own.  A pool owns one struct sender_cred, made by cred_open() from the
 * platform's credential row, and hands it one claimed push at a time
 * with send(); the sender builds the request from the push and its
 * cached auth, sends it through the HTTP bridge, classifies the answer
 * into a struct push_result and calls the done callback exactly once,
 * always from the loop (never from inside send()).
 *
 * Auth refreshes ("reauth": a rejected token is refreshed and the request
 * resent once) happen inside the sender and are not attempts; the result
 * the pool sees is final for this attempt.
 */
#ifndef PGPUSH_SENDER_H
#define PGPUSH_SENDER_H

#include <stddef.h>
#include <uv.h>

#include "base/push.h"

struct http;            /* http.h: the libcurl-multi <-> libuv bridge */
struct sender_cred;     /* a platform's per-credential state */

/* What every sender may use; owned by the daemon, outlives every sender. */
struct sender_env {
	uv_loop_t *loop;
	struct http *http;
	long connect_timeout_ms;  /* per connection attempt */
	long request_timeout_ms;  /* per request, whole exchange */
	int max_attempts;         /* default when the app sets none */
	/*
	 * Optional tracing (NULL: none).  For an item with debug = true a
	 * sender may report a step ("request" with the headers it built,
	 * "response" with status, headers and a body excerpt) as a JSON
	 * object - never a secret (no Authorization value, key or token).
	 * Buffered into push.debug_events by the daemon (trace.h).
	 */
	void (*trace)(void *arg, const struct push_item *item,
		      const char *step, const char *detail_json);
	void *trace_arg;
};

/*
 * Called once per send(), from the loop.  `item` is handed back to the
 * caller, who owns it again; `res` is valid only during the call.
 */
typedef void (*sender_done_fn)(void *arg, struct push_item *item,
			       const struct push_result *res);

struct sender_ops {
	const char *name;                 /* "fcm" */
	enum push_platform platform;

	/*
	 * Make the state for one credential from its row of
	 * push.<platform>_credentials as a JSON object (row_to_json).
	 * Returns 0, or a negative code with a reason in `err` (which must
	 * never contain secrets).
	 */
	int (*cred_open)(struct sender_cred **out,
			 const struct sender_env *env, const char *row_json,
			 char *err, size_t errlen);

	/*
	 * Free the credential's state.  In-flight sends are cancelled first:
	 * their done callbacks run (outcome RETRY, reason "cancelled")
	 * before this returns.  NULL is a no-op.
	 */
	void (*cred_close)(struct sender_cred *cred);

	/*
	 * Send `item` (the sender owns it until `done`).  `max_attempts` is
	 * the app's limit, for deciding between RETRY and FAILED.  Returns 0;
	 * failures are reported through `done`, never by the return value.
	 */
	int (*send)(struct sender_cred *cred, struct push_item *item,
		    int max_attempts, sender_done_fn done, void *arg);
};

/* The platforms built in; NULL for one not supported yet. */
const struct sender_ops *sender_for(enum push_platform platform);

struct json_object;

/*
 * How deep a payload may nest: objects and arrays, the payload object
 * itself being the first level.  The enqueue trigger refuses deeper ones
 * (push.payload_problem()), so every payload it accepts parses here.
 */
#define SENDER_PAYLOAD_MAX_DEPTH 16
#define SENDER_PAYLOAD_MAX_DEPTH_STR "16"

/*
 * A push's neutral payload (JSON text; NULL reads as "") parsed with a
 * tokener kept for the thread, as json_tokener_parse_verbose() would
 * but without making and freeing one per push.  NULL when it is not
 * valid JSON or nests deeper than SENDER_PAYLOAD_MAX_DEPTH; the caller
 * owns the object.
 */
struct json_object *sender_parse_payload(const char *text);

/*
 * Why a payload cannot be sent as a JSON object (the reason a push
 * fails with): it nests too deep, or it is not a JSON object.  Meant for
 * the rare payload sender_parse_payload() refused or that is not an
 * object; parses it again.  A static string.
 */
const char *sender_payload_why(const char *text);

#endif
