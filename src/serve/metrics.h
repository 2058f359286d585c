/* metrics.h - request counters and latency quantiles of the HTTP service, in Prometheus text format.
 *
 * Contract
 * - Thread safe: every function may be called from any connection thread.
 * - Counters: requests by route (a fixed set, so unknown paths cannot grow the label space) and
 *   status code; errors (status >= 400, plus requests cut off before an answer) by route;
 *   requests cut off by reason (timeout, client went away, server error, shutdown); connections
 *   opened and open now.
 * - Latency of successful POST /predict requests, from the end of the request headers to the
 *   response being handed to the server: quantiles 0.5, 0.9, 0.99 over the last
 *   METRICS_WINDOW requests (a fixed ring buffer: memory does not grow with traffic), with the
 *   sum and count over all of them (Prometheus "summary").  Compute time (decode + forward) the
 *   same way.
 * - metrics_render() returns a malloc'd text in the Prometheus exposition format 0.0.4; `extra`
 *   (may be NULL) is appended as is (the server's gauges: model info, workers, memory).
 */
#ifndef STYLENET_SERVE_METRICS_H
#define STYLENET_SERVE_METRICS_H
#include <stdbool.h>

enum { ROUTE_PAGE, ROUTE_PREDICT, ROUTE_HEALTHZ, ROUTE_MODEL, ROUTE_METRICS, ROUTE_OTHER, N_ROUTES };
enum { ABORT_TIMEOUT, ABORT_CLIENT, ABORT_ERROR, ABORT_SHUTDOWN, N_ABORTS };
enum { METRICS_WINDOW = 1024 };

typedef struct serve_metrics serve_metrics;

serve_metrics *metrics_create(void);
void metrics_free(serve_metrics *m);
const char *metrics_route_path(int route);
/* a request answered with `status` after `seconds`; compute_s < 0 when no inference ran */
void metrics_request(serve_metrics *m, int route, int status, double seconds, double compute_s);
/* a request cut off before an answer was sent */
void metrics_aborted(serve_metrics *m, int route, int reason);
void metrics_connection(serve_metrics *m, bool opened);
/* quantile q (0..1) of the recent predict latencies in seconds; -1 when there are none */
double metrics_latency_quantile(serve_metrics *m, double q);
char *metrics_render(serve_metrics *m, const char *extra);
#endif
