/* test_serve_soak.c - `stylenet serve` under a mixed soak on loopback (60 s in `make test`;
 * `make -C bench soak` runs it for 10 minutes: STYLENET_SOAK_SECONDS sets the length).
 *
 * The server (the ImageNet MobileNetV2 TFLite model, 2 workers, --queue 2, --max-body 1M,
 * --timeout 3) gets, all at once, from the tiny HTTP client of tests/serve/serve_http.h:
 *   good      2 clients posting Style photos (PNG) back to back;
 *   corrupt   a client posting photos cut short, with flipped bytes, noise after a PNG
 *             signature, or HTML under image/png;
 *   oversize  a client declaring 2 MB, or sending 1.5 MB chunked;
 *   slow      a client trickling a photo in 4 pieces 0.3 s apart (within the timeout), or
 *             sending half of one and stalling until the server cuts it off;
 *   halfclose a client sending a whole photo and shutting its write side (an answer is owed), or
 *             half of one and shutting (nothing is);
 *   burst     every 5 s, 12 photos posted at once: more than the 2 workers and the 2 queue
 *             places, so some are refused with 503.
 * Passes when: the server stays up and stops cleanly on SIGTERM; every admitted good request
 * (good, burst, trickled, half-closed whole: anything but a 503) is answered 200 with a JSON
 * body; corrupt bodies get 4xx (never 5xx other than 503, never silence); oversize bodies get
 * 413 or, chunked, are cut off; stalled clients are cut off within the timeout + 5 s; every kind
 * ran; resident memory (VmRSS from /proc, sampled every 5 s) after warm-up (the first sixth of
 * the run, 10..60 s) grows by less than 24 MB (160 MB under ASan, its quarantine capped at 16 MB)
 * to the largest sample of the last fifth.  The notes give the counts per kind, the status codes,
 * the latency percentiles of the answered good requests and the RSS curve. */
#include <pthread.h>
#include <stdatomic.h>
#include "../common/check.h"
#include "../serve/serve_http.h"

enum { GOOD, CORRUPT, OVERSIZE, SLOW, HALFCLOSE, BURST, KINDS };
static const char *const kind_names[KINDS] = {"good", "corrupt", "oversize", "slow", "halfclose", "burst"};
#define MAX_STATUS 600
#define MAX_LAT (1 << 20)

static server srv;
static char dir[64];
static double t_end;
static atomic_bool stop;
static atomic_int status_count[KINDS][MAX_STATUS];
static atomic_int errors[KINDS];
static char first_error[KINDS][256];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double *lat;                 /* seconds of the answered (200) good, burst and trickled requests */
static int n_lat;
static uint8_t *photos[40];
static size_t photo_n[40];
static int n_photos;

/* one request of kind k: its status counted; an unexpected one an error (the first described) */
static void record(int k, int status, bool ok, const char *what) {
    atomic_fetch_add(&status_count[k][status >= 0 && status < MAX_STATUS ? status : 0], 1);
    if (ok) return;
    if (atomic_fetch_add(&errors[k], 1) == 0) {
        pthread_mutex_lock(&lock);
        snprintf(first_error[k], sizeof first_error[k], "%s: status %d", what, status);
        pthread_mutex_unlock(&lock);
    }
}

static void add_latency(double s) {
    pthread_mutex_lock(&lock);
    if (n_lat < MAX_LAT) lat[n_lat++] = s;
    pthread_mutex_unlock(&lock);
}

/* an admitted good request's answer is 200 with a JSON object; 503 is "not admitted" */
static bool good_answer(const resp *r) {
    return r->status == 503 || (r->status == 200 && r->body && r->body[0] == '{' && strstr(r->body, "\"top\""));
}

/* photo i (cycling) posted whole: kind k's counts, the latency of a 200 */
static void post_good(int k, unsigned i) {
    resp r;
    double t0 = now();
    post_image(srv.port, "/predict", "image/png", photos[i % n_photos], photo_n[i % n_photos], &r);
    if (r.status == 200) add_latency(now() - t0);
    record(k, r.status, good_answer(&r), "a good photo");
    resp_free(&r);
}

static void *good_client(void *arg) {
    for (unsigned i = (unsigned)(size_t)arg; !atomic_load(&stop); i += 7) post_good(GOOD, i);
    return NULL;
}

/* photo i spoiled in one of four ways into buf; its length */
static size_t spoil(unsigned i, uint8_t *buf, size_t cap, const char **ctype) {
    const uint8_t *p = photos[i % n_photos];
    size_t n = photo_n[i % n_photos] < cap ? photo_n[i % n_photos] : cap;
    memcpy(buf, p, n);
    *ctype = "image/png";
    switch (i % 4) {
    case 0: return n / 3 + i % 97;                                   /* cut short */
    case 1: for (size_t k = n / 4; k < n; k += 97) buf[k] ^= 0x5a; return n; /* flipped bytes */
    case 2: for (size_t k = 8; k < n; k++) buf[k] = (uint8_t)(k * 2654435761u >> 7); return n; /* noise */
    default: *ctype = "text/html"; return (size_t)snprintf((char *)buf, cap, "<html>%u</html>", i);
    }
}

static void *corrupt_client(void *arg) {
    (void)arg;
    static uint8_t buf[1 << 20];
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        const char *ctype;
        size_t n = spoil(i, buf, sizeof buf, &ctype);
        resp r;
        post_image(srv.port, "/predict", ctype, buf, n, &r);
        const bool ok = r.status == 503 || r.status == 200 || (r.status >= 400 && r.status < 500);
        record(CORRUPT, r.status, ok, i % 4 == 0 ? "a photo cut short" : i % 4 == 1 ? "flipped bytes" : "noise");
        resp_free(&r);
    }
    return NULL;
}

static void *oversize_client(void *arg) {
    (void)arg;
    static uint8_t body[64 << 10];
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        resp r;
        if (i % 2 == 0) {
            post_partial(srv.port, "2000000", body, sizeof body, false, &r);
            record(OVERSIZE, r.status, r.status == 413, "a declared 2 MB body");
        } else {
            post_chunked(srv.port, 24, &r);
            record(OVERSIZE, r.status, r.status == 413 || r.status == 0, "a 1.5 MB chunked body");
        }
        resp_free(&r);
    }
    return NULL;
}

/* photo i sent in 4 pieces `gap_s` apart; the answer in r */
static void post_trickle(unsigned i, double gap_s, resp *r) {
    const uint8_t *p = photos[i % n_photos];
    const size_t n = photo_n[i % n_photos];
    memset(r, 0, sizeof *r);
    int fd = connect_port(srv.port, 60);
    if (fd < 0) return;
    char head[256];
    snprintf(head, sizeof head, "POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: image/png\r\n"
             "Content-Length: %zu\r\n\r\n", n);
    bool sent = send_all(fd, head, strlen(head)) == 0;
    for (int k = 0; k < 4 && sent; k++) {
        usleep((useconds_t)(gap_s * 1e6));
        sent = send_all(fd, p + n * k / 4, n * (k + 1) / 4 - n * k / 4) == 0;
    }
    read_response(fd, r);
    close(fd);
}

static void *slow_client(void *arg) {
    (void)arg;
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        resp r;
        double t0 = now();
        if (i % 2 == 0) {
            post_trickle(i, 0.3, &r);
            if (r.status == 200) add_latency(now() - t0);
            record(SLOW, r.status, good_answer(&r), "a photo trickled within the timeout");
        } else {
            char len[32];
            snprintf(len, sizeof len, "%zu", photo_n[i % n_photos]);
            post_partial(srv.port, len, photos[i % n_photos], photo_n[i % n_photos] / 2, false, &r);
            const double waited = now() - t0;
            record(SLOW, r.status, (r.status == 0 || r.status == 408) && waited < 3 + 5, "a stalled upload");
        }
        resp_free(&r);
    }
    return NULL;
}

static void *halfclose_client(void *arg) {
    (void)arg;
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        const size_t n = photo_n[i % n_photos];
        char len[32];
        snprintf(len, sizeof len, "%zu", n);
        resp r;
        const bool whole = i % 2 == 0;
        post_partial(srv.port, len, photos[i % n_photos], whole ? n : n / 2, true, &r);
        record(HALFCLOSE, r.status, whole ? good_answer(&r) : r.status == 0 || r.status == 400,
               whole ? "a whole photo, then the write side shut" : "half a photo, then the write side shut");
        resp_free(&r);
        usleep(100000);
    }
    return NULL;
}

static void *burst_one(void *arg) {
    post_good(BURST, (unsigned)(size_t)arg);
    return NULL;
}

static void *burst_client(void *arg) {
    (void)arg;
    for (unsigned round = 0; !atomic_load(&stop); round++) {
        pthread_t t[12];
        for (int k = 0; k < 12; k++) pthread_create(&t[k], NULL, burst_one, (void *)(size_t)(round * 12 + (unsigned)k));
        for (int k = 0; k < 12; k++) pthread_join(t[k], NULL);
        for (int s = 0; s < 50 && !atomic_load(&stop); s++) usleep(100000);
    }
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the counts of kind k ("200:120 503:7 ...") */
static const char *statuses(int k) {
    static char buf[512];
    size_t n = 0;
    buf[0] = 0;
    for (int s = 0; s < MAX_STATUS; s++)
        if (atomic_load(&status_count[k][s]) && n < sizeof buf)
            n += (size_t)snprintf(buf + n, sizeof buf - n, " %s%d:%d", s ? "" : "none=", s,
                                  atomic_load(&status_count[k][s]));
    return buf;
}

static bool start_server(void) {
    snprintf(dir, sizeof dir, "/tmp/stylenet_soak_XXXXXX");
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return false;
    char **names;
    int nn = style_names(&names);
    for (int i = 0; i < nn && n_photos < 40; i += nn / 40 + 1) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", shared_path("data/style"), names[i]);
        photos[n_photos] = sn_read_file(p, &photo_n[n_photos], 1 << 20);
        n_photos += photos[n_photos] != NULL;
    }
    if (nn > 0) style_names_free(names, nn);
    if (!check(n_photos >= 10, "%d Style photos to send", n_photos)) return false;
    char model[4096], args[8192];
    snprintf(model, sizeof model, "%s", shared_path("weights/mobilenet_v2_1.0_224_quant.tflite"));
    snprintf(args, sizeof args, "--model %s --labels %s --threads 2 --queue 2 --max-body 1M --timeout 3 "
             "--max-connections 48 --quiet", model, shared_path("weights/imagenet_labels.txt"));
    const char *env = ASAN ? "env ASAN_OPTIONS=quarantine_size_mb=16" : "";
    int rc = serve_start(&srv, getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet", dir, "soak", env, args);
    return check(rc == 0, "the ImageNet server starts (port %d)%s", srv.port, rc ? serve_log(&srv) : "");
}

/* samples resident memory every 5 s until the end; false if the server died */
static bool watch(long *rss, double *at, int *n_rss, int cap) {
    const double t0 = now();
    for (double next = t0; now() < t_end;) {
        int st;
        if (waitpid(srv.pid, &st, WNOHANG) == srv.pid) {
            srv.pid = 0;
            return false;
        }
        if (now() >= next && *n_rss < cap) {
            at[*n_rss] = now() - t0;
            rss[(*n_rss)++] = rss_kb(srv.pid);
            next += 5;
        }
        usleep(200000);
    }
    return true;
}

static void soak(void) {
    const char *env = getenv("STYLENET_SOAK_SECONDS");
    const double secs = env && atof(env) >= 20 ? atof(env) : 60;
    const double warm = secs / 6 < 10 ? 10 : secs / 6 > 60 ? 60 : secs / 6;
    const long bound_kb = (ASAN ? 160 : 24) * 1024;
    lat = malloc(sizeof(double) * MAX_LAT);
    if (!lat || !start_server()) return;
    void *(*bodies[])(void *) = {good_client, good_client, corrupt_client, oversize_client, slow_client,
                                 halfclose_client, burst_client};
    const int nt = sizeof bodies / sizeof bodies[0];
    pthread_t t[8];
    t_end = now() + secs;
    for (int i = 0; i < nt; i++) pthread_create(&t[i], NULL, bodies[i], (void *)(size_t)i);
    static long rss[1024];
    static double at[1024];
    int n_rss = 0;
    const bool alive = watch(rss, at, &n_rss, 1024);
    atomic_store(&stop, true);
    for (int i = 0; i < nt; i++) pthread_join(t[i], NULL);
    check(alive, "the server ran the whole %.0f s soak %s", secs, alive ? "" : serve_log(&srv));
    for (int k = 0; k < KINDS; k++) {
        int total = 0;
        for (int s = 0; s < MAX_STATUS; s++) total += atomic_load(&status_count[k][s]);
        check(total > 0 && atomic_load(&errors[k]) == 0, "%-9s %5d requests,%s; unexpected: %d %s", kind_names[k],
              total, statuses(k), atomic_load(&errors[k]), first_error[k]);
    }
    check(atomic_load(&status_count[BURST][503]) > 0 && atomic_load(&status_count[BURST][200]) > 0,
          "bursts above the queue: some answered, some refused with 503");
    qsort(lat, (size_t)n_lat, sizeof *lat, by_value);
    if (n_lat > 0)
        note("latency of %d answered good requests: p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms%s", n_lat,
             lat[n_lat / 2] * 1e3, lat[n_lat * 9 / 10] * 1e3, lat[n_lat * 99 / 100] * 1e3, lat[n_lat - 1] * 1e3,
             ASAN ? " (ASan build)" : "");
    long warm_kb = -1, late_max = -1;
    char curve[4096] = "";
    size_t cn = 0;
    for (int i = 0; i < n_rss; i++) {
        if (warm_kb < 0 && at[i] >= warm) warm_kb = rss[i];
        if (at[i] >= secs * 0.8 && rss[i] > late_max) late_max = rss[i];
        if (cn < sizeof curve && (i % (n_rss > 24 ? n_rss / 24 : 1) == 0 || i == n_rss - 1))
            cn += (size_t)snprintf(curve + cn, sizeof curve - cn, " %.0fs:%.1f", at[i], rss[i] / 1024.0);
    }
    note("VmRSS (MB) over the soak:%s", curve);
    check(warm_kb > 0 && late_max > 0 && late_max - warm_kb < bound_kb,
          "resident memory flat after warm-up: %.1f MB at %.0f s, at most %.1f MB in the last fifth (growth %.1f MB, "
          "bound %ld MB)", warm_kb / 1024.0, warm, late_max / 1024.0, (late_max - warm_kb) / 1024.0, bound_kb / 1024);
    int st = serve_stop(&srv);
    check(st == 0, "SIGTERM stops the server cleanly (exit %d)%s", st, st ? serve_log(&srv) : "");
    for (int i = 0; i < n_photos; i++) free(photos[i]);
    free(lat);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) note("could not remove %s", dir);
}

static const test_case cases[] = {
    {"soak", soak},
};

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    int rc = test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
    serve_stop(&srv);
    return rc;
}
