/* test_classifier.c - the classifier module on small random-init ResNet-18s (32 px):
 *   - a stylenet model file round trip keeps the description (classes, label groups, task,
 *     normalisation, history) and gives bitwise the same logits; a bare state dict loads with
 *     --arch, with names from a labels file or "class_<i>";
 *   - bad files are refused with an error naming the file and what is wrong (format, missing
 *     metadata, groups outside the classes, normalisation, an unrecognised state dict without --arch, a labels file of the wrong
 *     length, a missing file);
 *   - probabilities: softmax / sigmoid by task, each group's best class, a photo with TTA views
 *     (the plain view equals the network's own answer; views are seeded);
 *   - ensembles: the mean of the members' probabilities, bitwise; models that cannot be averaged
 *     are refused naming both files;
 *   - the scoring conventions of classifier/metrics.h: undefined ratios are NaN, an image without
 *     a true tag in a group is left out, confusion matrices and per-class figures;
 *   - the temperature: kept by the model file, 1 for a file without one, bad values refused,
 *     and `stylenet predict` at T = 2 gives softmax(z / 2) with the same top class. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../common/check.h"
#include "classifier/classifier.h"
#include "io/safetensors.h"
#include "classifier/ensemble.h"
#include "classifier/metrics.h"
#include <cjson/cJSON.h>
#include "core/error.h"
#include "io/state.h"
#include "models/zoo.h"

enum { S = 32 };

/* a resnet18 classifier of n classes (the first 2 a group "a", the rest "b" when grouped) */
static classifier *make(uint64_t seed, const char *task, int n, bool grouped) {
    classifier *c = calloc(1, sizeof *c);
    snprintf(c->arch, sizeof c->arch, "resnet18");
    snprintf(c->head, sizeof c->head, "default");
    snprintf(c->task, sizeof c->task, "%s", task);
    snprintf(c->source, sizeof c->source, "stylenet");
    c->head_ps = -1;
    c->size = S;
    c->threshold = 0.25f;
    for (int k = 0; k < 3; k++) c->mean[k] = 0.5f, c->std[k] = 0.25f;
    c->n_classes = n;
    c->classes = calloc((size_t)n, sizeof(char *));
    for (int k = 0; k < n; k++) {
        char b[16];
        snprintf(b, sizeof b, "c%d", k);
        c->classes[k] = strdup(b);
    }
    if (grouped) {
        c->n_groups = 2;
        snprintf(c->group_names[0], sizeof c->group_names[0], "a");
        snprintf(c->group_names[1], sizeof c->group_names[1], "b");
        c->group_lo[0] = 0, c->group_hi[0] = 2, c->group_lo[1] = 2, c->group_hi[1] = n;
    }
    c->history = strdup("{\"recipe\":\"test\"}");
    model_opts o = model_default_opts();
    o.in_h = o.in_w = S;
    o.seed = seed;
    c->net = model_build("resnet18", n, &o);
    return c;
}

static char tmpdir[] = "/tmp/stylenet_classifier_XXXXXX";

static void cleanup(void) {
    char o[256];
    if (run_capture(o, sizeof o, "rm -rf %s", tmpdir) != 0) note("could not remove %s", tmpdir);
}

/* a path in the test's temp folder (made on first use, removed at exit) */
static const char *tmp(const char *name) {
    static char buf[8][256];
    static int k;
    if (tmpdir[strlen(tmpdir) - 1] == 'X') {
        if (!mkdtemp(tmpdir)) return "/nonexistent";
        atexit(cleanup);
    }
    char *b = buf[k++ % 8];
    snprintf(b, 256, "%s/%s", tmpdir, name);
    return b;
}

/* logits of n inputs x[n, S, S, 3] */
static const float *logits_of(classifier *c, int n, const float *x) {
    net_set_batch(c->net, n);
    return net_forward(c->net, x, false);
}

static void file_round_trip(void) {
    classifier *c = make(3, "multi", 5, true);
    const char *p = tmp("m.stn");
    int saved = classifier_save(c, p);
    check(saved == 0, "a classifier saves as a stylenet model file %s", saved ? sn_last_error() : "");
    classifier *d = classifier_load(p, NULL);
    if (!check(d != NULL, "and loads back (%s)", d ? "ok" : sn_last_error())) {
        classifier_free(c);
        return;
    }
    bool same = !strcmp(d->arch, "resnet18") && !strcmp(d->head, "default") && !strcmp(d->task, "multi") &&
                d->size == S && d->threshold == 0.25f && d->mean[1] == 0.5f && d->std[2] == 0.25f &&
                d->n_classes == 5 && !strcmp(d->classes[4], "c4") && d->n_groups == 2 &&
                !strcmp(d->group_names[1], "b") && d->group_lo[1] == 2 && d->group_hi[1] == 5 &&
                !strcmp(d->source, "stylenet") && d->history && strstr(d->history, "\"test\"");
    check(same, "the description survives: architecture, task, size, normalisation, classes, groups, history");
    float x[2 * S * S * 3];
    fill_uniform(x, sizeof x / sizeof *x, 7);
    float a[10];
    memcpy(a, logits_of(c, 2, x), sizeof a);
    check(!memcmp(a, logits_of(d, 2, x), sizeof a), "the reloaded classifier gives bitwise the same logits");
    classifier_free(c);
    classifier_free(d);
}

static void state_dict(void) {
    classifier *c = make(3, "single", 4, false);
    const char *p = tmp("bare.safetensors"), *lab = tmp("labels.txt");
    check(net_save_safetensors(c->net, p, NULL, 0) == 0, "a bare state dict written");
    classifier *d = classifier_load(p, &(classifier_load_opts){.arch = "resnet18", .size = S});
    check(d && !strcmp(d->source, "safetensors") && d->n_classes == 4 && !strcmp(d->classes[3], "class_3") &&
              d->mean[0] == 0.485f && !strcmp(d->task, "single"),
          "with --arch: 4 classes named class_<i>, ImageNet normalisation (%s)", d ? "ok" : sn_last_error());
    classifier_free(d);
    FILE *f = fopen(lab, "w");
    fputs("w\nx\ny\nz\n", f);
    fclose(f);
    d = classifier_load(p, &(classifier_load_opts){.arch = "resnet18", .labels = lab, .size = S});
    check(d && !strcmp(d->classes[0], "w") && !strcmp(d->classes[3], "z"), "with --labels: the names of the file");
    classifier_free(d);
    f = fopen(lab, "w");
    fputs("w\nx\n", f);
    fclose(f);
    d = classifier_load(p, &(classifier_load_opts){.arch = "resnet18", .labels = lab, .size = S});
    check(!d && strstr(sn_last_error(), "labels.txt") && strstr(sn_last_error(), "has 2 class names"),
          "a labels file of the wrong length: %s", sn_last_error());
    d = classifier_load(p, &(classifier_load_opts){.size = S});
    check(d && !strcmp(d->arch, "resnet18") && d->n_classes == 4,
          "without --arch: a resnet18 state dict recognised by its parameter names (%s)", d ? d->arch : sn_last_error());
    classifier_free(d);
    const char *odd = tmp("odd.safetensors");
    st_writer *w = st_writer_new();
    const float v[2] = {1, 2};
    check(w && st_writer_add_f32(w, "encoder.weight", 1, (const int64_t[]){2}, v) == 0 && st_writer_save(w, odd) == 0,
          "a state dict of another architecture written");
    st_writer_free(w);
    d = classifier_load(odd, NULL);
    check(!d && strstr(sn_last_error(), "odd.safetensors") && strstr(sn_last_error(), "--arch"),
          "a state dict of an architecture not recognised, without --arch: %s", sn_last_error());
    classifier_free(c);
}

static void file_errors(void) {
    classifier *c = make(3, "single", 3, false);
    static const char *const bad[][3] = {
        /* metadata key to change, its value, what the error says */
        {"stylenet.format", "2", "format '2'"},
        {"classes", NULL, "without 'classes'"},
        {"groups", "[[\"a\",0,9]]", "'groups' entry 0"},
        {"mean", "0.5,0.5", "'mean'/'std'"},
        {"classes", "[]", "non-empty JSON array"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *meta[] = {"stylenet.format", "1", "arch", "resnet18", "head", "default", "size", "32",
                              "mean", "0.5,0.5,0.5", "std", "0.2,0.2,0.2", "classes", "[\"x\",\"y\",\"z\"]",
                              "groups", "[]"};
        int n = 8;
        for (int k = 0; k < n; k++)
            if (!strcmp(meta[2 * k], bad[i][0])) meta[2 * k + 1] = bad[i][1];
        /* a NULL value drops the key */
        const char *kept[16];
        int m = 0;
        for (int k = 0; k < n; k++)
            if (meta[2 * k + 1]) kept[2 * m] = meta[2 * k], kept[2 * m + 1] = meta[2 * k + 1], m++;
        const char *p = tmp("bad.stn");
        net_save_safetensors(c->net, p, kept, m);
        classifier *d = classifier_load(p, NULL);
        check(!d && strstr(sn_last_error(), "bad.stn") && strstr(sn_last_error(), bad[i][2]),
              "metadata %s = %s: refused naming the file: %s", bad[i][0], bad[i][1] ? bad[i][1] : "(none)",
              sn_last_error());
        classifier_free(d);
    }
    classifier *d = classifier_load("/nonexistent/m.stn", NULL);
    check(!d && strstr(sn_last_error(), "/nonexistent/m.stn") && strstr(sn_last_error(), "cannot open"),
          "a missing file: %s", sn_last_error());
    classifier_free(c);
}

static void probabilities(void) {
    classifier *s = make(1, "single", 4, false), *m = make(1, "multi", 5, true);
    const float lg[5] = {1, -2, 0.5f, 3, -1};
    float p[5];
    classifier_probs(s, 1, lg, p);
    check(fabs(p[0] + p[1] + p[2] + p[3] - 1) < 1e-6 && p[3] > p[0], "single-label: softmax over the classes");
    classifier_probs(m, 1, lg, p);
    check(fabs(p[1] - 1 / (1 + exp(2.0))) < 1e-6 && fabs(p[3] - 1 / (1 + exp(-3.0))) < 1e-6, "multi-label: sigmoid of each");
    check(classifier_group_best(m, 0, p) == 0 && classifier_group_best(m, 1, p) == 3 && classifier_group_best(s, 0, p) == 3,
          "each group's best class (one group when there are none)");

    /* a photo: its plain view is the network's answer for classifier_input; views are seeded */
    image im = {.w = 48, .h = 40, .rgb = malloc(48 * 40 * 3)};
    for (int i = 0; i < 48 * 40 * 3; i++) im.rgb[i] = (uint8_t)(i * 7 % 251);
    image copy = {.w = 48, .h = 40, .rgb = malloc(48 * 40 * 3)};
    float x[S * S * 3], one[4], plain[4], ref[4], v2[4], v2b[4];
    classifier_input(s, &im, x);
    classifier_probs(s, 1, logits_of(s, 1, x), ref);
    double ms[2] = {-1, -1};
    memcpy(copy.rgb, im.rgb, 48 * 40 * 3);
    int r0 = classifier_image_probs(s, s->net, &copy, 0, 42, x, one, plain, ms);
    check(r0 == 0 && !memcmp(plain, ref, sizeof ref) && ms[0] >= 0 && ms[1] >= 0 && copy.rgb == NULL,
          "a photo without TTA: the network's probabilities of its input, the photo freed");
    copy.rgb = malloc(48 * 40 * 3), copy.w = 48, copy.h = 40;
    memcpy(copy.rgb, im.rgb, 48 * 40 * 3);
    int r1 = classifier_image_probs(s, s->net, &copy, 2, 42, x, one, v2, NULL);
    copy.rgb = malloc(48 * 40 * 3), copy.w = 48, copy.h = 40;
    memcpy(copy.rgb, im.rgb, 48 * 40 * 3);
    int r2 = classifier_image_probs(s, s->net, &copy, 2, 42, x, one, v2b, NULL);
    check(r1 == 0 && r2 == 0 && !memcmp(v2, v2b, sizeof v2) && memcmp(v2, plain, sizeof v2) != 0 &&
              fabs(v2[0] + v2[1] + v2[2] + v2[3] - 1) < 1e-5,
          "with 2 TTA views: the same answer twice (seeded), not the plain one, still probabilities");
    image_free(&im);
    classifier_free(s);
    classifier_free(m);
}

static void ensembles(void) {
    classifier *a = make(1, "single", 4, false), *b = make(2, "single", 4, false), *g = make(1, "multi", 4, true);
    const char *pa = tmp("a.stn"), *pb = tmp("b.stn"), *pg = tmp("g.stn");
    classifier_save(a, pa);
    classifier_save(b, pb);
    classifier_save(g, pg);
    const char *both[2] = {pa, pb};
    ensemble *e = ensemble_load(both, 2, NULL);
    if (!check(e && e->n == 2, "an ensemble of two models (%s)", e ? "ok" : sn_last_error())) goto done;
    image ims[3];
    bool ok[3] = {true, false, true};
    for (int i = 0; i < 3; i++) {
        ims[i] = (image){.w = 40, .h = 36, .rgb = malloc(40 * 36 * 3)};
        for (int k = 0; k < 40 * 36 * 3; k++) ims[i].rgb[k] = (uint8_t)((k * (i + 3)) % 253);
    }
    float probs[12], ref[12] = {0}, pa_[12], pb_[12];
    for (int k = 0; k < 12; k++) probs[k] = -1;
    int r = ensemble_reserve(e, 3) == 0 ? ensemble_predict(e, ims, ok, 3, probs) : -1;
    /* the reference: each model alone on the same batch (the skipped photo's input is zeros) */
    float *x = calloc(3 * S * S * 3, sizeof(float));
    classifier_input(a, &ims[0], x);
    classifier_input(a, &ims[2], x + 2 * S * S * 3);
    classifier_probs(a, 3, logits_of(a, 3, x), pa_);
    classifier_probs(b, 3, logits_of(b, 3, x), pb_);
    for (int k = 0; k < 12; k++) ref[k] = (0 + pa_[k] + pb_[k]) / 2.0f;
    check(r == 0 && !memcmp(probs, ref, 4 * sizeof(float)) && !memcmp(probs + 8, ref + 8, 4 * sizeof(float)),
          "the ensemble's probabilities are the members' mean, bitwise");
    check(probs[4] == -1 && probs[7] == -1, "the row of a photo not to score is left as it was");
    for (int i = 0; i < 3; i++) image_free(&ims[i]);
    free(x);
    ensemble_free(e);
    const char *mixed[2] = {pa, pg};
    e = ensemble_load(mixed, 2, NULL);
    check(!e && strstr(sn_last_error(), "a.stn") && strstr(sn_last_error(), "g.stn") && strstr(sn_last_error(), "same task"),
          "a single-label and a multi-label model are refused, naming both: %s", sn_last_error());
    free(b->classes[1]);
    b->classes[1] = strdup("other");
    classifier_save(b, pb);
    e = ensemble_load(both, 2, NULL);
    check(!e && strstr(sn_last_error(), "class 1") && strstr(sn_last_error(), "b.stn"),
          "models whose classes differ are refused: %s", sn_last_error());
    check(classifier_compatible(g, "g", g, "g") == 0, "a model can be averaged with itself");
done:
    classifier_free(a);
    classifier_free(b);
    classifier_free(g);
}

static void metrics_conventions(void) {
    /* 4 images, classes 0..1 group "a", 2..4 group "b"; image 3 has no tag in group b */
    const float p[4][5] = {{0.9f, 0.1f, 0.2f, 0.7f, 0.1f}, {0.2f, 0.8f, 0.6f, 0.3f, 0.1f},
                           {0.6f, 0.4f, 0.1f, 0.2f, 0.9f}, {0.3f, 0.7f, 0.5f, 0.1f, 0.2f}};
    const uint8_t h[4][5] = {{1, 0, 0, 1, 0}, {0, 1, 1, 0, 0}, {0, 1, 0, 1, 0}, {0, 1, 0, 0, 0}};
    const float *rows[4] = {p[0], p[1], p[2], p[3]};
    const uint8_t *hot[4] = {h[0], h[1], h[2], h[3]};
    metrics_group g;
    int r = metrics_group_score(4, rows, hot, 2, 5, &g);
    /* group b: truth 3->pred 3, 2->2, 3->4; image 3 left out */
    check(r == 0 && g.n == 3 && g.cm[1 * 3 + 1] == 1 && g.cm[0] == 1 && g.cm[1 * 3 + 2] == 1 && g.count[2] == 0,
          "a group's confusion matrix: rows truth, columns prediction; an image without a true tag left out");
    check(fabs(g.accuracy - 2.0 / 3) < 1e-12 && g.recall[1] == 0.5 && g.precision[2] == 0 && isnan(g.recall[2]),
          "accuracy 2/3, recall 1/2; a class without images has NaN recall (%g)", g.recall[2]);
    metrics_group_free(&g);
    r = metrics_group_score(4, rows, hot, 0, 2, &g);
    check(r == 0 && g.n == 4 && g.cm[1 * 2 + 0] == 1 && g.precision[0] == 0.5 && g.recall[1] == 2.0 / 3,
          "group a: every image counted, precision of class 0 1/2, recall of class 1 2/3");
    metrics_group_free(&g);
    r = metrics_threshold_score(4, 5, rows, hot, 0.65, &g);
    check(r == 0 && g.cm == NULL && isnan(g.accuracy) && g.count[1] == 3 && fabs(g.recall[1] - 2.0 / 3) < 1e-12 &&
              g.precision[1] == 1 && isnan(g.precision[2]),
          "each class at a threshold: counts, precision, recall; NaN when nothing is predicted as it");
    metrics_group_free(&g);
    float t[4][5];
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 5; c++) t[i][c] = h[i][c];
    const int bounds[3] = {0, 2, 5};
    double ga = metrics_group_accuracy(4, 5, &p[0][0], &t[0][0], 2, 5);
    double all = metrics_groups_all_right(4, 5, &p[0][0], &t[0][0], bounds, 2);
    check(fabs(ga - 2.0 / 3) < 1e-12 && fabs(all - 2.0 / 3) < 1e-12,
          "group accuracy and all-right leave out images without a tag in a group (%g, %g)", ga, all);
    int cm[4] = {0, 0, 0, 0};
    double pr[2], rc[2];
    metrics_precision_recall(2, cm, pr, rc);
    check(isnan(pr[0]) && isnan(rc[1]) && isnan(metrics_accuracy(0, 2, NULL, NULL)),
          "no images: precision, recall and accuracy are NaN");
    const float tie[4] = {0.2f, 0.5f, 0.5f, 0.1f};
    ranked_class order[4];
    metrics_rank_classes(tie, 0, 4, order);
    check(order[0].idx == 1 && order[1].idx == 2 && order[3].idx == 3 && metrics_group_argmax(tie, 0, 4) == 1,
          "ranking: highest first, ties to the lower index");
}

/* the temperature: saved and loaded (exactly), absent in an older file = 1, bad values refused */
static void temperature_file(void) {
    classifier *c = make(3, "multi", 5, true);
    c->temperature = 1.7f;
    const char *p = tmp("t.stn");
    classifier_save(c, p);
    classifier *d = classifier_load(p, NULL);
    if (!check(d && d->temperature == 1.7f, "the temperature round-trips through the model file (%g)",
               d ? d->temperature : -1.0))
        goto done;
    float x[S * S * 3], z[5], a[5];
    fill_uniform(x, sizeof x / sizeof *x, 9);
    memcpy(z, logits_of(d, 1, x), sizeof z);
    classifier_probs(d, 1, z, a);
    bool scaled = true;
    for (int k = 0; k < 5; k++) scaled &= fabs(a[k] - 1 / (1 + exp(-z[k] / 1.7))) < 1e-6;
    check(scaled, "its probabilities are the sigmoid of the logits / 1.7");
    /* a file as written before models had a temperature: no such key */
    const char *old[] = {"stylenet.format", "1", "arch", "resnet18", "head", "default", "size", "32", "mean",
                         "0.5,0.5,0.5", "std", "0.25,0.25,0.25", "task", "multi", "threshold", "0.25",
                         "classes", "[\"c0\",\"c1\",\"c2\",\"c3\",\"c4\"]", "temperature", NULL};
    const char *op = tmp("old.stn");
    net_save_safetensors(c->net, op, old, 9);
    classifier *e = classifier_load(op, NULL);
    float b[5];
    if (e) classifier_probs(e, 1, z, b);
    check(e && e->temperature == 1 && fabs(b[0] - 1 / (1 + exp(-z[0]))) < 1e-6,
          "a model file without 'temperature' loads with T = 1: the plain sigmoid (%s)", e ? "ok" : sn_last_error());
    classifier_free(e);
    static const char *const bad[] = {"0", "-2", "abc", "1.5x", "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        old[19] = bad[i];
        net_save_safetensors(c->net, op, old, 10);
        e = classifier_load(op, NULL);
        check(!e && strstr(sn_last_error(), "old.stn") && strstr(sn_last_error(), "'temperature'"),
              "temperature '%s' refused naming the file: %s", bad[i], sn_last_error());
        classifier_free(e);
    }
done:
    classifier_free(c);
    classifier_free(d);
}

/* `stylenet predict --json` of one photo with a model at T = 1 and the same at T = 2 */
static cJSON *predict_top(const char *model, const char *photo) {
    const char *bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    static char out[1 << 14];
    int rc = run_capture(out, sizeof out, "%s predict --json --top 4 --model %s %s 2>&1", bin, model, photo);
    cJSON *doc = rc == 0 ? cJSON_Parse(out) : NULL;
    if (!doc) note("predict: %s", flat_tail(out, 300));
    return doc;
}

/* the probability predict gives class k in its --json answer; NaN if absent */
static double predicted(const cJSON *doc, int k) {
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "results"), 0), "top"))
        if (cJSON_GetObjectItem(e, "index")->valueint == k) return cJSON_GetObjectItem(e, "probability")->valuedouble;
    return NAN;
}

static void temperature_predict(void) {
    classifier *c = make(4, "single", 4, false);
    image im = {.w = 40, .h = 40, .rgb = malloc(40 * 40 * 3)};
    for (int i = 0; i < 40 * 40 * 3; i++) im.rgb[i] = (uint8_t)(i * 13 % 251);
    const char *photo = tmp("photo.png"), *m1 = tmp("t1.stn"), *m2 = tmp("t2.stn");
    image_save_png(&im, photo);
    image_free(&im);
    c->temperature = 1;
    classifier_save(c, m1);
    c->temperature = 2;
    classifier_save(c, m2);
    cJSON *a = predict_top(m1, photo), *b = predict_top(m2, photo);
    if (check(a && b, "predict answers with both models")) {
        /* softmax(z / 2) = softmax(z)^(1/2), renormalised */
        double s = 0, p1[4], p2[4];
        for (int k = 0; k < 4; k++) p1[k] = predicted(a, k), p2[k] = predicted(b, k), s += sqrt(p1[k]);
        bool ok = true, softer = true;
        for (int k = 0; k < 4; k++) ok &= fabs(p2[k] - sqrt(p1[k]) / s) < 2e-6;
        const cJSON *t1 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "results"), 0), "top"), 0);
        const cJSON *t2 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "results"), 0), "top"), 0);
        int top = cJSON_GetObjectItem(t1, "index")->valueint;
        softer = p2[top] < p1[top];
        check(ok, "at T = 2 predict gives softmax(z / 2): each probability sqrt(p) renormalised (top %.4f -> %.4f)",
              p1[top], p2[top]);
        check(softer && top == cJSON_GetObjectItem(t2, "index")->valueint, "the same top class, less confident");
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    classifier_free(c);
}

static const test_case cases[] = {
    {"file_round_trip", file_round_trip}, {"state_dict", state_dict}, {"file_errors", file_errors},
    {"probabilities", probabilities},     {"ensembles", ensembles},   {"metrics_conventions", metrics_conventions},
    {"temperature_file", temperature_file}, {"temperature_predict", temperature_predict},
};
TEST_MAIN(cases)
