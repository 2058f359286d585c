/* stats.c - counters and latency windows for /metrics (see stats.h). */
#include "serve/stats.h"
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the status codes the server answers with; anything else is counted as "other" */
static const int CODES[] = {200, 400, 404, 405, 413, 415, 422, 500, 503};
enum { N_CODES = sizeof CODES / sizeof CODES[0] + 1 };
static const char *ROUTES[N_ROUTES] = {"/", "/predict", "/healthz", "/model", "/metrics", "other"};
static const char *ABORTS[N_ABORTS] = {"timeout", "client", "error", "shutdown"};

typedef struct {
    double ring[STATS_WINDOW];
    long count; /* all observations; ring holds the last min(count, WINDOW) */
    double sum;
} window;

struct serve_stats {
    pthread_mutex_t mu;
    unsigned long long requests[N_ROUTES][N_CODES];
    unsigned long long errors[N_ROUTES];
    unsigned long long aborted[N_ABORTS];
    unsigned long long connections;
    long open;
    window latency, compute;
};

serve_stats *stats_create(void) {
    serve_stats *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->mu, NULL);
    return m;
}

void stats_free(serve_stats *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

const char *stats_route_path(int route) { return route >= 0 && route < N_ROUTES ? ROUTES[route] : "other"; }

static void observe(window *w, double v) {
    w->ring[w->count % STATS_WINDOW] = v;
    w->count++;
    w->sum += v;
}

void stats_request(serve_stats *m, int route, int status, double seconds, double compute_s) {
    if (route < 0 || route >= N_ROUTES) route = ROUTE_OTHER;
    int slot = N_CODES - 1;
    for (int i = 0; i < N_CODES - 1; i++)
        if (CODES[i] == status) slot = i;
    pthread_mutex_lock(&m->mu);
    m->requests[route][slot]++;
    if (status >= 400) m->errors[route]++;
    if (route == ROUTE_PREDICT && status == 200) {
        observe(&m->latency, seconds);
        if (compute_s >= 0) observe(&m->compute, compute_s);
    }
    pthread_mutex_unlock(&m->mu);
}

void stats_aborted(serve_stats *m, int route, int reason) {
    if (route < 0 || route >= N_ROUTES) route = ROUTE_OTHER;
    if (reason < 0 || reason >= N_ABORTS) reason = ABORT_ERROR;
    pthread_mutex_lock(&m->mu);
    m->aborted[reason]++;
    m->errors[route]++;
    pthread_mutex_unlock(&m->mu);
}

void stats_connection(serve_stats *m, bool opened) {
    pthread_mutex_lock(&m->mu);
    if (opened) {
        m->connections++;
        m->open++;
    } else {
        m->open--;
    }
    pthread_mutex_unlock(&m->mu);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* sorted copy of the window (caller holds the lock); returns how many */
static int sorted(const window *w, double *out) {
    int n = w->count < STATS_WINDOW ? (int)w->count : STATS_WINDOW;
    memcpy(out, w->ring, sizeof(double) * (size_t)n);
    qsort(out, (size_t)n, sizeof(double), cmp_double);
    return n;
}

/* nearest rank: the smallest value with at least q of the observations at or below it */
static double rank(const double *v, int n, double q) {
    if (n == 0) return -1;
    int i = (int)ceil(q * n) - 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return v[i];
}

typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if (b->s && b->len + (size_t)k < b->cap) {
            b->len += (size_t)k;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static void put_summary(sbuf *b, const char *name, const char *help, const window *w) {
    double v[STATS_WINDOW];
    int n = sorted(w, v);
    put(b, "# HELP %s %s\n# TYPE %s summary\n", name, help, name);
    static const double qs[] = {0.5, 0.9, 0.99};
    for (int i = 0; i < 3; i++) {
        if (n) put(b, "%s{quantile=\"%g\"} %.6f\n", name, qs[i], rank(v, n, qs[i]));
        else put(b, "%s{quantile=\"%g\"} NaN\n", name, qs[i]);
    }
    put(b, "%s_sum %.6f\n%s_count %ld\n", name, w->sum, name, w->count);
}

char *stats_render(serve_stats *m, const char *extra) {
    sbuf b = {0};
    pthread_mutex_lock(&m->mu);
    put(&b, "# HELP stylenet_http_requests_total HTTP requests answered, by route and status code.\n"
            "# TYPE stylenet_http_requests_total counter\n");
    for (int r = 0; r < N_ROUTES; r++)
        for (int c = 0; c < N_CODES; c++)
            if (m->requests[r][c])
                c < N_CODES - 1 ? put(&b, "stylenet_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n", ROUTES[r],
                                      CODES[c], m->requests[r][c])
                                : put(&b, "stylenet_http_requests_total{route=\"%s\",code=\"other\"} %llu\n",
                                      ROUTES[r], m->requests[r][c]);
    put(&b, "# HELP stylenet_http_errors_total Requests answered with status >= 400 or cut off, by route.\n"
            "# TYPE stylenet_http_errors_total counter\n");
    for (int r = 0; r < N_ROUTES; r++)
        put(&b, "stylenet_http_errors_total{route=\"%s\"} %llu\n", ROUTES[r], m->errors[r]);
    put(&b, "# HELP stylenet_http_aborted_total Requests cut off before an answer, by reason.\n"
            "# TYPE stylenet_http_aborted_total counter\n");
    for (int a = 0; a < N_ABORTS; a++)
        put(&b, "stylenet_http_aborted_total{reason=\"%s\"} %llu\n", ABORTS[a], m->aborted[a]);
    put(&b, "# HELP stylenet_connections_total TCP connections accepted.\n# TYPE stylenet_connections_total counter\n"
            "stylenet_connections_total %llu\n",
        m->connections);
    put(&b, "# HELP stylenet_connections_open TCP connections open now.\n# TYPE stylenet_connections_open gauge\n"
            "stylenet_connections_open %ld\n",
        m->open);
    put_summary(&b, "stylenet_predict_latency_seconds",
                "Successful POST /predict requests: end of the headers to the answer (last 1024).", &m->latency);
    put_summary(&b, "stylenet_predict_compute_seconds",
                "Successful POST /predict requests: decoding and the forward passes (last 1024).", &m->compute);
    pthread_mutex_unlock(&m->mu);
    if (extra) put(&b, "%s", extra);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
