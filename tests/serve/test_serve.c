/* test_serve.c - `stylenet serve` over real sockets, with the tiny HTTP client of serve_http.h.
 *
 * Two servers run as child processes on free ports: a Style model trained by this test in a few
 * seconds (MobileNetV2 from the TFLite weights, head only, 64 px), and the ImageNet TFLite model
 * itself with its labels.  The first case that needs them starts both (so any case runs alone:
 * `build/tests/serve/test_serve metrics`); the last case stops them.  Cases:
 *   - POST /predict, raw and multipart, gives the same classes and probabilities as
 *     `stylenet predict --json` on the same file; a JPEG; ?tta=1 (5 views, deterministic);
 *   - the bytes decide: a PNG, JPEG or WebP (the Style photo re-encoded losslessly: the PNG's
 *     answer) sent as curl --data-binary sends it (application/x-www-form-urlencoded), as
 *     application/octet-stream or as image/webp is answered; a body that is not an image under a
 *     content type that does not say image is 415;
 *     ?top=K; the ImageNet bird is a chickadee;
 *   - requests in parallel from several threads give exactly the answers given one at a time
 *     (the workers share the weights);
 *   - GET /model equals `stylenet info --json`; /healthz; /metrics counters count each request;
 *   - the CLI bounds libgomp's spinning itself (GOMP_SPINCOUNT=10000) unless the environment says;
 *   - 404, 405 (with Allow), 413 (declared and chunked), 415, 422 (not an image, truncated PNG,
 *     too many pixels), 400 (bad query, multipart without the image, truncated multipart, empty),
 *     503 when the one worker is busy and no request may wait;
 *   - a body far past the limit is cut off (no answer, counted as cut off), a client that sends
 *     half a body and closes, a slow client cut off by the timeout while other requests are
 *     served, floods of idle connections and of 200 requests: the server keeps answering;
 *   - the page in headless Chromium (tools/serve_page_test.py): upload a photo, read the shown
 *     prediction, screenshot into the build folder;
 *   - a 3 s load test with wrk (requests/s, p50, p99, no errors);
 *   - resident memory after all of it stays within a bound; SIGTERM stops the server cleanly
 *     (exit 0; under ASan that includes LeakSanitizer's check). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include "../common/check.h"
#include "../common/webp_fixture.h"
#include "io/image.h"
#include "serve_http.h"

static char out[1 << 18];
static const char *bin;

#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

/* ------------------------------------------------------------------ the CLI's answer */

/* `stylenet predict --json` of one image: results[0] (owned by *doc) */
static const cJSON *cli_predict(const char *model_args, const char *image, cJSON **doc) {
    int rc = run("%s predict %s --threads 1 --json %s", bin, model_args, image);
    const char *brace = strchr(out, '{');
    *doc = rc == 0 && brace ? cJSON_Parse(brace) : NULL;
    return cJSON_GetArrayItem(cJSON_GetObjectItem(*doc, "results"), 0);
}

/* ------------------------------------------------------------------ the servers */

static char dir[64];    /* temp folder: model, logs */
static char tflite[4096], labels[4096], bird[4096], style[4096], model[4300], photo[4400];
static server A, B;     /* A: the Style model, 2 workers; B: ImageNet, 1 worker, nobody may wait */
static int servers;     /* 0: not started yet, 1: running, -1: failed to start */
static long rss_warm = -1; /* A's resident memory after the parallel case (kB) */
static double t_start;

static uint8_t *load(const char *path, size_t *n) {
    uint8_t *b = sn_read_file(path, n, 1 << 26);
    if (!b) *n = 0;
    return b;
}

/* starts both servers the first time (a Style model is trained for them); false when they are
 * not running (the failed start is checked once) */
static bool need_servers(void) {
    if (servers) {
        if (servers < 0) note("the servers did not start (see above): case skipped");
        return servers > 0;
    }
    servers = -1;
    snprintf(tflite, sizeof tflite, "%s", shared_path("weights/mobilenet_v2_1.0_224_quant.tflite"));
    snprintf(labels, sizeof labels, "%s", shared_path("weights/imagenet_labels.txt"));
    snprintf(bird, sizeof bird, "%s", shared_path("weights/imagenet-check/bird.png"));
    snprintf(style, sizeof style, "%s", shared_path("data/style"));
    snprintf(photo, sizeof photo, "%s/3_2_001.png", style);
    snprintf(dir, sizeof dir, "/tmp/stylenet_serve_XXXXXX");
    if (!check(mkdtemp(dir) != NULL, "temp dir")) {
        dir[0] = 0;
        return false;
    }
    snprintf(model, sizeof model, "%s/style.stn", dir);
    /* the ImageNet server: one worker, nobody may wait (for the 503 case); a GOMP_SPINCOUNT of
     * the environment's own, which the CLI must keep */
    char margs[8192];
    snprintf(margs, sizeof margs, "--model %s --labels %s --threads 1 --queue 0 --quiet", tflite, labels);
    int started = serve_start(&B, bin, dir, "imagenet", "env GOMP_SPINCOUNT=20000", margs);
    if (!check(started == 0, "ImageNet server starts on a free port (%d)%s%s", B.port, started ? ": " : "",
               started ? serve_log(&B) : ""))
        return false;

    /* a Style model in seconds: head only on precomputed activations, 64 px, one thread */
    double t0 = now();
    int rc = run("%s train --data %s --task multi --pretrained %s --recipe seed --lr 0.03 --head-epochs 3 "
                 "--head-aug-epochs 0 --cycles 0 --size 64 --tta 0 --threads 1 --quiet --out %s",
                 bin, style, tflite, model);
    if (!check(rc == 0, "a Style model trained for the test in %.1f s%s%s", now() - t0, rc ? ": " : "",
               rc ? flat(out, 600) : ""))
        return false;
    /* started with neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY: the CLI sets the spin count */
    snprintf(margs, sizeof margs, "--model %s --threads 2 --timeout 2 --max-body 1M --max-connections 32 --quiet",
             model);
    started = serve_start(&A, bin, dir, "style", "env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY", margs);
    if (!check(started == 0, "Style server starts on a free port (%d)%s%s", A.port, started ? ": " : "",
               started ? serve_log(&A) : ""))
        return false;
    note("servers up after %.1f s (Style on port %d, ImageNet on port %d)", now() - t_start, A.port, B.port);
    servers = 1;
    return true;
}

/* the key (answer_key) of the Style server's answer to the plain POST of the Style photo */
static int plain_answer(const uint8_t *png, size_t pn, char *key, size_t cap) {
    resp r;
    post_image(A.port, "/predict", "image/png", png, pn, &r);
    answer_key(&r, key, cap);
    int status = r.status;
    resp_free(&r);
    return status;
}

/* ------------------------------------------------------------------ predictions */

static void case_health_model(void) {
    if (!need_servers()) return;
    resp r;
    int sent = http(A.port, "GET", "/healthz", "", NULL, 0, &r);
    check(sent == 0 && r.status == 200 && strstr(r.body, "\"ok\"") &&
              strstr(r.body, "\"workers\":2"),
          "GET /healthz: 200 %s", flat(r.body, 200));
    resp_free(&r);
    http(A.port, "GET", "/model", "", NULL, 0, &r);
    int rc = run("%s info --json %s", bin, model);
    cJSON *info = rc == 0 ? cJSON_Parse(out) : NULL, *served = r.body ? cJSON_Parse(r.body) : NULL;
    check(r.status == 200 && info && served && cJSON_Compare(info, served, true),
          "GET /model is what `stylenet info --json` says (%d, %zu bytes)", r.status, r.n);
    cJSON_Delete(info);
    cJSON_Delete(served);
    resp_free(&r);
}

/* raw PNG and multipart bodies, TTA and top=K: the same answers as `stylenet predict` */
static void case_predict_style(void) {
    if (!need_servers()) return;
    resp r;
    char why[512] = "", margs[8192], key_raw[4096], key[4096], key_tta[4096];
    double worst = -1;
    cJSON *doc;
    size_t pn;
    uint8_t *png = load(photo, &pn);
    post_image(A.port, "/predict", "image/png", png, pn, &r);
    cJSON *ans = r.body ? cJSON_Parse(r.body) : NULL;
    snprintf(margs, sizeof margs, "--model %s", model);
    const cJSON *ref = cli_predict(margs, photo, &doc);
    bool same = ans && ref && same_prediction(ans, ref, &worst, why, sizeof why); /* before the message reads worst */
    check(r.status == 200 && same,
          "raw PNG body: brand, product and top-5 as `stylenet predict` (worst |dp| %.2g) %s", worst, why);
    const char *mname = cJSON_GetStringValue(cJSON_GetObjectItem(ans, "model"));
    check(mname && !strcmp(mname, "style.stn") &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(ans, "time_ms")) > 0 &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "image"), "width")) == 150 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "groups"), "brand"),
                                                     "top")) == 5,
          "the answer names the model, the time, the image size, and each group's top 5: %s", flat(r.body, 300));
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
    free(png);
}

static void case_predict_jpeg(void) {
    if (!need_servers()) return;
    char jpeg_path[4096];
    size_t jn = 0;
    uint8_t *jpeg = NULL;
    image jim = {0};
    if (find_repo_dir("tests/fuzz/corpus/image", jpeg_path, sizeof jpeg_path)) {
        strncat(jpeg_path, "/seed_baseline.jpg", sizeof jpeg_path - strlen(jpeg_path) - 1);
        jpeg = load(jpeg_path, &jn);
    }
    if (jpeg) image_decode(jpeg, jn, "seed_baseline.jpg", &jim);
    resp r;
    post_image(A.port, "/predict", "image/jpeg", jpeg, jn, &r);
    cJSON *ans = r.body ? cJSON_Parse(r.body) : NULL;
    check(jpeg && jim.w > 0 && r.status == 200 &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "image"), "width")) == jim.w &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "image"), "height")) == jim.h,
          "a JPEG (image/jpeg): 200, its %dx%d pixels decoded", jim.w, jim.h);
    cJSON_Delete(ans);
    image_free(&jim);
    resp_free(&r);
    free(jpeg);
}

/* the bytes decide, not the declared content type, whenever the body is an image */
static void case_content_sniffing(void) {
    if (!need_servers()) return;
    char key_png[4096], key[4096], jpeg_path[4096] = "";
    size_t pn, jn = 0, wn = 0;
    uint8_t *png = load(photo, &pn), *jpeg = NULL, *webp = NULL;
    if (find_repo_dir("tests/fuzz/corpus/image", jpeg_path, sizeof jpeg_path)) {
        strncat(jpeg_path, "/seed_baseline.jpg", sizeof jpeg_path - strlen(jpeg_path) - 1);
        jpeg = load(jpeg_path, &jn);
    }
    image im = {0};
    if (png && image_decode(png, pn, "photo", &im) == 0) webp = webp_encode(im.rgb, im.w, im.h, 3, 1, 0, &wn);
    image_free(&im);
    if (!check(png && jpeg && webp, "a PNG, a JPEG and a lossless WebP of the PNG's pixels (%zu bytes)", wn)) {
        free(png);
        free(jpeg);
        free(webp);
        return;
    }
    int st = plain_answer(png, pn, key_png, sizeof key_png);
    check(st == 200, "the PNG as image/png: 200");
    static const char *types[] = {"application/x-www-form-urlencoded", "application/octet-stream", "text/plain"};
    for (int t = 0; t < 3; t++) {
        const uint8_t *body[3] = {png, jpeg, webp};
        size_t len[3] = {pn, jn, wn};
        for (int f = 0; f < 3; f++) {
            resp r;
            post_image(A.port, "/predict", types[t], body[f], len[f], &r);
            answer_key(&r, key, sizeof key);
            bool same = f == 1 || !strcmp(key, key_png); /* the WebP holds the PNG's pixels */
            check(r.status == 200 && same, "a %s body sent as %s: %d%s%s", f == 0 ? "PNG" : f == 1 ? "JPEG" : "WebP",
                  types[t], r.status, f == 1 ? "" : ", the PNG's answer", r.status == 200 ? "" : error_of(&r));
            resp_free(&r);
        }
    }
    resp r;
    post_image(A.port, "/predict", "image/webp", webp, wn, &r);
    answer_key(&r, key, sizeof key);
    check(r.status == 200 && !strcmp(key, key_png), "the WebP as image/webp: 200, the PNG's answer (%d)", r.status);
    resp_free(&r);
    static const char form[] = "image=bag.png&note=hello";
    post_image(A.port, "/predict", "application/x-www-form-urlencoded", (const uint8_t *)form, sizeof form - 1, &r);
    check(r.status == 415 && strstr(error_of(&r), "x-www-form-urlencoded") && strstr(error_of(&r), "not a PNG, JPEG or WebP"),
          "a urlencoded form (not an image): 415 %s", error_of(&r));
    resp_free(&r);
    post_image(A.port, "/predict", "text/plain", (const uint8_t *)"RIFF", 4, &r);
    check(r.status == 415, "four bytes under text/plain: 415 %s", error_of(&r));
    resp_free(&r);
    http(A.port, "POST", "/predict", "Content-Type: text/plain\r\n", NULL, 0, &r);
    check(r.status == 415, "an empty text/plain body: 415 %s", error_of(&r));
    resp_free(&r);
    /* a WebP header (VP8X) that claims 10000 x 10000 pixels: refused before decoding */
    static const uint8_t huge[30] = "RIFF\x16\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0\x0f\x27\0\x0f\x27\0";
    post_image(A.port, "/predict", "application/x-www-form-urlencoded", huge, sizeof huge, &r);
    check(r.status == 422 && strstr(error_of(&r), "10000x10000"), "a 10000x10000 WebP header: 422 %s", error_of(&r));
    resp_free(&r);
    post_image(A.port, "/predict", "application/octet-stream", webp, wn / 2, &r);
    check(r.status == 422 && strstr(error_of(&r), "WebP") && strstr(error_of(&r), "truncated"),
          "half a WebP as application/octet-stream: 422 %s", error_of(&r));
    resp_free(&r);
    free(png);
    free(jpeg);
    free(webp);
}

/* the ImageNet model: the check photo is a chickadee, as `stylenet predict` says */
static void case_predict_imagenet(void) {
    if (!need_servers()) return;
    size_t bn;
    uint8_t *bird_png = load(bird, &bn);
    resp r;
    post_image(B.port, "/predict", "image/png", bird_png, bn, &r);
    cJSON *doc, *ans = r.body ? cJSON_Parse(r.body) : NULL;
    char margs[8192], why[512] = "";
    snprintf(margs, sizeof margs, "--model %s --labels %s", tflite, labels);
    const cJSON *ref = cli_predict(margs, bird, &doc);
    double worst = -1;
    const char *top1 = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(ans, "top"), 0), "class"));
    bool same = ans && ref && same_prediction(ans, ref, &worst, why, sizeof why); /* before the message reads worst */
    check(r.status == 200 && top1 && !strcmp(top1, "chickadee") && same,
          "ImageNet TFLite: bird.png is a %s, top-5 as `stylenet predict` (worst |dp| %.2g) %s", top1 ? top1 : "?",
          worst, why);
    cJSON_Delete(ans);
    cJSON_Delete(doc);
    resp_free(&r);
    free(bird_png);
}

/* 503: the one worker of the ImageNet server is busy and no request may wait */
static void case_busy_503(void) {
    if (!need_servers()) return;
    size_t bn;
    uint8_t *bird_png = load(bird, &bn);
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
    free(bird_png);
}

/* parallel requests: each answer as when asked alone (workers share the weights) */
static void case_parallel(void) {
    if (!need_servers()) return;
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
        ok &= img[i] && plain_answer(img[i], len[i], want[i], sizeof want[i]) == 200;
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
    rss_warm = rss_kb(A.pid);
}

/* the CLI bounds libgomp's barrier spinning itself (core/openmp.h) unless the environment sets
 * GOMP_SPINCOUNT or OMP_WAIT_POLICY: the Style server started without either, the ImageNet
 * server with GOMP_SPINCOUNT=20000 */
static void case_spincount(void) {
    if (!need_servers()) return;
    check(environ_has(A.pid, "GOMP_SPINCOUNT=10000"),
          "started without GOMP_SPINCOUNT or OMP_WAIT_POLICY, the server runs with GOMP_SPINCOUNT=10000 (set by the "
          "CLI itself)");
    check(environ_has(B.pid, "GOMP_SPINCOUNT=20000") && !environ_has(B.pid, "GOMP_SPINCOUNT=10000"),
          "started with GOMP_SPINCOUNT=20000, the server keeps the environment's setting");
}

/* ------------------------------------------------------------------ bad requests */

/* each bad request gets its answer, and the server goes on */
static void case_bad_requests(void) {
    if (!need_servers()) return;
    size_t pn;
    uint8_t *png = load(photo, &pn);
    resp r;
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
    static const char page[] = "<html>a web page, not a photo</html>";
    post_image(A.port, "/predict", "text/html", (const uint8_t *)page, sizeof page - 1, &r);
    check(r.status == 415 && strstr(error_of(&r), "text/html"), "HTML as text/html: 415 %s", error_of(&r));
    resp_free(&r);
    http(A.port, "POST", "/predict?tta=maybe", "Content-Type: image/png\r\n", png, pn, &r);
    check(r.status == 400 && strstr(error_of(&r), "tta"), "?tta=maybe: 400 %s", error_of(&r));
    resp_free(&r);
    http(A.port, "POST", "/predict?top=0", "Content-Type: image/png\r\n", png, pn, &r);
    check(r.status == 400 && strstr(error_of(&r), "top"), "?top=0: 400 %s", error_of(&r));
    resp_free(&r);
    static const char text[] = "<html>this is not a photo</html>";
    post_image(A.port, "/predict", "image/png", (const uint8_t *)text, sizeof text - 1, &r);
    check(r.status == 422 && strstr(error_of(&r), "not a PNG, JPEG or WebP"), "HTML bytes as image/png: 422 %s",
          error_of(&r));
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
    char h[256], form[512];
    snprintf(h, sizeof h, "Content-Type: multipart/form-data; boundary=%s\r\n", BOUNDARY);
    int fl = snprintf(form, sizeof form, "--%s\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--%s--\r\n",
                      BOUNDARY, BOUNDARY);
    http(A.port, "POST", "/predict", h, form, (size_t)fl, &r);
    check(r.status == 400 && strstr(error_of(&r), "field named image"), "a form without a file: 400 %s", error_of(&r));
    resp_free(&r);
    http(A.port, "POST", "/predict", "Content-Type: multipart/form-data\r\n", form, (size_t)fl, &r);
    check(r.status == 400 && strstr(error_of(&r), "boundary"), "multipart without a boundary: 400 %s", error_of(&r));
    resp_free(&r);
    post_form(A.port, "image", "bag.png", png, pn, true, &r);
    check(r.status == 400 && strstr(error_of(&r), "boundary"), "a form cut before its last boundary: 400 %s",
          error_of(&r));
    resp_free(&r);
    free(png);
}

/* bodies over the 1 MB limit: declared in the headers, or chunked a little or far past it */
static void case_body_limits(void) {
    if (!need_servers()) return;
    resp r;
    post_partial(A.port, "5000000", NULL, 0, false, &r); /* refused from the headers alone, no body sent */
    check(r.status == 413 && strstr(error_of(&r), "5000000"), "Content-Length 5 MB (limit 1 MB): 413 at once: %s",
          error_of(&r));
    resp_free(&r);
    post_chunked(A.port, 24, &r);
    check(r.status == 413 && strstr(error_of(&r), "limit"), "a chunked 1.5 MB body (limit 1 MB): 413 %s", error_of(&r));
    resp_free(&r);
    /* far past the limit (2 x limit + 1 MiB) the server stops reading and closes the connection
     * without an answer (server.c): no answer is right only when the server says it cut the
     * request off, promptly, and goes on answering */
    const char *cut = "stylenet_http_aborted_total{reason=\"error\"}";
    double cut0 = get_metric(A.port, cut), tc = now();
    bool sent = post_chunked(A.port, 80, &r);
    double took = now() - tc, cut1 = wait_metric_above(A.port, cut, cut0);
    check(r.status == 0 && took < 10 && cut0 >= 0 && cut1 == cut0 + 1,
          "a chunked 5 MB body: the connection is closed without an answer (status %d, %s, after %.1f s), counted in "
          "%s (%g -> %g)",
          r.status, sent ? "all sent" : "send failed", took, cut, cut0, cut1);
    resp_free(&r);
}

/* half a body, then the client closes */
static void case_client_abort(void) {
    if (!need_servers()) return;
    size_t pn;
    uint8_t *png = load(photo, &pn);
    const char *gone = "stylenet_http_aborted_total{reason=\"client\"}";
    double aborted0 = get_metric(A.port, gone);
    char len[32];
    snprintf(len, sizeof len, "%zu", pn);
    resp r;
    post_partial(A.port, len, png, pn / 2, true, &r);
    check(r.status == 0, "half a body then the client closes: no answer, connection closed (%d)", r.status);
    resp_free(&r);
    double aborted1 = wait_metric_above(A.port, gone, aborted0);
    check(aborted1 == aborted0 + 1, "  ... counted in %s (%g -> %g)", gone, aborted0, aborted1);
    free(png);
}

/* slow clients: cut off by the 2 s idle timeout, while others are served */
static void case_slow_clients(void) {
    if (!need_servers()) return;
    size_t pn;
    uint8_t *png = load(photo, &pn);
    resp r;
    const char *timeout = "stylenet_http_aborted_total{reason=\"timeout\"}";
    double timeouts0 = get_metric(A.port, timeout);
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
    double timeouts1 = wait_metric_above(A.port, timeout, timeouts0);
    check(timeouts1 >= timeouts0 + 1, "  ... counted in %s (%g -> %g)", timeout, timeouts0, timeouts1);
    free(png);
}

/* a flood of 100 idle connections: the server holds 32 (its limit) and closes the rest at once;
 * the idle timeout closes the 32; then requests are served again */
/* libmicrohttpd frees a closed connection's slot (and the server's open-connections gauge) in its
 * next cleanup pass, a moment after the client sees the close: a request in that window meets a
 * full house.  Waits (at most 3 s) until at most the asking connection is open; returns the count */
static double wait_connections_freed(int port) {
    double open = -1, tw = now();
    while (now() - tw < 3 && !((open = get_metric(port, "stylenet_connections_open")) >= 0 && open <= 1))
        usleep(20000);
    return open;
}

static void case_idle_flood(void) {
    if (!need_servers()) return;
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
    double tw = now(), open = wait_connections_freed(A.port);
    size_t pn;
    uint8_t *png = load(photo, &pn);
    resp r;
    post_image(A.port, "/predict", "image/png", png, pn, &r);
    check(r.status == 200, "after the idle flood a prediction is answered (%d; open connections before it %.0f, "
          "after %.2f s)", r.status, open, now() - tw);
    resp_free(&r);
    free(png);
}

/* a flood of 200 requests at once (the server takes 32 connections at a time) */
static void case_request_flood(void) {
    if (!need_servers()) return;
    size_t pn;
    uint8_t *png = load(photo, &pn);
    char key_before[4096], key[4096];
    int status_before = plain_answer(png, pn, key_before, sizeof key_before);
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
    resp r;
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
    wait_connections_freed(A.port);
    int status = plain_answer(png, pn, key, sizeof key);
    check(status_before == 200 && status == 200 && !strcmp(key, key_before),
          "after the flood a prediction is answered, the same as before it (%d, %d)", status_before, status);
    double open = -1;
    for (int i = 0; i < 100 && open != 1; i++, usleep(20000)) open = get_metric(A.port, "stylenet_connections_open");
    check(open == 1, "every flood connection is closed on the server side (open now: %g, this one)", open);
    free(png);
}

/* ------------------------------------------------------------------ metrics, page, load */

/* GET /metrics: its format, and its counters before and after a known set of requests */
static void case_metrics(void) {
    if (!need_servers()) return;
    static const char *series[5] = {"stylenet_http_requests_total{route=\"/predict\",code=\"200\"}",
                                    "stylenet_http_requests_total{route=\"other\",code=\"404\"}",
                                    "stylenet_http_requests_total{route=\"/predict\",code=\"413\"}",
                                    "stylenet_http_requests_total{route=\"/predict\",code=\"422\"}",
                                    "stylenet_http_errors_total{route=\"/predict\"}"};
    double before[5], d[5];
    resp r;
    http(A.port, "GET", "/metrics", "", NULL, 0, &r);
    for (int k = 0; k < 5; k++) before[k] = fmax(0, metric(r.body ? r.body : "", series[k])); /* absent: none yet */
    check(r.status == 200 && header(&r, "Content-Type") && strstr(header(&r, "Content-Type"), "text/plain") &&
              strstr(r.body, "# TYPE stylenet_http_requests_total counter") &&
              strstr(r.body, "stylenet_model_info{name=\"style.stn\",arch=\"mobilenet_v2_tf\",task=\"multi\""),
          "GET /metrics: Prometheus text with types and the model's info");
    resp_free(&r);
    /* two predictions, an unknown path, a body declared too large, bytes that are not an image */
    size_t pn;
    uint8_t *png = load(photo, &pn);
    for (int i = 0; i < 2; i++) {
        post_image(A.port, "/predict", "image/png", png, pn, &r);
        resp_free(&r);
    }
    http(A.port, "GET", "/nope", "", NULL, 0, &r);
    resp_free(&r);
    post_partial(A.port, "5000000", NULL, 0, false, &r);
    resp_free(&r);
    post_image(A.port, "/predict", "image/png", (const uint8_t *)"<html>", 6, &r);
    resp_free(&r);
    http(A.port, "GET", "/metrics", "", NULL, 0, &r);
    for (int k = 0; k < 5; k++) d[k] = fmax(0, metric(r.body ? r.body : "", series[k])) - before[k];
    double p50 = metric(r.body ? r.body : "", "stylenet_predict_latency_seconds{quantile=\"0.5\"}");
    double p99 = metric(r.body ? r.body : "", "stylenet_predict_latency_seconds{quantile=\"0.99\"}");
    check(r.status == 200 && d[0] == 2 && d[1] == 1 && d[2] == 1 && d[3] == 1 && d[4] == 2,
          "counters: +%g predictions, 404 +%g, 413 +%g, 422 +%g, +%g errors on /predict (sent: 2, 1, 1, 1, 2)", d[0],
          d[1], d[2], d[3], d[4]);
    check(p50 > 0 && p99 >= p50, "latency quantiles: p50 %.2f ms, p99 %.2f ms", p50 * 1e3, p99 * 1e3);
    double n0 = metric(r.body ? r.body : "", series[0]);
    resp_free(&r);
    post_image(A.port, "/predict", "image/png", png, pn, &r);
    resp_free(&r);
    double n1 = get_metric(A.port, series[0]);
    check(n0 > 0 && n1 == n0 + 1, "one more prediction, one more in the counter (%g -> %g)", n0, n1);
    free(png);
}

/* the page in headless Chromium: the bird with the ImageNet model, then a Style photo the test
 * model gets right (brand and product as its file name says), chosen through the API */
static void case_page(void) {
    if (!need_servers()) return;
    resp r;
    http(A.port, "GET", "/model", "", NULL, 0, &r);
    cJSON *served = r.body ? cJSON_Parse(r.body) : NULL;
    const cJSON *classes = cJSON_GetObjectItem(served, "classes");
    resp_free(&r);
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
    cJSON_Delete(served);
    snprintf(shot, sizeof shot, "%s", bin);
    char *slash = strrchr(shot, '/');
    snprintf(slash ? slash + 1 : shot, sizeof shot - (size_t)(slash ? slash + 1 - shot : 0), "serve_page.png");
    bool have_tools = find_repo_dir("tools", tools, sizeof tools);
    double tb = now();
    int rc = have_tools ? run("/usr/bin/python3 %s/serve_page_test.py --case http://127.0.0.1:%d/ '%s' top=chickadee "
                              "--case http://127.0.0.1:%d/ '%s' '%s' --screenshot %s",
                              tools, B.port, bird, A.port, best, expect, shot)
                        : -1;
    check(rc == 0, "the page in headless Chromium shows the predictions (%.1f s): %s", now() - tb, flat(out, 1500));
    struct stat sb;
    check(rc == 0 && stat(shot, &sb) == 0 && sb.st_size > 10000, "screenshot written: %s (%lld bytes)", shot,
          (long long)(stat(shot, &sb) ? 0 : sb.st_size));
    note("page: %s", flat(out, 600));
}

/* wrk's latency line for quantile q ("     50%  1.23ms") in ms, -1 if absent */
static double wrk_quantile_ms(const char *q) {
    const char *s = strstr(out, q);
    if (!s) return -1;
    char *e;
    double v = strtod(s + strlen(q), &e);
    return !strncmp(e, "us", 2) ? v / 1e3 : !strncmp(e, "ms", 2) ? v : *e == 's' ? v * 1e3 : !strncmp(e, "m", 1) ? v * 6e4 : -1;
}

/* load test: wrk for 3 s, 4 connections, POST /predict of one photo */
static void case_load_test(void) {
    if (!need_servers()) return;
    char sdir[4096];
    bool have = find_repo_dir("tests/serve", sdir, sizeof sdir);
    int rc = have ? run("STYLENET_WRK_IMAGE='%s' wrk -t2 -c4 -d3s --latency -s %s/predict.lua http://127.0.0.1:%d/predict",
                        photo, sdir, A.port)
                  : -1;
    double rps = -1, p50 = wrk_quantile_ms("     50%"), p99 = wrk_quantile_ms("     99%");
    long total = -1;
    char *s = strstr(out, "Requests/sec:");
    if (s) rps = atof(s + 13);
    s = strstr(out, " requests in ");
    if (s) {
        char *b = s;
        while (b > out && b[-1] != '\n' && b[-1] != ' ') b--;
        total = atol(b);
    }
    check(rc == 0 && rps > 0 && total > 0 && p50 > 0 && p99 >= p50,
          "wrk load test ran (wrk from Debian: apt-get install wrk): %s", rc == 0 && rps > 0 ? "" : flat(out, 800));
    bool errors = strstr(out, "Non-2xx") || strstr(out, "Socket errors");
    check(rc == 0 && !errors, "load test: no error answers and no socket errors%s%s", errors ? ": " : "",
          errors ? flat(out, 800) : "");
    note("load test (wrk -t2 -c4 -d3s, 2 workers, 64 px Style model, 150x150 PNG): %ld requests, %.1f requests/s, "
         "p50 %.2f ms, p99 %.2f ms%s",
         total, rps, p50, p99, ASAN ? " (ASan build)" : "");
}

/* ------------------------------------------------------------------ the command line, the end */

/* the command line refuses what it cannot serve */
static void case_cli_refusals(void) {
    if (!need_servers()) return;
    int rc = run("%s serve --model %s/nope.stn --port 0", bin, dir);
    check(rc == 1 && strstr(out, "nope.stn"), "a missing model: exit 1 naming it: %s", flat(out, 200));
    rc = run("%s serve --model %s --port 0 --max-body 12Q", bin, model);
    check(rc == 2 && strstr(out, "--max-body"), "a bad --max-body: exit 2 naming the flag: %s", flat(out, 120));
    rc = run("%s serve --model %s --port %d --quiet", bin, model, A.port);
    check(rc == 1 && strstr(out, "cannot listen"), "a port in use: exit 1: %s", flat(out, 200));
}

/* memory: bounded after the cases since the parallel one (run alone: after it) */
static void case_memory(void) {
    if (!need_servers()) return;
    if (rss_warm < 0) case_parallel();
    long rss_end = rss_kb(A.pid);
    long bound = ASAN ? 600 * 1024 : 150 * 1024;
    check(rss_warm > 0 && rss_end > 0 && rss_end - rss_warm < bound,
          "resident memory after warm-up %ld MB, after the cases run since %ld MB (growth bound %ld MB)",
          rss_warm / 1024, rss_end / 1024, bound / 1024);
}

/* SIGTERM stops each server cleanly */
static void case_stop(void) {
    if (!servers) need_servers();
    for (int k = 0; k < 2; k++) {
        server *s = k ? &B : &A;
        if (s->pid <= 0) continue;
        double ts = now();
        int st = serve_stop(s);
        size_t n;
        uint8_t *log = sn_read_file(s->log, &n, 1 << 24);
        check(st == 0 && log && memmem(log, n, "stopping", 8),
              "SIGTERM stops the %s server cleanly in %.1f s (exit %d)%s%s", k ? "ImageNet" : "Style", now() - ts, st,
              st ? ": " : "", st ? serve_log(s) : "");
        free(log);
    }
    if (servers > 0) servers = -1;
}

static const test_case cases[] = {
    {"health_model", case_health_model},
    {"predict_style", case_predict_style},
    {"predict_jpeg", case_predict_jpeg},
    {"content_sniffing", case_content_sniffing},
    {"predict_imagenet", case_predict_imagenet},
    {"busy_503", case_busy_503},
    {"parallel", case_parallel},
    {"spincount", case_spincount},
    {"bad_requests", case_bad_requests},
    {"body_limits", case_body_limits},
    {"client_abort", case_client_abort},
    {"slow_clients", case_slow_clients},
    {"idle_flood", case_idle_flood},
    {"request_flood", case_request_flood},
    {"metrics", case_metrics},
    {"page", case_page},
    {"load_test", case_load_test},
    {"cli_refusals", case_cli_refusals},
    {"memory", case_memory},
    {"stop", case_stop},
};

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    t_start = now();
    int rc = test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
    serve_stop(&A); /* the servers still up when "stop" was not among the cases run */
    serve_stop(&B);
    if (dir[0]) {
        note("serve tests took %.1f s", now() - t_start);
        run("rm -rf %s", dir);
    }
    return rc;
}
