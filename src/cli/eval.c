/* eval.c - `stylenet eval --model M --data DIR`: metrics of a saved model on labelled images. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "core/error.h"
#include "data/dataset.h"
#include "io/model_file.h"
#include "train/learner.h"
#include "train/metrics.h"
#include "train/ensemble.h"
#include "train/predictions.h"

static void usage(FILE *f) {
    fprintf(f, "usage: stylenet eval --model MODEL [--model MODEL2 ...] --data DIR [--task T]\n"
               "                     [--csv F --pattern P --names F] [--tta N] [--size S]\n"
               "                     [--valid-pct P --seed S] [--batch B] [--threads N] [--json]\n"
               "Scores every image of DIR (other photos of the same classes) with the saved model alone,\n"
               "or only the validation share with --valid-pct (the same seeded split as training).\n"
               "Prints loss, F2 or accuracy, per-group accuracy (Style: brand, product, both), per-class\n"
               "precision and recall, and the confusion matrix of each group.\n"
               "--size S scores at S x S pixels instead of the model's own size.\n"
               "With --model given several times (up to %d), scores the ensemble: the mean of the models'\n"
               "probabilities (each with its own image size and TTA), after one line per model; the models\n"
               "must have the same classes in the same order. The ensemble's loss is the mean per-image\n"
               "loss of the averaged probabilities (BCE over the tags, or -log p of the true class).\n",
            ENSEMBLE_MAX);
}

static void print_result(const char *name, const dataset *ds, const sn_model *m, int n, int tta, float thresh,
                         const eval_result *r) {
    printf("%s on %s: %d images%s\n", name, ds->root, n, tta ? " (with TTA)" : "");
    printf("  loss %.4f", r->loss);
    if (ds->kind == DS_MULTI) printf("  F2@%.2f %.4f (best %.4f at %.2f)", thresh, r->fbeta, r->best_fbeta, r->best_thresh);
    else printf("  accuracy %.4f", r->accuracy);
    for (int g = 0; g < m->n_groups; g++) printf("  %s %.4f", m->group_names[g], r->group_acc[g]);
    if (m->n_groups) printf("  both %.4f", r->all_right);
    printf("\n");
}

static void add_result(cJSON *o, const dataset *ds, const sn_model *m, float thresh, const eval_result *r) {
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

int cmd_eval(int argc, char **argv) {
    enum { O_TTA = CLI_O_VERB, O_VPCT, O_SEED, O_BATCH, O_THREADS, O_JSON, O_SIZE };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, CLI_DATA_FLAGS,
        {"tta", required_argument, 0, O_TTA}, {"valid-pct", required_argument, 0, O_VPCT},
        {"seed", required_argument, 0, O_SEED}, {"batch", required_argument, 0, O_BATCH},
        {"threads", required_argument, 0, O_THREADS}, {"json", no_argument, 0, O_JSON},
        {"size", required_argument, 0, O_SIZE},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    ds_options dso = {0};
    const char *paths[ENSEMBLE_MAX];
    sn_model *models[ENSEMBLE_MAX] = {0};
    int n_models = 0, tta = 0, json = 0, size = 0, c, bad = 0;
    float vpct = 0;
    learner_opts lo = learner_defaults();
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:d:h", opts, NULL)) != -1) {
        if (cli_data_flag(c, optarg, &dso)) continue;
        switch (c) {
        case 'm':
            if (n_models == ENSEMBLE_MAX) return cli_fail("at most %d --model flags", ENSEMBLE_MAX);
            paths[n_models++] = optarg;
            break;
        case O_TTA: bad = cli_int("--tta", optarg, 0, 64, &tta); break;
        case O_VPCT: bad = cli_float("--valid-pct", optarg, 0, 0.99, &vpct); break;
        case O_SEED: bad = cli_seed("--seed", optarg, &lo.seed); break;
        case O_BATCH: bad = cli_int("--batch", optarg, 1, 4096, &lo.batch); break;
        case O_THREADS: bad = cli_threads(optarg); break;
        case O_JSON: json = 1; break;
        case O_SIZE: bad = cli_int("--size", optarg, 32, 1024, &size); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad < 0) return cli_usage_error("eval", usage);
    }
    if (!n_models || !dso.root || optind != argc) {
        usage(stderr);
        return 2;
    }
    for (int i = 0; i < n_models; i++) {
        models[i] = model_load(paths[i], NULL);
        if (!models[i] || (i > 0 && ensemble_compatible(models[0], paths[0], models[i], paths[i]) < 0)) {
            int r = cli_fail("%s", sn_last_error());
            for (int j = 0; j <= i; j++) model_free(models[j]);
            return r;
        }
    }
    for (int i = 0; i < n_models; i++) net_freeze_weights(models[i]->net); /* scoring only */
    if (size > 0)
        for (int i = 0; i < n_models; i++) models[i]->size = size;
    sn_model *m = models[0];
    const char *model_path = paths[0];
    if (!dso.task && !strcmp(m->task, "multi")) dso.task = "multi";
    dataset *ds = ds_open(&dso);
    if (!ds || cli_check_classes(m, model_path, ds) < 0) {
        int r = cli_fail("%s", sn_last_error());
        ds_free(ds);
        for (int i = 0; i < n_models; i++) model_free(models[i]);
        return r;
    }
    int max_size = 0;
    for (int i = 0; i < n_models; i++) max_size = models[i]->size > max_size ? models[i]->size : max_size;
    ds_decode_opts dd = {.max_side = max_size * 5 / 4};
    ds_split sp = {0};
    int rc = 1;
    if (ds_decode(ds, &dd) < 0) {
        cli_fail("%s", sn_last_error());
        goto out;
    }
    for (int i = 0; i < ds->n_problems && i < 10; i++) fprintf(stderr, "stylenet: skipped: %s\n", ds->problems[i]);
    if (vpct > 0) {
        if (ds_make_split(ds, lo.seed, vpct, true, &sp) < 0) {
            cli_fail("%s", sn_last_error());
            goto out;
        }
    } else { /* every image is scored */
        sp.valid = malloc(sizeof(int) * (size_t)ds->n_items);
        sp.train = malloc(sizeof(int));
        for (int i = 0; sp.valid && i < ds->n_items; i++) sp.valid[i] = i;
        sp.n_valid = ds->n_items;
    }
    lo.quiet = true;
    lo.progress = false;
    lo.thresh = m->threshold > 0 ? m->threshold : lo.thresh;
    const size_t np = (size_t)sp.n_valid * ds->n_classes;
    eval_result r, member[ENSEMBLE_MAX];
    float *probs = calloc(np, sizeof(float)), *one = malloc(sizeof(float) * np);
    if (!probs || !one) {
        cli_fail("out of memory");
        free(probs); free(one);
        goto out;
    }
    /* each model at its own size; the ensemble is the mean of their probabilities */
    for (int i = 0; i < n_models; i++) {
        learner *l = learner_create(models[i], ds, &sp, &lo);
        if (!l || learner_validate(l, models[i]->size, tta, &member[i], one) < 0) {
            if (n_models > 1) sn_error_prefix("%s", paths[i]);
            cli_fail("%s", sn_last_error());
            learner_free(l);
            free(probs); free(one);
            goto out;
        }
        for (size_t k = 0; k < np; k++) probs[k] += one[k];
        if (i == n_models - 1) {
            for (size_t k = 0; k < np; k++) probs[k] /= (float)n_models;
            if (n_models > 1 && learner_score(l, probs, &r) < 0) {
                cli_fail("%s", sn_last_error());
                learner_free(l);
                free(probs); free(one);
                goto out;
            }
        }
        learner_free(l);
    }
    free(one);
    if (n_models == 1) {
        r = member[0];
    } else {
        double loss = 0;
        for (int i = 0; i < sp.n_valid; i++)
            loss += prediction_loss(ds->n_classes, probs + (size_t)i * ds->n_classes, ds_hot(ds, sp.valid[i]),
                                    ds->kind == DS_MULTI);
        r.loss = loss / sp.n_valid;
    }
    /* confusion matrix and per-class precision / recall for each group (or the single label) */
    int ng = m->n_groups > 0 ? m->n_groups : (ds->kind == DS_SINGLE ? 1 : 0);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "model", model_path);
    if (n_models > 1) { /* the ensemble: its members' own metrics, then the mean's below */
        cJSON *mem = cJSON_AddArrayToObject(doc, "models");
        for (int i = 0; i < n_models; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "model", paths[i]);
            cJSON_AddNumberToObject(e, "size", models[i]->size);
            add_result(e, ds, m, lo.thresh, &member[i]);
            cJSON_AddItemToArray(mem, e);
            if (!json) print_result(paths[i], ds, m, sp.n_valid, tta, lo.thresh, &member[i]);
        }
    }
    cJSON_AddStringToObject(doc, "data", ds->root);
    cJSON_AddNumberToObject(doc, "images", sp.n_valid);
    cJSON_AddNumberToObject(doc, "tta", tta);
    add_result(doc, ds, m, lo.thresh, &r);
    if (!json) {
        char name[64];
        snprintf(name, sizeof name, "ensemble of %d models", n_models);
        print_result(n_models > 1 ? name : model_path, ds, m, sp.n_valid, tta, lo.thresh, &r);
    }
    cJSON *groups = cJSON_AddArrayToObject(doc, "groups");
    for (int g = 0; g < ng; g++) {
        int lo_c = m->n_groups ? m->group_lo[g] : 0, hi_c = m->n_groups ? m->group_hi[g] : m->n_classes, k = hi_c - lo_c;
        int *pred = malloc(sizeof(int) * (size_t)sp.n_valid), *truth = malloc(sizeof(int) * (size_t)sp.n_valid);
        int *cm = malloc(sizeof(int) * (size_t)k * k);
        double *pr = malloc(sizeof(double) * (size_t)k), *rc_ = malloc(sizeof(double) * (size_t)k);
        for (int i = 0; i < sp.n_valid; i++) {
            const float *row = probs + (size_t)i * m->n_classes;
            pred[i] = group_argmax(row, lo_c, hi_c) - lo_c;
            const uint8_t *h = ds_hot(ds, sp.valid[i]);
            truth[i] = 0;
            for (int j = lo_c; j < hi_c; j++)
                if (h[j]) truth[i] = j - lo_c;
        }
        confusion(sp.n_valid, k, pred, truth, cm);
        precision_recall(k, cm, pr, rc_);
        const char *gname = m->n_groups ? m->group_names[g] : "class";
        cJSON *ge = cJSON_CreateObject();
        cJSON_AddStringToObject(ge, "name", gname);
        cJSON_AddNumberToObject(ge, "accuracy", m->n_groups ? r.group_acc[g] : r.accuracy);
        cJSON *cls = cJSON_AddArrayToObject(ge, "classes"), *mat = cJSON_AddArrayToObject(ge, "confusion");
        if (!json) printf("\n%s: precision / recall / count, then the confusion matrix (rows: truth)\n", gname);
        for (int a = 0; a < k; a++) {
            int cnt = 0;
            for (int b = 0; b < k; b++) cnt += cm[a * k + b];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", m->classes[lo_c + a]);
            cJSON_AddNumberToObject(e, "precision", pr[a]);
            cJSON_AddNumberToObject(e, "recall", rc_[a]);
            cJSON_AddNumberToObject(e, "count", cnt);
            cJSON_AddItemToArray(cls, e);
            cJSON_AddItemToArray(mat, cJSON_CreateIntArray(cm + a * k, k));
            if (!json) {
                printf("  %-22.22s %5.2f %5.2f %4d |", m->classes[lo_c + a], pr[a], rc_[a], cnt);
                for (int b = 0; b < k; b++) printf(" %3d", cm[a * k + b]);
                printf("\n");
            }
        }
        cJSON_AddItemToArray(groups, ge);
        free(pred); free(truth); free(cm); free(pr); free(rc_);
    }
    if (json) {
        char *s = cJSON_Print(doc);
        puts(s);
        free(s);
    }
    cJSON_Delete(doc);
    free(probs);
    rc = 0;
out:
    ds_split_free(&sp);
    ds_free(ds);
    for (int i = 0; i < n_models; i++) model_free(models[i]);
    return rc;
}
