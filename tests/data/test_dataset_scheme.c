/* test_dataset_scheme.c - data sets labelled with fixed classes (a model's, or the training set's)
 * and the splits built on them, on small synthetic folders in a temporary folder:
 *   - a folder of photos without class folders or names file is read with the scheme's pattern
 *     and task; numbers in the file names are each group's k-th class, names map by name; the
 *     set's classes, groups and targets become the scheme's (a subset of values present);
 *   - a value with no class, a set of the other kind: errors naming the file and the classes;
 *   - a folder-per-class set maps its folders by name; one class is enough with a scheme;
 *   - --names is found relative to the working directory, else beside the photos;
 *   - ds_split_all, and ds_append_valid: a separate folder as the validation share (a fixed
 *     split), refused when the classes differ;
 *   - ds_make_folds: K stratified folds, sizes within one, every tag set spread, seeded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../common/check.h"
#include "core/error.h"
#include "data/dataset.h"
#include "io/image.h"

static char tmp[256];

static const char *in_tmp(const char *rel) { return path_in(tmp, rel); }

static void write_text(const char *rel, const char *s) {
    FILE *f = fopen(in_tmp(rel), "w");
    if (f) {
        fputs(s, f);
        fclose(f);
    }
}

static void write_png(const char *rel) {
    image im = {.w = 8, .h = 8, .rgb = calloc(8 * 8 * 3, 1)};
    image_save_png(&im, in_tmp(rel));
    image_free(&im);
}

static void remove_tmp(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) note("could not remove %s", tmp);
}

/* the training set: maker x kind named by names.txt, 2 makers x 3 kinds, 2 photos each */
static const char *names_txt = "Acme,0\nBolt,1\n\nmug,0\npen,1\ncap,2\n";

static dataset *training_set(void) {
    static bool made;
    if (!made) {
        if (!tmp[0]) {
            snprintf(tmp, sizeof tmp, "/tmp/stylenet_scheme_XXXXXX");
            if (!mkdtemp(tmp)) return NULL;
            atexit(remove_tmp);
        }
        mkdir(in_tmp("train"), 0755);
        write_text("train/names.txt", names_txt);
        char f[64];
        for (int m = 0; m < 2; m++)
            for (int k = 0; k < 3; k++)
                for (int n = 0; n < 2; n++) {
                    snprintf(f, sizeof f, "train/%d_%d_%d.png", m, k, n);
                    write_png(f);
                }
        made = true;
    }
    return ds_open(&(ds_options){.root = in_tmp("train"), .pattern = "{maker}_{kind}_{n}.png",
                                 .names = in_tmp("train/names.txt")});
}

/* a folder `rel` holding the photos named in files[] (NULL-terminated) */
static void photo_folder(const char *rel, const char *const *files) {
    mkdir(in_tmp(rel), 0755);
    char p[256];
    for (int i = 0; files[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", rel, files[i]);
        write_png(p);
    }
}

/* whether item i of ds has exactly the tags named a and b */
static bool tags_are(const dataset *ds, int i, const char *a, const char *b) {
    int n = 0, hits = 0;
    for (int c = 0; c < ds->n_classes; c++)
        if (ds_hot(ds, i)[c]) {
            n++;
            hits += !strcmp(ds->classes[c], a) || !strcmp(ds->classes[c], b);
        }
    return n == 2 && hits == 2;
}

/* a plain folder read with the training set's scheme: numbers and names both map */
static void plain_folder(void) {
    dataset *tr = training_set();
    if (!check(tr != NULL, "training set opens: %s", tr ? "" : sn_last_error())) return;
    check(tr->pattern && !strcmp(tr->pattern, "{maker}_{kind}_{n}.png"), "the set keeps its pattern");
    const char *gn[4];
    ds_scheme s = ds_scheme_of(tr, gn, "the test set");
    photo_folder("plain", (const char *const[]){"1_2_7.png", "0_1_9.png", "Bolt_pen_3.png", NULL});
    dataset *ds = ds_open(&(ds_options){.root = in_tmp("plain"), .scheme = &s});
    if (check(ds != NULL, "a folder of photos without names file opens with the scheme: %s", ds ? "" : sn_last_error())) {
        bool same = ds->n_classes == tr->n_classes && ds->n_groups == 2 && ds->kind == DS_MULTI;
        for (int c = 0; same && c < ds->n_classes; c++)
            same = !strcmp(ds->classes[c], tr->classes[c]) && ds->group[c] == tr->group[c];
        check(same && !strcmp(ds->group_names[1], "kind"), "its classes and groups are the scheme's (%d classes)",
              ds->n_classes);
        /* items sorted by name: 0_1_9, 1_2_7, Bolt_pen_3 */
        check(ds->n_items == 3 && tags_are(ds, 0, "Acme", "pen") && tags_are(ds, 1, "Bolt", "cap") &&
                  tags_are(ds, 2, "Bolt", "pen"),
              "numbers are the group's k-th class, names map by name");
    }
    ds_free(ds);
    ds_free(tr);
}

/* a value with no class names the file and the classes; another kind is refused */
static void errors(void) {
    dataset *tr = training_set();
    if (!tr) return;
    const char *gn[4];
    ds_scheme s = ds_scheme_of(tr, gn, "the test set");
    photo_folder("bad", (const char *const[]){"0_0_1.png", "0_7_2.png", NULL});
    dataset *ds = ds_open(&(ds_options){.root = in_tmp("bad"), .scheme = &s});
    const char *e = sn_last_error();
    check(!ds && strstr(e, "bad/0_7_2.png") && strstr(e, "kind '7'") && strstr(e, "mug, pen, cap") &&
              strstr(e, "the test set"),
          "a kind number out of range: error naming the file and the classes: %s", e);
    ds_free(ds);
    photo_folder("badname", (const char *const[]){"0_0_1.png", "Zed_mug_2.png", NULL});
    ds = ds_open(&(ds_options){.root = in_tmp("badname"), .scheme = &s});
    e = sn_last_error();
    check(!ds && strstr(e, "Zed_mug_2.png") && strstr(e, "maker 'Zed'") && strstr(e, "Acme, Bolt"),
          "an unknown maker name: error naming the file: %s", e);
    ds_free(ds);
    mkdir(in_tmp("folders"), 0755);
    photo_folder("folders/mug", (const char *const[]){"a.png", NULL});
    ds = ds_open(&(ds_options){.root = in_tmp("folders"), .scheme = &s, .task = "single"});
    e = sn_last_error();
    check(!ds && strstr(e, "single-label") && strstr(e, "multi-label"), "a single-label set for a multi-label "
          "scheme is refused: %s", e);
    ds_free(ds);
    ds_free(tr);
}

/* folder per class against a single-label scheme: by name; one class is enough */
static void folders_single(void) {
    char *classes[3] = {"cat", "dog", "owl"};
    ds_scheme s = {.kind = DS_SINGLE, .n_classes = 3, .classes = classes, .task = "single", .source = "the model m"};
    if (!tmp[0] && !training_set()) return;
    mkdir(in_tmp("one"), 0755);
    photo_folder("one/owl", (const char *const[]){"a.png", "b.png", NULL});
    dataset *ds = ds_open(&(ds_options){.root = in_tmp("one"), .scheme = &s});
    check(ds && ds->n_classes == 3 && ds->n_items == 2 && ds->items[0].label == 2 && ds->items[1].label == 2 &&
              ds_hot(ds, 0)[2] == 1,
          "a folder with one class folder, 'owl', is the scheme's class 2 of 3: %s", ds ? "" : sn_last_error());
    ds_free(ds);
    photo_folder("one/emu", (const char *const[]){"c.png", NULL});
    ds = ds_open(&(ds_options){.root = in_tmp("one"), .scheme = &s});
    const char *e = sn_last_error();
    check(!ds && strstr(e, "one/emu/c.png") && strstr(e, "'emu'") && strstr(e, "cat, dog, owl"),
          "a class folder the scheme lacks: error naming a file of it: %s", e);
    ds_free(ds);
    ds = ds_open(&(ds_options){.root = in_tmp("one/owl")});
    check(!ds, "without a scheme a folder of one class is still refused");
    ds_free(ds);
}

/* --names: relative to the working directory, else beside the photos */
static void names_path(void) {
    dataset *tr = training_set();
    if (!tr) return;
    ds_free(tr);
    char cwd[1024];
    if (!check(getcwd(cwd, sizeof cwd) != NULL && chdir(tmp) == 0, "chdir to the temporary folder")) return;
    dataset *a = ds_open(&(ds_options){.root = "train", .pattern = "{maker}_{kind}_{n}.png", .names = "train/names.txt"});
    check(a && a->n_items == 12 && !strcmp(a->classes[0], "Acme"), "names relative to the working directory: %s",
          a ? "" : sn_last_error());
    dataset *b = ds_open(&(ds_options){.root = "train", .pattern = "{maker}_{kind}_{n}.png", .names = "names.txt"});
    check(b && b->n_items == 12 && !strcmp(b->classes[0], "Acme"), "names beside the photos when not in the working "
          "directory: %s", b ? "" : sn_last_error());
    dataset *c = ds_open(&(ds_options){.root = "train", .pattern = "{maker}_{kind}_{n}.png", .names = "nope.txt"});
    check(!c && strstr(sn_last_error(), "nope.txt"), "a names file found nowhere: error naming it: %s", sn_last_error());
    ds_free(a);
    ds_free(b);
    ds_free(c);
    if (chdir(cwd) != 0) note("could not go back to %s", cwd);
}

/* ds_split_all and a separate validation folder appended as a fixed split */
static void append_valid(void) {
    dataset *tr = training_set();
    if (!tr) return;
    ds_split sp;
    check(ds_split_all(tr, false, &sp) == 0 && sp.n_train == 12 && sp.n_valid == 0 && sp.train[11] == 11,
          "ds_split_all: every item trains");
    ds_split_free(&sp);
    check(ds_split_all(tr, true, &sp) == 0 && sp.n_train == 0 && sp.n_valid == 12, "ds_split_all: every item validates");
    ds_split_free(&sp);
    const char *gn[4];
    ds_scheme s = ds_scheme_of(tr, gn, "the test set");
    photo_folder("valid", (const char *const[]){"1_0_5.png", "0_2_5.png", "1_1_5.png", NULL});
    dataset *v = ds_open(&(ds_options){.root = in_tmp("valid"), .scheme = &s});
    int r = v ? ds_append_valid(tr, v) : -1;
    ds_free(v);
    check(r == 0 && tr->n_items == 15 && tr->fixed_split && tr->items[12].valid == 1 && tr->items[0].valid == 0 &&
              strstr(tr->items[12].rel, "valid/0_2_5.png") && tags_are(tr, 12, "Acme", "cap"),
          "the folder's 3 photos appended as the validation share: %s", r ? sn_last_error() : "");
    if (check(ds_make_split(tr, 1, 0.2f, true, &sp) == 0, "split"))
        check(sp.n_train == 12 && sp.n_valid == 3 && sp.valid[0] == 12, "the split is the appended folder");
    ds_split_free(&sp);
    char *other[2] = {"x", "y"};
    ds_scheme s2 = {.kind = DS_MULTI, .n_classes = 2, .classes = other, .task = "multi", .source = "s2"};
    photo_folder("xy", (const char *const[]){"0_0_1.png", NULL});
    v = ds_open(&(ds_options){.root = in_tmp("xy"), .pattern = "{a}_{b}_{n}.png", .scheme = &s2});
    r = v ? ds_append_valid(tr, v) : 0;
    check(v && r < 0 && strstr(sn_last_error(), "classes are not those of"), "a set of other classes is refused: %s",
          sn_last_error());
    ds_free(v);
    ds_free(tr);
}

/* K folds: a partition, sizes within one, each stratum spread evenly, the same for the same seed */
static void folds(void) {
    dataset *tr = training_set(); /* 6 tag sets of 2 photos */
    if (!tr) return;
    int a[12], b[12], c[12], size[3] = {0};
    check(ds_make_folds(tr, 5, 3, a) == 0 && ds_make_folds(tr, 5, 3, b) == 0 && ds_make_folds(tr, 6, 3, c) == 0,
          "folds made");
    bool same = true, other = false, spread = true;
    for (int i = 0; i < 12; i++) {
        same &= a[i] == b[i];
        other |= a[i] != c[i];
        if (a[i] >= 0 && a[i] < 3) size[a[i]]++;
        if (i % 2 == 1) spread &= a[i] != a[i - 1]; /* items 2j, 2j+1 share a tag set */
    }
    check(size[0] == 4 && size[1] == 4 && size[2] == 4, "3 folds of 4 (%d, %d, %d)", size[0], size[1], size[2]);
    check(spread, "the two photos of each tag set are in different folds");
    check(same && other, "the same seed gives the same folds, another seed others");
    ds_split sp;
    check(ds_fold_split(tr, a, 1, &sp) == 0 && sp.n_valid == 4 && sp.n_train == 8 && a[sp.valid[0]] == 1,
          "ds_fold_split: fold 1 validates, the others train");
    ds_split_free(&sp);
    check(ds_make_folds(tr, 5, 1, a) < 0 && ds_make_folds(tr, 5, 13, a) < 0, "1 fold, or more folds than items: refused");
    ds_free(tr);
}

static const test_case cases[] = {
    {"folds", folds},
    {"plain_folder", plain_folder},   {"errors", errors},           {"folders_single", folders_single},
    {"names_path", names_path},       {"append_valid", append_valid},
};
TEST_MAIN(cases)
