/* stats.h - request counters and latency quantiles of the HTTP service, in Prometheus text format.
 *
 * Contract
 * - Thread safe: every function may be called from any connection thread.
 * - Counters: requests by route (a fixed set, so unknown paths cannot grow the label space) and
 *   status code; errors (status >= 400, plus requests cut off before an answer) by route;
 *   requests cut off by reason (timeout, client went away, server error, shutdown); connections
 *   opened and open now.
 * - Latency of successful POST /predict requests, from the end of the request headers to the
 *   response being handed to the server: quantiles 0.5, 0.9, 0.99 over the last
 *   STATS_WINDOW requests (a fixed ring buffer: memory does not grow with traffic), with the
 *   sum and count over all of them (Prometheus "summary").  Compute time (decode + forward) the
 *   same way.
 * - stats_render() returns a malloc'd text in the Prometheus exposition format 0.0.4; `extra`
 *   (may be NULL) is appended as is (the server's gauges: model info, workers, memory).
 */
#ifndef STYLENET_SERVE_STATS_H
#define STYLENET_SERVE_STATS_H
#include <stdbool.h>

enum { ROUTE_PAGE, ROUTE_PREDICT, ROUTE_HEALTHZ, ROUTE_MODEL, ROUTE_METRICS, ROUTE_OTHER, N_ROUTES };
enum { ABORT_TIMEOUT, ABORT_CLIENT, ABORT_ERROR, ABORT_SHUTDOWN, N_ABORTS };
enum { STATS_WINDOW = 1024 };

typedef struct serve_stats serve_stats;

serve_stats *stats_create(void);
void stats_free(serve_stats *m);
const char *stats_route_path(int route);
/* a request answered with `status` after `seconds`; compute_s < 0 when no inference ran */
void stats_request(serve_stats *m, int route, int status, double seconds, double compute_s);
/* a request cut off before an answer was sent */
void stats_aborted(serve_stats *m, int route, int reason);
void stats_connection(serve_stats *m, bool opened);
char *stats_render(serve_stats *m, const char *extra);
#endif
