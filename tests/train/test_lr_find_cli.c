/* test_lr_find_cli.c - `stylenet lr-find` through the binary, on every sixth photo of the Style
 * set (with its style.txt: multi-label brand + product) at 32x32, so a sweep takes seconds:
 *   - the TFLite MobileNetV2 with its body frozen (the recipe's finder): exit 0, a valid PNG
 *     (signature, IHDR, size), JSON with a finite suggestion, minimum and steepest rates inside
 *     the sweep range, the recorded sweep (rates rising, one loss per rate), and the same seed
 *     gives the same suggestion;
 *   - a random-init resnet18 (every layer trains) swept up to a rate of 100: the loss diverges,
 *     the sweep stops early and the text output says so and gives the suggestion; --no-png
 *     writes no plot;
 *   - a saved model (--model, head included) with --unfreeze; its classes must be the data's;
 *   - bad arguments: usage errors (exit 2) naming the problem; a missing data folder or model
 *     file: exit 1 naming it;
 *   - 26 photos with the default batch of 32: the sweep runs in batches of the training share. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../common/check.h"

static char out[1 << 17];
static const char *bin;

#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

#define tail_flat(n) flat_tail(out, (n))

/* the first line of the output (a usage error's message) */
static const char *first_line(void) {
    static char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)strcspn(out, "\n"), out);
    return buf;
}

/* a PNG: signature, then an IHDR chunk with a sensible size; returns the width (0 if not) */
static int png_width(const char *path, long *bytes) {
    unsigned char h[24];
    FILE *f = fopen(path, "rb");
    *bytes = 0;
    if (!f) return 0;
    size_t got = fread(h, 1, sizeof h, f);
    fseek(f, 0, SEEK_END);
    *bytes = ftell(f);
    fclose(f);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (got != sizeof h || memcmp(h, sig, 8) != 0 || memcmp(h + 12, "IHDR", 4) != 0) return 0;
    int w = (h[16] << 24) | (h[17] << 16) | (h[18] << 8) | h[19], ht = (h[20] << 24) | (h[21] << 16) | (h[22] << 8) | h[23];
    return w > 100 && w < 10000 && ht > 100 && ht < 10000 ? w : 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* style.txt and every sixth photo (sorted by name) of the Style set into dst; the count */
static int style_subset(const char *src, const char *dst) {
    char a[4400], b[4400];
    snprintf(a, sizeof a, "%s/style.txt", src);
    snprintf(b, sizeof b, "%s/style.txt", dst);
    if (copy_file(a, b) < 0) return 0;
    DIR *d = opendir(src);
    struct dirent *e;
    char *names[2000];
    int n = 0, copied = 0;
    while (d && (e = readdir(d)) && n < 2000)
        if (strstr(e->d_name, ".png")) names[n++] = strdup(e->d_name);
    if (d) closedir(d);
    qsort(names, (size_t)n, sizeof names[0], by_name);
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/%s", src, names[i]);
        snprintf(b, sizeof b, "%s/%s", dst, names[i]);
        if (i % 6 == 0 && copy_file(a, b) == 0) copied++;
        free(names[i]);
    }
    return copied;
}

/* the JSON document a command wrote to path, or NULL.  The commands run as "{ CMD >path; }" so
 * that stderr (where sanitizers and libraries write, also at exit) stays out of the file. */
static cJSON *read_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 17];
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = 0;
    return cJSON_Parse(buf);
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* the set-up every case shares, made by the first case that needs it: a temporary folder
 * (removed at exit) with the Style subset in it */
static char dir[64], data[4200], tfl[4096], js[4200];
static const char *small = "--size 32 --batch 16 --threads 1"; /* one thread: quick on a busy machine */

static void remove_dir(void) { run("rm -rf %s", dir); }

static bool setup(void) {
    static int state; /* 0 not yet, 1 ready, -1 failed */
    if (state) return state > 0;
    state = -1;
    bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    snprintf(dir, sizeof dir, "/tmp/stylenet_lrfind_XXXXXX");
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return false;
    atexit(remove_dir);
    char style[4096];
    snprintf(style, sizeof style, "%s", shared_path("data/style"));
    snprintf(tfl, sizeof tfl, "%s", shared_path("weights/mobilenet_v2_1.0_224_quant.tflite"));
    snprintf(data, sizeof data, "%s/style", dir);
    snprintf(js, sizeof js, "%s/out.json", dir);
    mkdir(data, 0777);
    int copied = style_subset(style, data);
    if (!check(copied > 100, "a multi-label set of %d Style photos", copied)) return false;
    state = 1;
    return true;
}

/* the recipe's finder: pretrained body frozen */
static void frozen_tflite_body(void) {
    if (!setup()) return;
    char png[4200];
    snprintf(png, sizeof png, "%s/a.png", dir);
    int rc = run("{ %s lr-find --data %s --task multi --pretrained %s %s --start 1e-6 --end 10 --iters 60 --png %s --json >%s; }",
                 bin, data, tfl, small, png, js);
    check(rc == 0, "lr-find with the frozen TFLite body runs (exit %d)%s%s", rc, rc ? ": " : "", rc ? tail_flat(600) : "");
    long bytes;
    int w = png_width(png, &bytes);
    check(w > 0 && bytes > 2000, "a valid PNG plot (width %d, %ld bytes)", w, bytes);
    cJSON *j = read_json(js);
    double sug = num(j, "suggestion"), mn = num(j, "min_lr"), st = num(j, "steepest_lr");
    check(j != NULL && isfinite(sug) && sug >= 1e-6 && sug <= 10, "JSON: a finite suggestion inside the sweep (%g)", sug);
    check(isfinite(mn) && isfinite(st) && mn >= 1e-6 && mn <= 10 && st >= 1e-6 && st <= 10 && sug <= mn,
          "JSON: minimum (%g) and steepest (%g) rates inside the sweep, the suggestion not above the minimum", mn, st);
    check(cJSON_IsTrue(cJSON_GetObjectItem(j, "frozen")), "JSON: the body was frozen");
    const cJSON *lrs = cJSON_GetObjectItem(j, "lrs"), *losses = cJSON_GetObjectItem(j, "losses");
    int n = cJSON_GetArraySize(lrs), rising = n > 10, it = (int)num(j, "iters");
    for (int i = 1; rising && i < n; i++)
        rising = cJSON_GetArrayItem(lrs, i)->valuedouble > cJSON_GetArrayItem(lrs, i - 1)->valuedouble;
    check(rising && cJSON_GetArraySize(losses) == n && it >= n && it <= 60,
          "JSON: the sweep (%d rates rising, %d losses, %d iterations of at most 60)", n, cJSON_GetArraySize(losses), it);
    rc = run("{ %s lr-find --data %s --task multi --pretrained %s %s --start 1e-6 --end 10 --iters 60 --no-png --json >%s; }", bin,
             data, tfl, small, js);
    cJSON *j2 = read_json(js);
    check(rc == 0 && num(j2, "suggestion") == sug, "the same seed gives the same suggestion (%g, %g)", num(j2, "suggestion"),
          sug);
    check(j2 && cJSON_IsNull(cJSON_GetObjectItem(j2, "png")), "--no-png: no plot named");
    cJSON_Delete(j);
    cJSON_Delete(j2);
}

/* random init, all layers trainable, swept far enough to diverge */
static void diverging_random_init(void) {
    if (!setup()) return;
    char png[4200];
    long bytes;
    snprintf(png, sizeof png, "%s/b.png", dir);
    int rc = run("%s lr-find --data %s --task multi --arch resnet18 %s --start 1e-5 --end 1000 --iters 40 --png %s", bin,
                 data, small, png);
    char *s = strstr(out, "suggested learning rate ");
    double sug2 = s ? atof(s + 24) : NAN;
    check(rc == 0 && strstr(out, "all layers trainable") && isfinite(sug2) && sug2 >= 1e-5 && sug2 <= 1000,
          "random-init resnet18: every layer trains, suggestion %g%s%s", sug2, rc ? ": " : "", rc ? tail_flat(600) : "");
    check(strstr(out, "the loss diverged") != NULL && strstr(out, "minimum of the smoothed loss") &&
              strstr(out, "steepest descent at lr"),
          "a sweep to 1000 stops when the loss diverges and prints the minimum and steepest points");
    int w = png_width(png, &bytes);
    check(w > 0, "its plot is a PNG (%ld bytes)", bytes);
}

/* a saved model, head included, every layer trainable (trained with the grouped loss and
 * mixup, which the multi-label Style task takes) */
static void saved_model(void) {
    if (!setup()) return;
    int rc = run("%s train --data %s --task multi --arch resnet18 %s --head-epochs 1 --head-aug-epochs 1 --cycles 0 "
                 "--lr 1e-3 --tta 0 --group-ce 1 --mixup 0.4 --quiet --out %s/m.stn", bin, data, small, dir);
    check(rc == 0, "a small model to start from (exit %d)%s%s", rc, rc ? ": " : "", rc ? tail_flat(600) : "");
    rc = run("{ %s lr-find --data %s --model %s/m.stn --unfreeze --batch 16 --threads 1 --iters 12 --no-png --json >%s; }", bin,
             data, dir, js);
    cJSON *j = read_json(js);
    check(rc == 0 && j && cJSON_IsFalse(cJSON_GetObjectItem(j, "frozen")) && num(j, "size") == 32 &&
              isfinite(num(j, "suggestion")),
          "--model M --unfreeze: the model's own size (32), every layer trains, a finite suggestion (exit %d)", rc);
    cJSON_Delete(j);
    rc = run("%s lr-find --data %s --task brand --model %s/m.stn --no-png", bin, data, dir);
    check(rc == 1 && strstr(out, "m.stn") && strstr(out, "classes"),
          "a model of other classes than the data's: exit 1 naming it: %s", first_line());
}

/* bad arguments: usage errors (exit 2) naming the problem */
static void bad_arguments(void) {
    if (!setup()) return;
    int rc;
    struct {
        const char *args, *says;
    } bad[] = {
        {"", "--data"},
        {"--data %s --start 0", "--start"},
        {"--data %s --start 1 --end 0.1", "rise"},
        {"--data %s --iters ten", "--iters"},
        {"--data %s --iters 1", "--iters"},
        {"--data %s --size 8", "--size"},
        {"--data %s --batch 0", "--batch"},
        {"--data %s --model a.stn --pretrained b.tflite", "exclude"},
        {"--data %s --bogus", "--bogus"},
        {"--data %s extra", "extra"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[512], cmd[5000];
        snprintf(args, sizeof args, bad[i].args, data);
        snprintf(cmd, sizeof cmd, "%s lr-find %s", bin, args);
        rc = run("%s", cmd);
        check(rc == 2 && strstr(out, bad[i].says) && strstr(out, "usage:"), "usage error for 'lr-find %s' (exit %d): %s",
              bad[i].args, rc, first_line());
    }
}

/* a missing data folder or model file: exit 1 naming it */
static void missing_files(void) {
    if (!setup()) return;
    int rc = run("%s lr-find --data %s/nope", bin, dir);
    check(rc == 1 && strstr(out, "nope"), "missing data folder: exit 1 naming it: %s", first_line());
    rc = run("%s lr-find --data %s --model %s/none.stn", bin, data, dir);
    check(rc == 1 && strstr(out, "none.stn"), "missing model file: exit 1 naming it: %s", first_line());
}

/* 26 photos in two class folders (every sixth Style photo, alternately) */
static int tiny_folders(const char *dst) {
    char **names, a[4400], b[4400];
    int nn = style_names(&names), copied = 0;
    mkdir(dst, 0777);
    for (int c = 0; c < 2; c++) {
        snprintf(b, sizeof b, "%s/c%d", dst, c);
        mkdir(b, 0777);
    }
    for (int i = 0; i < nn && copied < 26; i += 6) {
        snprintf(a, sizeof a, "%s/%s", shared_path("data/style"), names[i]);
        snprintf(b, sizeof b, "%s/c%d/%s", dst, copied % 2, names[i]);
        if (copy_file(a, b) == 0) copied++;
    }
    style_names_free(names, nn);
    return copied;
}

/* a training share smaller than the batch: the sweep runs in batches of all of it, says so,
 * and the JSON gives the batch used */
static void small_data_set(void) {
    if (!setup()) return;
    char tiny[4200];
    snprintf(tiny, sizeof tiny, "%s/tiny", dir);
    int copied = tiny_folders(tiny);
    int rc = run("{ %s lr-find --data %s --arch resnet18 --size 32 --threads 1 --iters 12 --no-png --json >%s; }", bin, tiny,
                 js);
    cJSON *j = read_json(js);
    const char *says = strstr(out, "training images, fewer than one batch of 32: batches of ");
    int used = says ? atoi(says + strlen("training images, fewer than one batch of 32: batches of ")) : -1;
    check(copied == 26 && rc == 0 && j && num(j, "batch") == used && used > 0 && used < 26 && isfinite(num(j, "suggestion")),
          "26 photos, the default batch of 32: the sweep runs in batches of the %d training images and says so (exit %d)%s%s", used,
          rc, rc ? ": " : "", rc ? tail_flat(600) : "");
    cJSON_Delete(j);
}

static const test_case cases[] = {
    {"frozen_tflite_body", frozen_tflite_body},
    {"diverging_random_init", diverging_random_init},
    {"saved_model", saved_model},
    {"bad_arguments", bad_arguments},
    {"missing_files", missing_files},
    {"small_data_set", small_data_set},
};
TEST_MAIN(cases)
