/*
 * targets.c - libFuzzer targets for the pure halves of the senders: the
 * payload builders (neutral push -> provider request) and the response
 * classifiers (provider answer -> outcome).  `make fuzz` compiles this
 * file once per target (-DFUZZ_<NAME>) with clang's
 * -fsanitize=fuzzer,address,undefined and runs each for FUZZ_SECONDS
 * over tests/fuzz/corpus/<name>/ (seeds and every crash found so far,
 * replayed first).
 *
 * An input is split at NUL bytes into fields; a missing field is empty.
 * Builders: payload JSON, token, collapse key, then one byte of priority
 * and one of "expires in N minutes" (0: never).  Classifiers: two bytes
 * of HTTP status (0: transport error), the body, then the platform's
 * headers in the order of its answer struct; the last byte of the input
 * picks the transport error's kind (enum http_err, out-of-range values
 * included), which the classifiers decide on.
 *
 * What is checked is what the pipeline relies on: no crash, no sanitizer
 * report, a known outcome, NUL-terminated reason and message id, and a
 * retry time for every RETRY.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"
#include "base/push.h"
#include "platforms/apns/sender_apns.h"
#include "platforms/fcm/sender_fcm.h"
#include "platforms/mpns/sender_mpns.h"
#include "platforms/wns/sender_wns.h"

#define NOW 1800000000000000LL
#define NFIELDS 8

struct fields {
	char *f[NFIELDS];
	size_t len[NFIELDS];
	uint8_t b0, b1;        /* the first two bytes of the input */
};

static void split(const uint8_t *data, size_t size, struct fields *out)
{
	size_t i, start = 0, k = 0;

	memset(out, 0, sizeof *out);
	out->b0 = size > 0 ? data[0] : 0;
	out->b1 = size > 1 ? data[1] : 0;
	for (i = 0; i <= size && k < NFIELDS; i++) {
		if (i == size || data[i] == 0) {
			out->len[k] = i - start;
			out->f[k] = malloc(out->len[k] + 1);
			memcpy(out->f[k], data + start, out->len[k]);
			out->f[k][out->len[k]] = '\0';
			k++;
			start = i + 1;
		}
	}
	for (; k < NFIELDS; k++)
		out->f[k] = calloc(1, 1);
}

static void fields_free(struct fields *f)
{
	for (int k = 0; k < NFIELDS; k++)
		free(f->f[k]);
}

/* NULL for an empty field (an absent header or collapse key). */
static const char *opt(const struct fields *f, int k)
{
	return f->len[k] > 0 ? f->f[k] : NULL;
}

static void check_result(const struct push_result *r)
{
	if ((unsigned)r->outcome >= PUSH_OUTCOME_COUNT ||
	    memchr(r->reason, 0, sizeof r->reason) == NULL ||
	    memchr(r->message_id, 0, sizeof r->message_id) == NULL ||
	    (r->outcome == PUSH_OUTCOME_RETRY && r->retry_at_us <= 0))
		abort();
}

/*
 * README, retry_ambiguous: a transport error the provider may have acted
 * on is resent only when the app allows it, else it is uncertain; one
 * that never reached the provider is retried (or fails at the last
 * attempt).
 */
static void check_transport(const struct push_result *r, long status,
			    enum http_err kind, bool retry_ambiguous)
{
	if (status != 0)
		return;
	if (http_err_ambiguous(kind) && !retry_ambiguous
	    ? r->outcome != PUSH_OUTCOME_UNCERTAIN
	    : r->outcome != PUSH_OUTCOME_RETRY &&
	      r->outcome != PUSH_OUTCOME_FAILED)
		abort();
}

/* The push a builder gets: fields 0-2 after the two control bytes. */
static void make_item(struct push_item *it, struct fields *f)
{
	memset(it, 0, sizeof *it);
	it->queue_id = 1;
	it->push_id = 1;
	it->app_id = 1;
	it->payload = f->f[0];
	it->token = f->len[1] > 0 ? f->f[1]
		: (char *)"https://db5.notify.windows.com/?token=x";
	it->collapse_key = (char *)opt(f, 2);
	it->priority = (enum push_priority)(f->b0 % 3);
	it->expires_at_us = f->b1 ? NOW + (int64_t)f->b1 * 60000000 : 0;
	it->enqueued_at_us = NOW - 1000;
	it->attempts = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fields f;
	struct push_result res;
	struct push_item it;
	long status;
	enum http_err kind;

	split(size > 2 ? data + 2 : data, size > 2 ? size - 2 : 0, &f);
	f.b0 = size > 0 ? data[0] : 0;
	f.b1 = size > 1 ? data[1] : 0;
	status = (long)f.b0 << 8 | f.b1;
	status = status % 700;
	/* NONE .. CANCELLED, and one past them: a kind not known. */
	kind = (enum http_err)(size > 0
			       ? data[size - 1] % (HTTP_ERR_CANCELLED + 2) : 0);
	(void)kind;
	memset(&res, 0, sizeof res);
	(void)it;

#if defined(FUZZ_FCM_BODY)
	{
		char *body = NULL;

		make_item(&it, &f);
		if (sender_fcm_build_body(&it, NOW, &body, &res) == 0) {
			char *tree = NULL;
			struct push_result r2;

			/* the direct writer and the json-c tree agree */
			if (sender_fcm_build_body_tree(&it, NOW, &tree,
						       &r2) != 0 ||
			    strcmp(body, tree) != 0)
				abort();
			free(tree);
		} else {
			check_result(&res);
		}
		free(body);
	}
#elif defined(FUZZ_FCM_CLASSIFY)
	{
		struct sender_fcm_answer a = { status, f.f[0], f.len[0],
					       opt(&f, 1), "transport",
					       status == 0 ? kind
					       : HTTP_ERR_NONE };

		sender_fcm_classify(&a, f.b1 % 10 + 1, 8, NOW, 1000000, &res);
		check_result(&res);
	}
#elif defined(FUZZ_APNS_BODY)
	{
		struct sender_apns_msg m;

		memset(&m, 0, sizeof m);
		make_item(&it, &f);
		if (sender_apns_build(&it, "com.example.app", NOW, &m,
				      &res) == 0) {
			if (m.body == NULL || strlen(m.body) != m.body_len ||
			    m.body_len > 5120)
				abort();
			sender_apns_msg_free(&m);
		} else {
			check_result(&res);
		}
	}
#elif defined(FUZZ_APNS_CLASSIFY)
	{
		struct sender_apns_answer a = { status, f.f[0], f.len[0],
						"transport", opt(&f, 1),
						status == 0 ? kind
						: HTTP_ERR_NONE,
						f.b0 & 1 };

		sender_apns_classify(&a, f.b1 % 10 + 1, 8, NOW, 1000000, &res);
		check_result(&res);
	}
#elif defined(FUZZ_WNS_BODY)
	{
		struct sender_wns_request r;

		memset(&r, 0, sizeof r);
		make_item(&it, &f);
		if (sender_wns_build(&it, NOW, &r, &res) == 0) {
			if (r.n == 0 || r.n > PARTS_MAX)
				abort();
			sender_wns_request_free(&r);
		} else {
			check_result(&res);
		}
	}
#elif defined(FUZZ_WNS_CLASSIFY)
	{
		struct sender_wns_answer a = { status, opt(&f, 1), opt(&f, 2),
					       opt(&f, 3), opt(&f, 4),
					       "transport",
					       status == 0 ? kind
					       : HTTP_ERR_NONE };

		sender_wns_classify(&a, f.b1 % 10 + 1, 8, f.b0 & 1, NOW,
				    1000000, &res);
		check_result(&res);
		check_transport(&res, status, kind, f.b0 & 1);
	}
#elif defined(FUZZ_MPNS_BODY)
	{
		struct sender_mpns_request r;

		memset(&r, 0, sizeof r);
		make_item(&it, &f);
		if (sender_mpns_build(&it, NOW, &r, &res) == 0) {
			if (r.n == 0 || r.n > PARTS_MAX)
				abort();
			sender_mpns_request_free(&r);
		} else {
			check_result(&res);
		}
	}
#elif defined(FUZZ_MPNS_CLASSIFY)
	{
		struct sender_mpns_answer a = { status, opt(&f, 1), opt(&f, 2),
						opt(&f, 3), opt(&f, 4), f.f[0],
						f.len[0], opt(&f, 5),
						"transport",
						status == 0 ? kind
						: HTTP_ERR_NONE };

		sender_mpns_classify(&a, f.b1 % 10 + 1, 8, f.b0 & 1, NOW,
				     1000000, &res);
		check_result(&res);
		check_transport(&res, status, kind, f.b0 & 1);
	}
#else
#error "define one FUZZ_<TARGET>"
#endif
	fields_free(&f);
	return 0;
}
