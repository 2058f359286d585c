/* test_serve.c - `stylenet serve` over real sockets, with a tiny HTTP client written here.
 *
 * Two servers run as child processes on free ports: a Style model trained by this test in a few
 * seconds (MobileNetV2 from the TFLite weights, head only, 64 px), and the ImageNet TFLite model
 * itself with its labels.  Checked:
 *   - POST /predict, raw and multipart, gives the same classes and probabilities as
 *     `stylenet predict --json` on the same file; a JPEG; ?tta=1 (5 views, deterministic);
 *     ?top=K; the ImageNet bird is a chickadee;
 *   - requests in parallel from several threads give exactly the answers given one at a time
 *     (the workers share the weights);
 *   - GET /model equals `stylenet info --json`; /healthz; /metrics counters go up;
 *   - 404, 405 (with Allow), 413 (declared and chunked), 415, 422 (not an image, truncated PNG,
 *     too many pixels), 400 (bad query, multipart without the image, truncated multipart, empty),
 *     503 when the one worker is busy and no request may wait;
 *   - a client that sends half a body and closes, a slow client cut off by the timeout while
 *     other requests are served, a flood of 200 connections: the server keeps answering;
 *   - the page in headless Chromium (tools/serve_page_test.py): upload a photo, read the shown
 *     prediction, screenshot into the build folder;
 *   - a 3 s load test with wrk (requests/s, p50, p99, no errors);
 *   - resident memory after all of it stays within a bound; SIGTERM stops the server cleanly
 *     (exit 0; under ASan that includes LeakSanitizer's check). */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../common/check.h"
#include "core/file.h"
#include "io/image.h"

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif
#ifndef ASAN
#define ASAN 0
#endif

static char out[1 << 18];
static const char *bin;
static char dir[] = "/tmp/stylenet_serve_XXXXXX";

#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static const char *flat(const char *s, size_t n) {
    static char buf[2048];
    snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf - 1 ? n : sizeof buf - 1), s ? s : "");
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r') *p = '|';
    return buf;
}

/* ------------------------------------------------------------------ server processes */

typedef struct {
    pid_t pid;
    int port;
    char log[4200];
} server;

static int start_server(server *s, const char *name, const char *args) {
    snprintf(s->log, sizeof s->log, "%s/%s.log", dir, name);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "exec %s serve --port 0 %s > %s 2>&1", bin, args, s->log);
    s->port = 0;
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (double t0 = now(); now() - t0 < 120;) { /* model load; slower under ASan */
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

static const char *server_log(const server *s) {
    static char buf[4096];
    size_t n = 0;
    uint8_t *text = sn_read_file(s->log, &n, 1 << 24);
    size_t start = n > 1500 ? n - 1500 : 0;
    snprintf(buf, sizeof buf, "%s", text ? flat((char *)text + start, n - start) : "(no log)");
    free(text);
    return buf;
}

/* SIGTERM, then the exit status (-1: did not stop within the time) */
static int stop_server(server *s) {
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

static long rss_kb(pid_t pid) {
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
    int status;       /* 0: no answer (connection closed or failed) */
    char head[8192];  /* status line and headers */
    char *body;
    size_t n;
} resp;

static void resp_free(resp *r) {
    free(r->body);
    r->body = NULL;
}

static int connect_port(int port, int timeout_s) {
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

static int send_all(int fd, const void *p, size_t n) {
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
static void read_response(int fd, resp *r) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
        if (k <= 0) break;
        n += (size_t)k;
    }
    buf[n] = 0;
    r->status = 0;
    r->head[0] = 0;
    r->body = NULL;
    r->n = 0;
    char *end = strstr(buf, "\r\n\r\n");
    if (n > 12 && !strncmp(buf, "HTTP/1.", 7) && end) {
        r->status = atoi(buf + 9);
        snprintf(r->head, sizeof r->head, "%.*s", (int)(end - buf), buf);
        r->n = n - (size_t)(end + 4 - buf);
        r->body = malloc(r->n + 1);
        memcpy(r->body, end + 4, r->n);
        r->body[r->n] = 0;
    }
    free(buf);
}

/* one request on a new connection; extra_headers end with \r\n or are "" */
static int http(int port, const char *method, const char *path, const char *extra_headers, const void *body,
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

static int post_image(int port, const char *path, const char *ctype, const uint8_t *img, size_t n, resp *r) {
    char h[256];
    snprintf(h, sizeof h, "Content-Type: %s\r\n", ctype);
    return http(port, "POST", path, h, img, n, r);
}

static const char *BOUNDARY = "----stylenetTestBoundary7MA4YWxk";

/* a form with a text field, then the file in `field`; without the closing boundary if `cut` */
static uint8_t *multipart(const char *field, const char *filename, const uint8_t *data, size_t n, bool cut,
                          size_t *len) {
    uint8_t *b = malloc(n + 1024);
    size_t k = (size_t)sprintf((char *)b,
                               "--%s\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
                               "--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                               "Content-Type: image/png\r\n\r\n",
                               BOUNDARY, BOUNDARY, field, filename);
    memcpy(b + k, data, n);
    k += n;
    if (!cut) k += (size_t)sprintf((char *)b + k, "\r\n--%s--\r\n", BOUNDARY);
    *len = k;
    return b;
}

static int post_form(int port, const char *field, const char *filename, const uint8_t *img, size_t n, bool cut,
                     resp *r) {
    size_t len;
    uint8_t *body = multipart(field, filename, img, n, cut, &len);
    char h[256];
    snprintf(h, sizeof h, "Content-Type: multipart/form-data; boundary=%s\r\n", BOUNDARY);
    int rc = http(port, "POST", "/predict", h, body, len, r);
    free(body);
    return rc;
}

static const char *header(const resp *r, const char *name) {
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
static const char *error_of(const resp *r) {
    static char msg[600];
    msg[0] = 0;
    cJSON *j = r->body ? cJSON_Parse(r->body) : NULL;
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    if (cJSON_IsString(e)) snprintf(msg, sizeof msg, "%s", e->valuestring);
    cJSON_Delete(j);
    return msg;
}

/* the value of one series ("name{labels}") in Prometheus text, or -1 */
static double metric(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, series, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
    return -1;
}

static double get_metric(int port, const char *series) {
    resp r;
    if (http(port, "GET", "/metrics", "", NULL, 0, &r) < 0 || r.status != 200) return -1;
    double v = metric(r.body, series);
    resp_free(&r);
    return v;
}

/* ------------------------------------------------------------------ comparing answers */

/* the serve answer's groups and top list against a `predict --json` result; worst |dp| */
static bool same_prediction(const cJSON *a, const cJSON *p, double *worst, char *why, size_t cap) {
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

/* `stylenet predict --json` of one image: results[0] (owned by *doc) */
static const cJSON *cli_predict(const char *model_args, const char *image, cJSON **doc) {
    int rc = run("%s predict %s --threads 1 --json %s", bin, model_args, image);
    const char *brace = strchr(out, '{');
    *doc = rc == 0 && brace ? cJSON_Parse(brace) : NULL;
    return cJSON_GetArrayItem(cJSON_GetObjectItem(*doc, "results"), 0);
}

/* the probabilities of an answer's top list as a string, for exact comparisons */
static void answer_key(const resp *r, char *key, size_t cap) {
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

static void *par_client(void *arg) {
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

static void *one_client(void *arg) {
    one_job *j = arg;
    resp r;
    j->status = post_image(j->port, "/predict?tta=1", "image/png", j->img, j->n, &r) < 0 ? -1 : r.status;
    const char *h = header(&r, "Retry-After");
    snprintf(j->retry, sizeof j->retry, "%s", h ? h : "");
    resp_free(&r);
    return NULL;
}

/* ------------------------------------------------------------------ the tests */

static uint8_t *load(const char *path, size_t *n) {
    uint8_t *b = sn_read_file(path, n, 1 << 26);
    if (!b) *n = 0;
    return b;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return check_exit();
    double t_start = now();
    char tflite[4096], labels[4096], bird[4096], style[4096], model[4300], margs[8192];
    snprintf(tflite, sizeof tflite, "%s", shared_path("weights/mobilenet_v2_1.0_224_quant.tflite"));
    snprintf(labels, sizeof labels, "%s", shared_path("weights/imagenet_labels.txt"));
    snprintf(bird, sizeof bird, "%s", shared_path("weights/imagenet-check/bird.png"));
    snprintf(style, sizeof style, "%s", shared_path("data/style"));
    snprintf(model, sizeof model, "%s/style.stn", dir);

    /* the ImageNet server: one worker, nobody may wait (for the 503 case) */
    server B = {0}, A = {0};
    snprintf(margs, sizeof margs, "--model %s --labels %s --threads 1 --queue 0 --quiet", tflite, labels);
    int started = start_server(&B, "imagenet", margs);
    if (!check(started == 0, "ImageNet server starts on a free port (%d)%s%s", B.port, started ? ": " : "",
               started ? server_log(&B) : ""))
        return check_exit();

    /* a Style model in seconds: head only on precomputed activations, 64 px, one thread */
    double t0 = now();
    int rc = run("%s train --data %s --task multi --pretrained %s --recipe seed --lr 0.03 --head-epochs 3 "
                 "--head-aug-epochs 0 --cycles 0 --size 64 --tta 0 --threads 1 --quiet --out %s",
                 bin, style, tflite, model);
    if (!check(rc == 0, "a Style model trained for the test in %.1f s%s%s", now() - t0, rc ? ": " : "",
               rc ? flat(out, 600) : ""))
        goto end;
    snprintf(margs, sizeof margs, "--model %s --threads 2 --timeout 2 --max-body 1M --max-connections 32 --quiet",
             model);
    started = start_server(&A, "style", margs);
    if (!check(started == 0, "Style server starts on a free port (%d)%s%s", A.port, started ? ": " : "",
               started ? server_log(&A) : ""))
        goto end;
    note("servers up after %.1f s (Style on port %d, ImageNet on port %d)", now() - t_start, A.port, B.port);

    resp r;
    char why[512] = "";
    double worst = -1;
    cJSON *doc, *ans;
    const cJSON *ref;

    /* ---- /healthz, /model */
    check(http(A.port, "GET", "/healthz", "", NULL, 0, &r) == 0 && r.status == 200 && strstr(r.body, "\"ok\"") &&
              strstr(r.body, "\"workers\":2"),
          "GET /healthz: 200 %s", flat(r.body, 200));
    resp_free(&r);
    http(A.port, "GET", "/model", "", NULL, 0, &r);
    rc = run("%s info --json %s", bin, model);
    cJSON *info = rc == 0 ? cJSON_Parse(out) : NULL, *served = r.body ? cJSON_Parse(r.body) : NULL;
    check(r.status == 200 && info && served && cJSON_Compare(info, served, true),
          "GET /model is what `stylenet info --json` says (%d, %zu bytes)", r.status, r.n);
    const cJSON *classes = cJSON_GetObjectItem(served, "classes");
    resp_free(&r);

    /* ---- predictions: the same as `stylenet predict` */
    char photo[4400];
    snprintf(photo, sizeof photo, "%s/3_2_001.png", style);
    size_t pn;
    uint8_t *png = load(photo, &pn);
    post_image(A.port, "/predict", "image/png", png, pn, &r);
    ans = r.body ? cJSON_Parse(r.body) : NULL;
    snprintf(margs, sizeof margs, "--model %s", model);
    ref = cli_predict(margs, photo, &doc);
    check(r.status == 200 && ans && ref && same_prediction(ans, ref, &worst, why, sizeof why),
          "raw PNG body: brand, product and top-5 as `stylenet predict` (worst |dp| %.2g) %s", worst, why);
    const char *mname = cJSON_GetStringValue(cJSON_GetObjectItem(ans, "model"));
    check(mname && !strcmp(mname, "style.stn") &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(ans, "time_ms")) > 0 &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "image"), "width")) == 150 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "groups"), "brand"),
                                                     "top")) == 5,
          "the answer names the model, the time, the image size, and each group's top 5: %s", flat(r.body, 300));
    char key_raw[4096], key[4096];
    answer_key(&r, key_raw, sizeof key_raw);
    cJSON_Delete(ans);
    cJSON_Delete(doc);
    resp_free(&r);

    post_form(A.port, "image", "bag.png", png, pn, false, &r);
    answer_key(&r, key, sizeof key);
    check(r.status == 200 && !strcmp(key, key_raw) && strstr(r.body, "\"name\":\"bag.png\""),
          "multipart form (a text field, then the file): the same answer as the raw body (%d)", r.status);
    resp_free(&r);
    post_form(A.port, "upload", "bag.png", png, pn, false, &r);
    answer_key(&r, key, sizeof key);
    check(r.status == 200 && !strcmp(key, key_raw), "multipart: a file under another field name is taken too (%d)",
          r.status);
    resp_free(&r);

    http(A.port, "POST", "/predict?tta=1", "Content-Type: application/octet-stream\r\n", png, pn, &r);
    char key_tta[4096];
    answer_key(&r, key_tta, sizeof key_tta);
    check(r.status == 200 && strstr(r.body, "\"tta\":true") && strstr(r.body, "\"views\":5") &&
              strcmp(key_tta, key_raw) != 0,
          "?tta=1: 5 views averaged, probabilities differ from the plain answer (%d)", r.status);
    resp_free(&r);
    http(A.port, "POST", "/predict?tta=1", "", png, pn, &r); /* no content type: taken as raw bytes */
    answer_key(&r, key, sizeof key);
    check(r.status == 200 && !strcmp(key, key_tta), "TTA is deterministic (same bytes, same answer), no content type is fine");
    resp_free(&r);
    post_image(A.port, "/predict?top=3&tta=0", "image/png", png, pn, &r);
    ans = r.body ? cJSON_Parse(r.body) : NULL;
    check(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(ans, "top")) == 3 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(
                  cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "groups"), "product"), "top")) == 3,
          "?top=3: three classes overall and per group");
    cJSON_Delete(ans);
    resp_free(&r);

    char jpeg_path[4096];
    size_t jn = 0;
    uint8_t *jpeg = NULL;
    image jim = {0};
    if (find_repo_dir("tests/fuzz/corpus/image", jpeg_path, sizeof jpeg_path)) {
        strncat(jpeg_path, "/seed_baseline.jpg", sizeof jpeg_path - strlen(jpeg_path) - 1);
        jpeg = load(jpeg_path, &jn);
    }
    if (jpeg) image_decode(jpeg, jn, "seed_baseline.jpg", &jim);
    post_image(A.port, "/predict", "image/jpeg", jpeg, jn, &r);
    ans = r.body ? cJSON_Parse(r.body) : NULL;
    check(jpeg && jim.w > 0 && r.status == 200 &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "image"), "width")) == jim.w &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "image"), "height")) == jim.h,
          "a JPEG (image/jpeg): 200, its %dx%d pixels decoded", jim.w, jim.h);
    cJSON_Delete(ans);
    image_free(&jim);
    resp_free(&r);

    /* ---- the ImageNet model: the check photo is a chickadee, as `stylenet predict` says */
    size_t bn;
    uint8_t *bird_png = load(bird, &bn);
    post_image(B.port, "/predict", "image/png", bird_png, bn, &r);
    ans = r.body ? cJSON_Parse(r.body) : NULL;
    snprintf(margs, sizeof margs, "--model %s --labels %s", tflite, labels);
    ref = cli_predict(margs, bird, &doc);
    worst = -1;
    why[0] = 0;
    const char *top1 = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(ans, "top"), 0), "class"));
    check(r.status == 200 && top1 && !strcmp(top1, "chickadee") && ref && same_prediction(ans, ref, &worst, why, sizeof why),
          "ImageNet TFLite: bird.png is a %s, top-5 as `stylenet predict` (worst |dp| %.2g) %s", top1 ? top1 : "?",
          worst, why);
    cJSON_Delete(ans);
    cJSON_Delete(doc);
    resp_free(&r);

    /* ---- 503: the one worker is busy and no request may wait */
    int got200 = 0, got503 = 0, other = 0;
    bool retry_after = true;
    for (int round = 0; round < 3 && !(got200 && got503); round++) {
        one_job jobs[6];
        pthread_t th[6];
        for (int i = 0; i < 6; i++) {
            jobs[i] = (one_job){.port = B.port, .img = bird_png, .n = bn};
            pthread_create(&th[i], NULL, one_client, &jobs[i]);
        }
        for (int i = 0; i < 6; i++) {
            pthread_join(th[i], NULL);
            got200 += jobs[i].status == 200;
            got503 += jobs[i].status == 503;
            other += jobs[i].status != 200 && jobs[i].status != 503;
            if (jobs[i].status == 503 && strcmp(jobs[i].retry, "1")) retry_after = false;
        }
    }
    check(got200 > 0 && got503 > 0 && other == 0 && retry_after,
          "6 TTA requests at once on 1 worker with --queue 0: %d answered, %d got 503 with Retry-After, %d other",
          got200, got503, other);

    /* ---- parallel requests: each answer as when asked alone (workers share the weights) */
    {
        enum { NI = 4, NT = 4 };
        const char *names[NI] = {"0_0_001.png", "2_5_003.png", "4_7_002.png", "6_9_001.png"};
        uint8_t *img[NI];
        size_t len[NI];
        char want[NI][4096];
        int ok = 1;
        for (int i = 0; i < NI; i++) {
            char p[4400];
            snprintf(p, sizeof p, "%s/%s", style, names[i]);
            img[i] = load(p, &len[i]);
            ok &= img[i] && post_image(A.port, "/predict", "image/png", img[i], len[i], &r) == 0 && r.status == 200;
            answer_key(&r, want[i], sizeof want[i]);
            resp_free(&r);
        }
        par_job jobs[NT];
        pthread_t th[NT];
        double tp = now();
        for (int t = 0; t < NT; t++) {
            jobs[t] = (par_job){.port = A.port, .n_img = NI, .rounds = 3, .img = img, .len = len, .want = want};
            pthread_create(&th[t], NULL, par_client, &jobs[t]);
        }
        int wrong = 0, failed = 0;
        for (int t = 0; t < NT; t++) {
            pthread_join(th[t], NULL);
            wrong += jobs[t].wrong;
            failed += jobs[t].failed;
        }
        check(ok && wrong == 0 && failed == 0,
              "%d clients x %d requests in parallel: every answer equals the one-at-a-time answer (%d differ, %d failed, "
              "%.2f s)",
              NT, NI * 3, wrong, failed, now() - tp);
        for (int i = 0; i < NI; i++) free(img[i]);
    }
    long rss_warm = rss_kb(A.pid);

    /* the CLI bounds libgomp's barrier spinning itself (core/openmp.h): it re-executed with
     * GOMP_SPINCOUNT=10000 since this environment sets neither that nor OMP_WAIT_POLICY */
    if (!getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY")) {
        char envp[64];
        snprintf(envp, sizeof envp, "/proc/%d/environ", (int)A.pid);
        static char env[1 << 16];
        FILE *f = fopen(envp, "rb"); /* /proc files have no size: read to the end */
        size_t en = f ? fread(env, 1, sizeof env - 1, f) : 0;
        if (f) fclose(f);
        env[en] = 0;
        bool found = false;
        for (size_t k = 0; k < en; k += strlen(env + k) + 1)
            if (!strcmp(env + k, "GOMP_SPINCOUNT=10000")) found = true;
        check(found, "the server process runs with GOMP_SPINCOUNT=10000 (set by the CLI itself)");
    }

    /* ---- bad requests: each gets its answer, and the server goes on */
    http(A.port, "GET", "/nope", "", NULL, 0, &r);
    check(r.status == 404 && strstr(error_of(&r), "/nope"), "unknown path: 404 %s", error_of(&r));
    resp_free(&r);
    http(A.port, "GET", "/predict", "", NULL, 0, &r);
    check(r.status == 405 && header(&r, "Allow") && !strcmp(header(&r, "Allow"), "POST"),
          "GET /predict: 405 with Allow: POST (%s)", error_of(&r));
    resp_free(&r);
    http(A.port, "POST", "/healthz", "", "x", 1, &r);
    check(r.status == 405 && header(&r, "Allow") && strstr(header(&r, "Allow"), "GET"), "POST /healthz: 405 with Allow: GET, HEAD");
    resp_free(&r);
    post_image(A.port, "/predict", "text/plain", png, pn, &r);
    check(r.status == 415 && strstr(error_of(&r), "text/plain"), "text/plain body: 415 %s", error_of(&r));
    resp_free(&r);
    http(A.port, "POST", "/predict?tta=maybe", "Content-Type: image/png\r\n", png, pn, &r);
    check(r.status == 400 && strstr(error_of(&r), "tta"), "?tta=maybe: 400 %s", error_of(&r));
    resp_free(&r);
    http(A.port, "POST", "/predict?top=0", "Content-Type: image/png\r\n", png, pn, &r);
    check(r.status == 400 && strstr(error_of(&r), "top"), "?top=0: 400 %s", error_of(&r));
    resp_free(&r);
    static const char text[] = "<html>this is not a photo</html>";
    post_image(A.port, "/predict", "image/png", (const uint8_t *)text, sizeof text - 1, &r);
    check(r.status == 422 && strstr(error_of(&r), "not a PNG or JPEG"), "HTML bytes as image/png: 422 %s", error_of(&r));
    resp_free(&r);
    post_image(A.port, "/predict", "image/png", png, pn / 2, &r);
    check(r.status == 422 && strstr(error_of(&r), "PNG") && strstr(error_of(&r), "truncated"),
          "the first half of a PNG: 422 %s", error_of(&r));
    resp_free(&r);
    post_form(A.port, "image", "half.png", png, pn / 3, false, &r);
    check(r.status == 422 && strstr(error_of(&r), "half.png"), "a truncated PNG in a form: 422 naming the file: %s",
          error_of(&r));
    resp_free(&r);
    /* a PNG header that claims 20000 x 20000 pixels: refused before decoding */
    uint8_t huge[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                        0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20, 8, 2, 0, 0, 0};
    post_image(A.port, "/predict", "image/png", huge, sizeof huge, &r);
    check(r.status == 422 && strstr(error_of(&r), "20000x20000"), "a 20000x20000 PNG: 422 %s", error_of(&r));
    resp_free(&r);
    http(A.port, "POST", "/predict", "Content-Type: image/png\r\n", NULL, 0, &r);
    check(r.status == 400 && strstr(error_of(&r), "no image"), "empty body: 400 %s", error_of(&r));
    resp_free(&r);
    {
        char h[256];
        snprintf(h, sizeof h, "Content-Type: multipart/form-data; boundary=%s\r\n", BOUNDARY);
        char form[512];
        int fl = snprintf(form, sizeof form, "--%s\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--%s--\r\n",
                          BOUNDARY, BOUNDARY);
        http(A.port, "POST", "/predict", h, form, (size_t)fl, &r);
        check(r.status == 400 && strstr(error_of(&r), "field named image"), "a form without a file: 400 %s",
              error_of(&r));
        resp_free(&r);
        http(A.port, "POST", "/predict", "Content-Type: multipart/form-data\r\n", form, (size_t)fl, &r);
        check(r.status == 400 && strstr(error_of(&r), "boundary"), "multipart without a boundary: 400 %s", error_of(&r));
        resp_free(&r);
    }
    post_form(A.port, "image", "bag.png", png, pn, true, &r);
    check(r.status == 400 && strstr(error_of(&r), "boundary"), "a form cut before its last boundary: 400 %s",
          error_of(&r));
    resp_free(&r);
    {   /* declared too large: refused from the headers alone, before any body is sent */
        int fd = connect_port(A.port, 30);
        const char *req = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000000\r\n\r\n";
        send_all(fd, req, strlen(req));
        read_response(fd, &r);
        close(fd);
        check(r.status == 413 && strstr(error_of(&r), "5000000"), "Content-Length 5 MB (limit 1 MB): 413 at once: %s",
              error_of(&r));
        resp_free(&r);
    }
    /* chunked bodies past the limit: a little past it is answered 413, far past it is cut off */
    for (int far = 0; far < 2; far++) {
        int fd = connect_port(A.port, 30);
        const char *req = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n";
        int sent = send_all(fd, req, strlen(req)) == 0;
        static char chunk[65536 + 16];
        int hl = sprintf(chunk, "10000\r\n");
        memset(chunk + hl, 'x', 65536);
        memcpy(chunk + hl + 65536, "\r\n", 2);
        int chunks = far ? 80 : 24; /* 5 MB or 1.5 MB */
        for (int i = 0; i < chunks && sent; i++) sent = send_all(fd, chunk, (size_t)hl + 65538) == 0;
        if (sent) send_all(fd, "0\r\n\r\n", 5);
        read_response(fd, &r);
        close(fd);
        if (!far)
            check(r.status == 413 && strstr(error_of(&r), "limit"), "a chunked 1.5 MB body (limit 1 MB): 413 %s",
                  error_of(&r));
        else
            check(r.status == 413 || r.status == 0,
                  "a chunked 5 MB body: cut off while sending (status %d, %s)", r.status, sent ? "all sent" : "send failed");
        resp_free(&r);
    }
    double aborted0 = get_metric(A.port, "stylenet_http_aborted_total{reason=\"client\"}");
    {   /* half a body, then the client closes */
        int fd = connect_port(A.port, 30);
        char req[256];
        snprintf(req, sizeof req, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %zu\r\n\r\n", pn);
        send_all(fd, req, strlen(req));
        send_all(fd, png, pn / 2);
        shutdown(fd, SHUT_WR);
        read_response(fd, &r);
        close(fd);
        check(r.status == 0, "half a body then the client closes: no answer, connection closed (%d)", r.status);
        resp_free(&r);
    }
    double aborted1 = -1;
    for (int i = 0; i < 50 && aborted1 <= aborted0; i++, usleep(20000))
        aborted1 = get_metric(A.port, "stylenet_http_aborted_total{reason=\"client\"}");
    check(aborted1 == aborted0 + 1, "  ... counted in stylenet_http_aborted_total{reason=\"client\"} (%g -> %g)", aborted0,
          aborted1);

    /* ---- slow clients: cut off by the 2 s idle timeout, while others are served */
    {
        double timeouts0 = get_metric(A.port, "stylenet_http_aborted_total{reason=\"timeout\"}");
        int slow_body = connect_port(A.port, 30), slow_head = connect_port(A.port, 30);
        char req[256];
        snprintf(req, sizeof req, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %zu\r\n\r\n", pn);
        send_all(slow_body, req, strlen(req));
        send_all(slow_body, png, 100);
        send_all(slow_head, "POST /predict HTTP/1.1\r\nHost: x\r\n", 33);
        double ts = now();
        int served = 0;
        double worst_ms = 0;
        for (int i = 0; i < 5; i++) {
            double ta = now();
            served += post_image(A.port, "/predict", "image/png", png, pn, &r) == 0 && r.status == 200;
            if ((now() - ta) * 1e3 > worst_ms) worst_ms = (now() - ta) * 1e3;
            resp_free(&r);
        }
        check(served == 5, "while two slow clients hold connections, 5 predictions are answered (slowest %.0f ms)",
              worst_ms);
        double cut[2] = {-1, -1};
        int fds[2] = {slow_body, slow_head};
        for (int k = 0; k < 2; k++) {
            struct pollfd p = {.fd = fds[k], .events = POLLIN};
            while (now() - ts < 15 && poll(&p, 1, 100) >= 0) {
                if (p.revents) {
                    char b[4096];
                    ssize_t g = recv(fds[k], b, sizeof b, 0);
                    if (g <= 0) {
                        cut[k] = now() - ts;
                        break;
                    }
                }
            }
            close(fds[k]);
        }
        check(cut[0] >= 1.5 && cut[0] < 10 && cut[1] >= 1.5 && cut[1] < 10,
              "the slow clients are cut off by the 2 s timeout (after %.1f s and %.1f s)", cut[0], cut[1]);
        double timeouts1 = -1;
        for (int i = 0; i < 50 && timeouts1 <= timeouts0; i++, usleep(20000))
            timeouts1 = get_metric(A.port, "stylenet_http_aborted_total{reason=\"timeout\"}");
        check(timeouts1 >= timeouts0 + 1, "  ... counted in stylenet_http_aborted_total{reason=\"timeout\"} (%g -> %g)",
              timeouts0, timeouts1);
    }

    /* ---- a flood of 100 idle connections: the server holds 32 (its limit) and closes the rest at
     *      once; the idle timeout closes the 32; then requests are served again */
    {
        enum { NI = 100 };
        int fds[NI], at_once = 0, later = 0, left = 0;
        double cut_last = 0, tf = now();
        for (int i = 0; i < NI; i++) fds[i] = connect_port(A.port, 20);
        for (int open = NI; open > 0 && now() - tf < 8;) { /* when does the server close each one? */
            struct pollfd p[NI];
            for (int i = 0; i < NI; i++) p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
            if (poll(p, NI, 50) <= 0) continue;
            for (int i = 0; i < NI; i++) {
                char b[64];
                if (fds[i] < 0 || !p[i].revents || recv(fds[i], b, sizeof b, MSG_DONTWAIT) > 0) continue;
                double t = now() - tf; /* closed (EOF or reset) */
                if (t < 1.5) at_once++;
                else later++;
                if (t > cut_last) cut_last = t;
                close(fds[i]);
                fds[i] = -1;
                open--;
            }
        }
        for (int i = 0; i < NI; i++)
            if (fds[i] >= 0) {
                left++;
                close(fds[i]);
            }
        check(at_once >= NI - 32 && later + at_once == NI && left == 0 && cut_last >= 1.5 && cut_last < 8,
              "%d idle connections: %d closed within 1.5 s (limit 32), %d by the 2 s idle timeout (the last after "
              "%.1f s), %d left open", NI, at_once, later, cut_last, left);
        /* libmicrohttpd frees a closed connection's slot (and the server's open-connections gauge)
         * in its next cleanup pass, a moment after the client sees the close: a request in that
         * window meets a full house.  Wait (at most 3 s) until only the asking connection is open. */
        double open = -1, tw = now();
        while (now() - tw < 3 && !((open = get_metric(A.port, "stylenet_connections_open")) >= 0 && open <= 1))
            usleep(20000);
        post_image(A.port, "/predict", "image/png", png, pn, &r);
        check(r.status == 200, "after the idle flood a prediction is answered (%d; open connections before it %.0f, "
              "after %.2f s)", r.status, open, now() - tw);
        resp_free(&r);
    }

    /* ---- a flood of 200 requests at once (the server takes 32 connections at a time) */
    {
        enum { NF = 200 };
        int fds[NF], opened = 0, answered = 0, refused = 0, hung = 0;
        const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        double tf = now();
        for (int i = 0; i < NF; i++) {
            fds[i] = connect_port(A.port, 20);
            if (fds[i] >= 0) {
                opened++;
                send_all(fds[i], req, strlen(req));
            }
        }
        for (int i = 0; i < NF; i++) {
            if (fds[i] < 0) {
                refused++;
                continue;
            }
            read_response(fds[i], &r);
            if (r.status == 200) answered++;
            else if (r.status == 0 && now() - tf < 60) refused++;
            else hung++;
            resp_free(&r);
            close(fds[i]);
        }
        note("flood: %d connections opened, %d answered, %d closed or refused, in %.2f s", opened, answered, refused,
             now() - tf);
        check(answered >= 16 && answered + refused == NF && hung == 0,
              "a flood of %d connections: each answered (%d) or closed (%d), none left hanging", NF, answered, refused);
        post_image(A.port, "/predict", "image/png", png, pn, &r);
        answer_key(&r, key, sizeof key);
        check(r.status == 200 && !strcmp(key, key_raw), "after the flood a prediction is answered, the same as before");
        resp_free(&r);
        double open = -1;
        for (int i = 0; i < 100 && open != 1; i++, usleep(20000)) open = get_metric(A.port, "stylenet_connections_open");
        check(open == 1, "every flood connection is closed on the server side (open now: %g, this one)", open);
    }

    /* ---- /metrics */
    {
        http(A.port, "GET", "/metrics", "", NULL, 0, &r);
        double n0 = metric(r.body ? r.body : "", "stylenet_http_requests_total{route=\"/predict\",code=\"200\"}");
        double p50 = metric(r.body ? r.body : "", "stylenet_predict_latency_seconds{quantile=\"0.5\"}");
        double p99 = metric(r.body ? r.body : "", "stylenet_predict_latency_seconds{quantile=\"0.99\"}");
        double e404 = metric(r.body ? r.body : "", "stylenet_http_requests_total{route=\"other\",code=\"404\"}");
        double e413 = metric(r.body ? r.body : "", "stylenet_http_requests_total{route=\"/predict\",code=\"413\"}");
        double e422 = metric(r.body ? r.body : "", "stylenet_http_requests_total{route=\"/predict\",code=\"422\"}");
        double errs = metric(r.body ? r.body : "", "stylenet_http_errors_total{route=\"/predict\"}");
        check(r.status == 200 && header(&r, "Content-Type") && strstr(header(&r, "Content-Type"), "text/plain") &&
                  strstr(r.body, "# TYPE stylenet_http_requests_total counter") &&
                  strstr(r.body, "stylenet_model_info{name=\"style.stn\",arch=\"mobilenet_v2_tf\",task=\"multi\""),
              "GET /metrics: Prometheus text with types and the model's info");
        check(n0 >= 40 && e404 == 1 && e413 >= 2 && e422 == 4 && errs >= 12,
              "counters: %g predictions, 404 x%g, 413 x%g, 422 x%g, %g errors on /predict", n0, e404, e413, e422, errs);
        check(p50 > 0 && p99 >= p50, "latency quantiles: p50 %.2f ms, p99 %.2f ms", p50 * 1e3, p99 * 1e3);
        resp_free(&r);
        post_image(A.port, "/predict", "image/png", png, pn, &r);
        resp_free(&r);
        double n1 = get_metric(A.port, "stylenet_http_requests_total{route=\"/predict\",code=\"200\"}");
        check(n1 == n0 + 1, "one more prediction, one more in the counter (%g -> %g)", n0, n1);
    }

    /* ---- the page in headless Chromium: the bird with the ImageNet model, then a Style photo the
     *      test model gets right (brand and product as its file name says), chosen through the API */
    {
        char tools[4096], shot[4200], best[4400] = "", expect[512] = "";
        const char *cands[] = {"3_2_001.png", "0_0_001.png", "1_1_001.png", "5_5_001.png", "6_9_001.png",
                               "2_5_003.png", "4_7_002.png", "0_8_001.png"};
        for (size_t i = 0; i < sizeof cands / sizeof cands[0] && !best[0]; i++) {
            char p[4400];
            snprintf(p, sizeof p, "%s/%s", style, cands[i]);
            size_t n;
            uint8_t *b = load(p, &n);
            post_image(A.port, "/predict", "image/png", b, n, &r);
            free(b);
            cJSON *j = r.body ? cJSON_Parse(r.body) : NULL;
            const cJSON *g = cJSON_GetObjectItem(j, "groups");
            const char *br = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(g, "brand"), "class"));
            const char *pr = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(g, "product"), "class"));
            const char *tb = cJSON_GetStringValue(cJSON_GetArrayItem(classes, cands[i][0] - '0'));
            const char *tp = cJSON_GetStringValue(cJSON_GetArrayItem(classes, 7 + cands[i][2] - '0'));
            if (br && pr && ((tb && tp && !strcmp(br, tb) && !strcmp(pr, tp)) || i + 1 == sizeof cands / sizeof cands[0])) {
                snprintf(best, sizeof best, "%s", p);
                snprintf(expect, sizeof expect, "brand=%s,product=%s", br, pr);
            }
            cJSON_Delete(j);
            resp_free(&r);
        }
        snprintf(shot, sizeof shot, "%s", bin);
        char *slash = strrchr(shot, '/');
        snprintf(slash ? slash + 1 : shot, sizeof shot - (size_t)(slash ? slash + 1 - shot : 0), "serve_page.png");
        bool have_tools = find_repo_dir("tools", tools, sizeof tools);
        double tb = now();
        rc = have_tools ? run("/usr/bin/python3 %s/serve_page_test.py --case http://127.0.0.1:%d/ '%s' top=chickadee "
                              "--case http://127.0.0.1:%d/ '%s' '%s' --screenshot %s",
                              tools, B.port, bird, A.port, best, expect, shot)
                        : -1;
        check(rc == 0, "the page in headless Chromium shows the predictions (%.1f s): %s", now() - tb, flat(out, 1500));
        struct stat sb;
        check(rc == 0 && stat(shot, &sb) == 0 && sb.st_size > 10000, "screenshot written: %s (%lld bytes)", shot,
              (long long)(stat(shot, &sb) ? 0 : sb.st_size));
        note("page: %s", flat(out, 600));
    }

    /* ---- load test: wrk for 3 s, 4 connections, POST /predict of one photo */
    {
        char sdir[4096];
        bool have = find_repo_dir("tests/serve", sdir, sizeof sdir);
        rc = have ? run("STYLENET_WRK_IMAGE='%s' wrk -t2 -c4 -d3s --latency -s %s/predict.lua http://127.0.0.1:%d/predict",
                        photo, sdir, A.port)
                  : -1;
        double rps = -1, p50 = -1, p99 = -1;
        long total = -1;
        char *s = strstr(out, "Requests/sec:");
        if (s) rps = atof(s + 13);
        s = strstr(out, " requests in ");
        if (s) {
            char *b = s;
            while (b > out && b[-1] != '\n' && b[-1] != ' ') b--;
            total = atol(b);
        }
        for (int q = 0; q < 2; q++) {
            s = strstr(out, q ? "     99%" : "     50%");
            if (!s) continue;
            char *e;
            double v = strtod(s + 8, &e);
            double ms = !strncmp(e, "us", 2) ? v / 1e3 : !strncmp(e, "ms", 2) ? v : *e == 's' ? v * 1e3 : !strncmp(e, "m", 1) ? v * 6e4 : -1;
            if (q) p99 = ms;
            else p50 = ms;
        }
        check(rc == 0 && rps > 0 && total > 0 && p50 > 0 && p99 >= p50,
              "wrk load test ran (wrk from Debian: apt-get install wrk): %s", rc == 0 && rps > 0 ? "" : flat(out, 800));
        check(rc == 0 && !strstr(out, "Non-2xx") && !strstr(out, "Socket errors"),
              "load test: no error answers and no socket errors%s%s", strstr(out, "Non-2xx") || strstr(out, "Socket errors") ? ": " : "",
              strstr(out, "Non-2xx") || strstr(out, "Socket errors") ? flat(out, 800) : "");
        note("load test (wrk -t2 -c4 -d3s, 2 workers, 64 px Style model, 150x150 PNG): %ld requests, %.1f requests/s, "
             "p50 %.2f ms, p99 %.2f ms%s",
             total, rps, p50, p99, ASAN ? " (ASan build)" : "");
    }

    /* ---- the command line refuses what it cannot serve */
    rc = run("%s serve --model %s/nope.stn --port 0", bin, dir);
    check(rc == 1 && strstr(out, "nope.stn"), "a missing model: exit 1 naming it: %s", flat(out, 200));
    rc = run("%s serve --model %s --port 0 --max-body 12Q", bin, model);
    check(rc == 2 && strstr(out, "--max-body"), "a bad --max-body: exit 2 naming the flag: %s", flat(out, 120));
    rc = run("%s serve --model %s --port %d --quiet", bin, model, A.port);
    check(rc == 1 && strstr(out, "cannot listen"), "a port in use: exit 1: %s", flat(out, 200));

    /* ---- memory: bounded after all of the above */
    {
        long rss_end = rss_kb(A.pid);
        long bound = ASAN ? 600 * 1024 : 150 * 1024;
        check(rss_warm > 0 && rss_end > 0 && rss_end - rss_warm < bound,
              "resident memory after warm-up %ld MB, after the abuse and the load test %ld MB (growth bound %ld MB)",
              rss_warm / 1024, rss_end / 1024, bound / 1024);
    }
    free(png);
    free(bird_png);
    free(jpeg);
    cJSON_Delete(info);
    cJSON_Delete(served);

end:;
    /* ---- clean stop */
    for (int k = 0; k < 2; k++) {
        server *s = k ? &B : &A;
        if (s->pid <= 0) continue;
        double ts = now();
        int st = stop_server(s);
        size_t n;
        uint8_t *log = sn_read_file(s->log, &n, 1 << 24);
        check(st == 0 && log && memmem(log, n, "stopping", 8),
              "SIGTERM stops the %s server cleanly in %.1f s (exit %d)%s%s", k ? "ImageNet" : "Style", now() - ts, st,
              st ? ": " : "", st ? server_log(s) : "");
        free(log);
    }
    note("serve tests took %.1f s", now() - t_start);
    run("rm -rf %s", dir);
    return check_exit();
}
