/* cv.c - `stylenet cv --folds K [train options]`: the recipe on K stratified folds, each fold's
 * figures and every metric's mean and standard deviation (train/cv.h does the work). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli/cli.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/file.h"
#include "dist/dist.h"
#include "train/cv.h"

static void usage(FILE *f) {
    fprintf(f, "usage: stylenet cv --data DIR --folds K [--folds-run I,J,...] [--shifted] [--out-dir DIR]\n"
               "                   [train options]\n"
               "Cross-validation: the photos are dealt into K stratified folds (seeded by --split-seed, else\n"
               "--seed); the recipe trains one model per fold with that fold as validation and the others as\n"
               "training, and the figures of each fold are printed with every metric's mean and standard\n"
               "deviation, plain, with TTA and on the shifted stress version (--json: one JSON document).\n"
               "  --folds K            number of folds (2 or more)\n"
               "  --folds-run I,J,...  run only these folds (1-based); the summary is over them\n"
               "  --shifted            also score each fold's model on the fold's shifted stress version\n"
               "                       (as `eval --shifted`: new backgrounds, any angle, clutter, light)\n"
               "  --out-dir DIR        save each fold's model as DIR/fold<I>.stn (default: not saved)\n"
               "The train options (below) set the recipe; --valid-pct, --valid-data, --out, --run-dir,\n"
               "--resume and --stop-after do not apply.\n");
    cli_train_help(f);
}

typedef struct {
    int folds;
    bool run[1024];   /* which folds to run (0-based) */
    const char *out_dir;
    bool shifted;
} cv_args;

/* --folds-run "1,3": the folds to run; -1 with an error */
static int parse_run(const char *s, int k, bool *run) {
    memset(run, 0, sizeof(bool) * 1024);
    char *copy = strdup(s), *save = NULL;
    if (!copy) return sn_error("out of memory");
    int n = 0, r = 0;
    for (char *t = strtok_r(copy, ",", &save); t && r == 0; t = strtok_r(NULL, ",", &save), n++) {
        int f = 0;
        if (cli_int("--folds-run", t, 1, k, &f) < 0) r = -1;
        else run[f - 1] = true;
    }
    free(copy);
    if (r == 0 && n == 0) r = sn_error("--folds-run takes fold numbers from 1 to %d, not '%s'", k, s);
    return r;
}

/* takes cv's own flags out of argv (argc updated); 0, 2 on a usage error */
static int take_cv_flags(int *argc, char **argv, cv_args *c) {
    const char *run = NULL;
    int n = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *v = NULL, *names[3] = {"--folds", "--folds-run", "--out-dir"};
        int which = -1;
        if (!strcmp(a, "--shifted")) {
            c->shifted = true;
            continue;
        }
        for (int k = 0; k < 3 && which < 0; k++) {
            size_t L = strlen(names[k]);
            if (!strcmp(a, names[k])) which = k, v = i + 1 < *argc ? argv[++i] : NULL;
            else if (!strncmp(a, names[k], L) && a[L] == '=') which = k, v = a + L + 1;
        }
        if (which < 0) {
            argv[n++] = argv[i];
            continue;
        }
        if (!v) return sn_error("%s needs a value", names[which]), cli_usage_error("cv", usage);
        if (which == 0 && cli_int("--folds", v, 2, 1024, &c->folds) < 0) return cli_usage_error("cv", usage);
        if (which == 1) run = v;
        if (which == 2) c->out_dir = v;
    }
    *argc = n;
    if (!c->folds) return sn_error("--folds K is required"), cli_usage_error("cv", usage);
    if (run && parse_run(run, c->folds, c->run) < 0) return cli_usage_error("cv", usage);
    for (int f = 0; !run && f < c->folds; f++) c->run[f] = true;
    return 0;
}

/* one table row: a fold's figures (or a summary's) */
static void print_row(const char *name, const cv_fold *f, const eval_result *e, bool multi, int n_groups) {
    printf("%-6s", name);
    if (f) printf(" %6d %6d", f->n_train, f->n_valid);
    else printf(" %13s", "");
    printf(" %8.4f %8.4f", e->loss, multi ? e->fbeta : e->accuracy);
    for (int g = 0; g < n_groups; g++) printf(" %8.4f", e->group_acc[g]);
    if (n_groups) printf(" %8.4f", e->all_right);
    if (f) printf(" %8.1f", f->res.seconds);
    printf("\n");
}

/* the table of one kind of figure: a row per fold, then the mean and the standard deviation */
static void print_table(const cv_fold *r, int n, cv_kind kind, const dataset *ds, const char *title) {
    const bool multi = ds->kind == DS_MULTI;
    const int ng = cv_figures(&r[0], kind)->n_groups;
    printf("\n%s\n%-6s %6s %6s %8s %8s", title, "fold", "train", "valid", "loss", multi ? "F2" : "accuracy");
    for (int g = 0; g < ng; g++) printf(" %8.8s", ds->group_names[g]);
    if (ng) printf(" %8s", "both");
    printf(" %8s\n", "seconds");
    char name[16];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%d", r[i].fold + 1);
        print_row(name, &r[i], cv_figures(&r[i], kind), multi, ng);
    }
    eval_result mean, sd;
    cv_summary(r, n, kind, &mean, &sd);
    print_row("mean", NULL, &mean, multi, ng);
    print_row("sd", NULL, &sd, multi, ng);
}

/* the --json document */
static void print_json(const cv_fold *r, int n, const dataset *ds, const cv_args *c, const recipe_opts *o) {
    const bool multi = ds->kind == DS_MULTI;
    cJSON *doc = cJSON_CreateObject(), *runs = cJSON_CreateArray();
    cJSON_AddStringToObject(doc, "data", ds->root);
    cJSON_AddNumberToObject(doc, "images", ds->n_items);
    cJSON_AddNumberToObject(doc, "folds", c->folds);
    cJSON_AddNumberToObject(doc, "split_seed", (double)recipe_split_seed(o));
    for (int i = 0; i < n; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "fold", r[i].fold + 1);
        cJSON_AddNumberToObject(f, "train_images", r[i].n_train);
        cJSON_AddNumberToObject(f, "valid_images", r[i].n_valid);
        cJSON_AddNumberToObject(f, "lr", r[i].res.lr);
        cJSON_AddNumberToObject(f, "seconds", r[i].res.seconds);
        recipe_add_result(f, "valid", "loss", &r[i].res.plain, multi, ds->group_names);
        if (o->tta > 0) recipe_add_result(f, "valid_tta", "loss", &r[i].res.tta, multi, ds->group_names);
        if (c->shifted) recipe_add_result(f, "valid_shifted", "loss", &r[i].res.shifted, multi, ds->group_names);
        cJSON_AddItemToArray(runs, f);
    }
    cJSON_AddItemToObject(doc, "runs", runs);
    cJSON *mean = cJSON_AddObjectToObject(doc, "mean"), *sd = cJSON_AddObjectToObject(doc, "std");
    const char *keys[3] = {"valid", "valid_tta", "valid_shifted"};
    for (int k = 0; k < 3; k++) {
        if ((k == CV_TTA && o->tta <= 0) || (k == CV_SHIFTED && !c->shifted)) continue;
        eval_result m, s;
        cv_summary(r, n, (cv_kind)k, &m, &s);
        recipe_add_result(mean, keys[k], "loss", &m, multi, ds->group_names);
        recipe_add_result(sd, keys[k], "loss", &s, multi, ds->group_names);
    }
    char *text = cJSON_Print(doc);
    if (text) puts(text);
    free(text);
    cJSON_Delete(doc);
}

/* runs the chosen folds into r (*n of them done); 0 or -1 */
static int run_folds(dataset *ds, const int *fold_of, const cv_args *c, const recipe_opts *o, cli_progress *prog,
                     cv_fold *r, int *n) {
    int total = 0;
    for (int f = 0; f < c->folds; f++) total += c->run[f];
    for (int f = 0; f < c->folds; f++) {
        if (!c->run[f]) continue;
        char save[4200];
        if (c->out_dir) snprintf(save, sizeof save, "%s/fold%d.stn", c->out_dir, f + 1);
        if (!o->lo.quiet) printf("\nfold %d of %d (%d of %d run)\n", f + 1, c->folds, *n + 1, total);
        prog->table_header = false;
        cv_opts co = {.save = c->out_dir ? save : NULL, .shifted = c->shifted};
        if (cv_run_fold(ds, fold_of, f, o, &co, &r[*n]) < 0) return -1;
        ++*n;
    }
    return 0;
}

int cmd_cv(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    cv_args c = {0};
    int st = take_cv_flags(&argc, argv, &c);
    if (st) return st;
    cli_train_args a = {.ro = recipe_defaults(), .vpct = 0.2f};
    cli_progress prog;
    a.ro.lo.events = cli_progress_init(&prog);
    if ((st = cli_train_parse(argc, argv, &a, "cv", usage)) >= 0) return st;
    if (a.json) a.ro.lo.progress = false; /* one JSON document, nothing else */
    if (a.out || a.vpct_given || a.ro.valid_data || a.resume || a.ro.lo.run_dir || a.ro.lo.stop_after) {
        sn_error("--out, --valid-pct, --valid-data, --run-dir, --resume and --stop-after do not apply to cv");
        return cli_usage_error("cv", usage);
    }
    struct stat sb;
    if (c.out_dir && mkdir(c.out_dir, 0777) != 0 && !(stat(c.out_dir, &sb) == 0 && S_ISDIR(sb.st_mode)))
        return cli_fail("%s: cannot make the folder: %s", c.out_dir, strerror(errno));
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/fold1.stn", c.out_dir);
    const int unwritable = c.out_dir && dist_rank() == 0 && sn_check_writable(probe) < 0; /* rank 0 writes */
    if (dist_max_i(unwritable)) return dist_rank() == 0 ? cli_fail("--out-dir %s", sn_last_error()) : 1;
    ds_split all;
    dataset *ds = recipe_open_data(&a.dso, &a.ro, 0, &all);
    if (!ds) return cli_fail("%s", sn_last_error());
    ds_split_free(&all);
    int *fold_of = malloc(sizeof(int) * (size_t)ds->n_items), n = 0, rc = 1;
    cv_fold *r = calloc((size_t)c.folds, sizeof(cv_fold));
    if (!fold_of || !r) sn_error("out of memory");
    else if (ds_make_folds(ds, recipe_split_seed(&a.ro), c.folds, fold_of) == 0) {
        if (!a.ro.lo.quiet)
            printf("stylenet cv: %s, %d images, %d folds (split seed %llu), %d %s classes, recipe %s\n", ds->root,
                   ds->n_items, c.folds, (unsigned long long)recipe_split_seed(&a.ro), ds->n_classes,
                   ds->kind == DS_MULTI ? "multi-label" : "single-label", a.ro.recipe);
        rc = run_folds(ds, fold_of, &c, &a.ro, &prog, r, &n) < 0 ? 1 : 0;
    }
    if (rc) cli_fail("%s", sn_last_error());
    else if (a.json) print_json(r, n, ds, &c, &a.ro);
    else {
        print_table(r, n, CV_PLAIN, ds, "validation folds:");
        if (a.ro.tta > 0) print_table(r, n, CV_TTA, ds, "with TTA:");
        if (c.shifted) print_table(r, n, CV_SHIFTED, ds, "shifted (stress version of the folds):");
    }
    free(r);
    free(fold_of);
    ds_free(ds);
    return rc;
}
