/* test_dataset.c - the Style set by its file names (counts computed here independently with
 * readdir), tasks, the seeded split; folder, CSV and pattern sets built in a temporary folder with
 * every kind of bad input and the messages they give: a set of one class, a label file that is
 * not a file.  Each case builds the sets it reads in its own folder under one temporary folder. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../common/check.h"
#include "../common/webp_fixture.h"
#include "core/error.h"
#include "data/dataset.h"
#include "io/image.h"

static char tmp[256];

static void write_file(const char *rel, const void *data, size_t n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    FILE *f = fopen(p, "wb");
    if (f) {
        if (n) fwrite(data, 1, n, f);
        fclose(f);
    }
}

static void write_text(const char *rel, const char *s) { write_file(rel, s, strlen(s)); }

static void mkdirs(const char *rel) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    mkdir(p, 0755);
}

static void write_png(const char *rel, int w, int h, int shade) {
    image im = {.w = w, .h = h, .rgb = malloc((size_t)w * h * 3)};
    for (int i = 0; i < w * h * 3; i++) im.rgb[i] = (uint8_t)(shade + i % 7);
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    image_save_png(&im, p);
    image_free(&im);
}

static bool has_problem(const dataset *ds, const char *a, const char *b) {
    for (int i = 0; i < ds->n_problems; i++)
        if (strstr(ds->problems[i], a) && (!b || strstr(ds->problems[i], b))) return true;
    return false;
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) note("could not remove %s", dir);
}

static const char *in_tmp(const char *rel) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    return p;
}

/* ------------------------------------------------------------------ the Style set */

static char style_root[4096];

/* per brand, per product and per brand-product combination, from the file names */
typedef struct {
    int nb[16], np[16], ncombo[16][16], total, n_combos;
} style_counts;

static bool count_style(style_counts *k) {
    memset(k, 0, sizeof *k);
    snprintf(style_root, sizeof style_root, "%s", shared_path("data/style"));
    DIR *d = opendir(style_root);
    if (!check(d != NULL, "open %s", style_root)) return false;
    struct dirent *e;
    while ((e = readdir(d))) {
        int b, p, n, len = 0;
        if (sscanf(e->d_name, "%d_%d_%d.png%n", &b, &p, &n, &len) == 3 && e->d_name[len] == 0 && b < 16 && p < 16) {
            k->nb[b]++;
            k->np[p]++;
            k->ncombo[b][p]++;
            k->total++;
        }
    }
    closedir(d);
    for (int b = 0; b < 16; b++)
        for (int p = 0; p < 16; p++) k->n_combos += k->ncombo[b][p] > 0;
    return true;
}

static void style_readdir(void) {
    style_counts k;
    if (!count_style(&k)) return;
    check(k.total == 894 && k.n_combos == 62, "readdir: %d Style images, %d brand-product combinations", k.total,
          k.n_combos);
}

enum { T_BRAND, T_PRODUCT, T_MULTI, T_COMBO };
static const char *const style_tasks[] = {"brand", "product", "multi", "combo"};

/* the Style set with task t: opens, sizes, preset, every item's labels agree with its file name;
 * cnt[c] counts the items of single-label class c.  NULL when it does not open. */
static dataset *open_style(int t, int cnt[64]) {
    static const int n_cls[] = {7, 10, 17, 62};
    dataset *ds = ds_open(&(ds_options){.root = style_root, .task = style_tasks[t]});
    if (!check(ds != NULL, "Style --task %s opens (%s)", style_tasks[t], ds ? "ok" : sn_last_error())) return NULL;
    check(ds->n_items == 894 && ds->n_classes == n_cls[t] && ds->n_problems == 0,
          "task %s: %d images, %d classes (%d expected), %d problems", style_tasks[t], ds->n_items, ds->n_classes,
          n_cls[t], ds->n_problems);
    check(strstr(ds->layout, "style preset") != NULL, "Style layout detected: %s", ds->layout);
    int wrong = 0;
    memset(cnt, 0, sizeof(int) * 64);
    for (int i = 0; i < ds->n_items; i++) {
        int b = -1, p = -1, n;
        sscanf(ds->items[i].rel, "%d_%d_%d", &b, &p, &n);
        const uint8_t *h = ds_hot(ds, i);
        int ones = 0;
        for (int c = 0; c < ds->n_classes; c++) ones += h[c];
        if (t == T_BRAND) wrong += ds->items[i].label != b || ones != 1;
        if (t == T_PRODUCT) wrong += ds->items[i].label != p || ones != 1;
        if (t == T_MULTI) wrong += !h[b] || !h[7 + p] || ones != 2 || ds->items[i].label != -1;
        if (t == T_COMBO) wrong += ones != 1;
        if (ds->items[i].label >= 0) cnt[ds->items[i].label]++;
    }
    check(wrong == 0, "task %s: every item's labels agree with its file name (%d wrong)", style_tasks[t], wrong);
    return ds;
}

static void style_brand(void) {
    style_counts k;
    int cnt[64];
    dataset *ds = count_style(&k) ? open_style(T_BRAND, cnt) : NULL;
    if (!ds) return;
    bool ok = true;
    for (int b = 0; b < 7; b++) ok &= cnt[b] == k.nb[b];
    check(ok && !strcmp(ds->classes[0], "Christian Louboutin") && !strcmp(ds->classes[1], "Chanel") &&
              !strcmp(ds->classes[6], "Yves Saint Laurent"),
          "brand: per-brand counts equal readdir's; names from style.txt (\"Chanel,1, \" -> \"%s\")", ds->classes[1]);
    ds_free(ds);
}

static void style_product(void) {
    style_counts k;
    int cnt[64];
    dataset *ds = count_style(&k) ? open_style(T_PRODUCT, cnt) : NULL;
    if (!ds) return;
    bool ok = true;
    for (int p = 0; p < 10; p++) ok &= cnt[p] == k.np[p];
    check(ok && !strcmp(ds->classes[0], "shoes") && !strcmp(ds->classes[9], "earrings"),
          "product: per-product counts equal readdir's; last name without a final newline: '%s'", ds->classes[9]);
    ds_free(ds);
}

static void style_multi(void) {
    style_counts k;
    int cnt[64];
    dataset *ds = count_style(&k) ? open_style(T_MULTI, cnt) : NULL;
    if (!ds) return;
    bool ok = ds->kind == DS_MULTI && ds->n_groups == 2 && !strcmp(ds->group_names[0], "brand") &&
              !strcmp(ds->group_names[1], "product");
    for (int c = 0; c < 17; c++) ok &= ds->group[c] == (c < 7 ? 0 : 1);
    check(ok, "multi: sigmoid, 7 brand tags (group 0) then 10 product tags (group 1)");
    ds_free(ds);
}

static void style_combo(void) {
    static const char *const bn[] = {"Christian Louboutin", "Chanel", "Dolce & Gabbana", "Gucci", "Christian Dior",
                                     "Versace", "Yves Saint Laurent"};
    static const char *const pn[] = {"shoes", "lipstick", "handbag", "nail polish", "necklace",
                                     "watches", "ring", "bracelet", "boots", "earrings"};
    style_counts k;
    int cnt[64];
    dataset *ds = count_style(&k) ? open_style(T_COMBO, cnt) : NULL;
    if (!ds) return;
    bool ok = ds->kind == DS_SINGLE;
    /* each combo class holds exactly the files of that brand and product */
    for (int i = 0; i < ds->n_items && ok; i++) {
        int b, p, n;
        sscanf(ds->items[i].rel, "%d_%d_%d", &b, &p, &n);
        char want[256];
        snprintf(want, sizeof want, "%s %s", bn[b], pn[p]);
        ok &= !strcmp(ds->classes[ds->items[i].label], want);
        ok &= cnt[ds->items[i].label] == k.ncombo[b][p];
    }
    check(ok, "combo: 62 'brand product' classes, each holding exactly its files");
    ds_free(ds);
}

/* split of the multi-label Style set: stratified by tag set, disjoint, complete, reproducible,
 * seed-dependent */
static void style_split(void) {
    style_counts k;
    if (!count_style(&k)) return;
    dataset *ds = ds_open(&(ds_options){.root = style_root, .task = "multi"});
    if (!check(ds != NULL, "Style --task multi opens (%s)", ds ? "ok" : sn_last_error())) return;
    ds_split a, b2, c;
    ds_make_split(ds, 42, 0.2f, true, &a);
    ds_make_split(ds, 42, 0.2f, true, &b2);
    ds_make_split(ds, 43, 0.2f, true, &c);
    char *seen = calloc(894, 1);
    bool disjoint = true;
    for (int i = 0; i < a.n_train; i++) seen[a.train[i]]++;
    for (int i = 0; i < a.n_valid; i++) disjoint &= seen[a.valid[i]]++ == 0;
    int covered = 0;
    for (int i = 0; i < 894; i++) covered += seen[i] == 1;
    check(disjoint && covered == 894 && a.n_valid == 179, "split: %d train + %d valid, disjoint, covering all %d",
          a.n_train, a.n_valid, covered);
    check(a.n_valid == b2.n_valid && !memcmp(a.valid, b2.valid, sizeof(int) * (size_t)a.n_valid),
          "split: same seed, same split");
    check(a.n_valid != c.n_valid || memcmp(a.valid, c.valid, sizeof(int) * (size_t)a.n_valid),
          "split: another seed, another split");
    /* per combination: validation share within one of 20% (rounding), never the last of a combo */
    int vc[7][10] = {{0}}, worst = 0;
    bool keeps = true;
    for (int i = 0; i < a.n_valid; i++) {
        int bb, pp, n;
        sscanf(ds->items[a.valid[i]].rel, "%d_%d_%d", &bb, &pp, &n);
        vc[bb][pp]++;
    }
    for (int bb = 0; bb < 7; bb++)
        for (int pp = 0; pp < 10; pp++) {
            if (!k.ncombo[bb][pp]) continue;
            double dev = vc[bb][pp] - 0.2 * k.ncombo[bb][pp];
            if (dev < 0) dev = -dev;
            if (dev > 1) worst++;
            keeps &= vc[bb][pp] < k.ncombo[bb][pp];
        }
    check(a.stratified && worst == 0 && keeps,
          "split stratified: each brand-product combination has 20%% +-1 in validation, at least one in "
          "training (%d off)", worst);
    /* a known value, the same on every machine: the first validation items for seed 42 */
    note("seed 42: first validation items %s %s %s", ds->items[a.valid[0]].rel, ds->items[a.valid[1]].rel,
         ds->items[a.valid[2]].rel);
    free(seen);
    ds_split_free(&a);
    ds_split_free(&b2);
    ds_split_free(&c);
    ds_free(ds);
}

/* the explicit command line: --pattern and --names; the CSV's errors do not creep in */
static void style_explicit(void) {
    snprintf(style_root, sizeof style_root, "%s", shared_path("data/style"));
    dataset *ds = ds_open(&(ds_options){.root = style_root, .pattern = "{brand}_{product}_{n}.png",
                                        .names = "style.txt", .task = "product"});
    check(ds && ds->n_items == 894 && ds->n_classes == 10, "explicit --pattern/--names: 894 images, 10 products");
    ds_free(ds);
    ds = ds_open(&(ds_options){.root = style_root, .csv = "style.csv", .file_col = "file", .label_col = "product_name"});
    if (check(ds != NULL, "style.csv through the generic CSV reader (%s)", ds ? "ok" : sn_last_error())) {
        check(ds->n_items == 892 && has_problem(ds, "style.csv:", "duplicate") &&
                  has_problem(ds, "0_3_016.png", "duplicate") && has_problem(ds, "6_2_021.png", "duplicate"),
              "style.csv: its 2 duplicated rows are reported by line and file, 892 rows kept: %s",
              ds->n_problems ? ds->problems[0] : "");
        ds_free(ds);
    }
}

/* ------------------------------------------------------------------ folder per class */

/* f/: cat and dog with good and bad images, and an empty class folder */
static void make_folder_set(void) {
    mkdirs("f");
    mkdirs("f/cat");
    mkdirs("f/dog");
    mkdirs("f/empty");
    for (int i = 0; i < 6; i++) {
        char n[64];
        snprintf(n, sizeof n, "f/cat/c%d.png", i);
        write_png(n, 20 + i, 16, 40);
        snprintf(n, sizeof n, "f/dog/d%d.png", i);
        write_png(n, 16, 18, 200);
    }
    write_file("f/dog/zero.png", "", 0);
    write_text("f/dog/notes.txt", "not an image\n");
    write_file("f/cat/corrupt.png", "\x89PNG\r\n\x1a\nthis is no png at all, only some garbage bytes....", 56);
    /* truncated: the first half of a real PNG */
    FILE *f = fopen(in_tmp("f/cat/c0.png"), "rb");
    char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    write_file("f/cat/trunc.png", buf, n / 2);
}

static void folder_set(void) {
    make_folder_set();
    char root[512];
    snprintf(root, sizeof root, "%s", in_tmp("f"));
    dataset *ds = ds_open(&(ds_options){.root = root});
    if (!check(ds != NULL, "folder set opens (%s)", ds ? "ok" : sn_last_error())) return;
    check(ds->n_classes == 2 && !strcmp(ds->classes[0], "cat") && !strcmp(ds->classes[1], "dog") &&
              ds->kind == DS_SINGLE,
          "folder set: 2 classes (the empty one left out), single-label");
    check(has_problem(ds, "f/empty", "no images"), "empty class folder reported by name");
    int r = ds_decode(ds, NULL);
    check(r == 0 && ds->n_items == 12 && ds->n_skipped == 4, "4 bad files skipped and counted, 12 images kept (%d, %d)",
          ds->n_items, ds->n_skipped);
    check(has_problem(ds, "zero.png", "empty file (0 bytes)"), "zero-byte image: named, 'empty file'");
    check(has_problem(ds, "notes.txt", "not a PNG, JPEG or WebP"), "non-image file: named, 'not a PNG, JPEG or WebP'");
    check(has_problem(ds, "corrupt.png", "bad PNG"), "corrupt PNG: named, 'bad PNG'");
    check(has_problem(ds, "trunc.png", "PNG"), "truncated PNG: named");
    check(ds->n_cached == 12 && ds->items[0].cache.w == 20, "images cached at their size (%d cached)", ds->n_cached);
    ds_free(ds);
    ds = ds_open(&(ds_options){.root = root, .strict = true});
    check(!ds && strstr(sn_last_error(), "empty"), "--strict: the empty class is an error: %s", sn_last_error());
}

/* fs/: two classes, one holding a zero-byte image */
static void folder_strict_decode(void) {
    mkdirs("fs");
    mkdirs("fs/cat");
    mkdirs("fs/dog");
    write_png("fs/cat/a.png", 8, 8, 0);
    write_file("fs/cat/zero.png", "", 0);
    write_png("fs/dog/b.png", 8, 8, 90);
    dataset *ds = ds_open(&(ds_options){.root = in_tmp("fs"), .strict = true});
    int r = ds ? ds_decode(ds, &(ds_decode_opts){.strict = true}) : -1;
    check(r < 0 && strstr(sn_last_error(), "zero.png") && strstr(sn_last_error(), "empty"),
          "--strict: a bad image is an error naming it: %s", sn_last_error());
    ds_free(ds);
}

/* a tiny cache budget: images stream from disk, with the same pixels */
static void folder_budget(void) {
    mkdirs("fb");
    mkdirs("fb/cat");
    mkdirs("fb/dog");
    write_png("fb/cat/a.png", 8, 8, 0);
    write_png("fb/dog/b.png", 10, 10, 90);
    dataset *ds = ds_open(&(ds_options){.root = in_tmp("fb")});
    int r = ds ? ds_decode(ds, &(ds_decode_opts){.budget_bytes = 1}) : -1;
    image im;
    bool owned = false;
    check(r == 0 && ds->n_cached == 0 && ds_image(ds, 0, &im, &owned) == 0 && owned && im.w == 8,
          "over the cache budget: not kept, decoded from disk when needed");
    if (owned) image_free(&im);
    ds_free(ds);
}

static void folder_missing(void) {
    dataset *ds = ds_open(&(ds_options){.root = "/nonexistent/data"});
    check(!ds && strstr(sn_last_error(), "/nonexistent/data") && strstr(sn_last_error(), "no such folder"),
          "missing folder: %s", sn_last_error());
    mkdirs("nothing");
    ds = ds_open(&(ds_options){.root = in_tmp("nothing")});
    check(!ds && strstr(sn_last_error(), "no class folders"), "a folder without classes: %s", sn_last_error());
}

/* train/ + valid/ layout: the split is given */
static void folder_train_valid(void) {
    mkdirs("tv");
    mkdirs("tv/train");
    mkdirs("tv/valid");
    const char *cls[] = {"a", "b"};
    for (int c = 0; c < 2; c++) {
        char n[128];
        snprintf(n, sizeof n, "tv/train/%s", cls[c]);
        mkdirs(n);
        snprintf(n, sizeof n, "tv/valid/%s", cls[c]);
        mkdirs(n);
        for (int i = 0; i < 3; i++) {
            snprintf(n, sizeof n, "tv/train/%s/%d.png", cls[c], i);
            write_png(n, 10, 10, 50 * c);
        }
        snprintf(n, sizeof n, "tv/valid/%s/v.png", cls[c]);
        write_png(n, 10, 10, 50 * c);
    }
    dataset *ds = ds_open(&(ds_options){.root = in_tmp("tv")});
    ds_split sp = {0};
    check(ds && ds->fixed_split && ds_make_split(ds, 1, 0.5f, true, &sp) == 0 && sp.n_train == 6 && sp.n_valid == 2,
          "train/ and valid/ folders: the given split (6 + 2)");
    ds_split_free(&sp);
    ds_free(ds);
}

/* ------------------------------------------------------------------ CSV */

/* c/: five images, a multi-label CSV with a duplicate, a missing file and CRLF, a single-label one */
static void make_csv_set(void) {
    mkdirs("c");
    mkdirs("c/img");
    for (int i = 0; i < 5; i++) {
        char n[64];
        snprintf(n, sizeof n, "c/img/%d.png", i);
        write_png(n, 12, 12, 30 * i);
    }
    write_text("c/labels.csv", "name,tags\n"
                               "img/0.png,sky water\n"
                               "img/1.png,sky\n"
                               "\"img/2.png\",\"water, cloudy\"\n"
                               "img/1.png,sky\n"
                               "img/9.png,water\n"
                               "img/3.png,cloud\r\n"
                               "img/4.png,\n");
    write_text("c/single.csv", "file,class\nimg/0.png,a\nimg/1.png,b\nimg/2.png,a\nimg/3.png,\n");
}

static void csv_multi(void) {
    make_csv_set();
    dataset *ds = ds_open(&(ds_options){.root = in_tmp("c"), .csv = "labels.csv"});
    if (!check(ds != NULL, "CSV set opens (%s)", ds ? "ok" : sn_last_error())) return;
    check(ds->kind == DS_MULTI && ds->n_items == 5, "CSV with space-separated tags: multi-label, 5 rows kept (%d)",
          ds->n_items);
    check(has_problem(ds, "labels.csv:5", "duplicate of line 3"), "duplicated row named by line: %s",
          ds->n_problems ? ds->problems[0] : "");
    check(has_problem(ds, "labels.csv:6", "img/9.png") && has_problem(ds, "labels.csv:6", "missing"),
          "row naming a missing file named by line and file");
    int sky = -1, water = -1;
    for (int c = 0; c < ds->n_classes; c++) {
        if (!strcmp(ds->classes[c], "sky")) sky = c;
        if (!strcmp(ds->classes[c], "water")) water = c;
    }
    check(sky >= 0 && water >= 0 && ds_hot(ds, 0)[sky] && ds_hot(ds, 0)[water] && ds_hot(ds, 1)[sky] &&
              !ds_hot(ds, 1)[water],
          "multi-hot targets from the tags (%d classes)", ds->n_classes);
    char t[256];
    ds_label_text(ds, 0, t, sizeof t);
    check(!strcmp(t, "sky + water"), "label text '%s'", t);
    ds_free(ds);
}

static void csv_errors(void) {
    make_csv_set();
    char root[512];
    snprintf(root, sizeof root, "%s", in_tmp("c"));
    dataset *ds = ds_open(&(ds_options){.root = root, .csv = "labels.csv", .strict = true});
    check(!ds && strstr(sn_last_error(), "duplicate"), "--strict: the duplicated row is an error: %s", sn_last_error());
    ds = ds_open(&(ds_options){.root = root, .csv = "labels.csv", .label_col = "nope"});
    check(!ds && strstr(sn_last_error(), "nope"), "unknown column named: %s", sn_last_error());
    ds = ds_open(&(ds_options){.root = root, .csv = "missing.csv"});
    check(!ds && strstr(sn_last_error(), "missing.csv"), "missing CSV named: %s", sn_last_error());
    ds = ds_open(&(ds_options){.root = root, .csv = "single.csv", .task = "brand"});
    check(!ds && strstr(sn_last_error(), "not one of single, multi"), "an unknown CSV task is refused: %s",
          sn_last_error());
}

/* single-label CSV: one tag per row */
static void csv_single(void) {
    make_csv_set();
    char root[512];
    snprintf(root, sizeof root, "%s", in_tmp("c"));
    dataset *ds = ds_open(&(ds_options){.root = root, .csv = "single.csv"});
    check(ds && ds->kind == DS_SINGLE && ds->n_classes == 2 && ds->items[2].label == 0 && ds->n_items == 3,
          "one tag per row: single-label");
    check(ds && has_problem(ds, "single.csv:5", "no label"), "single-label row without a label named by line");
    ds_free(ds);
    /* the same one-tag rows asked for as multi-label (sigmoid per tag): allowed */
    ds = ds_open(&(ds_options){.root = root, .csv = "single.csv", .task = "multi"});
    check(ds && ds->kind == DS_MULTI && ds->n_items == 4, "--task multi on a one-tag-per-row CSV: multi-label, %s",
          ds ? "ok" : sn_last_error());
    ds_free(ds);
}

/* ------------------------------------------------------------------ file-name pattern */

/* p/: four images named <maker>_<kind>_<n>.png (one maker not in the names file), names.txt */
static void make_pattern_set(void) {
    mkdirs("p");
    write_png("p/0_0_001.png", 9, 9, 10);
    write_png("p/1_0_002.png", 9, 9, 20);
    write_png("p/1_1_003.png", 9, 9, 30);
    write_png("p/7_0_004.png", 9, 9, 40);
    write_text("p/names.txt", "Alpha,0 \nBeta,1, \n\nshoe,0\nbag,1");
    write_text("p/readme.md", "not matching the pattern\n");
}

static void pattern_names(void) {
    make_pattern_set();
    dataset *ds = ds_open(&(ds_options){.root = in_tmp("p"), .pattern = "{maker}_{kind}_{n}.png",
                                        .names = "names.txt", .task = "multi"});
    if (!check(ds != NULL, "pattern set opens (%s)", ds ? "ok" : sn_last_error())) return;
    check(ds->n_items == 3 && ds->n_classes == 4 && ds->n_skipped == 1, "3 images, 4 tags, 1 skipped");
    check(has_problem(ds, "7_0_004.png", "not in the names file"), "a label not in the names file: %s",
          ds->n_problems ? ds->problems[0] : "");
    ds_free(ds);
}

static void pattern_tasks(void) {
    make_pattern_set();
    char root[512];
    snprintf(root, sizeof root, "%s", in_tmp("p"));
    dataset *ds =
        ds_open(&(ds_options){.root = root, .pattern = "{maker}_{kind}_{n}.png", .names = "names.txt", .task = "kind"});
    check(ds && ds->n_classes == 2 && ds->items[2].label == 1, "pattern task = a field name: single-label on it");
    ds_free(ds);
    ds = ds_open(&(ds_options){.root = root, .pattern = "{maker}_{kind}_{n}.png", .task = "maker"});
    check(ds && ds->n_items == 4 && ds->n_classes == 3 && !strcmp(ds->classes[2], "7"),
          "pattern without names: values found in the files (%d classes)", ds ? ds->n_classes : 0);
    ds_free(ds);
}

static void pattern_errors(void) {
    make_pattern_set();
    char root[512];
    snprintf(root, sizeof root, "%s", in_tmp("p"));
    dataset *ds =
        ds_open(&(ds_options){.root = root, .pattern = "{maker}_{kind}_{n}.png", .names = "names.txt", .task = "size"});
    check(!ds && strstr(sn_last_error(), "size") && strstr(sn_last_error(), "combo"), "unknown task: %s",
          sn_last_error());
    ds = ds_open(&(ds_options){.root = root, .pattern = "{a}{b}.png"});
    check(!ds && strstr(sn_last_error(), "separated"), "bad pattern: %s", sn_last_error());
    ds = ds_open(&(ds_options){.root = root, .pattern = "{maker}_{kind}_{n}.png", .names = "names.txt", .strict = true});
    check(!ds && strstr(sn_last_error(), "7_0_004.png"), "--strict: the unknown label is an error: %s", sn_last_error());
}

/* ------------------------------------------------------------------ one class: refused by ds_open */

/* the error names `where` and says a classifier needs two classes */
static bool two_classes_error(const dataset *ds, const char *where) {
    const char *e = sn_last_error();
    return !ds && strstr(e, where) && strstr(e, "needs at least two classes");
}

static void single_class(void) {
    mkdirs("one");
    mkdirs("one/cat");
    mkdirs("one/empty");
    write_png("one/cat/a.png", 8, 8, 0);
    write_png("one/cat/b.png", 8, 8, 60);
    char root[512];
    snprintf(root, sizeof root, "%s", in_tmp("one"));
    dataset *ds = ds_open(&(ds_options){.root = root});
    check(two_classes_error(ds, root) && strstr(sn_last_error(), "'cat'"),
          "a folder set of one class (beside an empty one): an error naming the folder and the class: %s",
          sn_last_error());
    ds_free(ds);
    mkdirs("one1");
    mkdirs("one1/train");
    mkdirs("one1/train/cat");
    mkdirs("one1/valid");
    mkdirs("one1/valid/cat");
    write_png("one1/train/cat/a.png", 8, 8, 0);
    write_png("one1/valid/cat/b.png", 8, 8, 0);
    ds = ds_open(&(ds_options){.root = in_tmp("one1")});
    check(two_classes_error(ds, "one1"), "train/ and valid/ of one class: refused: %s", sn_last_error());
    ds_free(ds);

    write_text("one/labels.csv", "file,label\ncat/a.png,cat\ncat/b.png,cat\n");
    ds = ds_open(&(ds_options){.root = root, .csv = "labels.csv"});
    check(two_classes_error(ds, "labels.csv"), "a CSV whose rows all carry one label: an error naming the CSV: %s",
          sn_last_error());
    ds_free(ds);
    ds = ds_open(&(ds_options){.root = root, .csv = "labels.csv", .task = "multi"});
    check(two_classes_error(ds, "labels.csv"), "the same as multi-label (one tag): refused: %s", sn_last_error());
    ds_free(ds);
    write_text("one/none.csv", "file,label\ncat/a.png,\ncat/b.png,\n");
    ds = ds_open(&(ds_options){.root = root, .csv = "none.csv", .task = "multi"});
    check(two_classes_error(ds, "none.csv") && strstr(sn_last_error(), "no classes"),
          "a multi-label CSV without any tag: refused: %s", sn_last_error());
    ds_free(ds);

    mkdirs("one2");
    write_png("one2/3_0_001.png", 8, 8, 0);
    write_png("one2/3_1_002.png", 8, 8, 0);
    ds = ds_open(&(ds_options){.root = in_tmp("one2"), .pattern = "{maker}_{kind}_{n}.png", .task = "maker"});
    check(two_classes_error(ds, "one2") && strstr(sn_last_error(), "pattern"),
          "a pattern field with one value: an error naming the folder and pattern: %s", sn_last_error());
    ds_free(ds);
    ds = ds_open(&(ds_options){.root = in_tmp("one2"), .pattern = "{maker}_{kind}_{n}.png", .task = "kind"});
    check(ds && ds->n_classes == 2, "the other field of the same files has two values: opens (%s)",
          ds ? "ok" : sn_last_error());
    ds_free(ds);
}

/* ------------------------------------------------------------------ label files that are not files */

/* a folder given as the CSV, the names file or the validation list: an error naming it (it
 * reads as an empty text otherwise, which for a validation list means no validation item) */
static void label_file_unreadable(void) {
    make_folder_set();
    make_csv_set();
    make_pattern_set();
    mkdirs("c/dir.csv");
    dataset *ds = ds_open(&(ds_options){.root = in_tmp("c"), .csv = "dir.csv"});
    check(!ds && strstr(sn_last_error(), "dir.csv") && strstr(sn_last_error(), "not a regular file"),
          "a folder as the CSV: %s", sn_last_error());
    mkdirs("p/names.d");
    ds = ds_open(&(ds_options){.root = in_tmp("p"), .pattern = "{maker}_{kind}_{n}.png", .names = "names.d"});
    check(!ds && strstr(sn_last_error(), "names.d") && strstr(sn_last_error(), "not a regular file"),
          "a folder as the names file: %s", sn_last_error());
    mkdirs("list.d");
    char list[600];
    snprintf(list, sizeof list, "%s", in_tmp("list.d"));
    ds = ds_open(&(ds_options){.root = in_tmp("f"), .valid_list = list});
    check(!ds && strstr(sn_last_error(), "list.d") && strstr(sn_last_error(), "not a regular file"),
          "a folder as the validation list: %s", sn_last_error());
    ds_free(ds);
}

/* ------------------------------------------------------------------ split */

/* s/: a class of one image and a class of nine */
static void make_split_set(void) {
    mkdirs("s");
    mkdirs("s/a");
    mkdirs("s/b");
    write_png("s/a/1.png", 8, 8, 1);
    for (int i = 0; i < 9; i++) {
        char n[64];
        snprintf(n, sizeof n, "s/b/%d.png", i);
        write_png(n, 8, 8, 2);
    }
}

static void split_edge(void) {
    make_split_set();
    dataset *ds = ds_open(&(ds_options){.root = in_tmp("s")});
    ds_split sp = {0};
    check(ds && ds_make_split(ds, 5, 0.2f, true, &sp) == 0 && sp.n_valid == 2 && sp.train[0] == 0,
          "a class of one image stays in training; 2 of 10 in validation");
    ds_split_free(&sp);
    check(ds && ds_make_split(ds, 5, 1.5f, true, &sp) < 0, "validation fraction outside [0, 1) refused");
    ds_free(ds);
}

static void valid_list(void) {
    make_split_set();
    write_text("s.txt", "b/0.png\n\nb/3.png \nb/nope.png\n");
    char list[600];
    snprintf(list, sizeof list, "%s", in_tmp("s.txt"));
    dataset *ds = ds_open(&(ds_options){.root = in_tmp("s"), .valid_list = list});
    ds_split sp = {0};
    check(ds && ds->fixed_split && ds_make_split(ds, 5, 0.2f, true, &sp) == 0 && sp.n_valid == 2 &&
              !strcmp(ds->items[sp.valid[1]].rel, "b/3.png") && has_problem(ds, "s.txt:4", "b/nope.png"),
          "--valid-list: the listed items are the validation set; an unknown entry is named by line");
    ds_split_free(&sp);
    ds_free(ds);
}

/* ------------------------------------------------------------------ WebP photos */

/* an image of shade as a lossless WebP file */
static void write_webp(const char *rel, int w, int h, int shade) {
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; px && i < w * h * 3; i++) px[i] = (uint8_t)(shade + i % 7);
    size_t n;
    uint8_t *b = px ? webp_encode(px, w, h, 3, 1, 0, &n) : NULL;
    if (b) webp_write(in_tmp(rel), b, n);
    free(b);
    free(px);
}

/* .webp files in each layout: folder, CSV, pattern; they decode into the cache */
static void webp_sets(void) {
    mkdirs("w");
    mkdirs("w/cat");
    mkdirs("w/dog");
    write_webp("w/cat/c0.webp", 9, 7, 10);
    write_webp("w/cat/c1.webp", 9, 7, 20);
    write_webp("w/dog/0_1_001.webp", 9, 7, 30);
    write_webp("w/dog/1_0_002.webp", 9, 7, 40);
    char root[512];
    snprintf(root, sizeof root, "%s", in_tmp("w"));
    dataset *ds = ds_open(&(ds_options){.root = root});
    int r = ds ? ds_decode(ds, NULL) : -1;
    check(r == 0 && ds->n_items == 4 && ds->n_classes == 2 && ds->n_problems == 0 && ds->items[0].cache.w == 9,
          "folder set of .webp photos: 4 images, 2 classes, decoded (%s)", r ? sn_last_error() : "ok");
    ds_free(ds);
    write_text("w/labels.csv", "file,label\ncat/c0.webp,cat\ncat/c1.webp,cat\ndog/0_1_001.webp,dog\n");
    ds = ds_open(&(ds_options){.root = root, .csv = "labels.csv", .file_col = "file", .label_col = "label"});
    r = ds ? ds_decode(ds, NULL) : -1;
    check(r == 0 && ds->n_items == 3 && ds->n_classes == 2 && ds->n_problems == 0,
          "CSV set naming .webp photos: 3 images, 2 classes (%s)", r ? sn_last_error() : "ok");
    ds_free(ds);
    snprintf(root, sizeof root, "%s", in_tmp("w/dog"));
    ds = ds_open(&(ds_options){.root = root, .pattern = "{maker}_{kind}_{n}.webp", .task = "maker"});
    r = ds ? ds_decode(ds, NULL) : -1;
    check(r == 0 && ds->n_items == 2 && ds->n_classes == 2, "pattern {maker}_{kind}_{n}.webp: 2 images, 2 makers (%s)",
          r ? sn_last_error() : "ok");
    ds_free(ds);
}

static const test_case cases[] = {
    {"style_readdir", style_readdir},
    {"style_brand", style_brand},
    {"style_product", style_product},
    {"style_multi", style_multi},
    {"style_combo", style_combo},
    {"style_split", style_split},
    {"style_explicit", style_explicit},
    {"folder_set", folder_set},
    {"folder_strict_decode", folder_strict_decode},
    {"folder_budget", folder_budget},
    {"folder_missing", folder_missing},
    {"folder_train_valid", folder_train_valid},
    {"csv_multi", csv_multi},
    {"csv_errors", csv_errors},
    {"csv_single", csv_single},
    {"pattern_names", pattern_names},
    {"pattern_tasks", pattern_tasks},
    {"pattern_errors", pattern_errors},
    {"single_class", single_class},
    {"label_file_unreadable", label_file_unreadable},
    {"split_edge", split_edge},
    {"valid_list", valid_list},
    {"webp_sets", webp_sets},
};

int main(int argc, char **argv) {
    snprintf(tmp, sizeof tmp, "/tmp/stylenet_ds_XXXXXX");
    if (!mkdtemp(tmp)) return 1;
    int r = test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
    rm_rf(tmp);
    return r;
}
