/* dataset_folder.c - the folder-per-class layout: root/<class>/<image>, or root/train/<class>/
 * and root/valid/<class>/ (or val/, or o->valid_dir) as a given split.  See dataset.h. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "data/dataset_build.h"

/* adds the images of dir/<class>/ with relative paths prefix<class>/<file>; add_classes: a
 * class not yet in `classes` is added (training part) rather than reported (validation part) */
static int scan_part(ds_builder *b, const char *dir, const char *prefix, ds_strlist *classes, bool add_classes,
                     int valid) {
    ds_strlist sub = {0};
    if (ds_list_dir(dir, true, &sub) < 0) return -1;
    int r = 0;
    for (int i = 0; i < sub.n && r == 0; i++) {
        char *cdir = ds_join(dir, sub.v[i]);
        ds_strlist files = {0};
        if (!cdir) {
            r = sn_error("out of memory");
            break;
        }
        if (ds_list_dir(cdir, false, &files) < 0) {
            free(cdir);
            r = -1;
            break;
        }
        if (files.n == 0) {
            r = ds_problem(b, "%s: class folder '%s' has no images; class left out", cdir, sub.v[i]);
        } else {
            int c = ds_sl_find(classes, sub.v[i]);
            if (c < 0 && add_classes) {
                if (ds_sl_push(classes, sub.v[i]) < 0) r = -1;
                c = classes->n - 1;
            }
            if (c < 0 && r == 0) {
                r = ds_problem(b, "%s: class '%s' is not among the training classes; its %d files are left out", cdir,
                               sub.v[i], files.n);
            } else {
                for (int k = 0; k < files.n && r == 0; k++) {
                    char rel[PATH_MAX];
                    snprintf(rel, sizeof rel, "%s%s/%s", prefix, sub.v[i], files.v[k]);
                    r = ds_add_item(b, rel, &c, 1, valid);
                }
            }
        }
        ds_sl_free(&files);
        free(cdir);
    }
    if (r == 0 && sub.n == 0)
        r = sn_error("%s: no class folders (expected %s/<class>/<image>; or use --csv, or --pattern)", dir, dir);
    ds_sl_free(&sub);
    return r;
}

/* the validation folder: o->valid_dir, else valid/ when it exists, else val/ (malloc'd) */
static char *valid_folder(const char *root, const ds_options *o) {
    if (o->valid_dir) return ds_join(root, o->valid_dir);
    char *valid = ds_join(root, "valid");
    if (valid && !ds_is_dir(valid)) {
        free(valid);
        valid = ds_join(root, "val");
    }
    return valid;
}

int ds_open_folders(ds_builder *b, const ds_options *o) {
    dataset *ds = b->ds;
    char *train = ds_join(ds->root, "train"), *valid = valid_folder(ds->root, o);
    if (!train || !valid) {
        free(train);
        free(valid);
        return sn_error("out of memory");
    }
    ds_strlist classes = {0};
    int r;
    char desc[PATH_MAX + 64];
    if (ds_is_dir(train) && ds_is_dir(valid)) {
        const char *vname = strrchr(valid, '/') + 1;
        char prefix[PATH_MAX];
        snprintf(prefix, sizeof prefix, "%s/", vname);
        r = scan_part(b, train, "train/", &classes, true, 0);
        if (r == 0) r = scan_part(b, valid, prefix, &classes, false, 1);
        snprintf(desc, sizeof desc, "folder per class, train/ and %s/", vname);
    } else if (o->valid_dir) {
        r = sn_error("%s: validation folder not found (with %s/train beside it)", valid, ds->root);
    } else {
        r = scan_part(b, ds->root, "", &classes, true, -1);
        snprintf(desc, sizeof desc, "folder per class");
    }
    if (r == 0) r = ds_sort_classes(b, &classes);
    if (r == 0 && !(ds->layout = ds_strdup(desc))) r = sn_error("out of memory");
    if (r == 0) r = ds_finish(b, &classes, NULL, NULL, DS_SINGLE, ds->root, ds->root);
    ds_sl_free(&classes);
    free(train);
    free(valid);
    return r;
}
