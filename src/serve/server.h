/* server.h - the HTTP service behind `stylenet serve` (libmicrohttpd).
 *
 * Contract
 * - server_start(model, opts) listens on opts->host:opts->port (port 0: any free port, see
 *   server_port) and answers in background threads until server_stop.  The model is borrowed:
 *   it must outlive the server.  NULL with an error (address in use, bad host, out of memory).
 * - Routes (every answer to an API route is JSON; every error is {"error": "..."}):
 *     GET  /         the web page (page.c): pick or drop a photo, see the prediction
 *     POST /predict  the image as the raw body (PNG, JPEG or WebP, told by its bytes: under any
 *                    Content-Type, curl --data-binary's application/x-www-form-urlencoded
 *                    too, or none) or as a multipart/form-data field (the
 *                    field named "image" or "file", else the first file); query: tta=0|1,
 *                    top=K (1..classes).  Answer: the model's name, for grouped labels (Style:
 *                    brand, product) each group's best class and its top classes with
 *                    probabilities, the top-k classes overall, image size, TTA views, times.
 *     GET  /healthz  {"status": "ok", ...workers, load}
 *     GET  /model    what `stylenet info --json` says about the model
 *     GET  /metrics  Prometheus text (stats.h) plus model info, workers, resident memory
 *   HEAD is accepted wherever GET is.
 * - Status codes: 400 bad query, bad or truncated multipart, no image; 404 unknown path; 405
 *   wrong method (with Allow); 413 body over max_body (at once from Content-Length, or when a
 *   body without one passes the limit; a client that keeps sending far past it is cut off);
 *   415 a body that is not an image under a content type that does not say image (image/png,
 *   image/jpeg, image/webp, application/octet-stream: those are decoded, so bytes that are not a
 *   decodable PNG, JPEG or WebP get 422); 422 also for an image of more
 *   than max_pixels; 503 every worker busy and `queue` requests already waiting, or more than
 *   max_buffered bytes of bodies held at once; 500 only when out of memory.
 * - Resources are bounded: max_connections connections (more are closed at once), each idle
 *   for at most timeout_s seconds, each holding at most max_body bytes of body, all of them
 *   together at most max_buffered; `threads` inference workers sharing one copy of the weights
 *   (predictor.h), each decoding at most max_pixels.
 */
#ifndef STYLENET_SERVER_H
#define STYLENET_SERVER_H
#include <stdbool.h>
#include <stddef.h>
#include "classifier/classifier.h"

typedef struct {
    const char *host;       /* listening address (default "127.0.0.1": loopback only) */
    int port;               /* default 8080; 0 = any free port */
    int threads;            /* inference workers (default 2) */
    size_t max_body;        /* bytes per request body (default 8 MiB) */
    size_t max_buffered;    /* bytes of request bodies held at once (default 64 MiB) */
    long max_pixels;        /* decoded image size (default 25,000,000) */
    int timeout_s;          /* idle connection timeout (default 10) */
    int max_connections;    /* default 64 */
    int queue;              /* requests that may wait for a busy worker (default 16) */
    bool tta;               /* test-time augmentation when the request does not say (default off) */
    int tta_views;          /* augmented views added by TTA (default 4) */
    int top;                /* top classes in an answer when the request does not say (default 5) */
    const char *model_name; /* shown in answers and on the page */
    const char *model_path; /* the "model" field of /model */
    bool quiet;             /* no access log on stderr */
} serve_opts;

typedef struct server server;

serve_opts serve_defaults(void);
server *server_start(const classifier *m, const serve_opts *o);
int server_port(const server *s);
/* stops listening, wakes requests waiting for a worker (503), waits for the running ones */
void server_stop(server *s);
#endif
