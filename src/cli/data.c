/* data.c - `stylenet data --data DIR [--task T] ...`: what a data set holds (images, classes,
 * train/validation counts, rare classes, problems), optionally a PNG grid of augmented samples. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "io/image.h"

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
            "  --names FILE        names of the pattern's label values (sections separated by blank lines)\n"
            "  --valid-pct F       validation fraction (default 0.2), stratified by class\n"
            "  --valid-dir NAME    validation folder beside DIR/train (default valid or val)\n"
            "  --valid-list FILE   validation items, one path (relative to DIR) a line\n"
            "  --seed N            split and augmentation seed (default 42)\n"
            "  --no-stratify       plain random split\n"
            "  --strict            the first bad input (image, row, label) is an error (default: skipped)\n"
            "  --grid FILE.png     write a grid of augmented training samples with their labels\n"
            "  --grid-n N          samples in the grid (default 16)\n"
            "  --size N            sample side in pixels for the grid (default 128)\n"
            "  --threads N         decoding threads (default 2)\n"
            "  --json              one JSON document on stdout\n");
}

/* greedy word wrap of s into lines of at most width characters */
static int wrap(const char *s, int width, char lines[][64], int max_lines) {
    int n = 0;
    char cur[64] = "";
    while (*s && n < max_lines) {
        while (*s == ' ') s++;
        if (!*s) break;
        int wl = 0;
        while (s[wl] && s[wl] != ' ') wl++;
        int cl = (int)strlen(cur);
        if (cl && cl + 1 + wl <= width) {
            snprintf(cur + cl, sizeof cur - (size_t)cl, " %.*s", wl, s);
            s += wl;
        } else if (!cl) {
            int take = wl < width ? wl : width;
            snprintf(cur, sizeof cur, "%.*s", take, s);
            s += take;
        } else {
            snprintf(lines[n++], 64, "%s", cur);
            cur[0] = 0;
        }
    }
    if (cur[0] && n < max_lines) snprintf(lines[n++], 64, "%s", cur);
    return n;
}

static int write_grid(const dataset *ds, const ds_split *sp, int n, int S, uint64_t seed, const char *path) {
    if (sp->n_train == 0) return sn_error("%s: no training images to show", path);
    if (n > sp->n_train) n = sp->n_train;
    loader_opts lo = loader_defaults();
    lo.size = S;
    lo.batch = n;
    lo.seed = seed;
    lo.n_threads = 0;
    lo.drop_last = false;
    for (int c = 0; c < 3; c++) lo.mean[c] = 0, lo.std[c] = 1;
    loader *L = loader_create(ds, sp->train, sp->n_train, &lo);
    if (!L) return -1;
    float *x = malloc(sizeof(float) * (size_t)n * S * S * 3);
    float *t = malloc(sizeof(float) * (size_t)n * ds->n_classes);
    if (!x || !t) {
        free(x);
        free(t);
        loader_free(L);
        return sn_error("out of memory");
    }
    int got = loader_next(L, x, NULL, t);
    loader_free(L);
    if (got <= 0) {
        free(x);
        free(t);
        return got < 0 ? -1 : sn_error("%s: no batch", path);
    }
    const int pad = 4, width = (S - 2) / 6 < 63 ? (S - 2) / 6 : 63, max_lines = 4, line_h = 9;
    const int cols = (int)ceil(sqrt((double)got)), rows = (got + cols - 1) / cols;
    const int cell_w = S + pad, cell_h = S + max_lines * line_h + pad;
    image g = {.w = cols * cell_w + pad, .h = rows * cell_h + pad};
    g.rgb = malloc((size_t)g.w * g.h * 3);
    if (!g.rgb) {
        free(x);
        free(t);
        return sn_error("out of memory");
    }
    memset(g.rgb, 255, (size_t)g.w * g.h * 3);
    const uint8_t black[3] = {0, 0, 0};
    for (int k = 0; k < got; k++) {
        int X = pad + (k % cols) * cell_w, Y = pad + (k / cols) * cell_h;
        for (int y = 0; y < S; y++)
            for (int xx = 0; xx < S; xx++)
                for (int c = 0; c < 3; c++) {
                    float v = x[(((size_t)k * S + y) * S + xx) * 3 + c] * 255.0f + 0.5f;
                    g.rgb[((size_t)(Y + y) * g.w + X + xx) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
        char label[1024] = "";
        for (int c = 0; c < ds->n_classes; c++)
            if (t[(size_t)k * ds->n_classes + c] > 0.5f) {
                size_t L0 = strlen(label);
                snprintf(label + L0, sizeof label - L0, "%s%s", L0 ? " + " : "", ds->classes[c]);
            }
        char lines[4][64];
        int nl = wrap(label, width, lines, max_lines);
        for (int i = 0; i < nl; i++) image_draw_text(&g, X + 1, Y + S + 2 + i * line_h, lines[i], black, 1);
    }
    int r = image_save_png(&g, path);
    image_free(&g);
    free(x);
    free(t);
    return r;
}

static const dataset *g_ds; /* for the qsort below (single-threaded CLI) */
static int by_row(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    int c = memcmp(ds_hot(g_ds, i), ds_hot(g_ds, j), (size_t)g_ds->n_classes);
    return c ? c : i - j;
}

/* multi-label sets with several tag groups (Style: brand + product): how many distinct tag
 * combinations have fewer than `lim` images */
static int rare_tag_sets(const dataset *ds, int lim, int *n_sets) {
    int n = ds->n_items, rare = 0;
    *n_sets = 0;
    int *o = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!o) return -1;
    for (int i = 0; i < n; i++) o[i] = i;
    g_ds = ds;
    qsort(o, (size_t)n, sizeof(int), by_row);
    for (int i = 0; i < n;) {
        int k = i + 1;
        while (k < n && !memcmp(ds_hot(ds, o[i]), ds_hot(ds, o[k]), (size_t)ds->n_classes)) k++;
        (*n_sets)++;
        rare += k - i < lim;
        i = k;
    }
    free(o);
    return rare;
}

int cmd_data(int argc, char **argv) {
    static const struct option opts[] = {
        CLI_DATA_FLAGS,                           {"file-col", required_argument, 0, 'F'},
        {"label-col", required_argument, 0, 'L'}, {"label-delim", required_argument, 0, 'D'},
        {"folder", required_argument, 0, 'f'},    {"valid-pct", required_argument, 0, 'v'},
        {"valid-dir", required_argument, 0, 'V'}, {"valid-list", required_argument, 0, 'l'},
        {"seed", required_argument, 0, 's'},      {"no-stratify", no_argument, 0, 'N'},
        {"strict", no_argument, 0, 'S'},          {"grid", required_argument, 0, 'g'},
        {"grid-n", required_argument, 0, 'G'},    {"size", required_argument, 0, 'z'},
        {"threads", required_argument, 0, 't'},   {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    ds_options o = {0};
    const char *grid = NULL;
    float pct = 0.2f;
    uint64_t seed = 42;
    int stratify = 1, grid_n = 16, size = 128, threads = 2, json = 0, c, bad;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:F:L:D:f:v:V:l:s:NSg:G:z:t:jh", opts, NULL)) != -1) {
        if (cli_data_flag(c, optarg, &o)) continue;
        bad = 0;
        switch (c) {
        case 'F': o.file_col = optarg; break;
        case 'L': o.label_col = optarg; break;
        case 'D':
            if (strlen(optarg) != 1) return cli_fail("--label-delim takes one character, not '%s'", optarg);
            o.label_delim = optarg[0];
            break;
        case 'f': o.folder = optarg; break;
        case 'v': bad = cli_float("--valid-pct", optarg, 0, 0.99, &pct); break;
        case 'V': o.valid_dir = optarg; break;
        case 'l': o.valid_list = optarg; break;
        case 's': bad = cli_seed("--seed", optarg, &seed); break;
        case 'N': stratify = 0; break;
        case 'S': o.strict = true; break;
        case 'g': grid = optarg; break;
        case 'G': bad = cli_int("--grid-n", optarg, 1, 1024, &grid_n); break;
        case 'z': bad = cli_int("--size", optarg, 8, 1024, &size); break;
        case 't': bad = cli_int("--threads", optarg, 1, 1024, &threads); break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad < 0) return cli_usage_error("data", usage);
    }
    if (!o.root || optind < argc) {
        usage(stderr);
        return 2;
    }
    dataset *ds = ds_open(&o);
    if (!ds) return cli_fail("%s", sn_last_error());
    ds_decode_opts dopt = {.n_threads = threads, .strict = o.strict, .max_side = size > 256 ? size : 256};
    if (ds_decode(ds, &dopt) < 0) {
        for (int p = 0; p < ds->n_problems; p++) fprintf(stderr, "stylenet: %s\n", ds->problems[p]);
        int r = cli_fail("%s", sn_last_error());
        ds_free(ds);
        return r;
    }
    ds_split sp;
    if (ds_make_split(ds, seed, pct, stratify, &sp) < 0) {
        int r = cli_fail("%s", sn_last_error());
        ds_free(ds);
        return r;
    }
    int K = ds->n_classes;
    int *tr = calloc((size_t)K, sizeof(int)), *va = calloc((size_t)K, sizeof(int));
    if (!tr || !va) {
        free(tr);
        free(va);
        ds_split_free(&sp);
        ds_free(ds);
        return cli_fail("out of memory");
    }
    for (int k = 0; k < sp.n_train; k++)
        for (int cl = 0; cl < K; cl++) tr[cl] += ds_hot(ds, sp.train[k])[cl];
    for (int k = 0; k < sp.n_valid; k++)
        for (int cl = 0; cl < K; cl++) va[cl] += ds_hot(ds, sp.valid[k])[cl];
    int rc = 0;
    if (grid && write_grid(ds, &sp, grid_n, size, seed, grid) < 0) rc = cli_fail("%s", sn_last_error());
    const char *kind = ds->kind == DS_MULTI ? "multi-label (sigmoid)" : "single-label (softmax)";
    char split_desc[128];
    if (ds->fixed_split) snprintf(split_desc, sizeof split_desc, "given by the data");
    else
        snprintf(split_desc, sizeof split_desc, "seed %llu, %g%% %s", (unsigned long long)seed, (double)pct * 100,
                 sp.stratified ? "stratified" : "random");
    if (json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "data", ds->root);
        cJSON_AddStringToObject(doc, "layout", ds->layout);
        cJSON_AddStringToObject(doc, "task", ds->task);
        cJSON_AddStringToObject(doc, "kind", ds->kind == DS_MULTI ? "multi" : "single");
        cJSON_AddNumberToObject(doc, "images", ds->n_items);
        cJSON_AddNumberToObject(doc, "skipped", ds->n_skipped);
        cJSON_AddNumberToObject(doc, "train", sp.n_train);
        cJSON_AddNumberToObject(doc, "valid", sp.n_valid);
        cJSON *split = cJSON_AddObjectToObject(doc, "split");
        cJSON_AddBoolToObject(split, "fixed", ds->fixed_split);
        cJSON_AddNumberToObject(split, "seed", (double)seed);
        cJSON_AddNumberToObject(split, "valid_pct", pct);
        cJSON_AddBoolToObject(split, "stratified", sp.stratified);
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
            int n_sets, rare_sets = rare_tag_sets(ds, 10, &n_sets);
            cJSON_AddNumberToObject(doc, "tag_sets", n_sets);
            cJSON_AddNumberToObject(doc, "rare_tag_sets", rare_sets);
        }
        cJSON *probs = cJSON_AddArrayToObject(doc, "problems");
        for (int p = 0; p < ds->n_problems; p++) cJSON_AddItemToArray(probs, cJSON_CreateString(ds->problems[p]));
        cJSON_AddNumberToObject(doc, "cache_bytes", (double)ds->cache_bytes);
        if (grid && rc == 0) cJSON_AddStringToObject(doc, "grid", grid);
        char *s = cJSON_Print(doc);
        if (s) puts(s);
        free(s);
        cJSON_Delete(doc);
    } else {
        printf("data     %s\nlayout   %s\ntask     %s: %d %s, %s\n", ds->root, ds->layout, ds->task, K,
               ds->kind == DS_MULTI ? "tags" : "classes", kind);
        printf("images   %d (%d bad input%s skipped)\n", ds->n_items, ds->n_skipped, ds->n_skipped == 1 ? "" : "s");
        printf("split    %d train, %d valid (%s)\n\n", sp.n_train, sp.n_valid, split_desc);
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
            int n_sets, rare_sets = rare_tag_sets(ds, 10, &n_sets);
            printf("tag combinations (one per %s): %d, of which %d have fewer than 10 images%s\n",
                   ds->n_groups == 2 ? "group pair" : "group set", n_sets, rare_sets,
                   rare_sets ? " (listed with --task combo)" : "");
        }
        if (ds->n_problems) {
            printf("\nproblems: %d\n", ds->n_problems);
            for (int p = 0; p < ds->n_problems; p++) printf("  %s\n", ds->problems[p]);
        }
        if (grid && rc == 0) printf("\ngrid     %s (%d augmented training samples, %dx%d)\n", grid,
                                    grid_n < sp.n_train ? grid_n : sp.n_train, size, size);
    }
    if (json)
        for (int p = 0; p < ds->n_problems; p++) fprintf(stderr, "stylenet: warning: %s\n", ds->problems[p]);
    free(tr);
    free(va);
    ds_split_free(&sp);
    ds_free(ds);
    return rc;
}
