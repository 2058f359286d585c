/* test_train_cli.c - the training workflow through the binary, on a small folder-per-class set
 * made from Style photos (12 per product, random-init resnet18 at 32x32 so it runs in seconds):
 *   - the seed recipe runs end to end (LR finder with its plot, head, unfreeze, SGDR, TTA) and
 *     writes a model, a history and a checkpoint;
 *   - a run stopped in the middle of a phase (--stop-after) and resumed (--resume) ends with
 *     bitwise the same weights as the uninterrupted run, and its history.jsonl has the same rows
 *     (step rows too; rows written after the checkpoint by a killed run are dropped);
 *   - the same seed reproduces the same weights, also with mixup (which changes them); `eval` on
 *     the saved model alone reproduces the validation accuracy; `predict` and `info` read the model;
 *   - --label-smooth changes training; --test-size sets the size the model is scored and saved
 *     at (eval then reproduces training's figure); `eval --size` scores at another size;
 *   - ensembles: `eval` and `predict` with several --model flags average the probabilities (a
 *     model with itself gives its own figures; two seeds give each member's own figures and
 *     the mean's) and refuse, naming both files, models whose classes differ;
 *   - bad input: a missing data folder, a truncated pretrained file, a model of another
 *     architecture;
 *   - a set smaller than one batch (26 photos, batch 32) trains in one batch of the training
 *     share and says so. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../common/check.h"
#include "../common/train_fixture.h"
#include "core/error.h"
#include "io/safetensors.h"

static char out[1 << 16];
static const char *bin;

#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

#define tail_flat(n) flat_tail(out, (n))

/* ---------------------------------------------------------------- shared set-up */

/* a temporary folder (removed at exit) with 12 photos of each product from the Style set in
 * class folders, made by the first case that needs it */
static char dir[64], data[4200];
static const char *common = "--arch resnet18 --size 32 --batch 16 --head-epochs 1 --head-aug-epochs 1 --cycles 2 "
                            "--resize-after 1 --tta 2 --seed 7 --threads 2";

static void remove_dir(void) { run("rm -rf %s", dir); }

static bool setup(void) {
    static int state; /* 0 not yet, 1 ready, -1 failed */
    if (state) return state > 0;
    state = -1;
    bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    snprintf(dir, sizeof dir, "/tmp/stylenet_train_XXXXXX");
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return false;
    atexit(remove_dir);
    snprintf(data, sizeof data, "%s/data", dir);
    int copied = style_product_folders(data, 10, 12);
    if (!check(copied == 120, "a 10-class set of %d Style photos", copied)) return false;
    state = 1;
    return true;
}

static const char *at(const char *name) { return path_in(dir, name); }

/* the seed recipe with a run folder: dir/a.stn and dir/ra; its exit status, its output in a_out */
static char a_out[sizeof out];
static int model_a(void) {
    static int rc = -2;
    if (rc != -2) return rc;
    rc = run("%s train --data %s %s --out %s --run-dir %s", bin, data, common, at("a.stn"), at("ra"));
    memcpy(a_out, out, sizeof out);
    return rc;
}

/* the recipe without TTA: dir/c.stn; the validation accuracy it printed, -1 on failure */
static double model_c(void) {
    static double acc = -2;
    if (acc != -2) return acc;
    int rc = run("%s train --data %s %s --quiet --tta 0 --out %s", bin, data, common, at("c.stn"));
    char *a = strstr(out, "accuracy ");
    acc = rc == 0 && a ? atof(a + 9) : -1;
    return acc;
}

/* `eval --json` of a model on the training run's split: its accuracy (NaN on failure) */
static double eval_accuracy(const char *model, const char *extra) {
    int rc = run("%s eval --model %s --data %s --valid-pct 0.2 --seed 7 %s --json", bin, model, data, extra);
    cJSON *doc = cJSON_Parse(out);
    const cJSON *a = cJSON_GetObjectItem(doc, "accuracy");
    double v = rc == 0 && cJSON_IsNumber(a) ? a->valuedouble : NAN;
    cJSON_Delete(doc);
    return v;
}

/* ---------------------------------------------------------------- cases */

/* the seed recipe end to end: LR finder with its plot, the table, TTA, the history */
static void seed_recipe(void) {
    if (!setup()) return;
    int rc = model_a();
    memcpy(out, a_out, sizeof out);
    check(rc == 0, "seed recipe runs end to end (exit %d): %s", rc, rc ? tail_flat(1500) : "");
    check(strstr(out, "lr_find: suggested learning rate") != NULL, "the LR finder ran and suggested a rate");
    check(strstr(out, "valid with TTA") != NULL && strstr(out, "wall time") != NULL, "TTA metrics and wall time reported");
    char *ep5 = strstr(out, "\n    5  all");
    check(ep5 != NULL, "5 epochs: head, head+aug, SGDR cycles of 1 and 2 epochs");
    struct stat sb;
    const char *png = at("ra/lr_find.png");
    check(stat(png, &sb) == 0 && sb.st_size > 1000, "lr_find.png written (%lld bytes)", (long long)(stat(png, &sb) ? 0 : sb.st_size));
    FILE *h = fopen(at("ra/history.jsonl"), "r");
    int epochs = 0, lrf = 0;
    char line[1 << 14];
    while (h && fgets(line, sizeof line, h)) {
        epochs += strstr(line, "\"train_loss\"") != NULL;
        lrf += strstr(line, "lr_find_suggestion") != NULL;
    }
    if (h) fclose(h);
    check(epochs == 5 && lrf == 1, "history.jsonl: 5 epoch rows and the LR sweep (%d, %d)", epochs, lrf);
}

/* the same command again: bitwise the same weights (seeded, deterministic) */
static void same_seed_same_weights(void) {
    if (!setup()) return;
    model_a();
    int rc = run("%s train --data %s %s --quiet --out %s --run-dir %s", bin, data, common, at("a2.stn"), at("ra2"));
    char why[256];
    check(rc == 0 && same_tensors(at("a.stn"), at("a2.stn"), why, sizeof why), "the same seed gives the same weights %s %s",
          why, rc ? tail_flat(1500) : "");
}

/* mixup: seeded like the rest (the same weights twice), and it does change training */
static void mixup(void) {
    if (!setup()) return;
    model_a();
    char why[256], pm[4400], pm2[4400];
    snprintf(pm, sizeof pm, "%s", at("mx.stn"));
    snprintf(pm2, sizeof pm2, "%s", at("mx2.stn"));
    int rc = run("%s train --data %s %s --quiet --mixup 0.4 --out %s", bin, data, common, pm);
    int rc2 = run("%s train --data %s %s --quiet --mixup 0.4 --out %s", bin, data, common, pm2);
    check(rc == 0 && rc2 == 0 && same_tensors(pm, pm2, why, sizeof why), "--mixup 0.4: the same seed gives the same weights %s",
          why);
    check(rc == 0 && !same_tensors(at("a.stn"), pm, why, sizeof why), "--mixup 0.4 trains differently from no mixup");
}

/* appends to `to` lines first..first+n-1 of `from` (what a run killed after the checkpoint had
 * written besides), then half a row (a write cut short by the kill) */
static bool append_after_checkpoint(const char *from, const char *to, int first, int n) {
    FILE *f = fopen(from, "r"), *t = fopen(to, "a");
    static char line[1 << 16];
    int k = 0, copied = 0;
    while (f && t && fgets(line, sizeof line, f))
        if (k++ >= first && copied < n) {
            fputs(line, t);
            copied++;
        }
    if (t) fputs("{\"iter\":", t);
    if (f) fclose(f);
    if (t) fclose(t);
    return copied == n;
}

/* killed in the middle of the last phase (after epoch 4 of 5), then resumed: the weights and
 * the history are the uninterrupted run's */
static void stop_and_resume(void) {
    if (!setup()) return;
    model_a();
    char why[256], pb[4400];
    snprintf(pb, sizeof pb, "%s", at("b.stn"));
    int rc = run("%s train --data %s %s --quiet --out %s --run-dir %s --stop-after 4", bin, data, common, pb, at("rb"));
    check(rc == 3 && strstr(out, "--resume"), "--stop-after 4 stops with exit 3 and says how to resume (%d)%s%s", rc,
          rc != 3 ? ": " : "", rc != 3 ? tail_flat(1500) : "");
    check(access(pb, F_OK) != 0, "no model is written by a stopped run");
    int stopped_lines = 0, full_lines = 0, lines = 0;
    cJSON_Delete(history_rows(at("rb/history.jsonl"), &stopped_lines));
    cJSON *full = history_rows(at("ra/history.jsonl"), &full_lines);
    check(append_after_checkpoint(at("ra/history.jsonl"), at("rb/history.jsonl"), stopped_lines, 3),
          "rows of 3 steps after the checkpoint and half a row appended to the stopped run's history (as by a kill)");
    rc = run("%s train --data %s %s --quiet --out %s --run-dir %s --resume", bin, data, common, pb, at("rb"));
    check(rc == 0 && same_tensors(at("a.stn"), pb, why, sizeof why),
          "resumed run ends with bitwise the same weights as the uninterrupted one %s", why);
    cJSON *resumed = history_rows(at("rb/history.jsonl"), &lines);
    check(full && resumed && cJSON_Compare(full, resumed, true),
          "the resumed run's history.jsonl has the uninterrupted run's rows, step rows included, but timings (%d lines; "
          "%d before the resume; uninterrupted %d)", lines, stopped_lines, full_lines);
    cJSON_Delete(full);
    cJSON_Delete(resumed);
}

/* eval with the model alone, on the same seeded validation split, matches training's figure;
 * predict reads the model */
static void eval_and_predict(void) {
    if (!setup()) return;
    double train_acc = model_c(), eval_acc = eval_accuracy(at("c.stn"), "");
    check(train_acc >= 0 && (eval_acc - train_acc) * (eval_acc - train_acc) < 1e-8,
          "eval on the saved model reproduces the validation accuracy (%.4f vs %.4f)", eval_acc, train_acc);
    check(strstr(out, "\"confusion\"") != NULL, "eval --json has the confusion matrix");
    int rc = run("%s predict --model %s --top 3 %s/shoes/0_0_001.png", bin, at("c.stn"), data);
    check(rc == 0 && strstr(out, "1. ") && strstr(out, "3. "), "predict reads the trained model: %.200s", out);
}

/* ensembles: the model with itself is the model; two seeds report each member, then the mean */
static void ensembles(void) {
    if (!setup()) return;
    model_c();
    const double eval_acc = eval_accuracy(at("c.stn"), "");
    int rc = run("%s eval --model %s/c.stn --model %s/c.stn --data %s --valid-pct 0.2 --seed 7 --json", bin, dir, dir, data);
    cJSON *doc = cJSON_Parse(out), *mem = cJSON_GetObjectItem(doc, "models");
    double self_acc = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "accuracy"));
    check(rc == 0 && cJSON_GetArraySize(mem) == 2 && self_acc == eval_acc,
          "eval of a model ensembled with itself gives its own accuracy (%.4f vs %.4f)", self_acc, eval_acc);
    cJSON_Delete(doc);
    rc = run("%s train --data %s %s --quiet --tta 0 --seed 8 --out %s/c8.stn", bin, data, common, dir);
    check(rc == 0, "a second model, training seed 8 (exit %d)", rc);
    const double acc8 = eval_accuracy(at("c8.stn"), "");
    rc = run("%s eval --model %s/c.stn --model %s/c8.stn --data %s --valid-pct 0.2 --seed 7 --tta 1 --json", bin, dir,
             dir, data);
    doc = cJSON_Parse(out);
    mem = cJSON_GetObjectItem(doc, "models");
    const cJSON *m0 = cJSON_GetArrayItem(mem, 0), *m1 = cJSON_GetArrayItem(mem, 1);
    double ens_acc = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "accuracy"));
    check(rc == 0 && cJSON_GetArraySize(mem) == 2 && strstr(cJSON_GetStringValue(cJSON_GetObjectItem(m1, "model")),
          "c8.stn") && ens_acc >= 0 && ens_acc <= 1 && cJSON_GetObjectItem(doc, "confusion") == NULL &&
          cJSON_GetArraySize(cJSON_GetObjectItem(doc, "groups")) == 1,
          "eval of two seeds with TTA: both members and the ensemble's accuracy %.4f (rc %d)", ens_acc, rc);
    cJSON_Delete(doc);
    rc = run("%s eval --model %s/c.stn --model %s/c8.stn --data %s --valid-pct 0.2 --seed 7 --json", bin, dir, dir, data);
    doc = cJSON_Parse(out);
    mem = cJSON_GetObjectItem(doc, "models");
    m0 = cJSON_GetArrayItem(mem, 0);
    m1 = cJSON_GetArrayItem(mem, 1);
    check(rc == 0 && cJSON_GetNumberValue(cJSON_GetObjectItem(m0, "accuracy")) == eval_acc &&
          cJSON_GetNumberValue(cJSON_GetObjectItem(m1, "accuracy")) == acc8,
          "each member's own figures equal its single-model eval (%.4f, %.4f)", eval_acc, acc8);
    cJSON_Delete(doc);
    rc = run("%s eval --model %s/c.stn --model %s/c8.stn --data %s --valid-pct 0.2 --seed 7", bin, dir, dir, data);
    check(rc == 0 && strstr(out, "c.stn on ") && strstr(out, "c8.stn on ") && strstr(out, "ensemble of 2 models on "),
          "eval text: one line per member, then the ensemble: %.300s", out);
    char tfl[4096];
    snprintf(tfl, sizeof tfl, "%s", shared_path("weights/mobilenet_v2_1.0_224_quant.tflite"));
    rc = run("%s eval --model %s/c.stn --model %s --data %s --valid-pct 0.2 --seed 7", bin, dir, tfl, data);
    check(rc == 1 && strstr(out, "c.stn") && strstr(out, "mobilenet_v2_1.0_224_quant.tflite") &&
          strstr(out, "1001 classes") && strstr(out, "same classes"),
          "eval refuses to ensemble models with other classes, naming both: %.300s", out);
    rc = run("%s predict --model %s/c.stn --top 3 %s/shoes/0_0_001.png %s/ring/1_6_001.png", bin, dir, data, data);
    char single[4096];
    snprintf(single, sizeof single, "%s", out);
    rc = run("%s predict --model %s/c.stn --model %s/c.stn --top 3 %s/shoes/0_0_001.png %s/ring/1_6_001.png", bin,
             dir, dir, data, data);
    check(rc == 0 && !strcmp(out, single), "predict with a model ensembled with itself prints what the model alone "
          "does");
    rc = run("%s predict --json --model %s/c.stn --model %s/c8.stn --top 3 %s/shoes/0_0_001.png", bin, dir, dir, data);
    doc = cJSON_Parse(out);
    check(rc == 0 && cJSON_GetArraySize(cJSON_GetObjectItem(doc, "models")) == 2 &&
          cJSON_GetArraySize(cJSON_GetObjectItem(doc, "results")) == 1, "predict --json of two models: %.200s", out);
    cJSON_Delete(doc);
    rc = run("%s predict --model %s/c.stn --model %s %s/shoes/0_0_001.png", bin, dir, tfl, data);
    check(rc == 1 && strstr(out, "c.stn") && strstr(out, "mobilenet_v2_1.0_224_quant.tflite") &&
          strstr(out, "same classes"), "predict refuses models with other classes, naming both: %.300s", out);
}

/* eval --size: the model's own size gives its figure, another size scores too, a tiny one is refused */
static void eval_size(void) {
    if (!setup()) return;
    model_c();
    const double eval_acc = eval_accuracy(at("c.stn"), "");
    double same_size = eval_accuracy(at("c.stn"), "--size 32"), larger = eval_accuracy(at("c.stn"), "--size 40");
    check(same_size == eval_acc && larger >= 0 && larger <= 1,
          "eval --size: the model's own size gives its figure (%.4f), 40 px scores too (%.4f)", same_size, larger);
    int rc = run("%s eval --model %s/c.stn --data %s --size 8", bin, dir, data);
    check(rc == 2 && strstr(out, "usage"), "eval --size 8: usage, exit 2");
}

/* label smoothing changes training; --test-size is the size the model is scored and saved at */
static void label_smooth_and_test_size(void) {
    if (!setup()) return;
    model_c();
    int rc = run("%s train --data %s %s --quiet --tta 0 --label-smooth 0.1 --test-size 40 --out %s/ls.stn", bin, data,
                 common, dir);
    char *acc = strstr(out, "accuracy "), why[256];
    double ls_acc = acc ? atof(acc + 9) : -1;
    check(rc == 0 && !same_tensors(at("c.stn"), at("ls.stn"), why, sizeof why), "--label-smooth 0.1 trains differently (exit %d)%s", rc,
          rc ? tail_flat(1500) : "");
    double ls_eval = eval_accuracy(at("ls.stn"), "");
    int rc2 = run("%s info %s/ls.stn", bin, dir);
    /* training prints the accuracy to 4 decimals */
    check(rc == 0 && ls_acc >= 0 && fabs(ls_eval - ls_acc) <= 5.1e-5 && rc2 == 0 && strstr(out, "\"test_size\":40") &&
          strstr(out, "\"label_smooth\":0.1"), "--test-size 40: the model is saved for 40 px and eval reproduces "
          "training's figure (%.4f vs %.4f); the history records both options", ls_eval, ls_acc);
    rc = run("%s train --data %s %s --label-smooth 1 --out %s/x.stn", bin, data, common, dir);
    check(rc == 2 && strstr(out, "label-smooth"), "--label-smooth 1 is refused (usage error, exit 2): %.200s", out);
}

/* info says the architecture, head and how it was trained */
static void info(void) {
    if (!setup()) return;
    model_c();
    int rc = run("%s info %s/c.stn", bin, dir);
    check(rc == 0 && strstr(out, "resnet18") && strstr(out, "fastai") && strstr(out, "\"recipe\":\"seed\""),
          "info says the architecture, head and how it was trained");
    rc = run("%s info --json %s/c.stn", bin, dir);
    check(rc == 0 && strstr(out, "\"arch\":") && strstr(out, "\"resnet18\"") && strstr(out, "\"training\""), "info --json: %.200s", out);
}

/* bad input: a missing data folder, a truncated pretrained file, a model of another architecture */
static void bad_input(void) {
    if (!setup()) return;
    model_c();
    int rc = run("%s train --data %s/nope --out %s/x.stn", bin, dir, dir);
    check(rc == 1 && strstr(out, "nope"), "missing data folder: exit 1 naming it: %.200s", out);
    const char *path = at("trunc.safetensors");
    FILE *tf = fopen(path, "wb");
    static const char head[] = "\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":\"F32\""; /* cut short */
    if (tf) {
        fwrite(head, 1, sizeof head - 1, tf);
        fclose(tf);
    }
    rc = run("%s train --data %s %s --pretrained %s --out %s/x.stn", bin, data, common, path, dir);
    check(rc == 1 && strstr(out, "trunc.safetensors"), "truncated pretrained file: exit 1 naming it: %.200s", out);
    rc = run("%s train --data %s --arch resnet34 --size 32 --pretrained %s/c.stn --out %s/x.stn", bin, data, dir, dir);
    check(rc == 1 && strstr(out, "resnet18") && strstr(out, "resnet34"),
          "a resnet18 model as resnet34 weights: exit 1 naming both: %.200s", out);
}

/* a set smaller than one batch: training goes on with one batch of the whole training share
 * and says so once */
static void small_data_set(void) {
    if (!setup()) return;
    char tiny[4400];
    snprintf(tiny, sizeof tiny, "%s", at("tiny"));
    int copied = style_product_folders(tiny, 2, 13);
    int rc = run("%s train --data %s --arch resnet18 --size 32 --head-epochs 1 --head-aug-epochs 1 --cycles 1 --lr 1e-3 "
                 "--tta 0 --seed 7 --threads 2 --out %s", bin, tiny, at("tiny.stn"));
    const char *says = strstr(out, "training images, fewer than one batch of 32: batches of ");
    int n_train = -1, used = -2;
    const char *head = strstr(out, " train, ");
    if (head) {
        while (head > out && head[-1] != '(') head--;
        n_train = atoi(head);
    }
    if (says) used = atoi(says + strlen("training images, fewer than one batch of 32: batches of "));
    check(copied == 26 && rc == 0 && access(at("tiny.stn"), F_OK) == 0,
          "26 photos, fewer than a batch of 32 for training: the recipe runs (exit %d)%s%s", rc, rc ? ": " : "",
          rc ? tail_flat(600) : "");
    check(says && used == n_train && n_train > 0 && !strstr(says + 20, "fewer than one batch"),
          "it says once that it trains in batches of the %d training images (%d)", n_train, used);
    check(strstr(out, "\n    3  all") != NULL, "3 epochs trained");
}

static const test_case cases[] = {
    {"seed_recipe", seed_recipe},
    {"same_seed_same_weights", same_seed_same_weights},
    {"mixup", mixup},
    {"stop_and_resume", stop_and_resume},
    {"eval_and_predict", eval_and_predict},
    {"ensembles", ensembles},
    {"eval_size", eval_size},
    {"label_smooth_and_test_size", label_smooth_and_test_size},
    {"info", info},
    {"bad_input", bad_input},
    {"small_data_set", small_data_set},
};
TEST_MAIN(cases)
