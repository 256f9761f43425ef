/*
 * jsonget.h - reading members of json-c objects, the way every platform
 * reads its credential row and the neutral payload: a member that is
 * missing, of the wrong type, or asked of something that is not an object
 * reads as NULL, never as an error.
 *
 * The returned pointers belong to `o` (json-c's reference counting):
 * valid while `o` is.
 */
#ifndef PGPUSH_JSONGET_H
#define PGPUSH_JSONGET_H

#include <json-c/json.h>

/* o[key], or NULL when `o` is not an object or has no such member. */
json_object *jsonget(json_object *o, const char *key);

/* o[key] when it is a string, else NULL. */
const char *jsonget_str(json_object *o, const char *key);

/* o[key] when it is a non-empty string, else NULL. */
const char *jsonget_nonempty(json_object *o, const char *key);

#endif
