/* test_report.c - `stylenet report RUN_DIR` on a real (small) training run, and the files training
 * leaves for it:
 *   - a seconds-long run on 149 Style photos (multi-label brand + product, random resnet18 at 32 px)
 *     writes valid_predictions.jsonl and run.json beside its history; the per-image losses average
 *     to the run's validation loss, and every epoch row has the rate of each layer group;
 *   - the report writes every PNG (valid, of a sensible size), and report.html holds each of them
 *     byte for byte as a base64 data URI, every number of every epoch row of history.jsonl, the
 *     final metrics with and without TTA, and the class names (HTML-escaped: "Dolce &amp; Gabbana");
 *   - the confusion matrices (--json) sum to the number of validation images and equal the
 *     matrices recomputed here from the predictions file; the top losses are the highest losses
 *     of that file, sorted;
 *   - calibration: the run's fitted temperature in run.json and the history; the report's ECE of
 *     every tag equals the one recomputed from the predictions file; `stylenet calibrate` on the
 *     same split refits the same temperature; `train --no-calibrate` keeps T = 1;
 *   - the helpers: smoothing, base64 (RFC 4648 vectors), number format, per-image loss;
 *   - bad input: a missing run dir, a folder without history, a corrupt history line, a corrupt
 *     predictions line (errors naming file and line); a history whose last line is cut short,
 *     a run stopped early without an LR sweep (plots it can, says what is missing), a validation
 *     image that is gone (warning naming it, the report still made);
 *   - `predict --csv` with the trained model on the photos: a column per label group (brand,
 *     product) with its most probable class, then the 17 probabilities.
 * The training run is made once, by the first case that needs it (trained()); every case reads it
 * and none changes it. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../common/check.h"
#include "core/file.h"
#include "report/report.h"
#include "classifier/metrics.h"

static char out[1 << 18];
static const char *bin;
static char dir[] = "/tmp/stylenet_report_XXXXXX";

#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

#define tail_flat(n) flat_tail(out, (n))

static char *read_text(const char *path, size_t *len) {
    size_t n;
    uint8_t *b = sn_read_file(path, &n, 0);
    if (!b) return NULL;
    char *s = malloc(n + 1);
    memcpy(s, b, n);
    s[n] = 0;
    free(b);
    if (len) *len = n;
    return s;
}

static int write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(s, f);
    return fclose(f);
}

/* base64 decoding, written here independently of the encoder under test */
static uint8_t *unbase64(const char *s, size_t n, size_t *len) {
    uint8_t *o = malloc(n / 4 * 3 + 3);
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", *p = strchr(A, s[i]);
        if (!p || !s[i]) {
            free(o);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)(p - A);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    *len = k;
    return o;
}

/* width and height from a PNG's IHDR; false when the signature or IHDR is wrong */
static bool png_size(const char *path, int *w, int *h, long *bytes) {
    size_t n;
    uint8_t *b = sn_read_file(path, &n, 0);
    bool ok = b && n > 33 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8) && !memcmp(b + 12, "IHDR", 4);
    if (ok) {
        *w = b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
        *h = b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
        *bytes = (long)n;
    }
    free(b);
    return ok;
}

static cJSON *run_json(const char *cmd_fmt_dir, int *rc) {
    *rc = run("%s", cmd_fmt_dir);
    const char *brace = strchr(out, '{');
    return brace ? cJSON_Parse(brace) : NULL;
}

static void helpers(void) {
    double x[3] = {1, 2, NAN}, s[3];
    report_smooth(x, 3, 0.5, s);
    /* avg 0.5 -> 0.5/0.5 = 1; avg 0.25 + 1 = 1.25 -> 1.25/0.75; NaN repeats */
    check(fabs(s[0] - 1) < 1e-12 && fabs(s[1] - 1.25 / 0.75) < 1e-12 && fabs(s[2] - s[1]) < 1e-12,
          "smoothing: debiased moving average (%g %g %g)", s[0], s[1], s[2]);
    const char *vec[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
                            {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    bool all = true;
    for (int i = 0; i < 7; i++) {
        char *e = report_base64((const uint8_t *)vec[i][0], strlen(vec[i][0]));
        all &= e && !strcmp(e, vec[i][1]);
        free(e);
    }
    check(all, "base64: the RFC 4648 test vectors");
    char b[64], c2[64], d[64], e[64], f[64];
    report_fmt_number(3, b, sizeof b);
    report_fmt_number(0.123456, c2, sizeof c2);
    report_fmt_number(123.456, d, sizeof d);
    report_fmt_number(0.00123, e, sizeof e);
    report_fmt_number(NAN, f, sizeof f);
    check(!strcmp(b, "3") && !strcmp(c2, "0.1235") && !strcmp(d, "123.5") && !strcmp(e, "0.00123") && !*f,
          "number format: %s %s %s %s '%s'", b, c2, d, e, f);
    float p[2] = {0.9f, 0.2f}, q[3] = {0.7f, 0.2f, 0.1f};
    uint8_t h[2] = {1, 0}, h3[3] = {0, 1, 0};
    double lm = metrics_image_loss(2, p, h, true), ls = metrics_image_loss(3, q, h3, false);
    check(fabs(lm - (-log(0.9) - log(0.8)) / 2) < 1e-6 && fabs(ls + log(0.2)) < 1e-6,
          "per-image loss: mean BCE (%.6f), -log p(true) (%.6f)", lm, ls);
}


/* ---------------------------------------------------------------- the training run, made once */

static const char *common = "--task multi --arch resnet18 --size 32 --batch 16 --head-epochs 1 --head-aug-epochs 1 "
                            "--cycles 1 --tta 1 --seed 7 --threads 1 --quiet";
static char data[4200], rd[4300];
static int trained_state; /* 0: not tried, 1: made, -1: failed */

static void remove_dir(void) {
    char cmd[200], o[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (run_capture(o, sizeof o, "%s", cmd) != 0) note("could not remove %s", dir);
}

/* every 6th Style photo (149) with the names file (multi-label brand + product) in dir/data, and a
 * seconds-long training run on them: dir/m.stn and its run directory dir/run */
static bool trained(void) {
    if (trained_state) return trained_state > 0;
    trained_state = -1;
    bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return false;
    atexit(remove_dir);
    char path[4400], dst[4400];
    snprintf(data, sizeof data, "%s/data", dir);
    mkdir(data, 0777);
    char style[4096];
    snprintf(style, sizeof style, "%s", shared_path("data/style"));
    snprintf(path, sizeof path, "%s/style.txt", style);
    snprintf(dst, sizeof dst, "%s/style.txt", data);
    copy_file(path, dst);
    char **names;
    int nn = style_names(&names), copied = 0;
    for (int i = 0; i < nn; i += 6) {
        snprintf(path, sizeof path, "%s/%s", style, names[i]);
        snprintf(dst, sizeof dst, "%s/%s", data, names[i]);
        copied += copy_file(path, dst) == 0;
    }
    style_names_free(names, nn);
    if (!check(copied == 149, "149 Style photos copied (%d)", copied)) return false;
    int rc = run("%s train --data %s %s --out %s/m.stn --run-dir %s/run", bin, data, common, dir, dir);
    if (!check(rc == 0, "a short training run (exit %d) %s", rc, rc ? tail_flat(1500) : "")) return false;
    snprintf(rd, sizeof rd, "%s/run", dir);
    trained_state = 1;
    return true;
}

/* run.json of the run (cJSON_Delete it) */
static cJSON *run_json_file(void) {
    char path[4400];
    snprintf(path, sizeof path, "%s/run.json", rd);
    char *text = read_text(path, NULL);
    cJSON *rj = text ? cJSON_Parse(text) : NULL;
    free(text);
    return rj;
}

/* valid_predictions.jsonl: per line its loss, and the confusion matrices of brand and product
 * counted here; the probabilities and truths too when probs_out / hot_out are not NULL; returns
 * the lines read */
static int read_predictions(double *losses, int cap, int cm[2][10 * 10], float (*probs_out)[17],
                            uint8_t (*hot_out)[17]) {
    char path[4400];
    snprintf(path, sizeof path, "%s/valid_predictions.jsonl", rd);
    char *pred_text = read_text(path, NULL);
    int np = 0;
    memset(cm, 0, sizeof(int) * 2 * 100);
    for (char *line = pred_text ? strtok(pred_text, "\n") : NULL; line && np < cap; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *pr = cJSON_GetObjectItem(o, "probs"), *tr = cJSON_GetObjectItem(o, "truth");
        float probs[17] = {0};
        for (int c = 0; c < 17 && cJSON_GetArraySize(pr) == 17; c++) probs[c] = (float)cJSON_GetArrayItem(pr, c)->valuedouble;
        for (int g = 0; g < 2; g++) {
            int lo = g ? 7 : 0, hi = g ? 17 : 7, t = -1;
            const cJSON *v;
            cJSON_ArrayForEach(v, tr) if (v->valueint >= lo && v->valueint < hi) t = v->valueint - lo;
            int k = hi - lo, p = metrics_group_argmax(probs, lo, hi) - lo;
            if (t >= 0) cm[g][t * k + p]++;
        }
        if (probs_out) memcpy(probs_out[np], probs, sizeof probs);
        if (hot_out) {
            memset(hot_out[np], 0, 17);
            const cJSON *v;
            cJSON_ArrayForEach(v, tr) if (v->valueint >= 0 && v->valueint < 17) hot_out[np][v->valueint] = 1;
        }
        losses[np++] = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "loss"));
        cJSON_Delete(o);
    }
    free(pred_text);
    return np;
}

/* `report RUN --json --top-losses 8`, made once (the result stays for the process) */
static cJSON *report_res(int *rc_out) {
    static cJSON *res;
    static int rc = -1;
    if (!res && rc < 0) {
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "%s report %s --json --top-losses 8", bin, rd);
        res = run_json(cmd, &rc);
    }
    *rc_out = rc;
    return res;
}

/* ---------------------------------------------------------------- cases */

static void training_outputs(void) {
    if (!trained()) return;
    cJSON *rj = run_json_file();
    const cJSON *classes = cJSON_GetObjectItem(rj, "classes"), *groups = cJSON_GetObjectItem(rj, "groups");
    int nv = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(rj, "valid_images"));
    check(cJSON_GetArraySize(classes) == 17 && cJSON_GetArraySize(groups) == 2 && nv == 30,
          "run.json: 17 classes, groups brand and product, 30 validation images (%d)", nv);
    double losses[64], loss_sum = 0;
    int cm[2][100];
    int np = read_predictions(losses, 64, cm, NULL, NULL);
    for (int i = 0; i < np; i++) loss_sum += losses[i];
    double vloss = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(rj, "valid"), "loss"));
    check(np == nv && fabs(loss_sum / np - vloss) < 1e-4 * (1 + vloss),
          "valid_predictions.jsonl: one line per validation image (%d), mean loss %.6f = the run's %.6f", np,
          np ? loss_sum / np : 0, vloss);
    char path[4400];
    snprintf(path, sizeof path, "%s/history.jsonl", rd);
    char *hist = read_text(path, NULL);
    int epochs = 0, with_lrs = 0;
    for (char *line = hist ? strtok(hist, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (cJSON_GetObjectItem(o, "epoch")) {
            epochs++;
            with_lrs += cJSON_GetArraySize(cJSON_GetObjectItem(o, "lrs")) == 3 && cJSON_GetObjectItem(o, "iter") &&
                        cJSON_GetObjectItem(o, "train_loss") && cJSON_GetObjectItem(o, "valid_loss");
        }
        cJSON_Delete(o);
    }
    free(hist);
    check(epochs == 3 && with_lrs == 3, "history: 3 epoch rows, each with train and valid loss, iteration, rate per group");
    cJSON_Delete(rj);
}

/* the run's temperature (fitted by train) in run.json, the history and the report; the report's
 * ECE of every tag equals the one recomputed here from the predictions file */
static void report_calibration(void) {
    if (!trained()) return;
    int rc;
    cJSON *res = report_res(&rc), *rj = run_json_file();
    double T = cJSON_GetNumberValue(cJSON_GetObjectItem(rj, "temperature"));
    const cJSON *hc = cJSON_GetObjectItem(cJSON_GetObjectItem(rj, "training"), "calibration");
    check(T > 0 && T != 1 && cJSON_GetNumberValue(cJSON_GetObjectItem(hc, "temperature")) == T,
          "run.json and the training history carry the fitted temperature %.4f", T);
    const cJSON *cal = cJSON_GetObjectItem(res, "calibration"), *tags = cJSON_GetObjectItem(cal, "tags");
    double ece = cJSON_GetNumberValue(cJSON_GetObjectItem(tags, "ece"));
    double raw = cJSON_GetNumberValue(cJSON_GetObjectItem(tags, "ece_uncalibrated"));
    double losses[64];
    int cm[2][100];
    static float probs[64][17];
    static uint8_t hot[64][17];
    int np = read_predictions(losses, 64, cm, probs, hot);
    const float *pr[64];
    const uint8_t *hr[64];
    for (int i = 0; i < np; i++) pr[i] = probs[i], hr[i] = hot[i];
    metrics_calibration ref;
    metrics_tag_calibration(np, pr, hr, 0, 17, METRICS_ECE_BINS, &ref);
    check(cJSON_GetNumberValue(cJSON_GetObjectItem(cal, "temperature")) == T && fabs(ece - ref.ece) < 1e-9 &&
              raw >= 0 && raw <= 1 && cJSON_GetObjectItem(cal, "brand") && cJSON_GetObjectItem(cal, "product"),
          "report --json: calibration at T %.4f, ECE of every tag %.4f (recomputed %.4f; %.4f before T), brand, product",
          T, ece, ref.ece, raw);
    cJSON_Delete(rj);
}

/* `stylenet calibrate` on the run's validation split refits the temperature train fitted, and
 * writes it; `train --no-calibrate` keeps T = 1 */
static void calibrate_verb(void) {
    if (!trained()) return;
    cJSON *rj = run_json_file();
    double T = cJSON_GetNumberValue(cJSON_GetObjectItem(rj, "temperature"));
    cJSON_Delete(rj);
    int rc = run("%s calibrate --model %s/m.stn --data %s --valid-pct 0.2 --seed 7 --threads 1 --out %s/c.stn --json",
                 bin, dir, data, dir);
    cJSON *doc = rc == 0 ? cJSON_Parse(out) : NULL;
    double t = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "temperature"));
    const cJSON *before = cJSON_GetObjectItem(doc, "uncalibrated"), *after = cJSON_GetObjectItem(doc, "calibrated");
    double nb = cJSON_GetNumberValue(cJSON_GetObjectItem(before, "nll")), na = cJSON_GetNumberValue(cJSON_GetObjectItem(after, "nll"));
    check(rc == 0 && fabs(t - T) <= 1e-6 * T && na <= nb,
          "calibrate on the training split refits train's temperature (%.6f vs %.6f), NLL %.4f -> %.4f (exit %d) %s", t, T,
          nb, na, rc, rc ? tail_flat(600) : "");
    cJSON_Delete(doc);
    rc = run("%s info --json %s/c.stn", bin, dir);
    doc = cJSON_Parse(out);
    check(rc == 0 && fabs(cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "temperature")) - t) <= 1e-6 * t,
          "the model it wrote holds that temperature");
    cJSON_Delete(doc);
    rc = run("%s calibrate --model %s/m.stn --data /nonexistent/photos --out %s/x.stn", bin, dir, dir);
    check(rc == 1 && strstr(out, "/nonexistent/photos"), "calibrate on a missing folder: exit 1 naming it: %.200s", out);
    rc = run("%s train --data %s %s --no-calibrate --out %s/n.stn", bin, data, common, dir);
    int rc2 = run("%s info --json %s/n.stn", bin, dir);
    doc = cJSON_Parse(out);
    check(rc == 0 && rc2 == 0 && cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "temperature")) == 1 &&
              !strstr(out, "\"calibration\""),
          "train --no-calibrate: temperature 1, no calibration in the history (exit %d)", rc);
    cJSON_Delete(doc);
}

/* the PNG name_i of the report: listed, of a sensible size, and in report.html byte for byte */
static void check_png(const char *name, const cJSON *files, const char *html) {
    char p[4500];
    snprintf(p, sizeof p, "%s/report/%s", rd, name);
    int w = 0, h = 0;
    long bytes = 0;
    bool listed = false;
    const cJSON *f;
    cJSON_ArrayForEach(f, files) listed |= !strcmp(f->valuestring, p);
    bool png = png_size(p, &w, &h, &bytes);
    check(listed && png && w >= 500 && w <= 2000 && h >= 300 && h <= 3000 && bytes > 10000,
          "%s: listed, a PNG of %dx%d, %ld bytes", name, w, h, bytes);
    char needle[200];
    snprintf(needle, sizeof needle, "alt=\"%s\" src=\"data:image/png;base64,", name);
    const char *at = html ? strstr(html, needle) : NULL;
    bool same = false;
    if (at) {
        at += strlen(needle);
        const char *end = strchr(at, '"');
        size_t n = 0, flen = 0;
        uint8_t *dec = end ? unbase64(at, (size_t)(end - at), &n) : NULL;
        uint8_t *fb = sn_read_file(p, &flen, 0);
        same = dec && fb && n == flen && !memcmp(dec, fb, n);
        free(dec);
        free(fb);
    }
    check(same, "report.html embeds %s as a data URI, byte for byte", name);
}

/* the epoch rows of history.jsonl (cJSON_Delete the array) */
static cJSON *epoch_rows(void) {
    char path[4400];
    snprintf(path, sizeof path, "%s/history.jsonl", rd);
    char *hist = read_text(path, NULL);
    cJSON *erows = cJSON_CreateArray();
    for (char *line = hist ? strtok(hist, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (cJSON_GetObjectItem(o, "epoch")) cJSON_AddItemToArray(erows, o);
        else cJSON_Delete(o);
    }
    free(hist);
    return erows;
}

static void report_files(void) {
    if (!trained()) return;
    int rc;
    cJSON *res = report_res(&rc);
    check(rc == 0 && res, "report --json runs (exit %d) %s", rc, rc ? tail_flat(1500) : "");
    const char *pngs[] = {"loss.png", "metrics.png", "lr_find.png", "confusion_brand.png", "confusion_product.png",
                          "precision_recall.png", "top_losses.png", "reliability.png"};
    const cJSON *files = cJSON_GetObjectItem(res, "files");
    check(cJSON_GetArraySize(files) == 9 && cJSON_GetArraySize(cJSON_GetObjectItem(res, "missing")) == 0,
          "--json lists 9 files (8 PNGs and the HTML) and nothing missing (%d files)", cJSON_GetArraySize(files));
    char path[4400];
    snprintf(path, sizeof path, "%s/report/report.html", rd);
    size_t hlen = 0;
    char *html = read_text(path, &hlen);
    check(html && hlen > 1000 && strstr(html, "</html>"), "report.html written (%zu bytes)", hlen);
    for (int i = 0; i < 8; i++) check_png(pngs[i], files, html);
    /* every number of every epoch row, as the page writes numbers */
    cJSON *erows = epoch_rows();
    int found = 0, wanted = 0;
    char first_missing[128] = "";
    const cJSON *row;
    cJSON_ArrayForEach(row, erows) {
        const cJSON *v;
        cJSON_ArrayForEach(v, row) {
            if (!cJSON_IsNumber(v)) continue;
            char num[64], cell[100];
            report_fmt_number(v->valuedouble, num, sizeof num);
            snprintf(cell, sizeof cell, "<td class=n>%s</td>", num);
            wanted++;
            if (html && strstr(html, cell)) found++;
            else if (!*first_missing) snprintf(first_missing, sizeof first_missing, "%s = %s", v->string, num);
        }
    }
    check(wanted > 30 && found == wanted, "report.html holds every number of the %d epoch rows (%d of %d) %s",
          cJSON_GetArraySize(erows), found, wanted, first_missing);
    cJSON_Delete(erows);
    cJSON *rj = run_json_file();
    const cJSON *tr = cJSON_GetObjectItem(rj, "training");
    int fm = 0, fm_want = 0;
    for (int k = 0; k < 2; k++) {
        const cJSON *ev = cJSON_GetObjectItem(tr, k ? "valid_tta" : "valid"), *v;
        cJSON_ArrayForEach(v, ev) {
            char num[64], cell[100];
            report_fmt_number(v->valuedouble, num, sizeof num);
            snprintf(cell, sizeof cell, "<td class=n>%s</td>", num);
            fm += html && strstr(html, cell) != NULL;
            fm_want++;
        }
    }
    check(fm_want >= 12 && fm == fm_want && html && strstr(html, "validation with TTA"),
          "final metrics with and without TTA in the page (%d of %d)", fm, fm_want);
    check(html && strstr(html, "Dolce &amp; Gabbana") && !strstr(html, "Dolce & Gabbana"),
          "class names are HTML-escaped");
    cJSON_Delete(rj);
    free(html);
}

static void report_confusion(void) {
    if (!trained()) return;
    int rc;
    cJSON *res = report_res(&rc);
    double losses[64];
    int cm_ref[2][100];
    int np = read_predictions(losses, 64, cm_ref, NULL, NULL);
    /* confusion matrices against the predictions file */
    const cJSON *conf = cJSON_GetObjectItem(res, "confusion");
    for (int g = 0; g < 2; g++) {
        const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(conf, g ? "product" : "brand"), "matrix");
        int k = g ? 10 : 7, sum = 0, agree = 0;
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) {
                const cJSON *cell = cJSON_GetArrayItem(cJSON_GetArrayItem(m, a), b);
                int v = cell ? cell->valueint : -1;
                sum += v;
                agree += v == cm_ref[g][a * k + b];
            }
        check(cJSON_GetArraySize(m) == k && sum == np && agree == k * k,
              "confusion %s: %dx%d, sums to %d validation images, equals the predictions file's", g ? "product" : "brand",
              k, k, sum);
    }
    /* top losses: the highest of the file, sorted */
    const cJSON *top = cJSON_GetObjectItem(res, "top_losses"), *t;
    double prev = INFINITY, sorted_ref[64];
    memcpy(sorted_ref, losses, sizeof(double) * (size_t)np);
    for (int i = 0; i < np; i++)
        for (int j = i + 1; j < np; j++)
            if (sorted_ref[j] > sorted_ref[i]) {
                double x = sorted_ref[i];
                sorted_ref[i] = sorted_ref[j];
                sorted_ref[j] = x;
            }
    bool sorted = true, highest = true;
    int i = 0;
    cJSON_ArrayForEach(t, top) {
        double l = cJSON_GetNumberValue(cJSON_GetObjectItem(t, "loss"));
        sorted &= l <= prev;
        highest &= i < np && l == sorted_ref[i];
        prev = l;
        i++;
    }
    check(cJSON_GetArraySize(top) == 8 && sorted && highest, "top losses: 8, sorted, the highest of the file (%.4f first)",
          np ? sorted_ref[0] : 0);
}

static void report_out(void) {
    if (!trained()) return;
    int rc;
    report_res(&rc); /* the report folder is written */
    char path[4400];
    snprintf(path, sizeof path, "%s/report", rd);
    DIR *d = opendir(path);
    struct dirent *e;
    int tmps = 0;
    while (d && (e = readdir(d))) tmps += strstr(e->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    check(d && tmps == 0, "no temp files left in the report folder");
    rc = run("%s report %s --out %s/elsewhere --top-losses 4", bin, rd, dir);
    snprintf(path, sizeof path, "%s/elsewhere/top_losses.png", dir);
    check(rc == 0 && access(path, F_OK) == 0 && strstr(out, "report.html"), "--out DIR writes there and lists the files");
}

static void report_errors(void) {
    if (!trained()) return;
    char path[4400];
    int rc = run("%s report %s/nope", bin, dir);
    check(rc == 1 && strstr(out, "nope") && strstr(out, "no such run directory"), "a missing run dir: %s", tail_flat(200));
    snprintf(path, sizeof path, "%s/empty", dir);
    mkdir(path, 0777);
    rc = run("%s report %s", bin, path);
    check(rc == 1 && strstr(out, "empty/history.jsonl") && strstr(out, "missing"), "a folder without history: %s",
          tail_flat(200));
    rc = run("%s report %s --top-losses x", bin, rd);
    check(rc == 2 && strstr(out, "--top-losses"), "a bad --top-losses: usage error, exit 2: %s", tail_flat(200));

    /* a corrupt line in the middle of the history, then a last line cut short */
    char bad[4300], src[4400];
    snprintf(bad, sizeof bad, "%s/bad", dir);
    mkdir(bad, 0777);
    snprintf(src, sizeof src, "%s/history.jsonl", rd);
    char *h = read_text(src, NULL);
    char *l3 = h, *nl;
    for (int k = 0; k < 2 && l3; k++) l3 = strchr(l3, '\n') ? strchr(l3, '\n') + 1 : NULL;
    if (l3 && (nl = strchr(l3, '\n')) && nl - l3 > 10) memmove(l3 + 10, nl, strlen(nl) + 1); /* line 3 cut to 10 chars */
    snprintf(path, sizeof path, "%s/history.jsonl", bad);
    write_text(path, h ? h : "");
    free(h);
    rc = run("%s report %s", bin, bad);
    check(rc == 1 && strstr(out, "bad/history.jsonl:3") && strstr(out, "not a JSON object"),
          "a corrupt history line: error naming file and line: %s", tail_flat(200));
    h = read_text(src, NULL);
    size_t hl = h ? strlen(h) : 0;
    if (hl > 20) h[hl - 15] = 0; /* the last row loses its end and its newline */
    write_text(path, h ? h : "");
    free(h);
    rc = run("%s report %s", bin, bad);
    check(rc == 0 && strstr(out, "cut short") && strstr(out, "history.jsonl:"), "a last line cut short: warned, report made: %s",
          tail_flat(300));

    /* a corrupt predictions line */
    char bp[4300];
    snprintf(bp, sizeof bp, "%s/badpred", dir);
    mkdir(bp, 0777);
    const char *keep[] = {"history.jsonl", "run.json"};
    for (int k = 0; k < 2; k++) {
        snprintf(src, sizeof src, "%s/%s", rd, keep[k]);
        snprintf(path, sizeof path, "%s/%s", bp, keep[k]);
        copy_file(src, path);
    }
    snprintf(path, sizeof path, "%s/valid_predictions.jsonl", bp);
    write_text(path, "{\"item\":1,\"path\":\"/x.png\",\"truth\":[0,7],\"probs\":[0.5,0.5],\"loss\":0.1}\n");
    rc = run("%s report %s", bin, bp);
    check(rc == 1 && strstr(out, "valid_predictions.jsonl:1") && strstr(out, "2 probabilities"),
          "a prediction with the wrong number of probabilities: %s", tail_flat(200));
}

/* a run given its rate (no LR finder) and stopped after 2 epochs: plots from the history, the
 * rest said missing */
static void partial_run(void) {
    if (!trained()) return;
    int rc = run("%s train --data %s %s --lr 0.01 --out %s/p.stn --run-dir %s/partial --stop-after 2", bin, data, common,
                 dir, dir);
    check(rc == 3, "a run stopped after 2 epochs (exit %d)", rc);
    char cmd[9000], path[4400], dst[4400];
    snprintf(cmd, sizeof cmd, "%s report %s/partial --json", bin, dir);
    cJSON *res = run_json(cmd, &rc);
    char miss[2048] = "";
    const cJSON *mm;
    cJSON_ArrayForEach(mm, cJSON_GetObjectItem(res, "missing")) {
        size_t ml = strlen(miss);
        snprintf(miss + ml, sizeof miss - ml, "%s; ", mm->valuestring);
    }
    snprintf(path, sizeof path, "%s/partial/report/loss.png", dir);
    snprintf(dst, sizeof dst, "%s/partial/report/confusion_brand.png", dir);
    check(rc == 0 && cJSON_GetArraySize(cJSON_GetObjectItem(res, "files")) == 3 && access(path, F_OK) == 0 &&
              access(dst, F_OK) != 0 && strstr(miss, "valid_predictions.jsonl") && strstr(miss, "run.json") &&
              strstr(miss, "lr_find.png"),
          "partial run: loss, metrics and the page; says what is missing: %s", miss);
    cJSON_Delete(res);
}

/* a copy of the run whose worst validation image is gone: a warning naming it, the report made */
static void missing_image(void) {
    if (!trained()) return;
    int rc;
    cJSON *res = report_res(&rc);
    const char *worst = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(res, "top_losses"), 0), "path"));
    char gone[4300], src[4400], dst[4400];
    snprintf(gone, sizeof gone, "%s/gone", dir);
    mkdir(gone, 0777);
    const char *keep[] = {"history.jsonl", "run.json"};
    for (int k = 0; k < 2; k++) {
        snprintf(src, sizeof src, "%s/%s", rd, keep[k]);
        snprintf(dst, sizeof dst, "%s/%s", gone, keep[k]);
        copy_file(src, dst);
    }
    /* the predictions with the worst image's path moved to a folder that does not exist */
    snprintf(src, sizeof src, "%s/valid_predictions.jsonl", rd);
    snprintf(dst, sizeof dst, "%s/valid_predictions.jsonl", gone);
    char *text = read_text(src, NULL), *at = text && worst ? strstr(text, worst) : NULL;
    const char *base = worst && strrchr(worst, '/') ? strrchr(worst, '/') + 1 : "";
    FILE *f = at ? fopen(dst, "w") : NULL;
    if (f) {
        fprintf(f, "%.*s%s/nowhere/%s%s", (int)(at - text), text, dir, base, at + strlen(worst));
        fclose(f);
    }
    free(text);
    if (!check(f != NULL, "a copy of the run without its worst image ('%s')", worst ? worst : "")) return;
    rc = run("%s report %s --top-losses 4", bin, gone);
    check(rc == 0 && strstr(out, "warning") && strstr(out, base) && strstr(out, "image missing"),
          "a missing validation image: warned by name, report made: %s", tail_flat(300));
}

/* `predict --csv` with the trained model: its label groups are columns */
static void predict_csv_groups(void) {
    if (!trained()) return;
    char csv[4300];
    snprintf(csv, sizeof csv, "%s/all.csv", dir);
    int rc = run("%s predict --model %s/m.stn --batch 32 --csv %s %s", bin, dir, csv, data);
    FILE *f = fopen(csv, "r");
    char line[8192], *names[20] = {0};
    int rows = 0, good = 0, nh = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *fields[24];
        int n = 0;
        for (char *p = strtok(line, ","); p && n < 24; p = strtok(NULL, ",")) fields[n++] = p;
        if (rows++ == 0) {
            nh = n;
            for (int k = 0; k < n && k < 20; k++) names[k] = strdup(fields[k]);
            continue;
        }
        /* path, best brand, best product, then 7 brand and 10 product probabilities */
        int bb = 3, bp = 10;
        for (int k = 3; k < 10 && n == 20; k++)
            if (atof(fields[k]) > atof(fields[bb])) bb = k;
        for (int k = 10; k < 20 && n == 20; k++)
            if (atof(fields[k]) > atof(fields[bp])) bp = k;
        good += n == 20 && strstr(fields[0], ".png") && !strcmp(fields[1], names[bb]) && !strcmp(fields[2], names[bp]);
    }
    if (f) fclose(f);
    check(rc == 0 && nh == 20 && names[0] && !strcmp(names[0], "path") && !strcmp(names[1], "brand") &&
              !strcmp(names[2], "product") && !strcmp(names[3], "Christian Louboutin"),
          "predict --csv: header path, brand, product, then the 17 classes (%d fields, exit %d)", nh, rc);
    check(rows == 150 && good == 149, "predict --csv: 149 rows, each group's column its most probable class (%d of %d)",
          good, rows - 1);
    for (int k = 0; k < 20; k++) free(names[k]);
}

static const test_case cases[] = {
    {"helpers", helpers},           {"training_outputs", training_outputs}, {"report_files", report_files},
    {"report_confusion", report_confusion}, {"report_calibration", report_calibration},
    {"calibrate_verb", calibrate_verb}, {"report_out", report_out},     {"report_errors", report_errors},
    {"partial_run", partial_run},   {"missing_image", missing_image},       {"predict_csv_groups", predict_csv_groups},
};
TEST_MAIN(cases)
