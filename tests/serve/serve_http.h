/* serve_http.h - for tests/serve/test_serve.c (static inline functions): `stylenet serve` as a
 * child process, a tiny HTTP/1.1 client over real sockets, and comparisons of its answers.
 *
 * Contract
 * - serve_start(s, bin, dir, name, env, args) runs `env BIN serve --port 0 ARGS` with its output
 *   in DIR/NAME.log (env: "" or an env(1) prefix such as "env -u VAR"), and waits (at most 120 s:
 *   model loading, slower under ASan) until the log names the port it listens on: 0, or -1 if it
 *   exited or never said.  serve_stop() sends SIGTERM and returns the exit status (128 + signal
 *   if killed; -1 if it was not running or did not stop within 60 s, then it is killed).
 *   serve_log() is the tail of the log on one line.
 * - http() sends one request on a new connection (Connection: close) and reads the answer to
 *   EOF: resp.status is the answer's status, 0 when none came (the connection was closed, reset
 *   or timed out first).  It returns -1 only when neither the request could be sent nor an
 *   answer read.  post_partial() and post_chunked() send what a well-behaved client would not
 *   (half a body, a body past the limit).  Every resp is released with resp_free.
 * - same_prediction() compares an answer with `stylenet predict --json`; answer_key() is an
 *   answer's probabilities as a string, for exact comparisons; par_client() and one_client()
 *   are thread bodies sending requests in parallel.
 * - header(), error_of() and flat() return static buffers (one call at a time).
 */
#ifndef STYLENET_TEST_SERVE_HTTP_H
#define STYLENET_TEST_SERVE_HTTP_H
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/file.h"

static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* the first n bytes of s on one line (newlines shown as '|') */
static inline const char *flat(const char *s, size_t n) {
    static char buf[2048];
    snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf - 1 ? n : sizeof buf - 1), s ? s : "");
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r') *p = '|';
    return buf;
}

/* ------------------------------------------------------------------ server processes */

typedef struct {
    pid_t pid; /* 0: not running */
    int port;
    char log[4200];
} server;

static inline int serve_start(server *s, const char *bin, const char *dir, const char *name, const char *env,
                              const char *args) {
    snprintf(s->log, sizeof s->log, "%s/%s.log", dir, name);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "exec %s %s serve --port 0 %s > %s 2>&1", env, bin, args, s->log);
    s->port = 0;
    s->pid = fork();
    if (s->pid < 0) {
        s->pid = 0;
        return -1;
    }
    if (s->pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (double t0 = now(); now() - t0 < 120;) {
        size_t n;
        uint8_t *text = sn_read_file(s->log, &n, 1 << 20);
        const char *u = text ? memmem(text, n, "http://127.0.0.1:", 17) : NULL;
        if (u) s->port = atoi(u + 17);
        free(text);
        if (s->port > 0) return 0;
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return -1;
        }
        usleep(50000);
    }
    return -1;
}

static inline const char *serve_log(const server *s) {
    static char buf[4096];
    size_t n = 0;
    uint8_t *text = sn_read_file(s->log, &n, 1 << 24);
    size_t start = n > 1500 ? n - 1500 : 0;
    snprintf(buf, sizeof buf, "%s", text ? flat((char *)text + start, n - start) : "(no log)");
    free(text);
    return buf;
}

static inline int serve_stop(server *s) {
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    for (double t0 = now(); now() - t0 < 60; usleep(20000)) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

/* whether a running process's environment holds `entry` ("NAME=value") */
static inline bool environ_has(pid_t pid, const char *entry) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    static char env[1 << 16];
    FILE *f = fopen(path, "rb"); /* /proc files have no size: read to the end */
    size_t en = f ? fread(env, 1, sizeof env - 1, f) : 0;
    if (f) fclose(f);
    env[en] = 0;
    for (size_t k = 0; k < en; k += strlen(env + k) + 1)
        if (!strcmp(env + k, entry)) return true;
    return false;
}

/* resident memory of a process in kB, -1 if unknown */
static inline long rss_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

/* ------------------------------------------------------------------ a tiny HTTP client */

typedef struct {
    int status;      /* 0: no answer (connection closed, reset or timed out) */
    char head[8192]; /* status line and headers */
    char *body;
    size_t n;
} resp;

static inline void resp_free(resp *r) {
    free(r->body);
    r->body = NULL;
}

/* a connection to the loopback port with send and receive timeouts; -1 if refused */
static inline int connect_port(int port, int timeout_s) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline int send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* reads to EOF and splits status, headers and body (the requests say Connection: close) */
static inline void read_response(int fd, resp *r) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    memset(r, 0, sizeof *r);
    if (!buf) return;
    for (;;) {
        if (n + 4096 > cap) {
            char *more = realloc(buf, cap * 2);
            if (!more) break;
            buf = more;
            cap *= 2;
        }
        ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
        if (k <= 0) break;
        n += (size_t)k;
    }
    buf[n] = 0;
    char *end = strstr(buf, "\r\n\r\n");
    if (n > 12 && !strncmp(buf, "HTTP/1.", 7) && end) {
        r->n = n - (size_t)(end + 4 - buf);
        r->body = malloc(r->n + 1);
        if (r->body) {
            r->status = atoi(buf + 9);
            snprintf(r->head, sizeof r->head, "%.*s", (int)(end - buf), buf);
            memcpy(r->body, end + 4, r->n);
            r->body[r->n] = 0;
        } else {
            r->n = 0;
        }
    }
    free(buf);
}

/* one request on a new connection; extra_headers end with \r\n or are "" */
static inline int http(int port, const char *method, const char *path, const char *extra_headers, const void *body,
                       size_t n, resp *r) {
    memset(r, 0, sizeof *r);
    int fd = connect_port(port, 120);
    if (fd < 0) return -1;
    char head[4096];
    int k = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method, path,
                     extra_headers);
    if (body || !strcmp(method, "POST")) k += snprintf(head + k, sizeof head - (size_t)k, "Content-Length: %zu\r\n", n);
    snprintf(head + k, sizeof head - (size_t)k, "\r\n");
    int ok = send_all(fd, head, strlen(head)) == 0 && (!n || send_all(fd, body, n) == 0);
    read_response(fd, r);
    close(fd);
    return ok || r->status ? 0 : -1;
}

static inline int post_image(int port, const char *path, const char *ctype, const uint8_t *img, size_t n, resp *r) {
    char h[256];
    snprintf(h, sizeof h, "Content-Type: %s\r\n", ctype);
    return http(port, "POST", path, h, img, n, r);
}

#define BOUNDARY "----stylenetTestBoundary7MA4YWxk"

/* a form with a text field, then the file in `field`; without the closing boundary if `cut`;
 * NULL if out of memory */
static inline uint8_t *multipart(const char *field, const char *filename, const uint8_t *data, size_t n, bool cut,
                                 size_t *len) {
    uint8_t *b = malloc(n + 1024);
    if (!b) return NULL;
    size_t k = (size_t)snprintf((char *)b, 1024,
                                "--%s\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
                                "--%s\r\nContent-Disposition: form-data; name=\"%.100s\"; filename=\"%.100s\"\r\n"
                                "Content-Type: image/png\r\n\r\n",
                                BOUNDARY, BOUNDARY, field, filename);
    memcpy(b + k, data, n);
    k += n;
    if (!cut) k += (size_t)sprintf((char *)b + k, "\r\n--%s--\r\n", BOUNDARY);
    *len = k;
    return b;
}

static inline int post_form(int port, const char *field, const char *filename, const uint8_t *img, size_t n, bool cut,
                            resp *r) {
    size_t len;
    uint8_t *body = multipart(field, filename, img, n, cut, &len);
    if (!body) {
        memset(r, 0, sizeof *r);
        return -1;
    }
    char h[256];
    snprintf(h, sizeof h, "Content-Type: multipart/form-data; boundary=%s\r\n", BOUNDARY);
    int rc = http(port, "POST", "/predict", h, body, len, r);
    free(body);
    return rc;
}

/* a POST /predict with Content-Length `declared` and the first `send_n` bytes of body on a new
 * connection, the write side then shut if `shut`; the answer in r */
static inline void post_partial(int port, const char *declared, const uint8_t *body, size_t send_n, bool shut, resp *r) {
    int fd = connect_port(port, 30);
    char req[256];
    snprintf(req, sizeof req, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %s\r\n\r\n",
             declared);
    if (fd >= 0 && send_all(fd, req, strlen(req)) == 0 && send_n) send_all(fd, body, send_n);
    if (fd >= 0 && shut) shutdown(fd, SHUT_WR);
    if (fd >= 0) read_response(fd, r);
    else memset(r, 0, sizeof *r);
    if (fd >= 0) close(fd);
}

/* a chunked POST /predict of `chunks` chunks of 64 KiB on a new connection; the answer in r,
 * whether every byte could be sent */
static inline bool post_chunked(int port, int chunks, resp *r) {
    static char chunk[65536 + 16];
    int fd = connect_port(port, 30);
    const char *req = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n";
    bool sent = fd >= 0 && send_all(fd, req, strlen(req)) == 0;
    int hl = sprintf(chunk, "10000\r\n");
    memset(chunk + hl, 'x', 65536);
    memcpy(chunk + hl + 65536, "\r\n", 2);
    for (int i = 0; i < chunks && sent; i++) sent = send_all(fd, chunk, (size_t)hl + 65538) == 0;
    if (sent) sent = send_all(fd, "0\r\n\r\n", 5) == 0;
    if (fd >= 0) read_response(fd, r);
    else memset(r, 0, sizeof *r);
    if (fd >= 0) close(fd);
    return sent;
}

/* the value of a response header, or NULL */
static inline const char *header(const resp *r, const char *name) {
    static char v[256];
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        if (!strncasecmp(p + 2, name, nl) && p[2 + nl] == ':') {
            const char *s = p + 3 + nl;
            while (*s == ' ') s++;
            size_t m = strcspn(s, "\r\n");
            snprintf(v, sizeof v, "%.*s", (int)m, s);
            return v;
        }
    return NULL;
}

/* {"error": "..."} of an answer, or "" */
static inline const char *error_of(const resp *r) {
    static char msg[600];
    msg[0] = 0;
    cJSON *j = r->body ? cJSON_Parse(r->body) : NULL;
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    if (cJSON_IsString(e)) snprintf(msg, sizeof msg, "%s", e->valuestring);
    cJSON_Delete(j);
    return msg;
}

/* the value of one series ("name{labels}") in Prometheus text, or -1 */
static inline double metric(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, series, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
    return -1;
}

/* one series of the server's GET /metrics, or -1 */
static inline double get_metric(int port, const char *series) {
    resp r;
    if (http(port, "GET", "/metrics", "", NULL, 0, &r) < 0 || r.status != 200) {
        resp_free(&r);
        return -1;
    }
    double v = metric(r.body, series);
    resp_free(&r);
    return v;
}

/* polls a counter (every 20 ms, at most 1 s) until it passes `above`; its last value */
static inline double wait_metric_above(int port, const char *series, double above) {
    double v = -1;
    for (int i = 0; i < 50 && v <= above; i++, usleep(20000)) v = get_metric(port, series);
    return v;
}
/* ------------------------------------------------------------------ comparing answers */

/* the serve answer's groups and top list against a `predict --json` result; worst |dp| */
static inline bool same_prediction(const cJSON *a, const cJSON *p, double *worst, char *why, size_t cap) {
    *worst = 0;
    snprintf(why, cap, "%s", "");
    const cJSON *ga = cJSON_GetObjectItem(a, "groups"), *gp = cJSON_GetObjectItem(p, "groups");
    if ((ga == NULL) != (gp == NULL)) {
        snprintf(why, cap, "groups in one answer only");
        return false;
    }
    for (const cJSON *g = gp ? gp->child : NULL; g; g = g->next) {
        const cJSON *h = cJSON_GetObjectItem(ga, g->string);
        const char *ca = cJSON_GetStringValue(cJSON_GetObjectItem(h, "class"));
        const char *cp = cJSON_GetStringValue(cJSON_GetObjectItem(g, "class"));
        if (!ca || !cp || strcmp(ca, cp)) {
            snprintf(why, cap, "group %s: %s vs %s", g->string, ca ? ca : "?", cp ? cp : "?");
            return false;
        }
        double d = fabs(cJSON_GetNumberValue(cJSON_GetObjectItem(h, "probability")) -
                        cJSON_GetNumberValue(cJSON_GetObjectItem(g, "probability")));
        if (d > *worst) *worst = d;
    }
    const cJSON *ta = cJSON_GetObjectItem(a, "top"), *tp = cJSON_GetObjectItem(p, "top");
    if (cJSON_GetArraySize(ta) != cJSON_GetArraySize(tp) || cJSON_GetArraySize(tp) == 0) {
        snprintf(why, cap, "top lists of %d and %d", cJSON_GetArraySize(ta), cJSON_GetArraySize(tp));
        return false;
    }
    for (int i = 0; i < cJSON_GetArraySize(tp); i++) {
        const cJSON *x = cJSON_GetArrayItem(ta, i), *y = cJSON_GetArrayItem(tp, i);
        if (cJSON_GetNumberValue(cJSON_GetObjectItem(x, "index")) != cJSON_GetNumberValue(cJSON_GetObjectItem(y, "index"))) {
            snprintf(why, cap, "top %d: class %g vs %g", i, cJSON_GetNumberValue(cJSON_GetObjectItem(x, "index")),
                     cJSON_GetNumberValue(cJSON_GetObjectItem(y, "index")));
            return false;
        }
        double d = fabs(cJSON_GetNumberValue(cJSON_GetObjectItem(x, "probability")) -
                        cJSON_GetNumberValue(cJSON_GetObjectItem(y, "probability")));
        if (d > *worst) *worst = d;
    }
    return *worst <= 1e-6;
}

/* the probabilities of an answer's top list as a string, for exact comparisons */
static inline void answer_key(const resp *r, char *key, size_t cap) {
    cJSON *j = r->body ? cJSON_Parse(r->body) : NULL;
    cJSON *t = cJSON_GetObjectItem(j, "top"), *g = cJSON_GetObjectItem(j, "groups");
    char *a = t ? cJSON_PrintUnformatted(t) : NULL, *b = g ? cJSON_PrintUnformatted(g) : NULL;
    snprintf(key, cap, "%s %s", a ? a : "-", b ? b : "-");
    free(a);
    free(b);
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------ parallel clients */

typedef struct {
    int port, n_img, rounds;
    uint8_t **img;
    size_t *len;
    char (*want)[4096];
    int wrong, failed;
} par_job;

static inline void *par_client(void *arg) {
    par_job *j = arg;
    for (int r = 0; r < j->rounds; r++)
        for (int i = 0; i < j->n_img; i++) {
            resp res;
            char key[4096];
            if (post_image(j->port, "/predict", "image/png", j->img[i], j->len[i], &res) < 0 || res.status != 200) {
                j->failed++;
            } else {
                answer_key(&res, key, sizeof key);
                if (strcmp(key, j->want[i])) j->wrong++;
            }
            resp_free(&res);
        }
    return NULL;
}

typedef struct {
    int port;
    uint8_t *img;
    size_t n;
    int status;
    char retry[32];
} one_job;

static inline void *one_client(void *arg) {
    one_job *j = arg;
    resp r;
    j->status = post_image(j->port, "/predict?tta=1", "image/png", j->img, j->n, &r) < 0 ? -1 : r.status;
    const char *h = header(&r, "Retry-After");
    snprintf(j->retry, sizeof j->retry, "%s", h ? h : "");
    resp_free(&r);
    return NULL;
}
#endif
