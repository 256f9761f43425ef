/*
 * fake_log.h — the JSON-lines request log that tests assert on.
 */
#ifndef FAKE_LOG_H
#define FAKE_LOG_H

#include "fake.h"

/* Opens (appends to) the log file; 0 or -1.  No call: no log. */
int fake_log_open(const char *path);
/* Writes one line for an answered request; flushed at once. */
void fake_log_write(const struct fake_req *req, const struct fake_resp *resp);
/* Closes the log file. */
void fake_log_close(void);

#endif
