/* eval.c - `stylenet eval --model M --data DIR`: metrics of a saved model on labelled images
 * (train/evaluate.h does the scoring; this prints it). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "core/error.h"
#include "train/evaluate.h"

static void usage(FILE *f) {
    fprintf(f, "usage: stylenet eval --model MODEL [--model MODEL2 ...] --data DIR [--task T]\n"
               "                     [--csv F --pattern P --names F] [--tta N] [--size S]\n"
               "                     [--valid-pct P | --folds K --fold I] [--seed S] [--split-seed S]\n"
               "                     [--shifted] [--batch B] [--threads N] [--json]\n"
               "Scores every image of DIR (other photos of the same classes) with the saved model alone,\n"
               "or only the validation share with --valid-pct (the same seeded split as training), or only\n"
               "fold I of the K folds `stylenet cv --folds K` deals (the photos its fold<I>.stn validated on\n"
               "and did not train on). The split and the folds are seeded by --split-seed, else --seed, as\n"
               "in training and cv; --seed also seeds the TTA views.\n"
               "The photos are labelled with the model's own classes, task and file names: DIR may be a\n"
               "plain folder of <brand>_<product>_<n>.png photos (numbers or names), class folders, or any\n"
               "layout of `stylenet data`; --names is relative to the working directory.\n"
               "Prints loss, F2 or accuracy, per-group accuracy (Style: brand, product, both), per-class\n"
               "precision and recall, and the confusion matrix of each group.\n"
               "Calibration: the expected calibration error (15 bins; every tag's probability for a\n"
               "multi-label model, the top-1 probability otherwise) and NLL of the plain view at T = 1, at\n"
               "the model's temperature and at the temperature these photos would fit, and the ECE of the\n"
               "probabilities scored (thresholds and F2 apply to those, calibrated probabilities).\n"
               "--size S scores at S x S pixels instead of the model's own size.\n"
               "--shifted also scores a deterministic stress version of the same photos (new backgrounds\n"
               "behind the cut-out product, any angle, close-ups, other products in frame, directional\n"
               "light): a proxy for photos taken in the wild.\n"
               "With --model given several times (up to %d), scores the ensemble: the mean of the models'\n"
               "probabilities (each with its own image size and TTA), after one line per model; the models\n"
               "must have the same classes in the same order. The ensemble's loss is the mean per-image\n"
               "loss of the averaged probabilities (BCE over the tags, or -log p of the true class).\n"
               "So fold I's models of several cv runs (other recipes, the same folds) score as an\n"
               "ensemble on photos none of them trained on: --model a/fold2.stn --model b/fold2.stn\n"
               "--folds 5 --fold 2.\n",
            ENSEMBLE_MAX);
    fputs(CLI_PHOTO_FORMATS, f);
}

typedef struct {
    const char *paths[ENSEMBLE_MAX];
    int n_models, tta, json, size, shifted, folds, fold;
    float vpct;
    int64_t split_seed;      /* -1: --seed */
    ds_options dso;
    learner_opts lo;
} eval_args;

/* --folds and --fold together, the fold one of the folds, not with --valid-pct; 0 or 2 (usage error) */
static int check_folds(const eval_args *a) {
    if (a->fold && !a->folds) sn_error("--fold I needs --folds K: the number of folds cv dealt");
    else if (a->folds && !a->fold) sn_error("--folds K needs --fold I: the fold to score");
    else if (a->fold > a->folds) sn_error("--fold %d: the folds are numbered 1 to %d (--folds)", a->fold, a->folds);
    else if (a->folds && a->vpct > 0) sn_error("--folds and --valid-pct pick the photos two ways: give one of them");
    else return 0;
    return cli_usage_error("eval", usage);
}

/* 0 to run, else the exit status (help, usage error) */
static int parse(int argc, char **argv, eval_args *a) {
    enum { O_TTA = CLI_O_VERB, O_VPCT, O_SEED, O_BATCH, O_THREADS, O_JSON, O_SIZE, O_SHIFTED, O_FOLDS, O_FOLD,
           O_SPLITSEED };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, CLI_DATA_FLAGS,
        {"tta", required_argument, 0, O_TTA}, {"valid-pct", required_argument, 0, O_VPCT},
        {"seed", required_argument, 0, O_SEED}, {"batch", required_argument, 0, O_BATCH},
        {"threads", required_argument, 0, O_THREADS}, {"json", no_argument, 0, O_JSON},
        {"size", required_argument, 0, O_SIZE}, {"shifted", no_argument, 0, O_SHIFTED},
        {"folds", required_argument, 0, O_FOLDS}, {"fold", required_argument, 0, O_FOLD},
        {"split-seed", required_argument, 0, O_SPLITSEED},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c, bad = 0;
    uint64_t split_seed = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:d:h", opts, NULL)) != -1) {
        if (cli_data_flag(c, optarg, &a->dso)) continue;
        switch (c) {
        case 'm':
            if (a->n_models == ENSEMBLE_MAX) return cli_fail("at most %d --model flags", ENSEMBLE_MAX);
            a->paths[a->n_models++] = optarg;
            break;
        case O_TTA: bad = cli_int("--tta", optarg, 0, 64, &a->tta); break;
        case O_VPCT: bad = cli_float("--valid-pct", optarg, 0, 0.99, &a->vpct); break;
        case O_SEED: bad = cli_seed("--seed", optarg, &a->lo.seed); break;
        case O_BATCH: bad = cli_int("--batch", optarg, 1, 4096, &a->lo.batch); break;
        case O_THREADS: bad = cli_threads(optarg); break;
        case O_JSON: a->json = 1; break;
        case O_SHIFTED: a->shifted = 1; break;
        case O_SIZE: bad = cli_int("--size", optarg, 32, 1024, &a->size); break;
        case O_FOLDS: bad = cli_int("--folds", optarg, 2, 1024, &a->folds); break;
        case O_FOLD: bad = cli_int("--fold", optarg, 1, 1024, &a->fold); break;
        case O_SPLITSEED:
            bad = cli_seed("--split-seed", optarg, &split_seed);
            a->split_seed = (int64_t)split_seed;
            break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
        if (bad < 0) return cli_usage_error("eval", usage);
    }
    if (!a->n_models || !a->dso.root || optind != argc) {
        usage(stderr);
        return 2;
    }
    return check_folds(a);
}

/* a precision or recall as eval prints it: 0 where it is undefined (classifier/metrics.h's NaN) */
static double shown(double v) { return isnan(v) ? 0 : v; }

static void print_result(const char *name, const dataset *ds, const classifier *m, int n, int tta, float thresh,
                         const eval_result *r) {
    printf("%s on %s: %d images%s\n", name, ds->root, n, tta ? " (with TTA)" : "");
    printf("  loss %.4f", r->loss);
    if (ds->kind == DS_MULTI) printf("  F2@%.2f %.4f (best %.4f at %.2f)", thresh, r->fbeta, r->best_fbeta, r->best_thresh);
    else printf("  accuracy %.4f", r->accuracy);
    for (int g = 0; g < m->n_groups; g++) printf("  %s %.4f", m->group_names[g], r->group_acc[g]);
    if (m->n_groups) printf("  both %.4f", r->all_right);
    printf("\n");
}

static void add_result(cJSON *o, const dataset *ds, const classifier *m, float thresh, const eval_result *r) {
    cJSON_AddNumberToObject(o, "loss", r->loss);
    if (ds->kind == DS_MULTI) {
        cJSON_AddNumberToObject(o, "fbeta", r->fbeta);
        cJSON_AddNumberToObject(o, "threshold", thresh);
        cJSON_AddNumberToObject(o, "best_threshold", r->best_thresh);
        cJSON_AddNumberToObject(o, "best_fbeta", r->best_fbeta);
    } else {
        cJSON_AddNumberToObject(o, "accuracy", r->accuracy);
    }
    for (int g = 0; g < m->n_groups; g++) cJSON_AddNumberToObject(o, m->group_names[g], r->group_acc[g]);
    if (m->n_groups) cJSON_AddNumberToObject(o, "all_right", r->all_right);
}

/* a line per member: ECE and NLL of its plain view at T = 1, at its own T, at the T these photos fit */
static void print_calibration(const ensemble *e, const evaluation *ev) {
    for (int i = 0; i < e->n; i++) {
        const calibration_stats *c = ev->cal[i];
        printf("  calibration%s%s: ECE %.4f at T=1, %.4f at the model's T=%.3f, %.4f at these photos' best T=%.3f"
               " (NLL %.4f, %.4f, %.4f)\n", e->n > 1 ? " of " : "", e->n > 1 ? e->paths[i] : "", c[0].ece, c[1].ece,
               c[1].temperature, c[2].ece, c[2].temperature, c[0].nll, c[1].nll, c[2].nll);
    }
    printf("  ECE of these probabilities: %.4f\n", ev->ece);
}

/* the text form: a line per member of an ensemble, the result, then each group's table */
static void print_text(const ensemble *e, const dataset *ds, const evaluation *ev, const evaluation *sh, int tta) {
    const classifier *m = e->members[0];
    for (int i = 0; e->n > 1 && i < e->n; i++)
        print_result(e->paths[i], ds, m, ev->n_images, tta, ev->thresh, &ev->member[i]);
    char name[64];
    snprintf(name, sizeof name, "ensemble of %d models", e->n);
    print_result(e->n > 1 ? name : e->paths[0], ds, m, ev->n_images, tta, ev->thresh, &ev->mean);
    if (sh) print_result("shifted (stress version)", ds, m, sh->n_images, tta, sh->thresh, &sh->mean);
    print_calibration(e, ev);
    for (int g = 0; g < ev->n_groups; g++) {
        const metrics_group *gr = &ev->groups[g];
        printf("\n%s: precision / recall / count, then the confusion matrix (rows: truth)\n",
               m->n_groups ? m->group_names[g] : "class");
        for (int a = 0; a < gr->k; a++) {
            printf("  %-22.22s %5.2f %5.2f %4d |", m->classes[gr->lo + a], shown(gr->precision[a]),
                   shown(gr->recall[a]), gr->count[a]);
            for (int b = 0; b < gr->k; b++) printf(" %3d", gr->cm[a * gr->k + b]);
            printf("\n");
        }
    }
}

/* "calibration": [{model, uncalibrated, model_temperature, fitted} per member], "ece" */
static void add_calibration(cJSON *doc, const ensemble *e, const evaluation *ev) {
    static const char *key[3] = {"uncalibrated", "model_temperature", "fitted_here"};
    cJSON *arr = cJSON_AddArrayToObject(doc, "calibration");
    for (int i = 0; i < e->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", e->paths[i]);
        for (int k = 0; k < 3; k++) {
            cJSON *c = cJSON_AddObjectToObject(o, key[k]);
            cJSON_AddNumberToObject(c, "temperature", ev->cal[i][k].temperature);
            cJSON_AddNumberToObject(c, "ece", ev->cal[i][k].ece);
            cJSON_AddNumberToObject(c, "nll", ev->cal[i][k].nll);
            cJSON_AddNumberToObject(c, "brier", ev->cal[i][k].brier);
        }
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddNumberToObject(doc, "ece", ev->ece);
}

/* the --json form */
static void print_json(const ensemble *e, const dataset *ds, const evaluation *ev, const evaluation *sh, int tta) {
    const classifier *m = e->members[0];
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "model", e->paths[0]);
    if (e->n > 1) { /* the ensemble: its members' own metrics, then the mean's below */
        cJSON *mem = cJSON_AddArrayToObject(doc, "models");
        for (int i = 0; i < e->n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "model", e->paths[i]);
            cJSON_AddNumberToObject(o, "size", e->members[i]->size);
            add_result(o, ds, m, ev->thresh, &ev->member[i]);
            cJSON_AddItemToArray(mem, o);
        }
    }
    cJSON_AddStringToObject(doc, "data", ds->root);
    cJSON_AddNumberToObject(doc, "images", ev->n_images);
    cJSON_AddNumberToObject(doc, "tta", tta);
    add_result(doc, ds, m, ev->thresh, &ev->mean);
    if (sh) add_result(cJSON_AddObjectToObject(doc, "shifted"), ds, m, sh->thresh, &sh->mean);
    add_calibration(doc, e, ev);
    cJSON *groups = cJSON_AddArrayToObject(doc, "groups");
    for (int g = 0; g < ev->n_groups; g++) {
        const metrics_group *gr = &ev->groups[g];
        cJSON *ge = cJSON_CreateObject();
        cJSON_AddStringToObject(ge, "name", m->n_groups ? m->group_names[g] : "class");
        cJSON_AddNumberToObject(ge, "accuracy", m->n_groups ? ev->mean.group_acc[g] : ev->mean.accuracy);
        cJSON *cls = cJSON_AddArrayToObject(ge, "classes"), *mat = cJSON_AddArrayToObject(ge, "confusion");
        for (int a = 0; a < gr->k; a++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", m->classes[gr->lo + a]);
            cJSON_AddNumberToObject(o, "precision", shown(gr->precision[a]));
            cJSON_AddNumberToObject(o, "recall", shown(gr->recall[a]));
            cJSON_AddNumberToObject(o, "count", gr->count[a]);
            cJSON_AddItemToArray(cls, o);
            cJSON_AddItemToArray(mat, cJSON_CreateIntArray(gr->cm + a * gr->k, gr->k));
        }
        cJSON_AddItemToArray(groups, ge);
    }
    char *s = cJSON_Print(doc);
    if (s) puts(s);
    free(s);
    cJSON_Delete(doc);
}

int cmd_eval(int argc, char **argv) {
    eval_args a = {.lo = learner_defaults(), .split_seed = -1};
    int r = parse(argc, argv, &a);
    if (r) return r < 0 ? 0 : r;
    const classifier_load_opts lo = {.infer_only = true}; /* scoring only: the frozen inference path */
    ensemble *e = ensemble_load(a.paths, a.n_models, &lo);
    if (!e) return cli_fail("%s", sn_last_error());
    for (int i = 0; a.size > 0 && i < e->n; i++) e->members[i]->size = a.size;
    ds_split sp;
    const evaluate_pick pick = {.valid_pct = a.vpct, .folds = a.folds, .fold = a.fold,
                                .seed = a.split_seed >= 0 ? (uint64_t)a.split_seed : a.lo.seed};
    dataset *ds = evaluate_open_data(e, a.dso, &pick, &sp);
    evaluation ev;
    int rc = 1;
    if (!ds) {
        cli_fail("%s", sn_last_error());
    } else {
        for (int i = 0; i < ds->n_problems && i < 10; i++) fprintf(stderr, "stylenet: skipped: %s\n", ds->problems[i]);
        if (evaluate_run(e, ds, &sp, &a.lo, a.tta, &ev) < 0) {
            cli_fail("%s", sn_last_error());
        } else {
            evaluation sh;
            rc = a.shifted && evaluate_shifted(e, ds, &sp, &a.lo, a.tta, &sh) < 0 ? cli_fail("%s", sn_last_error()) : 0;
            if (rc == 0 && a.json) print_json(e, ds, &ev, a.shifted ? &sh : NULL, a.tta);
            else if (rc == 0) print_text(e, ds, &ev, a.shifted ? &sh : NULL, a.tta);
            if (rc == 0 && a.shifted) evaluate_free(&sh);
            evaluate_free(&ev);
        }
        ds_split_free(&sp);
        ds_free(ds);
    }
    ensemble_free(e);
    return rc;
}
