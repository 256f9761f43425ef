/*
 * sender.c - the registry of built-in push platforms (sender_for()).
 * The only place outside tests that includes a platform's header.
 */
#include "sender.h"

#include <json-c/json.h>

#include "sender_apns.h"
#include "sender_fcm.h"
#include "sender_mpns.h"
#include "sender_wns.h"

const struct sender_ops *sender_for(enum push_platform platform)
{
	switch (platform) {
	case PUSH_PLATFORM_APNS:
		return &sender_apns_ops;
	case PUSH_PLATFORM_FCM:
		return &sender_fcm_ops;
	case PUSH_PLATFORM_WNS:
		return &sender_wns_ops;
	case PUSH_PLATFORM_MPNS:
		return &sender_mpns_ops;
	default:
		return NULL;
	}
}

struct json_object *sender_parse_payload(const char *text)
{
	/* Left for the process's end: one tokener per thread that sends. */
	static _Thread_local struct json_tokener *tok;
	json_object *o;

	if (tok == NULL) {
		tok = json_tokener_new();
		if (tok == NULL)
			return NULL;
	}
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, text != NULL ? text : "", -1);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		return NULL;
	}
	return o;
}
