/* test_train_cli.c - the training workflow through the binary, on a small folder-per-class set
 * made from Style photos (12 per product, random-init resnet18 at 32x32 so it runs in seconds):
 *   - the seed recipe runs end to end (LR finder with its plot, head, unfreeze, SGDR, TTA) and
 *     writes a model, a history and a checkpoint;
 *   - a run stopped in the middle of a phase (--stop-after) and resumed (--resume) ends with
 *     bitwise the same weights as the uninterrupted run;
 *   - the same seed reproduces the same weights, also with mixup (which changes them); `eval` on
 *     the saved model alone reproduces the validation accuracy; `predict` and `info` read the model;
 *   - --label-smooth changes training; --test-size sets the size the model is scored and saved
 *     at (eval then reproduces training's figure); `eval --size` scores at another size;
 *   - ensembles: `eval` and `predict` with several --model flags average the probabilities (a
 *     model with itself gives its own figures; two seeds give each member's own figures and
 *     the mean's) and refuse, naming both files, models whose classes differ;
 *   - bad input: a missing data folder, a truncated pretrained file, a model of another
 *     architecture. */
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
#include "core/error.h"
#include "io/safetensors.h"

static char out[1 << 16];
static const char *bin;

#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

#define tail_flat(n) flat_tail(out, (n))

/* every tensor of a and b byte-equal (metadata such as timings may differ) */
static int same_tensors(const char *a, const char *b, char *why, size_t cap) {
    st_file *fa = st_open(a), *fb = st_open(b);
    int same = fa && fb && st_count(fa) == st_count(fb);
    snprintf(why, cap, "%s", same ? "" : "could not open both or counts differ");
    for (size_t i = 0; same && i < st_count(fa); i++) {
        const st_tensor *t = st_tensor_at(fa, i), *u = st_find(fb, t->name);
        if (!u || u->nbytes != t->nbytes || memcmp(t->data, u->data, t->nbytes) != 0) {
            snprintf(why, cap, "tensor %s differs", t->name);
            same = 0;
        }
    }
    st_close(fa);
    st_close(fb);
    return same;
}

int main(void) {
    bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    char dir[] = "/tmp/stylenet_train_XXXXXX";
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return check_exit();
    /* 12 photos of each product from the Style set, in class folders */
    char data[4200], path[4400], dst[4400];
    snprintf(data, sizeof data, "%s/data", dir);
    mkdir(data, 0777);
    const char *style = shared_path("data/style");
    char style_dir[4096];
    snprintf(style_dir, sizeof style_dir, "%s", style);
    int copied = 0, per[10] = {0};
    const char *products[10] = {"shoes", "lipstick", "handbag", "nail_polish", "necklace",
                                "watches", "ring", "bracelet", "boots", "earrings"};
    for (int p = 0; p < 10; p++) {
        snprintf(path, sizeof path, "%s/%s", data, products[p]);
        mkdir(path, 0777);
    }
    char **names;
    int nn = style_names(&names);
    for (int i = 0; i < nn; i++) {
        int prod = names[i][2] - '0';
        if (strlen(names[i]) == 11 && prod >= 0 && prod < 10 && per[prod] < 12) {
            snprintf(path, sizeof path, "%s/%s", style_dir, names[i]);
            snprintf(dst, sizeof dst, "%s/%s/%s", data, products[prod], names[i]);
            if (copy_file(path, dst) == 0) {
                per[prod]++;
                copied++;
            }
        }
    }
    style_names_free(names, nn);
    if (!check(copied == 120, "a 10-class set of %d Style photos", copied)) return check_exit();

    const char *common = "--arch resnet18 --size 32 --batch 16 --head-epochs 1 --head-aug-epochs 1 --cycles 2 "
                         "--resize-after 1 --tta 2 --seed 7 --threads 2";
    int rc = run("%s train --data %s %s --out %s/a.stn --run-dir %s/ra", bin, data, common, dir, dir);
    check(rc == 0, "seed recipe runs end to end (exit %d): %s", rc, rc ? tail_flat(1500) : "");
    check(strstr(out, "lr_find: suggested learning rate") != NULL, "the LR finder ran and suggested a rate");
    check(strstr(out, "valid with TTA") != NULL && strstr(out, "wall time") != NULL, "TTA metrics and wall time reported");
    char *ep5 = strstr(out, "\n    5  all");
    check(ep5 != NULL, "5 epochs: head, head+aug, SGDR cycles of 1 and 2 epochs");
    snprintf(path, sizeof path, "%s/ra/lr_find.png", dir);
    struct stat sb;
    check(stat(path, &sb) == 0 && sb.st_size > 1000, "lr_find.png written (%lld bytes)", (long long)(stat(path, &sb) ? 0 : sb.st_size));
    snprintf(path, sizeof path, "%s/ra/history.jsonl", dir);
    FILE *h = fopen(path, "r");
    int epochs = 0, lrf = 0;
    char line[1 << 14];
    while (h && fgets(line, sizeof line, h)) {
        epochs += strstr(line, "\"train_loss\"") != NULL;
        lrf += strstr(line, "lr_find_suggestion") != NULL;
    }
    if (h) fclose(h);
    check(epochs == 5 && lrf == 1, "history.jsonl: 5 epoch rows and the LR sweep (%d, %d)", epochs, lrf);

    /* the same command again: bitwise the same weights (seeded, deterministic) */
    rc = run("%s train --data %s %s --quiet --out %s/a2.stn --run-dir %s/ra2", bin, data, common, dir, dir);
    char why[256], pa[4400], pb[4400];
    snprintf(pa, sizeof pa, "%s/a.stn", dir);
    snprintf(pb, sizeof pb, "%s/a2.stn", dir);
    check(rc == 0 && same_tensors(pa, pb, why, sizeof why), "the same seed gives the same weights %s %s", why,
          rc ? tail_flat(1500) : "");

    /* mixup: seeded like the rest (the same weights twice), and it does change training */
    char pm[4400], pm2[4400];
    snprintf(pm, sizeof pm, "%s/mx.stn", dir);
    snprintf(pm2, sizeof pm2, "%s/mx2.stn", dir);
    rc = run("%s train --data %s %s --quiet --mixup 0.4 --out %s", bin, data, common, pm);
    int rc2 = run("%s train --data %s %s --quiet --mixup 0.4 --out %s", bin, data, common, pm2);
    check(rc == 0 && rc2 == 0 && same_tensors(pm, pm2, why, sizeof why), "--mixup 0.4: the same seed gives the same weights %s",
          why);
    check(rc == 0 && !same_tensors(pa, pm, why, sizeof why), "--mixup 0.4 trains differently from no mixup");

    /* killed in the middle of the last phase (after epoch 4 of 5), then resumed */
    rc = run("%s train --data %s %s --quiet --out %s/b.stn --run-dir %s/rb --stop-after 4", bin, data, common, dir, dir);
    check(rc == 3 && strstr(out, "--resume"), "--stop-after 4 stops with exit 3 and says how to resume (%d)%s%s", rc,
          rc != 3 ? ": " : "", rc != 3 ? tail_flat(1500) : "");
    snprintf(pb, sizeof pb, "%s/b.stn", dir);
    check(access(pb, F_OK) != 0, "no model is written by a stopped run");
    rc = run("%s train --data %s %s --quiet --out %s/b.stn --run-dir %s/rb --resume", bin, data, common, dir, dir);
    check(rc == 0 && same_tensors(pa, pb, why, sizeof why),
          "resumed run ends with bitwise the same weights as the uninterrupted one %s", why);

    /* eval with the model alone, on the same seeded validation split, matches training's figure */
    rc = run("%s train --data %s %s --quiet --tta 0 --out %s/c.stn", bin, data, common, dir);
    char *acc = strstr(out, "accuracy ");
    double train_acc = acc ? atof(acc + 9) : -1;
    rc = run("%s eval --model %s/c.stn --data %s --valid-pct 0.2 --seed 7 --json", bin, dir, data);
    char *ea = strstr(out, "\"accuracy\":");
    double eval_acc = ea ? atof(ea + 11) : -2;
    check(rc == 0 && train_acc >= 0 && (eval_acc - train_acc) * (eval_acc - train_acc) < 1e-8,
          "eval on the saved model reproduces the validation accuracy (%.4f vs %.4f)", eval_acc, train_acc);
    check(strstr(out, "\"confusion\"") != NULL, "eval --json has the confusion matrix");
    rc = run("%s predict --model %s/c.stn --top 3 %s/shoes/0_0_001.png", bin, dir, data);
    check(rc == 0 && strstr(out, "1. ") && strstr(out, "3. "), "predict reads the trained model: %.200s", out);

    /* ensembles: the model with itself is the model; two seeds report each member, then the mean */
    rc = run("%s eval --model %s/c.stn --model %s/c.stn --data %s --valid-pct 0.2 --seed 7 --json", bin, dir, dir, data);
    cJSON *doc = cJSON_Parse(out), *mem = cJSON_GetObjectItem(doc, "models");
    double self_acc = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "accuracy"));
    check(rc == 0 && cJSON_GetArraySize(mem) == 2 && self_acc == eval_acc,
          "eval of a model ensembled with itself gives its own accuracy (%.4f vs %.4f)", self_acc, eval_acc);
    cJSON_Delete(doc);
    rc = run("%s train --data %s %s --quiet --tta 0 --seed 8 --out %s/c8.stn", bin, data, common, dir);
    check(rc == 0, "a second model, training seed 8 (exit %d)", rc);
    rc = run("%s eval --model %s/c8.stn --data %s --valid-pct 0.2 --seed 7 --json", bin, dir, data);
    doc = cJSON_Parse(out);
    double acc8 = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "accuracy"));
    cJSON_Delete(doc);
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
    rc = run("%s eval --model %s/c.stn --data %s --valid-pct 0.2 --seed 7 --size 32 --json", bin, dir, data);
    doc = cJSON_Parse(out);
    double same_size = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "accuracy"));
    cJSON_Delete(doc);
    rc2 = run("%s eval --model %s/c.stn --data %s --valid-pct 0.2 --seed 7 --size 40 --json", bin, dir, data);
    doc = cJSON_Parse(out);
    double larger = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "accuracy"));
    cJSON_Delete(doc);
    check(rc == 0 && rc2 == 0 && same_size == eval_acc && larger >= 0 && larger <= 1,
          "eval --size: the model's own size gives its figure (%.4f), 40 px scores too (%.4f)", same_size, larger);
    rc = run("%s eval --model %s/c.stn --data %s --size 8", bin, dir, data);
    check(rc == 2 && strstr(out, "usage"), "eval --size 8: usage, exit 2");
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

    /* label smoothing changes training; --test-size is the size the model is scored and saved at */
    rc = run("%s train --data %s %s --quiet --tta 0 --label-smooth 0.1 --test-size 40 --out %s/ls.stn", bin, data,
             common, dir);
    acc = strstr(out, "accuracy ");
    double ls_acc = acc ? atof(acc + 9) : -1;
    snprintf(pa, sizeof pa, "%s/c.stn", dir);
    snprintf(pb, sizeof pb, "%s/ls.stn", dir);
    check(rc == 0 && !same_tensors(pa, pb, why, sizeof why), "--label-smooth 0.1 trains differently (exit %d)%s", rc,
          rc ? tail_flat(1500) : "");
    rc = run("%s eval --model %s/ls.stn --data %s --valid-pct 0.2 --seed 7 --json", bin, dir, data);
    doc = cJSON_Parse(out);
    double ls_eval = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "accuracy"));
    cJSON_Delete(doc);
    rc2 = run("%s info %s/ls.stn", bin, dir);
    /* training prints the accuracy to 4 decimals */
    check(rc == 0 && ls_acc >= 0 && fabs(ls_eval - ls_acc) <= 5.1e-5 && rc2 == 0 && strstr(out, "\"test_size\":40") &&
          strstr(out, "\"label_smooth\":0.1"), "--test-size 40: the model is saved for 40 px and eval reproduces "
          "training's figure (%.4f vs %.4f); the history records both options", ls_eval, ls_acc);
    rc = run("%s train --data %s %s --label-smooth 1 --out %s/x.stn", bin, data, common, dir);
    check(rc == 2 && strstr(out, "label-smooth"), "--label-smooth 1 is refused (usage error, exit 2): %.200s", out);

    rc = run("%s info %s/c.stn", bin, dir);
    check(rc == 0 && strstr(out, "resnet18") && strstr(out, "fastai") && strstr(out, "\"recipe\":\"seed\""),
          "info says the architecture, head and how it was trained");

    rc = run("%s info --json %s/c.stn", bin, dir);
    check(rc == 0 && strstr(out, "\"arch\":") && strstr(out, "\"resnet18\"") && strstr(out, "\"training\""), "info --json: %.200s", out);

    /* bad input */
    rc = run("%s train --data %s/nope --out %s/x.stn", bin, dir, dir);
    check(rc == 1 && strstr(out, "nope"), "missing data folder: exit 1 naming it: %.200s", out);
    snprintf(path, sizeof path, "%s/trunc.safetensors", dir);
    FILE *tf = fopen(path, "wb");
    static const char head[] = "\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":\"F32\""; /* cut short */
    fwrite(head, 1, sizeof head - 1, tf);
    fclose(tf);
    rc = run("%s train --data %s %s --pretrained %s --out %s/x.stn", bin, data, common, path, dir);
    check(rc == 1 && strstr(out, "trunc.safetensors"), "truncated pretrained file: exit 1 naming it: %.200s", out);
    rc = run("%s train --data %s --arch resnet34 --size 32 --pretrained %s/c.stn --out %s/x.stn", bin, data, dir, dir);
    check(rc == 1 && strstr(out, "resnet18") && strstr(out, "resnet34"),
          "a resnet18 model as resnet34 weights: exit 1 naming both: %.200s", out);
    run("rm -rf %s", dir);
    return check_exit();
}
