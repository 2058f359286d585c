/* test_api.c - the public API of include/stylenet.h on the ImageNet TFLite MobileNetV2 (a model
 * without label groups; tests/api/test_install covers a grouped Style model through the shared
 * library).  Cases:
 *   - open: the model's classes, task, input size, its one group "class"; a missing file, a bad
 *     option and out-of-range indices fail with messages;
 *   - predict: the check photo is a chickadee; encoded bytes, the file, and its decoded RGB pixels
 *     (rows padded, stride > 3 * width) give identical probabilities; the same pixels as
 *     lossless WebP too; bytes that are no image and bad RGB arguments fail naming the problem;
 *   - threads: 4 threads predicting at once on a handle of 2 workers get the answers of one
 *     thread alone, bit for bit. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "../common/webp_fixture.h"
#include "core/file.h"
#include "io/image.h"
#include "stylenet.h"

static char model_path[4096], labels_path[4096], bird_path[4096];

static stylenet_model *open_imagenet(int workers) {
    snprintf(model_path, sizeof model_path, "%s", shared_path("weights/mobilenet_v2_1.0_224_quant.tflite"));
    snprintf(labels_path, sizeof labels_path, "%s", shared_path("weights/imagenet_labels.txt"));
    snprintf(bird_path, sizeof bird_path, "%s", shared_path("weights/imagenet-check/bird.png"));
    stylenet_options o = {.workers = workers, .labels = labels_path};
    stylenet_model *m = stylenet_open(model_path, &o);
    check(m != NULL, "open the ImageNet TFLite model with %d workers (%s)", workers, m ? "ok" : stylenet_last_error());
    return m;
}

static void case_open(void) {
    check(!strcmp(stylenet_version(), STYLENET_VERSION_STRING), "library version %s = header's", stylenet_version());
    stylenet_model *m = stylenet_open("/nonexistent/model.stn", NULL);
    check(!m && strstr(stylenet_last_error(), "/nonexistent/model.stn"), "a missing model: NULL, %s", stylenet_last_error());
    if (!(m = open_imagenet(1))) return;
    stylenet_model *bad = stylenet_open(model_path, &(stylenet_options){.workers = -1});
    check(!bad && strstr(stylenet_last_error(), "workers"), "workers -1: NULL, %s", stylenet_last_error());
    int first = -1, end = -1, range = stylenet_group_range(m, 0, &first, &end);
    check(stylenet_num_classes(m) == 1001 && !strcmp(stylenet_task(m), "single") && stylenet_input_size(m) == 224,
          "1001 classes, single-label, 224 px (%d, %s, %d)", stylenet_num_classes(m), stylenet_task(m),
          stylenet_input_size(m));
    check(stylenet_num_groups(m) == 1 && !strcmp(stylenet_group_name(m, 0), "class") && range == 0 && first == 0 &&
              end == 1001,
          "no label groups: one group \"class\" of classes [%d, %d)", first, end);
    check(stylenet_class_name(m, 1001) == NULL && stylenet_class_name(m, -1) == NULL && stylenet_group_name(m, 1) == NULL &&
              stylenet_group_range(m, 1, &first, &end) < 0 && strstr(stylenet_last_error(), "group 1"),
          "indices out of range: NULL or -1 (%s)", stylenet_last_error());
    stylenet_close(m);
    stylenet_close(NULL);
}

static bool same(const float *a, const float *b, int n) { return !memcmp(a, b, sizeof(float) * (size_t)n); }

static void case_predict(void) {
    stylenet_model *m = open_imagenet(1);
    if (!m) return;
    const int K = stylenet_num_classes(m);
    float *p = malloc(sizeof(float) * K), *q = malloc(sizeof(float) * K), *r = malloc(sizeof(float) * K);
    size_t n;
    uint8_t *png = sn_read_file(bird_path, &n, 0);
    int rc = png ? stylenet_predict_image(m, png, n, "bird.png", p) : -1;
    int best = rc == 0 ? stylenet_group_best(m, 0, p) : -1;
    const char *name = best >= 0 ? stylenet_class_name(m, best) : "?";
    check(rc == 0 && !strcmp(name, "chickadee"), "bird.png from its bytes: %s %.3f (%s)", name, best >= 0 ? p[best] : 0,
          rc ? stylenet_last_error() : "ok");
    float sum = 0;
    for (int k = 0; rc == 0 && k < K; k++) sum += p[k];
    check(rc == 0 && sum > 0.999f && sum < 1.001f, "softmax: the probabilities sum to %.5f", sum);
    check(stylenet_predict_file(m, bird_path, q) == 0 && same(p, q, K), "from the file: the same probabilities");
    image im;
    if (check(image_load(bird_path, &im) == 0, "decode bird.png for its pixels")) {
        size_t stride = (size_t)im.w * 3 + 5;
        uint8_t *padded = malloc(stride * im.h);
        memset(padded, 0xAB, stride * im.h);
        for (int y = 0; y < im.h; y++) memcpy(padded + y * stride, im.rgb + (size_t)y * im.w * 3, (size_t)im.w * 3);
        check(stylenet_predict_rgb(m, padded, im.w, im.h, stride, r) == 0 && same(p, r, K),
              "from its RGB pixels, rows %zu bytes apart: the same probabilities", stride);
        size_t wn;
        uint8_t *webp = webp_encode(im.rgb, im.w, im.h, 3, 1, 0, &wn);
        check(webp && stylenet_predict_image(m, webp, wn, "bird.webp", r) == 0 && same(p, r, K),
              "its pixels as lossless WebP: the same probabilities");
        check(stylenet_predict_rgb(m, padded, im.w, im.h, (size_t)im.w * 2, r) < 0 && strstr(stylenet_last_error(), "rows"),
              "a stride shorter than a row: -1, %s", stylenet_last_error());
        free(webp);
        free(padded);
        image_free(&im);
    }
    static const char html[] = "<html>no photo</html>";
    check(stylenet_predict_image(m, html, sizeof html - 1, "page.html", r) < 0 &&
              strstr(stylenet_last_error(), "page.html") && strstr(stylenet_last_error(), "not a PNG, JPEG or WebP"),
          "bytes that are no image: -1, %s", stylenet_last_error());
    check(png && stylenet_predict_image(m, png, n / 2, NULL, r) < 0 && strstr(stylenet_last_error(), "image:"),
          "half a PNG without a name: -1, %s", stylenet_last_error());
    free(png);
    free(p);
    free(q);
    free(r);
    stylenet_close(m);
}

typedef struct {
    stylenet_model *m;
    const float *want;
    const uint8_t *png;
    size_t n;
    int wrong;
} job;

static void *client(void *arg) {
    job *j = arg;
    int K = stylenet_num_classes(j->m);
    float *p = malloc(sizeof(float) * K);
    for (int i = 0; i < 3; i++)
        if (!p || stylenet_predict_image(j->m, j->png, j->n, "bird.png", p) < 0 || !same(p, j->want, K)) j->wrong++;
    free(p);
    return NULL;
}

static void case_threads(void) {
    stylenet_model *m = open_imagenet(2);
    if (!m) return;
    const int K = stylenet_num_classes(m);
    size_t n;
    uint8_t *png = sn_read_file(bird_path, &n, 0);
    float *want = malloc(sizeof(float) * K);
    if (check(png && want && stylenet_predict_image(m, png, n, "bird.png", want) == 0, "one thread's answer")) {
        job jobs[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            jobs[i] = (job){.m = m, .want = want, .png = png, .n = n};
            pthread_create(&t[i], NULL, client, &jobs[i]);
        }
        int wrong = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            wrong += jobs[i].wrong;
        }
        check(wrong == 0, "4 threads x 3 predictions on 2 workers: every answer bit for bit the same (%d differ)", wrong);
    }
    free(want);
    free(png);
    stylenet_close(m);
}

static const test_case cases[] = {
    {"open", case_open},
    {"predict", case_predict},
    {"threads", case_threads},
};
TEST_MAIN(cases)
