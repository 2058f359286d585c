/* test_eval_cli.c - training and scoring on other folders than a split, through the binary, on
 * small sets of Style photos (random-init resnet18 at 32x32 so each run takes seconds):
 *   - `train --valid-pct 0` trains on every photo (the LR finder still runs; the table and the
 *     history carry the training loss alone; the model's history has no results; `report` reads
 *     the run);
 *   - `train --valid-data DIR` scores on a separate folder of photos named <brand>_<product>_<n>.png
 *     without style.txt (one of them 338x225), read with the training set's classes; `eval` of
 *     the model on that folder reproduces the figure; a folder with an unknown brand number, or
 *     single-label class folders, is refused naming the file; --valid-pct with it is a usage error;
 *   - `eval --data` on a plain folder of photos labels them with the model's own classes and
 *     label scheme: the same figures as the same photos with style.txt beside them, and with
 *     --names given relative to the working directory; an unknown brand names the file;
 *   - `cv --folds 3 --folds-run 1,3 --json`: two folds run, the mean and standard deviation are
 *     those of the folds' figures, a fold run alone gives the same figures, --out-dir saves the
 *     fold's model; bad --folds, --folds-run and train-only flags are usage errors; with
 *     --shifted each fold's shifted figures and their mean;
 *   - `eval --shifted`: the stress version of the photos scored next to the plain ones, the same
 *     numbers twice, other numbers than the plain photos', the figure `train --shifted` printed;
 *   - `eval --folds 3 --fold 2`: the photos picked are those cv validates fold 2 on (the same
 *     paths as cv's own fold split, seeded by --split-seed, else --seed); the fold's model scores
 *     the figures cv printed for it (plain, TTA, shifted); fold 2's models of two cv runs with
 *     other seeds score as an ensemble, each member as in its run; --fold without --folds, a fold
 *     out of range and --folds with --valid-pct are usage errors. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../common/check.h"
#include "core/error.h"
#include "io/image.h"
#include "train/evaluate.h"
#include "train/recipe.h"

static char out[1 << 16];
static char bin[PATH_MAX];
static char dir[64];

#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

static const char *common = "--arch resnet18 --size 32 --batch 16 --head-epochs 1 --head-aug-epochs 1 --cycles 1 "
                            "--tta 0 --seed 7 --threads 2";

static void remove_dir(void) { run("rm -rf %s", dir); }

static const char *at(const char *name) { return path_in(dir, name); }

/* every 8th Style photo with style.txt in dir/style; 12 others renamed <b>_<p>_9NN.png in
 * dir/plain, and a 13th resized to 338x225 */
static bool make_sets(void) {
    char **names;
    int nn = style_names(&names), n_train = 0, n_plain = 0;
    char from[4400], to[4400];
    mkdir(at("style"), 0777);
    mkdir(at("plain"), 0777);
    for (int i = 0; i < nn; i++) {
        snprintf(from, sizeof from, "%s/%s", shared_path("data/style"), names[i]);
        if (i % 8 == 0) {
            snprintf(to, sizeof to, "%s/style/%s", dir, names[i]);
            n_train += copy_file(from, to) == 0;
        } else if (i % 8 == 4 && n_plain < 13) {
            int b = names[i][0] - '0', p = names[i][2] - '0';
            snprintf(to, sizeof to, "%s/plain/%d_%d_%d.png", dir, b, p, 900 + n_plain);
            if (n_plain < 12) {
                n_plain += copy_file(from, to) == 0;
            } else {
                image im, big;
                if (image_load(from, &im) == 0 && image_resize(&im, 338, 225, &big) == 0) {
                    n_plain += image_save_png(&big, to) == 0;
                    image_free(&big);
                }
                image_free(&im);
            }
        }
    }
    style_names_free(names, nn);
    snprintf(from, sizeof from, "%s/style.txt", shared_path("data/style"));
    snprintf(to, sizeof to, "%s/style/style.txt", dir);
    return check(n_train == 112 && n_plain == 13 && copy_file(from, to) == 0,
                 "sets: %d training photos with style.txt, 13 plain photos (%d)", n_train, n_plain);
}

static bool setup(void) {
    static int state; /* 0 not yet, 1 ready, -1 failed */
    if (state) return state > 0;
    state = -1;
    const char *b = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    if (!check(realpath(b, bin) != NULL, "the binary %s", b)) return false;
    snprintf(dir, sizeof dir, "/tmp/stylenet_evalcli_XXXXXX");
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return false;
    atexit(remove_dir);
    if (!make_sets()) return false;
    state = 1;
    return true;
}

/* the model trained on dir/style scored on dir/plain (--valid-data, --shifted): dir/vd.stn; its
 * printed F2 (-1 on failure), and the shifted one in vd_shifted_f2 */
static double vd_shifted_f2 = -1;
static double model_vd(void) {
    static double f2 = -2;
    if (f2 != -2) return f2;
    int rc = run("%s train --data %s %s --lr 1e-3 --valid-data %s --shifted --out %s", bin, at("style"), common,
                 at("plain"), at("vd.stn"));
    const char *v = strstr(out, "valid:"), *vs = strstr(out, "valid shifted:");
    const char *f = v ? strstr(v, "F2@0.20 ") : NULL, *fs = vs ? strstr(vs, "F2@0.20 ") : NULL;
    f2 = rc == 0 && f ? atof(f + 8) : -1;
    vd_shifted_f2 = rc == 0 && fs ? atof(fs + 8) : -1;
    check(rc == 0 && strstr(out, "(112 train, 13 valid)"), "train --valid-data: 112 photos train, the folder's 13 "
          "are scored (exit %d)%s", rc, rc ? flat_tail(out, 800) : "");
    return f2;
}

/* `eval --json` of dir/vd.stn on the folder `data`: its document (NULL on failure) */
static cJSON *eval_json(const char *data) {
    int rc = run("%s eval --model %s --json --data %s", bin, at("vd.stn"), data);
    return rc == 0 ? cJSON_Parse(out) : NULL;
}

static double num(const cJSON *doc, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(doc, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* ---------------------------------------------------------------- cases */

/* --valid-pct 0: every photo trains, the LR finder runs, no validation anywhere */
static void valid_pct_zero(void) {
    if (!setup()) return;
    int rc = run("%s train --data %s %s --valid-pct 0 --run-dir %s --out %s", bin, at("style"), common, at("r0"),
                 at("all.stn"));
    check(rc == 0 && strstr(out, "(112 train, 0 valid)") && strstr(out, "lr_find: suggested learning rate") &&
              strstr(out, "no validation: every one of the 112 photos trained"),
          "train --valid-pct 0: 112 photos train, the LR finder runs (exit %d)%s", rc, rc ? flat_tail(out, 800) : "");
    check(strstr(out, "train_loss     time") && !strstr(out, "valid_loss") && strstr(out, "\n    3  all"),
          "the table: 3 epochs of training loss alone");
    run("grep -c train_loss %s", at("r0/history.jsonl"));
    int epochs = atoi(out);
    run("grep -c valid_loss %s", at("r0/history.jsonl"));
    int valid = atoi(out);
    check(epochs == 3 && valid == 0, "history.jsonl: 3 epoch rows, none with a validation loss (%d, %d)", epochs, valid);
    rc = run("%s info %s", bin, at("all.stn"));
    check(rc == 0 && strstr(out, "\"valid_images\":0") && !strstr(out, "\"valid\":{") &&
              strstr(out, "\"pattern\":\"{brand}_{product}_{n}.png\""),
          "the model's history: 0 validation images, no results, the file-name pattern");
    rc = run("%s report %s", bin, at("r0"));
    check(rc == 0, "report reads the run (exit %d)%s", rc, rc ? flat_tail(out, 400) : "");
}

/* --valid-data: a separate folder is the validation share; eval of the model reproduces it */
static void valid_data(void) {
    if (!setup()) return;
    double f2 = model_vd();
    cJSON *doc = eval_json(at("plain"));
    double e = num(doc, "fbeta");
    check(f2 >= 0 && num(doc, "images") == 13 && fabs(e - f2) <= 5.1e-5,
          "eval on the folder reproduces training's F2 (%.4f vs %.4f) on its 13 photos", e, f2);
    cJSON_Delete(doc);
    int rc = run("%s train --data %s %s --valid-pct 0.1 --valid-data %s --out %s", bin, at("style"), common,
                 at("plain"), at("x.stn"));
    check(rc == 2 && strstr(out, "--valid-data"), "--valid-pct with --valid-data: usage error (exit %d)", rc);
}

/* --valid-data refuses a folder it cannot label with the training set's classes */
static void valid_data_errors(void) {
    if (!setup()) return;
    mkdir(at("bad"), 0777);
    char from[4400];
    snprintf(from, sizeof from, "%s/plain/0_0_900.png", dir);
    copy_file(from, at("bad/0_0_1.png"));
    copy_file(from, at("bad/7_0_2.png"));
    int rc = run("%s train --data %s %s --valid-data %s --out %s", bin, at("style"), common, at("bad"), at("x.stn"));
    check(rc == 1 && strstr(out, "bad/7_0_2.png") && strstr(out, "brand '7'") && strstr(out, "Chanel"),
          "a brand number out of range: exit 1 naming the file and the brands: %.300s", flat_tail(out, 300));
    mkdir(at("cls"), 0777);
    mkdir(at("cls/shoes"), 0777);
    copy_file(from, at("cls/shoes/a.png"));
    rc = run("%s train --data %s %s --valid-data %s --out %s", bin, at("style"), common, at("cls"), at("x.stn"));
    check(rc == 1 && strstr(out, "cls") && strstr(out, "folder-per-class data set is single-label"),
          "class folders (single-label) for a multi-label set: exit 1: %.300s", flat_tail(out, 300));
}

/* eval on a plain folder: the model's classes and scheme; as with style.txt; --names from the cwd */
static void eval_plain_folder(void) {
    if (!setup() || model_vd() < 0) return;
    cJSON *plain = eval_json(at("plain"));
    run("cp -r %s %s && cp %s %s", at("plain"), at("labelled"), at("style/style.txt"), at("labelled/"));
    cJSON *lab = eval_json(at("labelled"));
    int rc = run("cd %s && %s eval --model vd.stn --data plain --names style/style.txt --json", dir, bin);
    cJSON *named = rc == 0 ? cJSON_Parse(out) : NULL;
    double l0 = num(plain, "loss"), l1 = num(lab, "loss"), l2 = num(named, "loss");
    check(num(plain, "images") == 13 && l0 == l1 && l0 == l2 && num(plain, "brand") == num(lab, "brand") &&
              num(plain, "product") == num(named, "product"),
          "a plain folder (one photo 338x225) scores as with style.txt beside it and with --names from the working "
          "directory (loss %.4f, %.4f, %.4f)", l0, l1, l2);
    cJSON_Delete(plain);
    cJSON_Delete(lab);
    cJSON_Delete(named);
    mkdir(at("unknown"), 0777);
    run("cp %s/plain/0_0_900.png %s/unknown/0_12_5.png", dir, dir);
    rc = run("%s eval --model %s --data %s", bin, at("vd.stn"), at("unknown"));
    check(rc == 1 && strstr(out, "unknown/0_12_5.png") && strstr(out, "product '12'") && strstr(out, "lipstick") &&
              strstr(out, "vd.stn"),
          "an unknown product number: exit 1 naming the file, the products and the model: %.300s", flat_tail(out, 300));
}

/* the F2 of object `key` of a cv --json run or summary */
static double f2_of(const cJSON *o, const char *key) { return num(cJSON_GetObjectItem(o, key), "fbeta"); }

/* cv: two of three folds, their mean and spread; a fold alone is the same; usage errors */
static void cv_cli(void) {
    if (!setup()) return;
    int rc = run("%s cv --data %s %s --tta 1 --lr 1e-3 --folds 3 --folds-run 1,3 --json", bin, at("style"), common);
    cJSON *doc = rc == 0 ? cJSON_Parse(out) : NULL, *runs = cJSON_GetObjectItem(doc, "runs");
    const cJSON *r0 = cJSON_GetArrayItem(runs, 0), *r1 = cJSON_GetArrayItem(runs, 1);
    check(rc == 0 && cJSON_GetArraySize(runs) == 2 && num(r0, "fold") == 1 && num(r1, "fold") == 3 &&
              num(r0, "valid_images") == 38 && num(r1, "valid_images") == 37 && num(r0, "train_images") == 74,
          "cv --folds 3 --folds-run 1,3: folds 1 and 3 run, 112 photos in folds of 38, 37, 37 (exit %d)%s", rc,
          rc ? flat_tail(out, 600) : "");
    double a = f2_of(r0, "valid"), b = f2_of(r1, "valid"), m = f2_of(cJSON_GetObjectItem(doc, "mean"), "valid");
    double sd = f2_of(cJSON_GetObjectItem(doc, "std"), "valid");
    double ta = f2_of(r0, "valid_tta"), tb = f2_of(r1, "valid_tta");
    double tm = f2_of(cJSON_GetObjectItem(doc, "mean"), "valid_tta");
    check(fabs(m - (a + b) / 2) < 1e-9 && fabs(sd - fabs(a - b) / sqrt(2)) < 1e-9 && fabs(tm - (ta + tb) / 2) < 1e-9,
          "mean %.4f and standard deviation %.4f of the folds' F2 (%.4f, %.4f); TTA mean %.4f", m, sd, a, b, tm);
    rc = run("%s cv --data %s %s --tta 1 --lr 1e-3 --folds 3 --folds-run 3 --out-dir %s --shifted --json", bin,
             at("style"), common, at("cvm"));
    cJSON *alone = rc == 0 ? cJSON_Parse(out) : NULL;
    const cJSON *r3 = cJSON_GetArrayItem(cJSON_GetObjectItem(alone, "runs"), 0);
    check(rc == 0 && f2_of(r3, "valid") == b && f2_of(r3, "valid_tta") == tb &&
              num(r3, "valid_images") == num(r1, "valid_images"),
          "fold 3 run alone gives the same figures (%.4f)", f2_of(r3, "valid"));
    check(access(at("cvm/fold3.stn"), F_OK) == 0 && access(at("cvm/fold1.stn"), F_OK) != 0,
          "--out-dir: the fold's model saved as fold3.stn");
    double sf = f2_of(r3, "valid_shifted"), sm = f2_of(cJSON_GetObjectItem(alone, "mean"), "valid_shifted");
    check(sf >= 0 && sf <= 1 && sm == sf && !cJSON_GetObjectItem(r0, "valid_shifted"),
          "--shifted: the fold's shifted F2 %.4f and its mean; none without the flag", sf);
    cJSON_Delete(doc);
    cJSON_Delete(alone);
    const char *bad[] = {"--folds 1", "--folds 3 --folds-run 4", "--folds 3 --out x.stn", "--folds 3 --valid-pct 0.1",
                         ""};
    for (int i = 0; i < 5; i++) {
        rc = run("%s cv --data %s %s %s", bin, at("style"), common, bad[i]);
        check(rc == 2 && strstr(out, "usage: stylenet cv"), "cv %s: usage error (exit %d)",
              bad[i][0] ? bad[i] : "without --folds", rc);
    }
}

/* eval --shifted: next to the plain figures, deterministic, different */
static void eval_shifted(void) {
    if (!setup() || model_vd() < 0) return;
    int rc = run("%s eval --model %s --data %s --shifted --json", bin, at("vd.stn"), at("plain"));
    cJSON *a = rc == 0 ? cJSON_Parse(out) : NULL;
    rc = run("%s eval --model %s --data %s --shifted --json", bin, at("vd.stn"), at("plain"));
    cJSON *b = rc == 0 ? cJSON_Parse(out) : NULL;
    const cJSON *sa = cJSON_GetObjectItem(a, "shifted"), *sb = cJSON_GetObjectItem(b, "shifted");
    check(sa && sb && num(sa, "loss") == num(sb, "loss") && num(sa, "fbeta") == num(sb, "fbeta") &&
              num(sa, "brand") == num(sb, "brand"),
          "eval --shifted: the same figures twice (loss %.4f)", num(sa, "loss"));
    check(sa && num(sa, "loss") != num(a, "loss"), "the stress version scores otherwise than the plain photos "
          "(loss %.4f vs %.4f)", num(sa, "loss"), num(a, "loss"));
    check(vd_shifted_f2 >= 0 && fabs(num(sa, "fbeta") - vd_shifted_f2) <= 5.1e-5,
          "train --shifted printed the same shifted F2 (%.4f vs %.4f)", vd_shifted_f2, num(sa, "fbeta"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    rc = run("%s eval --model %s --data %s --shifted", bin, at("vd.stn"), at("plain"));
    check(rc == 0 && strstr(out, "shifted (stress version) on ") && strstr(out, ": 13 images"),
          "eval --shifted text: a line for the stress version: %.300s", out);
}

/* the photo paths of sp's validation share of ds, one per line, into buf (cap bytes) */
static void valid_paths(const dataset *ds, const ds_split *sp, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (int k = 0; k < sp->n_valid && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, "%s\n", ds->items[sp->valid[k]].path);
}

/* eval's pick of fold 2 of 3 (seed 5) for model: the same photos as cv's own fold split of the data */
static void same_photos_as_cv(const char *model) {
    static char a[1 << 15], b[1 << 15];
    const char *paths[1] = {model};
    const classifier_load_opts lo = {.infer_only = true};
    ensemble *e = ensemble_load(paths, 1, &lo);
    const evaluate_pick pick = {.folds = 3, .fold = 2, .seed = 5};
    ds_split sp, all, cv;
    dataset *ds = e ? evaluate_open_data(e, (ds_options){.root = at("style")}, &pick, &sp) : NULL;
    recipe_opts ro = recipe_defaults();
    ro.split_seed = 5;
    dataset *cds = recipe_open_data(&(ds_options){.root = at("style")}, &ro, 0, &all); /* as cmd_cv opens it */
    int *fold_of = cds ? malloc(sizeof(int) * (size_t)cds->n_items) : NULL;
    bool ok = ds && fold_of && ds_make_folds(cds, recipe_split_seed(&ro), 3, fold_of) == 0 &&
              ds_fold_split(cds, fold_of, 1, &cv) == 0;
    if (ok) {
        valid_paths(ds, &sp, a, sizeof a);
        valid_paths(cds, &cv, b, sizeof b);
        ds_split_free(&cv);
    }
    check(ok && sp.n_valid == 37 && sp.n_train == 75 && !strcmp(a, b),
          "eval's fold 2 of 3 is cv's: the same %d photo paths (%s)", ok ? sp.n_valid : -1, ok ? "" : sn_last_error());
    free(fold_of);
    if (ds) ds_split_free(&sp);
    if (cds) ds_split_free(&all);
    ds_free(ds);
    ds_free(cds);
    ensemble_free(e);
}

/* `eval ... --json` of the photos of fold 2 of 3 with extra flags: its document (NULL on failure) */
static cJSON *eval_fold2(const char *models, const char *flags) {
    int rc = run("%s eval %s --data %s --folds 3 --fold 2 --threads 2 --json %s", bin, models, at("style"), flags);
    check(rc == 0, "eval %s --folds 3 --fold 2 %s (exit %d)%s", models, flags, rc, rc ? flat_tail(out, 600) : "");
    return rc == 0 ? cJSON_Parse(out) : NULL;
}

/* a and b within 1e-4 (the training path and the frozen inference path round differently) */
static bool near(double a, double b) { return fabs(a - b) <= 1e-4; }

/* eval --folds K --fold I: cv's fold photos; the fold's figures; an ensemble of two runs' fold models */
static void eval_fold(void) {
    if (!setup()) return;
    int rc = run("%s cv --data %s %s --lr 1e-3 --tta 1 --folds 3 --folds-run 2 --split-seed 5 --out-dir %s --shifted "
                 "--json", bin, at("style"), common, at("cva"));
    cJSON *ca = rc == 0 ? cJSON_Parse(out) : NULL;
    rc = run("%s cv --data %s %s --lr 2e-3 --seed 9 --folds 3 --folds-run 2 --split-seed 5 --out-dir %s --json", bin,
             at("style"), common, at("cvb"));
    cJSON *cb = rc == 0 ? cJSON_Parse(out) : NULL;
    const cJSON *ra = cJSON_GetArrayItem(cJSON_GetObjectItem(ca, "runs"), 0);
    const cJSON *rb = cJSON_GetArrayItem(cJSON_GetObjectItem(cb, "runs"), 0);
    if (!check(ra && rb && num(ra, "valid_images") == 37, "two cv runs of fold 2 (%s)", flat_tail(out, 400))) return;
    same_photos_as_cv(at("cva/fold2.stn"));
    char ma[4400], mb[4400], both[9000];
    snprintf(ma, sizeof ma, "--model %s", at("cva/fold2.stn"));
    snprintf(mb, sizeof mb, "--model %s", at("cvb/fold2.stn"));
    snprintf(both, sizeof both, "%s %s", ma, mb);
    cJSON *plain = eval_fold2(ma, "--split-seed 5 --shifted"), *by_seed = eval_fold2(ma, "--seed 5");
    cJSON *tta = eval_fold2(ma, "--split-seed 5 --seed 7 --tta 1"), *ens = eval_fold2(both, "--split-seed 5");
    const cJSON *va = cJSON_GetObjectItem(ra, "valid"), *sa = cJSON_GetObjectItem(ra, "valid_shifted");
    check(num(plain, "images") == 37 && near(num(plain, "fbeta"), num(va, "fbeta")) &&
              near(num(plain, "loss"), num(va, "loss")) && near(num(plain, "all_right"), num(va, "all_right")),
          "fold 2's model on eval's fold 2: cv's figures (loss %.5f vs %.5f, F2 %.4f vs %.4f)", num(plain, "loss"),
          num(va, "loss"), num(plain, "fbeta"), num(va, "fbeta"));
    const cJSON *sh = cJSON_GetObjectItem(plain, "shifted");
    check(sh && near(num(sh, "fbeta"), num(sa, "fbeta")) && near(num(sh, "loss"), num(sa, "loss")),
          "--shifted: cv's shifted figures (F2 %.4f vs %.4f)", num(sh, "fbeta"), num(sa, "fbeta"));
    check(num(by_seed, "images") == 37 && num(by_seed, "loss") == num(plain, "loss"),
          "--seed 5 deals the folds as --split-seed 5 (loss %.5f)", num(by_seed, "loss"));
    const cJSON *ta = cJSON_GetObjectItem(ra, "valid_tta");
    check(num(tta, "tta") == 1 && near(num(tta, "fbeta"), num(ta, "fbeta")) && near(num(tta, "loss"), num(ta, "loss")),
          "--tta 1 with cv's --seed: cv's TTA figures (F2 %.4f vs %.4f)", num(tta, "fbeta"), num(ta, "fbeta"));
    const cJSON *members = cJSON_GetObjectItem(ens, "models"), *vb = cJSON_GetObjectItem(rb, "valid");
    const cJSON *m0 = cJSON_GetArrayItem(members, 0), *m1 = cJSON_GetArrayItem(members, 1);
    check(num(ens, "images") == 37 && cJSON_GetArraySize(members) == 2 && near(num(m0, "loss"), num(va, "loss")) &&
              near(num(m1, "loss"), num(vb, "loss")) && num(m0, "loss") != num(m1, "loss"),
          "two cv runs' fold 2 models as an ensemble on fold 2: each member as in its run (loss %.5f, %.5f; "
          "ensemble %.5f)", num(m0, "loss"), num(m1, "loss"), num(ens, "loss"));
    cJSON *f1 = eval_fold2(ma, "--split-seed 5 --fold 1");
    check(num(f1, "images") == 38, "--fold 1: the 38 photos of fold 1 (%g)", num(f1, "images"));
    cJSON_Delete(f1);
    cJSON_Delete(plain);
    cJSON_Delete(by_seed);
    cJSON_Delete(tta);
    cJSON_Delete(ens);
    cJSON_Delete(ca);
    cJSON_Delete(cb);
    const char *bad[] = {"--fold 2", "--folds 3 --fold 4", "--folds 3 --fold 0", "--folds 3 --fold 2 --valid-pct 0.2",
                         "--folds 3", "--folds 1 --fold 1"};
    const char *why[] = {"--fold I needs --folds K", "numbered 1 to 3", "--fold", "--folds and --valid-pct",
                         "--folds K needs --fold I", "--folds"};
    for (int i = 0; i < 6; i++) {
        rc = run("%s eval %s --data %s %s", bin, ma, at("style"), bad[i]);
        check(rc == 2 && strstr(out, why[i]) && strstr(out, "usage: stylenet eval"),
              "eval %s: usage error naming the flag (exit %d): %.*s", bad[i], rc, (int)strcspn(out, "\n"), out);
    }
}

static const test_case cases[] = {
    {"eval_fold", eval_fold},
    {"eval_shifted", eval_shifted},
    {"cv_cli", cv_cli},
    {"valid_pct_zero", valid_pct_zero},
    {"valid_data", valid_data},
    {"valid_data_errors", valid_data_errors},
    {"eval_plain_folder", eval_plain_folder},
};
TEST_MAIN(cases)
