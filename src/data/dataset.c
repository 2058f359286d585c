/* dataset.c - opening a data set (the layout chosen from the options, then a validation list),
 * freeing it, label text.  The layouts are dataset_folder.c, dataset_csv.c and dataset_pattern.c;
 * what they share is dataset_build.c; the image cache dataset_cache.c; the split dataset_split.c.
 * See dataset.h for the contract. */
#include "data/dataset.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/error.h"
#include "data/dataset_build.h"

/* marks the items listed in the file `path` (relative paths, one a line) as validation, the
 * others as training; a line naming no item is a problem */
static int apply_valid_list(ds_builder *b, const char *path) {
    char *full = ds_join(b->ds->root, path);
    if (!full) return sn_error("out of memory");
    char *text = ds_read_text(full);
    int r = text ? 0 : -1, line = 0;
    for (int i = 0; i < b->n; i++) b->items[i].valid = 0;
    for (char *p = text; r == 0 && *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        line++;
        char *l = ds_trim(p);
        p = e ? e + 1 : p + strlen(p);
        if (!*l) continue;
        int found = 0;
        for (int i = 0; i < b->n; i++)
            if (!strcmp(b->items[i].rel, l)) {
                b->items[i].valid = 1;
                found = 1;
            }
        if (!found) r = ds_problem(b, "%s:%d: '%s' is not an item of the data set", full, line, l);
    }
    free(text);
    free(full);
    return r;
}

/* the split from a validation list, on the finished items */
static int mark_valid_list(dataset *ds, const ds_options *o) {
    ds_builder vb = {.ds = ds, .strict = o->strict, .n = ds->n_items};
    vb.items = calloc((size_t)(ds->n_items ? ds->n_items : 1), sizeof(ds_raw_item));
    if (!vb.items) return sn_error("out of memory");
    for (int i = 0; i < ds->n_items; i++) vb.items[i].rel = ds->items[i].rel;
    int r = apply_valid_list(&vb, o->valid_list);
    for (int i = 0; r == 0 && i < ds->n_items; i++) ds->items[i].valid = vb.items[i].valid;
    if (r == 0) ds->fixed_split = true;
    free(vb.items);
    return r;
}

/* the names file to open: o->names relative to the working directory (absolute as it is); when
 * nothing of that name is there but root holds it, root's.  The Style preset's style.txt
 * is root's.  NULL without a names file; *oom set when out of memory. */
static char *names_file(const ds_options *o, bool preset, bool *oom) {
    *oom = false;
    char *p = NULL;
    if (!o->names) p = preset ? ds_join(o->root, "style.txt") : NULL;
    else if (o->names[0] == '/' || access(o->names, F_OK) == 0) p = ds_strdup(o->names);
    else if (!(p = ds_join(o->root, o->names)) || access(p, F_OK) != 0) {
        free(p);
        p = ds_strdup(o->names); /* found nowhere: the error names it as given */
    }
    *oom = (o->names || preset) && !p;
    return p;
}

/* whether root holds no folders (a folder of photos, not a folder per class) */
static bool no_subfolders(const char *root) {
    ds_strlist sub = {0};
    bool none = ds_list_dir(root, true, &sub) == 0 && sub.n == 0;
    ds_sl_free(&sub);
    return none;
}

/* the layout the options ask for: CSV, pattern, the Style preset, the scheme's pattern for a
 * folder of photos, else a folder per class */
static int open_layout(ds_builder *b, const ds_options *o) {
    dataset *ds = b->ds;
    const ds_scheme *sc = o->scheme;
    const char *task = o->task ? o->task : sc ? sc->task : NULL;
    int r;
    if (o->csv) {
        r = ds_open_csv(b, o);
        if (r == 0 && !(ds->task = ds_strdup(ds->kind == DS_MULTI ? "multi" : "single"))) r = sn_error("out of memory");
        return r;
    }
    const bool preset = !o->pattern && ds_is_style_layout(o->root);
    const char *pattern = o->pattern;
    if (!pattern && preset) pattern = "{brand}_{product}_{n}.png";
    if (!pattern && sc && sc->pattern && no_subfolders(o->root)) pattern = sc->pattern;
    if (pattern) {
        bool oom;
        char *names = names_file(o, preset, &oom);
        const char *desc = preset ? "style preset: " : NULL;
        r = oom ? sn_error("out of memory") : ds_open_pattern(b, pattern, names, task, desc);
        free(names);
        return r;
    }
    if (o->names)
        return sn_error("%s: --names goes with --pattern (file-name labels); folder and CSV sets name their classes",
                        o->root);
    if (task && strcmp(task, "single"))
        return sn_error("%s: task '%s': a folder-per-class data set is single-label (task single)", o->root, task);
    r = ds_open_folders(b, o);
    if (r == 0 && !(ds->task = ds_strdup("single"))) r = sn_error("out of memory");
    return r;
}

dataset *ds_open(const ds_options *o) {
    if (!o || !o->root || !o->root[0]) {
        sn_error("no data folder given");
        return NULL;
    }
    if (!ds_is_dir(o->root)) {
        sn_error("%s: %s", o->root, access(o->root, F_OK) == 0 ? "not a folder" : "no such folder");
        return NULL;
    }
    dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->root = ds_strdup(o->root))) {
        sn_error("out of memory");
        free(ds);
        return NULL;
    }
    ds_builder b = {.ds = ds, .strict = o->strict, .fixed_classes = o->scheme != NULL};
    int r = open_layout(&b, o);
    ds_builder_free(&b);
    if (r == 0 && o->scheme) r = ds_adopt_scheme(ds, o->scheme);
    if (r == 0 && o->valid_list) r = mark_valid_list(ds, o);
    if (r == 0 && (!ds->layout || !ds->task)) r = sn_error("out of memory");
    if (r < 0) {
        ds_free(ds);
        return NULL;
    }
    return ds;
}

void ds_free(dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n_items; i++) {
        free(ds->items[i].path);
        free(ds->items[i].rel);
        image_free(&ds->items[i].cache);
    }
    for (int c = 0; c < ds->n_classes; c++) free(ds->classes ? ds->classes[c] : NULL);
    for (int g = 0; g < ds->n_groups; g++) free(ds->group_names ? ds->group_names[g] : NULL);
    for (int p = 0; p < ds->n_problems; p++) free(ds->problems[p]);
    free(ds->items);
    free(ds->classes);
    free(ds->group);
    free(ds->group_names);
    free(ds->hot);
    free(ds->problems);
    free(ds->root);
    free(ds->layout);
    free(ds->task);
    free(ds->pattern);
    free(ds);
}

void ds_label_text(const dataset *ds, int i, char *buf, size_t cap) {
    if (!cap) return;
    buf[0] = 0;
    if (ds->kind == DS_SINGLE) {
        snprintf(buf, cap, "%s", ds->classes[ds->items[i].label]);
        return;
    }
    size_t L = 0;
    for (int c = 0; c < ds->n_classes && L < cap; c++)
        if (ds_hot(ds, i)[c]) {
            snprintf(buf + L, cap - L, "%s%s", L ? " + " : "", ds->classes[c]);
            L = strlen(buf);
        }
}
