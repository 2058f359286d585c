/* calibrate.c - `stylenet calibrate --model M --data DIR`: fits the model's temperature on
 * labelled photos (classifier/calibration.h) and writes the model back (atomically). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli/cli.h"
#include "core/error.h"
#include "train/evaluate.h"
#include "train/recipe.h"

static void usage(FILE *f) {
    fputs("usage: stylenet calibrate --model MODEL --data DIR [--task T] [--csv F --pattern P --names F]\n"
          "                          [--valid-pct P --seed S] [--out MODEL2] [--batch B] [--threads N] [--json]\n"
          "Fits the model's temperature T on the labelled photos of DIR (every photo, or with --valid-pct\n"
          "the validation share of the same seeded split as training): the logits are divided by the T\n"
          "that minimises the negative log-likelihood of the photos' labels (binary cross-entropy over the\n"
          "tags for a multi-label model, cross-entropy otherwise), so a probability of 0.8 comes true about\n"
          "8 times in 10.  Rankings and accuracies do not change; thresholds apply to the new probabilities.\n"
          "Prints T and the NLL, Brier score and expected calibration error (15 bins) before (T = 1) and\n"
          "after, then writes the model with T to MODEL2 (default: MODEL itself), atomically.\n"
          "Use photos the model was not trained on: `train` already fits T on its validation share.\n",
          f);
    fputs(CLI_PHOTO_FORMATS, f);
}

typedef struct {
    const char *model, *out;
    int json;
    float vpct;
    ds_options dso;
    learner_opts lo;
} calib_args;

/* 0 to run, else the exit status (help: -1, usage error) */
static int parse(int argc, char **argv, calib_args *a) {
    enum { O_VPCT = CLI_O_VERB, O_SEED, O_BATCH, O_THREADS, O_JSON, O_OUT };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, CLI_DATA_FLAGS, {"valid-pct", required_argument, 0, O_VPCT},
        {"seed", required_argument, 0, O_SEED}, {"batch", required_argument, 0, O_BATCH},
        {"threads", required_argument, 0, O_THREADS}, {"json", no_argument, 0, O_JSON},
        {"out", required_argument, 0, O_OUT}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c, bad = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:d:h", opts, NULL)) != -1) {
        if (cli_data_flag(c, optarg, &a->dso)) continue;
        switch (c) {
        case 'm': a->model = optarg; break;
        case O_VPCT: bad = cli_float("--valid-pct", optarg, 0, 0.99, &a->vpct); break;
        case O_SEED: bad = cli_seed("--seed", optarg, &a->lo.seed); break;
        case O_BATCH: bad = cli_int("--batch", optarg, 1, 4096, &a->lo.batch); break;
        case O_THREADS: bad = cli_threads(optarg); break;
        case O_JSON: a->json = 1; break;
        case O_OUT: a->out = optarg; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
        if (bad < 0) return cli_usage_error("calibrate", usage);
    }
    if (!a->model || !a->dso.root || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (!a->out) a->out = a->model;
    return 0;
}

static void print_stats(const calib_args *a, const classifier *m, int n, const calibration_stats cal[2]) {
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", a->out);
        cJSON_AddNumberToObject(o, "images", n);
        cJSON_AddNumberToObject(o, "temperature", cal[1].temperature);
        const char *key[2] = {"uncalibrated", "calibrated"};
        for (int k = 0; k < 2; k++) {
            cJSON *e = cJSON_AddObjectToObject(o, key[k]);
            cJSON_AddNumberToObject(e, "nll", cal[k].nll);
            cJSON_AddNumberToObject(e, "brier", cal[k].brier);
            cJSON_AddNumberToObject(e, "ece", cal[k].ece);
            for (int g = 0; g < cal[k].n_groups; g++) cJSON_AddNumberToObject(e, m->group_names[g], cal[k].group_ece[g]);
        }
        char *s = cJSON_Print(o);
        if (s) puts(s);
        free(s);
        cJSON_Delete(o);
        return;
    }
    printf("%d photos: temperature %.4f\n", n, cal[1].temperature);
    for (int k = 0; k < 2; k++) {
        printf("  %-13s NLL %.4f  Brier %.5f  ECE %.4f", k ? "calibrated" : "T = 1", cal[k].nll, cal[k].brier,
               cal[k].ece);
        for (int g = 0; g < cal[k].n_groups; g++) printf("  %s top-1 ECE %.4f", m->group_names[g], cal[k].group_ece[g]);
        printf("\n");
    }
    printf("model written to %s\n", a->out);
}

int cmd_calibrate(int argc, char **argv) {
    calib_args a = {.lo = learner_defaults()};
    int r = parse(argc, argv, &a);
    if (r) return r < 0 ? 0 : r;
    a.lo.quiet = true;
    ensemble *e = ensemble_load(&a.model, 1, NULL);
    if (!e) return cli_fail("%s", sn_last_error());
    classifier *m = e->members[0];
    ds_split sp;
    const evaluate_pick pick = {.valid_pct = a.vpct, .seed = a.lo.seed};
    dataset *ds = evaluate_open_data(e, a.dso, &pick, &sp);
    learner *l = ds ? learner_create(m, ds, &sp, &a.lo) : NULL;
    calibration_stats cal[2];
    int rc = 1;
    if (!l) cli_fail("%s", sn_last_error());
    else if (sp.n_valid == 0) cli_fail("%s: no labelled photos to calibrate on", a.dso.root);
    else if (recipe_calibrate(l, m, ds, &sp, m->size, cal) < 0 || (learner_writes(l) && classifier_save(m, a.out) < 0))
        cli_fail("%s", sn_last_error());
    else {
        print_stats(&a, m, sp.n_valid, cal);
        rc = 0;
    }
    learner_free(l);
    if (ds) ds_split_free(&sp);
    ds_free(ds);
    ensemble_free(e);
    return rc;
}
