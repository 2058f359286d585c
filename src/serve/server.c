/* server.c - routing, body limits, and answers of `stylenet serve` on libmicrohttpd (server.h).
 *
 * Connections run one thread each (MHD_USE_THREAD_PER_CONNECTION): a slow upload or a long
 * inference ties up only its own connection, /healthz and /metrics answer while every worker
 * computes, and MHD closes connections past the limit and idle ones past the timeout.  The
 * access handler is called once when the headers are in (route, method, content type and
 * declared length are judged there, so most errors are answered before any body is read), once
 * per piece of body (kept within the limits), and once at the end (inference, answer). */
#include "serve/server.h"
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "classifier/metrics.h"
#include "core/error.h"
#include "io/image.h"
#include "serve/page.h"
#include "serve/predictor.h"
#include "serve/stats.h"

struct server {
    struct MHD_Daemon *d;
    const classifier *model;
    serve_opts o;
    pred_pool *pool;
    serve_stats *stats;
    char *model_json;    /* /model, made once */
    char *info_labels;   /* stylenet_model_info's labels */
    atomic_size_t buffered;
    double started;
    int port;
};

typedef struct {
    server *s;
    int route;
    char method[8], url[80];  /* for the access log */
    double t0, t_answer;
    int status;              /* answer queued (0: none yet) */
    int err_status;          /* error found while reading the body, answered at the end */
    char err[512];
    uint8_t *buf;            /* the image bytes */
    size_t len, cap;
    size_t received;         /* body bytes seen */
    size_t reserved;         /* bytes counted in s->buffered */
    struct MHD_PostProcessor *pp;
    char field[64];          /* multipart field holding the image ("" = not chosen yet) */
    char filename[128];
    bool part_done;          /* the chosen field's part is complete (a repeated field is ignored) */
    bool form;               /* multipart/form-data */
    bool sniff;              /* a content type that does not say image: the body's bytes must */
    char ctype[104];         /* that content type, for the 415 message */
    bool tta;
    int top;
    double compute_s;
} req;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

serve_opts serve_defaults(void) {
    return (serve_opts){.host = "127.0.0.1", .port = 8080, .threads = 2, .max_body = 8u << 20,
                        .max_buffered = 64u << 20, .max_pixels = 25000000, .timeout_s = 10,
                        .max_connections = 64, .queue = 16, .tta = false, .tta_views = 4, .top = 5,
                        .model_name = "model", .model_path = "", .quiet = false};
}

/* ------------------------------------------------------------------ answers */

static enum MHD_Result respond(struct MHD_Connection *c, req *r, int status, const char *type, void *body, size_t len,
                               enum MHD_ResponseMemoryMode mode, const char *allow) {
    struct MHD_Response *res = MHD_create_response_from_buffer(len, body, mode);
    if (!res) {
        if (mode == MHD_RESPMEM_MUST_FREE) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
    if (strncmp(type, "text/html", 9) != 0) MHD_add_response_header(res, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow) MHD_add_response_header(res, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE) MHD_add_response_header(res, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, res);
    MHD_destroy_response(res);
    if (ok == MHD_YES) {
        r->status = status;
        r->t_answer = now_s();
    }
    return ok;
}

/* cJSON text with a final newline, as a malloc'd buffer MHD frees */
static enum MHD_Result respond_json(struct MHD_Connection *c, req *r, int status, cJSON *doc, const char *allow) {
    char *s = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!s) return MHD_NO;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return MHD_NO;
    }
    t[n] = '\n';
    t[n + 1] = 0;
    return respond(c, r, status, "application/json", t, n + 1, MHD_RESPMEM_MUST_FREE, allow);
}

static enum MHD_Result respond_error(struct MHD_Connection *c, req *r, int status, const char *msg, const char *allow) {
    if (msg != r->err) snprintf(r->err, sizeof r->err, "%s", msg); /* for the access log */
    cJSON *o = cJSON_CreateObject();
    if (o) cJSON_AddStringToObject(o, "error", msg);
    return respond_json(c, r, status, o, allow);
}

static int fail_later(req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_later(req *r, int status, const char *fmt, ...) {
    if (r->err_status) return -1; /* the first problem is the one reported */
    r->err_status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* ------------------------------------------------------------------ body */

static void drop_body(req *r) {
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
    if (r->reserved) atomic_fetch_sub(&r->s->buffered, r->reserved);
    r->reserved = 0;
}

/* 415 for a body that neither is declared an image nor starts like one */
static int refuse_type(req *r) {
    drop_body(r);
    return fail_later(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                      "content type %s with a body that is not a PNG, JPEG or WebP image: send the photo's bytes "
                      "as the body (any content type) or as a multipart/form-data field named image",
                      r->ctype);
}

/* appends image bytes within the request's and the server's limits; -1 (error noted) if not */
static int append(req *r, const char *data, size_t n) {
    server *s = r->s;
    if (r->err_status) return -1;
    if (r->len + n > s->o.max_body) {
        drop_body(r);
        return fail_later(r, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than the limit of %zu bytes",
                          s->o.max_body);
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64 << 10;
        while (cap < r->len + n) cap *= 2;
        if (cap > s->o.max_body) cap = s->o.max_body;
        size_t more = cap - r->cap;
        size_t before = atomic_fetch_add(&s->buffered, more);
        if (before + more > s->o.max_buffered) {
            atomic_fetch_sub(&s->buffered, more);
            drop_body(r);
            return fail_later(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "server busy: more than %zu bytes of uploads in progress; try again", s->o.max_buffered);
        }
        uint8_t *b = realloc(r->buf, cap);
        if (!b) {
            atomic_fetch_sub(&s->buffered, more);
            drop_body(r);
            return fail_later(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory for a %zu-byte body", cap);
        }
        r->buf = b;
        r->cap = cap;
        r->reserved += more;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    if (r->sniff && r->len >= 12) { /* enough bytes to know every format's signature */
        if (!image_format(r->buf, r->len)) return refuse_type(r);
        r->sniff = false;
    }
    return 0;
}

static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                const char *content_type, const char *transfer_encoding, const char *data,
                                uint64_t off, size_t size) {
    (void)kind;
    (void)content_type;
    (void)transfer_encoding;
    req *r = cls;
    if (!key) key = "";
    if (!r->field[0]) {
        if (strcmp(key, "image") && strcmp(key, "file") && !filename) return MHD_YES; /* another form field */
        snprintf(r->field, sizeof r->field, "%s", key[0] ? key : "(unnamed)");
        if (filename) snprintf(r->filename, sizeof r->filename, "%s", filename);
    } else if (strcmp(r->field, key[0] ? key : "(unnamed)") != 0) {
        if (r->len > 0 || off > 0) r->part_done = true;
        return MHD_YES;
    }
    if (r->part_done || (off == 0 && r->len > 0)) { /* the same field again: the first one counts */
        r->part_done = true;
        return MHD_YES;
    }
    return size == 0 || append(r, data, size) == 0 ? MHD_YES : MHD_NO;
}

/* ------------------------------------------------------------------ routes */

static int route_of(const char *url) {
    if (!strcmp(url, "/") || !strcmp(url, "/index.html")) return ROUTE_PAGE;
    if (!strcmp(url, "/predict")) return ROUTE_PREDICT;
    if (!strcmp(url, "/healthz")) return ROUTE_HEALTHZ;
    if (!strcmp(url, "/model")) return ROUTE_MODEL;
    if (!strcmp(url, "/metrics")) return ROUTE_METRICS;
    return ROUTE_OTHER;
}

static bool is_get(const char *method) { return !strcmp(method, "GET") || !strcmp(method, "HEAD"); }

/* "image/png; charset=x" -> compares the media type case-insensitively */
static bool media_is(const char *ct, const char *type) {
    size_t n = strlen(type);
    while (*ct == ' ' || *ct == '\t') ct++;
    return !strncasecmp(ct, type, n) && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

static enum MHD_Result answer_healthz(struct MHD_Connection *c, req *r) {
    server *s = r->s;
    int busy, waiting, workers;
    pred_pool_load(s->pool, &busy, &waiting, &workers);
    cJSON *o = cJSON_CreateObject();
    if (!o) return MHD_NO;
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddStringToObject(o, "model", s->o.model_name);
    cJSON_AddNumberToObject(o, "workers", workers);
    cJSON_AddNumberToObject(o, "busy", busy);
    cJSON_AddNumberToObject(o, "waiting", waiting);
    cJSON_AddNumberToObject(o, "uptime_s", now_s() - s->started);
    return respond_json(c, r, MHD_HTTP_OK, o, NULL);
}

static long resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size, res;
    int k = f ? fscanf(f, "%ld %ld", &size, &res) : 0;
    if (f) fclose(f);
    return k == 2 ? res * sysconf(_SC_PAGESIZE) : -1;
}

static enum MHD_Result answer_metrics(struct MHD_Connection *c, req *r) {
    server *s = r->s;
    int busy, waiting, workers;
    pred_pool_load(s->pool, &busy, &waiting, &workers);
    char extra[2048];
    snprintf(extra, sizeof extra,
             "# HELP stylenet_model_info The model being served.\n# TYPE stylenet_model_info gauge\n"
             "stylenet_model_info{%s} 1\n"
             "# HELP stylenet_workers Inference workers.\n# TYPE stylenet_workers gauge\nstylenet_workers %d\n"
             "# HELP stylenet_workers_busy Workers running a request now.\n# TYPE stylenet_workers_busy gauge\n"
             "stylenet_workers_busy %d\n"
             "# HELP stylenet_requests_waiting Requests waiting for a worker now.\n"
             "# TYPE stylenet_requests_waiting gauge\nstylenet_requests_waiting %d\n"
             "# HELP stylenet_upload_bytes Request body bytes held now.\n# TYPE stylenet_upload_bytes gauge\n"
             "stylenet_upload_bytes %zu\n"
             "# HELP stylenet_uptime_seconds Seconds since the server started.\n"
             "# TYPE stylenet_uptime_seconds gauge\nstylenet_uptime_seconds %.3f\n"
             "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
             "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n",
             s->info_labels, workers, busy, waiting, atomic_load(&s->buffered), now_s() - s->started,
             resident_bytes());
    char *text = stats_render(s->stats, extra);
    if (!text) return respond_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
    return respond(c, r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text),
                   MHD_RESPMEM_MUST_FREE, NULL);
}

/* the k most probable of classes [lo, hi) as a JSON array */
static cJSON *top_array(const classifier *m, const float *p, int lo, int hi, int k, ranked_class *order) {
    metrics_rank_classes(p, lo, hi, order);
    return classifier_ranked_json(m, order, k < hi - lo ? k : hi - lo);
}

static enum MHD_Result answer_predict(struct MHD_Connection *c, req *r) {
    server *s = r->s;
    const classifier *m = s->model;
    if (r->len == 0)
        return respond_error(c, r, MHD_HTTP_BAD_REQUEST,
                             r->form
                                 ? "no image in the form: send the photo as a multipart/form-data field named image"
                                 : "no image: send the photo as the request body (PNG, JPEG or WebP) or as a "
                                   "multipart/form-data field named image",
                             NULL);
    double tq = now_s();
    predictor *w = pred_acquire(s->pool);
    double queue_s = now_s() - tq;
    if (!w) {
        int busy, waiting, workers;
        pred_pool_load(s->pool, &busy, &waiting, &workers);
        char msg[256];
        snprintf(msg, sizeof msg, "server busy: all %d workers are running and %d requests are waiting; try again",
                 workers, waiting);
        return respond_error(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, msg, NULL);
    }
    float *probs = malloc(sizeof(float) * (size_t)m->n_classes);
    ranked_class *order = malloc(sizeof(ranked_class) * (size_t)m->n_classes);
    const char *name = r->filename[0] ? r->filename : "request body";
    int views = r->tta ? s->o.tta_views : 0;
    size_t image_bytes = r->len;
    pred_info info = {0};
    int rc = probs && order ? pred_run(w, r->buf, r->len, name, views, probs, &info) : PRED_INTERNAL;
    pred_release(s->pool, w);
    drop_body(r);
    if (rc != PRED_OK) {
        free(probs);
        free(order);
        if (rc == PRED_INTERNAL && !strstr(sn_last_error(), "out of memory")) sn_error("out of memory");
        return respond_error(c, r,
                             rc == PRED_INTERNAL ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_UNPROCESSABLE_CONTENT,
                             sn_last_error(), NULL);
    }
    r->compute_s = (info.decode_ms + info.compute_ms) / 1e3;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", s->o.model_name);
    cJSON_AddStringToObject(o, "task", m->task);
    if (m->n_groups > 0) {
        cJSON *gr = cJSON_AddObjectToObject(o, "groups");
        for (int g = 0; g < m->n_groups; g++) {
            cJSON *arr = top_array(m, probs, m->group_lo[g], m->group_hi[g], r->top, order);
            cJSON *e = cJSON_AddObjectToObject(gr, m->group_names[g]);
            cJSON_AddStringToObject(e, "class", m->classes[order[0].idx]);
            cJSON_AddNumberToObject(e, "probability", order[0].p);
            cJSON_AddItemToObject(e, "top", arr);
        }
    }
    cJSON_AddItemToObject(o, "top", top_array(m, probs, 0, m->n_classes, r->top, order));
    cJSON *im = cJSON_AddObjectToObject(o, "image");
    if (r->filename[0]) cJSON_AddStringToObject(im, "name", r->filename);
    cJSON_AddNumberToObject(im, "width", info.width);
    cJSON_AddNumberToObject(im, "height", info.height);
    cJSON_AddNumberToObject(im, "bytes", (double)image_bytes);
    cJSON_AddBoolToObject(o, "tta", views > 0);
    cJSON_AddNumberToObject(o, "views", views + 1);
    cJSON_AddNumberToObject(o, "queue_ms", queue_s * 1e3);
    cJSON_AddNumberToObject(o, "decode_ms", info.decode_ms);
    cJSON_AddNumberToObject(o, "compute_ms", info.compute_ms);
    cJSON_AddNumberToObject(o, "time_ms", (now_s() - r->t0) * 1e3);
    free(probs);
    free(order);
    return respond_json(c, r, MHD_HTTP_OK, o, NULL);
}

/* the first call for a request: everything that can be judged from the headers */
static enum MHD_Result on_headers(struct MHD_Connection *c, req *r, const char *url, const char *method) {
    server *s = r->s;
    char msg[512];
    if (r->route == ROUTE_OTHER) {
        snprintf(msg, sizeof msg, "no such path: %.200s (the service has /, /predict, /healthz, /model, /metrics)", url);
        return respond_error(c, r, MHD_HTTP_NOT_FOUND, msg, NULL);
    }
    if (r->route == ROUTE_PREDICT ? strcmp(method, "POST") != 0 : !is_get(method)) {
        const char *allow = r->route == ROUTE_PREDICT ? "POST" : "GET, HEAD";
        snprintf(msg, sizeof msg, "%.32s is not allowed on %s (use %s)", method, stats_route_path(r->route), allow);
        return respond_error(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, msg, allow);
    }
    switch (r->route) {
    case ROUTE_PAGE:
        return respond(c, r, MHD_HTTP_OK, "text/html; charset=utf-8", (void *)serve_page_html, strlen(serve_page_html),
                       MHD_RESPMEM_PERSISTENT, NULL);
    case ROUTE_HEALTHZ: return answer_healthz(c, r);
    case ROUTE_MODEL:
        return respond(c, r, MHD_HTTP_OK, "application/json", s->model_json, strlen(s->model_json),
                       MHD_RESPMEM_PERSISTENT, NULL);
    case ROUTE_METRICS: return answer_metrics(c, r);
    default: break;
    }
    /* POST /predict: query, content type, declared length */
    const char *tta = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tta");
    r->tta = s->o.tta;
    if (tta) {
        if (!strcmp(tta, "1") || !strcasecmp(tta, "true") || !strcasecmp(tta, "yes")) r->tta = true;
        else if (!strcmp(tta, "0") || !strcasecmp(tta, "false") || !strcasecmp(tta, "no")) r->tta = false;
        else {
            snprintf(msg, sizeof msg, "tta=%.40s: expected tta=1 or tta=0", tta);
            return respond_error(c, r, MHD_HTTP_BAD_REQUEST, msg, NULL);
        }
    }
    const char *top = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "top");
    r->top = s->o.top < s->model->n_classes ? s->o.top : s->model->n_classes;
    if (top) {
        char *end;
        long k = strtol(top, &end, 10);
        if (!*top || *end || k < 1 || k > s->model->n_classes) {
            snprintf(msg, sizeof msg, "top=%.40s: expected a number of classes from 1 to %d", top,
                     s->model->n_classes);
            return respond_error(c, r, MHD_HTTP_BAD_REQUEST, msg, NULL);
        }
        r->top = (int)k;
    }
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (len) {
        char *end;
        unsigned long long n = strtoull(len, &end, 10);
        if (end != len && n > s->o.max_body) {
            snprintf(msg, sizeof msg, "request body of %llu bytes is larger than the limit of %zu bytes", n,
                     s->o.max_body);
            return respond_error(c, r, MHD_HTTP_CONTENT_TOO_LARGE, msg, NULL);
        }
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct && media_is(ct, "multipart/form-data")) {
        r->form = true;
        r->pp = MHD_create_post_processor(c, 16 << 10, on_field, r);
        if (!r->pp)
            return respond_error(c, r, MHD_HTTP_BAD_REQUEST, "multipart/form-data without a valid boundary", NULL);
    } else if (ct && ct[0] && !media_is(ct, "image/png") && !media_is(ct, "image/jpeg") &&
               !media_is(ct, "image/jpg") && !media_is(ct, "image/webp") && !media_is(ct, "application/octet-stream")) {
        /* curl --data-binary says application/x-www-form-urlencoded: the bytes decide */
        r->sniff = true;
        snprintf(r->ctype, sizeof r->ctype, "%.100s", ct);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
    (void)version;
    server *s = cls;
    req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->s = s;
        r->t0 = now_s();
        r->route = route_of(url);
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->url, sizeof r->url, "%s", url);
        *con_cls = r;
        return on_headers(c, r, url, method);
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        r->received += n;
        if (r->err_status) /* discarding the rest of a refused body, but not forever */
            return r->received > 2 * s->o.max_body + (1u << 20) ? MHD_NO : MHD_YES;
        if (r->received > s->o.max_body) {
            drop_body(r);
            fail_later(r, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than the limit of %zu bytes",
                       s->o.max_body);
        } else if (r->pp) {
            if (MHD_post_process(r->pp, upload_data, n) != MHD_YES)
                fail_later(r, MHD_HTTP_BAD_REQUEST, "malformed multipart/form-data body");
        } else {
            append(r, upload_data, n);
        }
        return MHD_YES;
    }
    /* the whole request is in */
    if (r->pp) {
        enum MHD_Result ok = MHD_destroy_post_processor(r->pp);
        r->pp = NULL;
        if (ok != MHD_YES) fail_later(r, MHD_HTTP_BAD_REQUEST, "multipart/form-data body ends before its last boundary");
    }
    if (!r->err_status && r->sniff && !image_format(r->buf, r->len)) refuse_type(r);
    if (r->err_status) return respond_error(c, r, r->err_status, r->err, NULL);
    return answer_predict(c, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c;
    server *s = cls;
    req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    double end = r->status ? r->t_answer : now_s();
    if (r->status) {
        stats_request(s->stats, r->route, r->status, end - r->t0, r->status == 200 ? r->compute_s : -1);
    } else {
        int why = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? ABORT_TIMEOUT
                  : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT || toe == MHD_REQUEST_TERMINATED_READ_ERROR
                      ? ABORT_CLIENT
                  : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? ABORT_SHUTDOWN
                                                                  : ABORT_ERROR;
        stats_aborted(s->stats, r->route, why);
    }
    if (!s->o.quiet) {
        static const char *why[] = {"ok", "error", "timeout", "shutdown", "read error", "client gone"};
        const char *w = (unsigned)toe < sizeof why / sizeof why[0] ? why[toe] : "?";
        if (r->status)
            fprintf(stderr, "%s %s %d %.1f ms%s%s\n", r->method, r->url, r->status, (end - r->t0) * 1e3,
                    r->status >= 400 ? ": " : "", r->status >= 400 ? r->err : "");
        else
            fprintf(stderr, "%s %s cut off (%s) after %.1f ms\n", r->method, r->url, w, (end - r->t0) * 1e3);
    }
    if (r->pp) MHD_destroy_post_processor(r->pp);
    drop_body(r);
    free(r);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    (void)c;
    (void)socket_context;
    server *s = cls;
    stats_connection(s->stats, toe == MHD_CONNECTION_NOTIFY_STARTED);
}

static void on_log(void *cls, const char *fmt, va_list ap) {
    server *s = cls;
    if (s->o.quiet) return;
    fputs("stylenet serve: ", stderr);
    vfprintf(stderr, fmt, ap);
    size_t n = strlen(fmt);
    if (n == 0 || fmt[n - 1] != '\n') fputc('\n', stderr);
}

/* ------------------------------------------------------------------ start, stop */

/* what `stylenet info --json` prints, with a final newline */
static char *model_json(const classifier *m, const char *path) {
    char *s = classifier_info_json(m, path, false);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = 0;
    return t;
}

/* a Prometheus label value: backslash, double quote and newline escaped */
static void label_value(char *out, size_t cap, const char *v) {
    size_t k = 0;
    for (; *v && k + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') out[k++] = '\\';
        if (*v == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
            continue;
        }
        out[k++] = *v;
    }
    out[k] = 0;
}

server *server_start(const classifier *m, const serve_opts *o) {
    serve_opts op = o ? *o : serve_defaults();
    if (op.threads < 1 || op.max_body < 1 || op.max_connections < 1 || op.timeout_s < 1 || op.queue < 0 ||
        op.tta_views < 0 || op.tta_views > PRED_MAX_VIEWS || op.top < 1 || op.max_pixels < 1 || op.port < 0 ||
        op.port > 65535) {
        sn_error("serve: a limit is out of range (threads, max body, connections, timeout, queue, TTA views 0..%d, "
                 "top, pixels, port)",
                 PRED_MAX_VIEWS);
        return NULL;
    }
    if (op.max_buffered < op.max_body) op.max_buffered = op.max_body;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    int gai = getaddrinfo(op.host, NULL, &hints, &ai);
    if (gai != 0 || !ai) {
        sn_error("serve: cannot use host '%s': %s", op.host, gai ? gai_strerror(gai) : "no address");
        return NULL;
    }
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    bool v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (v6) ((struct sockaddr_in6 *)&addr)->sin6_port = htons((uint16_t)op.port);
    else ((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)op.port);

    server *s = calloc(1, sizeof *s);
    if (!s) {
        sn_error("out of memory");
        return NULL;
    }
    s->model = m;
    s->o = op;
    s->started = now_s();
    atomic_init(&s->buffered, 0);
    pred_opts po = pred_defaults();
    po.max_pixels = op.max_pixels;
    po.max_views = op.tta_views;
    po.max_waiting = op.queue;
    po.wait_ms = op.timeout_s * 1000;
    s->pool = pred_pool_create(m, op.threads, &po);
    s->stats = stats_create();
    s->model_json = model_json(m, op.model_path);
    char name[256], arch[64], task[32];
    label_value(name, sizeof name, op.model_name);
    label_value(arch, sizeof arch, m->arch);
    label_value(task, sizeof task, m->task);
    s->info_labels = malloc(512);
    if (!s->pool || !s->stats || !s->model_json || !s->info_labels) {
        if (s->pool) sn_error("out of memory");
        server_stop(s);
        return NULL;
    }
    snprintf(s->info_labels, 512, "name=\"%s\",arch=\"%s\",task=\"%s\",classes=\"%d\",size=\"%d\"", name, arch, task,
             m->n_classes, m->size);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    s->d = MHD_start_daemon(flags, (uint16_t)op.port, NULL, NULL, on_request, s,                   /* */
                            MHD_OPTION_EXTERNAL_LOGGER, on_log, s, /* first, so that MHD uses it throughout */
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,                         /* */
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)op.max_connections,             /* */
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)op.timeout_s,                 /* */
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,                           /* */
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,                         /* */
                            MHD_OPTION_END);
    if (!s->d) {
        sn_error("serve: cannot listen on %s port %d (in use, or not an address of this machine?)", op.host, op.port);
        server_stop(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : op.port;
    return s;
}

int server_port(const server *s) { return s->port; }

void server_stop(server *s) {
    if (!s) return;
    if (s->pool) pred_pool_shutdown(s->pool);
    if (s->d) MHD_stop_daemon(s->d);
    pred_pool_free(s->pool);
    stats_free(s->stats);
    free(s->model_json);
    free(s->info_labels);
    free(s);
}
