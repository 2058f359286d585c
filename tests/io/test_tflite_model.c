/* test_tflite_model.c - the TFLite MobileNetV2 loaded into mobilenet_v2_tf gives the logits of an
 * independent PyTorch rendition of the same graph (tools/fixtures_tflite.py reads the file with
 * the PyPI tflite package), predicts the expected top-1 classes, survives a save/load round trip
 * as a stylenet model file, and refuses files that do not fit.  The TF2 int8 per-channel file
 * (tf2_mobilenet_v2_1.0_224_ptq.tflite) loads into the same architecture and predicts the same
 * top-1 classes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../common/check.h"
#include "core/error.h"
#include "io/image.h"
#include "classifier/classifier.h"
#include "io/safetensors.h"
#include "io/tflite_net.h"
#include "models/zoo.h"

static char tflite_path[4096], labels_path[4096];

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static int copy_prefix(const char *src, const char *dst, long n) {
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    if (!a || !b) return -1;
    char buf[65536];
    long left = n;
    while (left > 0) {
        size_t k = fread(buf, 1, left < (long)sizeof buf ? (size_t)left : sizeof buf, a);
        if (!k) break;
        fwrite(buf, 1, k, b);
        left -= (long)k;
    }
    fclose(a);
    fclose(b);
    return 0;
}

enum { N = 3, K = 1001, S = 224 };
static const char *check_names[N] = {"bird", "sunflower", "cat"};
static const int top1[N] = {20, 986, 286};

static void set_paths(void) {
    snprintf(tflite_path, sizeof tflite_path, "%s", shared_path("weights/mobilenet_v2_1.0_224_quant.tflite"));
    snprintf(labels_path, sizeof labels_path, "%s", shared_path("weights/imagenet_labels.txt"));
}

/* the PyTorch rendition's input and logits of the three check photos (malloc'd); false after a
 * failed check */
static bool read_rendition(float **in, float **want) {
    st_file *ref = st_open(fixture_path("tflite_logits.safetensors"));
    const st_tensor *tl = ref ? st_find(ref, "logits") : NULL, *ti = ref ? st_find(ref, "input") : NULL;
    *want = malloc(sizeof(float) * N * K);
    *in = malloc(sizeof(float) * N * S * S * 3);
    bool ok = tl && ti && *want && *in && st_read_f32(ref, tl, *want, (size_t)N * K) == 0 &&
              st_read_f32(ref, ti, *in, (size_t)N * S * S * 3) == 0;
    check(ok, "open the PyTorch rendition's logits (%s)", ok ? "ok" : sn_last_error());
    st_close(ref);
    if (!ok) {
        free(*in);
        free(*want);
        *in = *want = NULL;
    }
    return ok;
}

/* the TFLite MobileNetV2 with its labels; NULL after a failed check */
static classifier *load_tflite(void) {
    set_paths();
    classifier_load_opts lo = {.labels = labels_path};
    classifier *m = classifier_load(tflite_path, &lo);
    check(m != NULL, "load the TFLite MobileNetV2 (%s)", m ? "ok" : sn_last_error());
    return m;
}

/* the three check photos through our decoder and m's preprocessing (malloc'd) */
static float *preprocess(const classifier *m) {
    float *mine = calloc((size_t)N * S * S * 3, sizeof(float));
    for (int i = 0; mine && i < N; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s.png", shared_path("weights/imagenet-check"), check_names[i]);
        image im;
        if (image_load(p, &im) == 0) {
            image_to_input(&im, S, m->mean, m->std, mine + (size_t)i * S * S * 3);
            image_free(&im);
        }
    }
    return mine;
}

static void case_load(void) {
    classifier *m = load_tflite();
    if (!m) return;
    check(!strcmp(m->arch, "mobilenet_v2_tf") && m->n_classes == K && m->size == S, "it is mobilenet_v2_tf, 1001 "
          "classes, 224x224");
    check(!strcmp(m->classes[20], "chickadee"), "class 20 is named chickadee (%s)", m->classes[20]);
    classifier_free(m);
}

/* our decoder + preprocessing produce the rendition's input (x/127.5-1 vs (x/255-.5)/.5: 1 ulp) */
static void case_preprocess(void) {
    float *in, *want;
    classifier *m = read_rendition(&in, &want) ? load_tflite() : NULL;
    float *mine = m ? preprocess(m) : NULL;
    if (m && check(mine != NULL, "memory for the preprocessed photos"))
        check_close("preprocessed check photos equal the rendition's input", mine, in, (size_t)N * S * S * 3, 0, 1e-6f);
    free(mine);
    free(in);
    free(want);
    classifier_free(m);
}

/* m saved as a stylenet model file and loaded back: the same metadata, logits y0 on `in` */
static void round_trip(const classifier *m, const float *in, const float *y0) {
    char tmp[] = "/tmp/stylenet_test_XXXXXX";
    int fd = mkstemp(tmp);
    if (!check(fd >= 0, "temp file")) return;
    close(fd);
    int saved = classifier_save(m, tmp);
    check(saved == 0, "save as a stylenet model file (%s)", saved ? sn_last_error() : "ok");
    classifier *m2 = classifier_load(tmp, NULL);
    if (check(m2 != NULL, "reload it (%s)", m2 ? "ok" : sn_last_error())) {
        check(!strcmp(m2->arch, m->arch) && m2->n_classes == K && !strcmp(m2->classes[286], m->classes[286]) &&
              m2->mean[0] == 0.5f && m2->size == S, "metadata survives: arch, classes, size, normalisation");
        net_set_batch(m2->net, N);
        const float *y2 = net_forward(m2->net, in, false);
        check(!memcmp(y2, y0, sizeof(float) * N * K), "reloaded model gives bitwise-identical logits");
        classifier_free(m2);
    }
    unlink(tmp);
}

/* logits: float32 in both, different summation orders over 53 layers -> 1e-4 of the max; the
 * top-1 classes; batch 1 gives the same logits as batch 3 (the per-image path); a round trip
 * through a stylenet model file gives bitwise the same logits */
static void case_logits(void) {
    float *in, *want;
    classifier *m = read_rendition(&in, &want) ? load_tflite() : NULL;
    if (!m) {
        free(in);
        free(want);
        return;
    }
    net_set_batch(m->net, N);
    const float *y = net_forward(m->net, in, false);
    check_close("logits equal the PyTorch rendition of the TFLite graph", y, want, (size_t)N * K, 1e-4f, 0);
    for (int i = 0; i < N; i++)
        check(argmax(y + (size_t)i * K, K) == top1[i], "%s.png top-1 is %d (%s), as SOURCE.txt says", check_names[i],
              top1[i], m->classes[top1[i]]);
    float *y0 = malloc(sizeof(float) * N * K);
    if (check(y0 != NULL, "memory for the logits")) {
        memcpy(y0, y, sizeof(float) * N * K);
        net_set_batch(m->net, 1);
        y = net_forward(m->net, in + (size_t)S * S * 3, false);
        check_close("batch-1 logits equal batch-3 logits", y, y0 + K, K, 1e-5f, 0);
        round_trip(m, in, y0);
    }
    free(y0);
    free(in);
    free(want);
    classifier_free(m);
}

/* the other body in the shared weights: TF2 (Keras) MobileNetV2, int8 per-channel PTQ weights
 * (axis 0 for convolutions, axis 3 for depthwise); the same graph, so the same top-1 classes */
static void case_tf2(void) {
    classifier *m = load_tflite();
    float *mine = m ? preprocess(m) : NULL;
    if (!m || !check(mine != NULL, "memory for the preprocessed photos")) {
        classifier_free(m);
        return;
    }
    char tf2_path[4096];
    snprintf(tf2_path, sizeof tf2_path, "%s", shared_path("weights/tf2_mobilenet_v2_1.0_224_ptq.tflite"));
    classifier_load_opts lo = {.labels = labels_path};
    classifier *m3 = classifier_load(tf2_path, &lo);
    if (check(m3 != NULL, "load the TF2 int8 per-channel MobileNetV2 (%s)", m3 ? "ok" : sn_last_error())) {
        check(!strcmp(m3->arch, "mobilenet_v2_tf") && m3->n_classes == K && m3->size == S,
              "TF2 file: mobilenet_v2_tf, 1001 classes, 224x224");
        net_set_batch(m3->net, N);
        const float *y3 = net_forward(m3->net, mine, false);
        for (int i = 0; y3 && i < N; i++)
            check(argmax(y3 + (size_t)i * K, K) == top1[i], "TF2 file: %s.png top-1 is %d (%s): %d", check_names[i],
                  top1[i], m3->classes[top1[i]], argmax(y3 + (size_t)i * K, K));
        classifier_free(m3);
    }
    free(mine);
    classifier_free(m);
}

/* files that do not fit: truncated, another architecture, a labels file of the wrong length */
static void case_refusals(void) {
    set_paths();
    classifier_load_opts lo = {.labels = labels_path};
    char trunc[] = "/tmp/stylenet_trunc_XXXXXX", tmp[] = "/tmp/stylenet_test_XXXXXX";
    int fd = mkstemp(trunc), fd2 = mkstemp(tmp);
    if (fd >= 0) close(fd);
    if (fd2 >= 0) close(fd2);
    if (!check(fd >= 0 && fd2 >= 0, "temp files")) return;
    copy_prefix(tflite_path, trunc, 1000000);
    classifier *bad = classifier_load(trunc, &lo);
    check(!bad && strstr(sn_last_error(), trunc), "truncated TFLite file: %s", sn_last_error());
    classifier_free(bad);
    net *r = model_build("resnet18", 1001, NULL);
    check(r && net_load_tflite(r, tflite_path) < 0 && strstr(sn_last_error(), "not the same architecture"),
          "TFLite MobileNetV2 into resnet18: %s", sn_last_error());
    net_free(r);
    model_opts o = model_default_opts();
    o.in_h = o.in_w = 128;
    net *small = model_build("mobilenet_v2_tf", 1001, &o);
    check(small && net_load_tflite(small, tflite_path) == 0, "the weights also load at 128x128 (SAME padding "
          "recomputed): %s", small ? "ok" : sn_last_error());
    net_free(small);
    FILE *lf = fopen(tmp, "w"); /* a labels file of 3 names for a 1001-class model */
    if (lf) {
        fputs("cat\ndog\nbird\n", lf);
        fclose(lf);
    }
    lo.labels = tmp;
    bad = classifier_load(tflite_path, &lo);
    check(lf && !bad && strstr(sn_last_error(), "3 class names") && strstr(sn_last_error(), "1001"),
          "wrong labels file: %s", sn_last_error());
    classifier_free(bad);
    unlink(tmp);
    unlink(trunc);
}

static const test_case cases[] = {
    {"load", case_load},
    {"preprocess", case_preprocess},
    {"logits", case_logits},
    {"tf2", case_tf2},
    {"refusals", case_refusals},
};
TEST_MAIN(cases)
