/* data.c - `stylenet data --data DIR [--task T] ...`: what a data set holds (images, classes,
 * train/validation counts, rare classes, problems), optionally a PNG grid of augmented samples
 * (report/data_report.h counts and draws; this prints). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "core/error.h"
#include "data/background.h"
#include "data/dataset.h"
#include "report/data_report.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: stylenet data --data DIR [options]\n"
            "  --data DIR          the data folder.  Layouts: DIR/<class>/<image> (or DIR/train/<class>/ and\n"
            "                      DIR/valid/<class>/); --csv; --pattern.  The Style set (style.txt beside\n"
            "                      <brand>_<product>_<n>.png) is recognised: labels from the file names\n"
            "  --task T            Style or pattern: brand | product | multi (one brand + one product tag,\n"
            "                      default) | combo (brand-product classes); CSV: single | multi\n"
            "  --csv FILE          labels from a CSV file (relative to DIR): a file column and a labels column\n"
            "  --file-col C        CSV column of the file names: header name or 0-based number\n"
            "  --label-col C       CSV column of the labels (tags separated by --label-delim, default space)\n"
            "  --label-delim C     tag separator in the labels column\n"
            "  --folder SUB        CSV images are in DIR/SUB\n"
            "  --pattern P         labels from file names, e.g. '{brand}_{product}_{n}.png' ({n}, {id}, {_x}\n"
            "                      are not labels)\n"
            "  --names FILE        names of the pattern's label values (sections separated by blank lines);\n"
            "                      relative to the working directory, else to DIR\n"
            "  --valid-pct F       validation fraction (default 0.2), stratified by class\n"
            "  --valid-dir NAME    validation folder beside DIR/train (default valid or val)\n"
            "  --valid-list FILE   validation items, one path (relative to DIR) a line\n"
            "  --seed N            split and augmentation seed (default 42)\n"
            "  --no-stratify       plain random split\n"
            "  --strict            the first bad input (image, row, label) is an error (default: skipped)\n"
            "  --grid FILE.png     write a grid of augmented training samples with their labels\n"
            "  --grid-n N          samples in the grid (default 16)\n"
            "  --size N            sample side in pixels for the grid (default 128)\n"
            "  the grid shows training's augmentation flags too (see below)\n"
            "  --threads N         decoding threads (default 2)\n"
            "  --json              one JSON document on stdout\n");
    fputs(CLI_AUG_HELP, f);
    fputs(CLI_PHOTO_FORMATS, f);
}

typedef struct {
    ds_options o;
    const char *grid;
    aug_opts aug;
    float pct;
    uint64_t seed;
    int stratify, grid_n, size, threads, json;
} data_args;

/* 0 to run, else the exit status (-1: help) */
static int parse(int argc, char **argv, data_args *a) {
    static const struct option opts[] = {
        CLI_DATA_FLAGS,                           CLI_AUG_FLAGS,
        {"file-col", required_argument, 0, 'F'},
        {"label-col", required_argument, 0, 'L'}, {"label-delim", required_argument, 0, 'D'},
        {"folder", required_argument, 0, 'f'},    {"valid-pct", required_argument, 0, 'v'},
        {"valid-dir", required_argument, 0, 'V'}, {"valid-list", required_argument, 0, 'l'},
        {"seed", required_argument, 0, 's'},      {"no-stratify", no_argument, 0, 'N'},
        {"strict", no_argument, 0, 'S'},          {"grid", required_argument, 0, 'g'},
        {"grid-n", required_argument, 0, 'G'},    {"size", required_argument, 0, 'z'},
        {"threads", required_argument, 0, 't'},   {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    int c, bad;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:F:L:D:f:v:V:l:s:NSg:G:z:t:jh", opts, NULL)) != -1) {
        if (cli_data_flag(c, optarg, &a->o)) continue;
        if ((bad = cli_aug_flag(c, optarg, &a->aug)) != 0) {
            if (bad < 0) return cli_usage_error("data", usage);
            continue;
        }
        switch (c) {
        case 'F': a->o.file_col = optarg; break;
        case 'L': a->o.label_col = optarg; break;
        case 'D':
            if (strlen(optarg) != 1) return cli_fail("--label-delim takes one character, not '%s'", optarg);
            a->o.label_delim = optarg[0];
            break;
        case 'f': a->o.folder = optarg; break;
        case 'v': bad = cli_float("--valid-pct", optarg, 0, 0.99, &a->pct); break;
        case 'V': a->o.valid_dir = optarg; break;
        case 'l': a->o.valid_list = optarg; break;
        case 's': bad = cli_seed("--seed", optarg, &a->seed); break;
        case 'N': a->stratify = 0; break;
        case 'S': a->o.strict = true; break;
        case 'g': a->grid = optarg; break;
        case 'G': bad = cli_int("--grid-n", optarg, 1, 1024, &a->grid_n); break;
        case 'z': bad = cli_int("--size", optarg, 8, 1024, &a->size); break;
        case 't': bad = cli_int("--threads", optarg, 1, 1024, &a->threads); break;
        case 'j': a->json = 1; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
        if (bad < 0) return cli_usage_error("data", usage);
    }
    if (!a->o.root || optind < argc) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* what the verb prints, both forms */
typedef struct {
    const data_args *a;
    const dataset *ds;
    const ds_split *sp;
    const int *tr, *va;
    bool grid_ok;
} data_view;

static void print_json(const data_view *v) {
    const dataset *ds = v->ds;
    const int K = ds->n_classes, *tr = v->tr, *va = v->va;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "data", ds->root);
    cJSON_AddStringToObject(doc, "layout", ds->layout);
    cJSON_AddStringToObject(doc, "task", ds->task);
    cJSON_AddStringToObject(doc, "kind", ds->kind == DS_MULTI ? "multi" : "single");
    cJSON_AddNumberToObject(doc, "images", ds->n_items);
    cJSON_AddNumberToObject(doc, "skipped", ds->n_skipped);
    cJSON_AddNumberToObject(doc, "train", v->sp->n_train);
    cJSON_AddNumberToObject(doc, "valid", v->sp->n_valid);
    cJSON *split = cJSON_AddObjectToObject(doc, "split");
    cJSON_AddBoolToObject(split, "fixed", ds->fixed_split);
    cJSON_AddNumberToObject(split, "seed", (double)v->a->seed);
    cJSON_AddNumberToObject(split, "valid_pct", v->a->pct);
    cJSON_AddBoolToObject(split, "stratified", v->sp->stratified);
    cJSON *groups = cJSON_AddArrayToObject(doc, "groups");
    for (int g = 0; g < ds->n_groups; g++) cJSON_AddItemToArray(groups, cJSON_CreateString(ds->group_names[g]));
    cJSON *classes = cJSON_AddArrayToObject(doc, "classes"), *rare = cJSON_AddArrayToObject(doc, "rare_classes");
    for (int cl = 0; cl < K; cl++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", cl);
        cJSON_AddStringToObject(e, "name", ds->classes[cl]);
        cJSON_AddStringToObject(e, "group", ds->group_names[ds->group[cl]]);
        cJSON_AddNumberToObject(e, "train", tr[cl]);
        cJSON_AddNumberToObject(e, "valid", va[cl]);
        cJSON_AddNumberToObject(e, "total", tr[cl] + va[cl]);
        cJSON_AddItemToArray(classes, e);
        if (tr[cl] + va[cl] < 10) cJSON_AddItemToArray(rare, cJSON_CreateString(ds->classes[cl]));
    }
    if (ds->kind == DS_MULTI && ds->n_groups > 1) {
        int n_sets, rare_sets = report_tag_sets(ds, 10, &n_sets);
        cJSON_AddNumberToObject(doc, "tag_sets", n_sets);
        cJSON_AddNumberToObject(doc, "rare_tag_sets", rare_sets);
    }
    cJSON *probs = cJSON_AddArrayToObject(doc, "problems");
    for (int p = 0; p < ds->n_problems; p++) cJSON_AddItemToArray(probs, cJSON_CreateString(ds->problems[p]));
    cJSON_AddNumberToObject(doc, "cache_bytes", (double)ds->cache_bytes);
    if (v->grid_ok) cJSON_AddStringToObject(doc, "grid", v->a->grid);
    char *s = cJSON_Print(doc);
    if (s) puts(s);
    free(s);
    cJSON_Delete(doc);
    for (int p = 0; p < ds->n_problems; p++) fprintf(stderr, "stylenet: warning: %s\n", ds->problems[p]);
}

static void print_text(const data_view *v) {
    const dataset *ds = v->ds;
    const data_args *a = v->a;
    const int K = ds->n_classes, *tr = v->tr, *va = v->va;
    char split_desc[128];
    if (ds->fixed_split) snprintf(split_desc, sizeof split_desc, "given by the data");
    else
        snprintf(split_desc, sizeof split_desc, "seed %llu, %g%% %s", (unsigned long long)a->seed, (double)a->pct * 100,
                 v->sp->stratified ? "stratified" : "random");
    printf("data     %s\nlayout   %s\ntask     %s: %d %s, %s\n", ds->root, ds->layout, ds->task, K,
           ds->kind == DS_MULTI ? "tags" : "classes",
           ds->kind == DS_MULTI ? "multi-label (sigmoid)" : "single-label (softmax)");
    printf("images   %d (%d bad input%s skipped)\n", ds->n_items, ds->n_skipped, ds->n_skipped == 1 ? "" : "s");
    printf("split    %d train, %d valid (%s)\n\n", v->sp->n_train, v->sp->n_valid, split_desc);
    int wname = 5;
    for (int cl = 0; cl < K; cl++)
        if ((int)strlen(ds->classes[cl]) > wname) wname = (int)strlen(ds->classes[cl]);
    bool grouped = ds->n_groups > 1;
    printf("  %3s  %-*s %-*s%6s %6s %6s\n", "#", wname, "class", grouped ? 8 : 0, grouped ? "group" : "", "train",
           "valid", "total");
    for (int cl = 0; cl < K; cl++)
        printf("  %3d  %-*s %-*s%6d %6d %6d\n", cl, wname, ds->classes[cl], grouped ? 8 : 0,
               grouped ? ds->group_names[ds->group[cl]] : "", tr[cl], va[cl], tr[cl] + va[cl]);
    int n_rare = 0;
    for (int cl = 0; cl < K; cl++) n_rare += tr[cl] + va[cl] < 10;
    printf("\nclasses with fewer than 10 images (least stable accuracy): %d\n", n_rare);
    for (int cl = 0; cl < K; cl++)
        if (tr[cl] + va[cl] < 10) printf("  %-*s %d (%d train, %d valid)\n", wname, ds->classes[cl], tr[cl] + va[cl], tr[cl], va[cl]);
    if (ds->kind == DS_MULTI && ds->n_groups > 1) {
        int n_sets, rare_sets = report_tag_sets(ds, 10, &n_sets);
        printf("tag combinations (one per %s): %d, of which %d have fewer than 10 images%s\n",
               ds->n_groups == 2 ? "group pair" : "group set", n_sets, rare_sets,
               rare_sets ? " (listed with --task combo)" : "");
    }
    if (ds->n_problems) {
        printf("\nproblems: %d\n", ds->n_problems);
        for (int p = 0; p < ds->n_problems; p++) printf("  %s\n", ds->problems[p]);
    }
    if (v->grid_ok)
        printf("\ngrid     %s (%d augmented training samples, %dx%d)\n", a->grid,
               a->grid_n < v->sp->n_train ? a->grid_n : v->sp->n_train, a->size, a->size);
    if (v->grid_ok && a->aug.bg_lib) {
        char first[512];
        int bad = bg_library_failed(a->aug.bg_lib, first, sizeof first);
        printf("backgrounds %d photos and patterns listed (%s) and %d procedural families; %d unreadable%s%s\n",
               bg_library_size(a->aug.bg_lib), a->aug.bg_dirs ? a->aug.bg_dirs : BG_DEFAULT_DIRS, BG_FAMILIES, bad,
               bad ? ", first: " : "", bad ? first : "");
    }
}

int cmd_data(int argc, char **argv) {
    data_args a = {.pct = 0.2f, .seed = 42, .stratify = 1, .grid_n = 16, .size = 128, .threads = 2};
    aug_defaults(&a.aug);
    aug_shift_preset(&a.aug); /* as train draws them by default */
    int r = parse(argc, argv, &a);
    if (r) return r < 0 ? 0 : r;
    dataset *ds = ds_open(&a.o);
    if (!ds) return cli_fail("%s", sn_last_error());
    ds_decode_opts dopt = {.n_threads = a.threads, .strict = a.o.strict, .max_side = a.size > 256 ? a.size : 256};
    if (ds_decode(ds, &dopt) < 0) {
        for (int p = 0; p < ds->n_problems; p++) fprintf(stderr, "stylenet: %s\n", ds->problems[p]);
        int rc = cli_fail("%s", sn_last_error());
        ds_free(ds);
        return rc;
    }
    ds_split sp;
    if (ds_make_split(ds, a.seed, a.pct, a.stratify, &sp) < 0) {
        int rc = cli_fail("%s", sn_last_error());
        ds_free(ds);
        return rc;
    }
    int *tr = calloc((size_t)ds->n_classes, sizeof(int)), *va = calloc((size_t)ds->n_classes, sizeof(int)), rc = 0;
    if (!tr || !va) {
        rc = cli_fail("out of memory");
    } else {
        report_class_counts(ds, &sp, tr, va);
        if (a.grid && report_sample_grid(ds, &sp, &a.aug, a.grid_n, a.size, a.seed, a.grid) < 0) rc = cli_fail("%s", sn_last_error());
        if (a.grid && rc == 0 && a.aug.bg_p > 0 && a.aug.bg_photo_p > 0 && !(a.aug.bg_dirs && !strcmp(a.aug.bg_dirs, "none")))
            a.aug.bg_lib = bg_library_shared(a.aug.bg_dirs ? a.aug.bg_dirs : BG_DEFAULT_DIRS, BG_MAX_SIDE, !a.aug.bg_dirs);
        data_view v = {.a = &a, .ds = ds, .sp = &sp, .tr = tr, .va = va, .grid_ok = a.grid && rc == 0};
        if (a.json) print_json(&v);
        else print_text(&v);
    }
    free(tr);
    free(va);
    ds_split_free(&sp);
    ds_free(ds);
    return rc;
}
