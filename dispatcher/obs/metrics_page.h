/*
 * metrics_page.h - the Prometheus page (--metrics-listen), rendered from
 * a snapshot on each scrape: this dispatcher, its claim and ack
 * statements and their time, the ack backlog, requests in flight, pools,
 * Postgres connections, each pool's ring, fill and requests in flight,
 * the debug events, the HTTP client's counters and the pushes' counters
 * since start (stats_render_metrics()).  Metric names and help texts are
 * an interface: dashboards and alerts read them.
 */
#ifndef PGPUSH_METRICS_PAGE_H
#define PGPUSH_METRICS_PAGE_H

struct buf;
struct obs_snapshot;

/* Append the whole page for `s` to `b`. */
void metrics_page_render(const struct obs_snapshot *s, struct buf *b);

#endif
