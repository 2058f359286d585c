/* dataset_scheme.c - a data set's labels mapped onto fixed classes: a model's, or the training
 * set's for a separate validation folder.  See dataset.h, "Fixed classes". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "data/dataset_build.h"

ds_scheme ds_scheme_of(const dataset *ds, const char **gn, const char *source) {
    for (int g = 0; g < ds->n_groups; g++) gn[g] = ds->group_names[g];
    return (ds_scheme){.kind = ds->kind, .n_classes = ds->n_classes, .classes = ds->classes, .group = ds->group,
                       .n_groups = ds->n_groups, .group_names = gn, .task = ds->task, .pattern = ds->pattern,
                       .source = source};
}

/* the scheme's label group of its class c */
static int class_group(const ds_scheme *s, int c) { return s->group && s->n_groups > 1 ? s->group[c] : 0; }

/* the scheme's group for the set's group g: the one of the same name, else the same position
 * when both have as many groups; -1 when none */
static int scheme_group(const dataset *ds, int g, const ds_scheme *s) {
    if (s->n_groups <= 1) return 0;
    for (int k = 0; k < s->n_groups; k++)
        if (!strcmp(s->group_names[k], ds->group_names[g])) return k;
    return ds->n_groups == s->n_groups ? g : -1;
}

/* the scheme's class for label `name` in its group sg: the class of that name, else for a
 * number k the group's k-th class; -1 when none */
static int scheme_class(const ds_scheme *s, int sg, const char *name) {
    for (int c = 0; c < s->n_classes; c++)
        if (class_group(s, c) == sg && !strcmp(s->classes[c], name)) return c;
    if (!name[0] || strspn(name, "0123456789") != strlen(name) || strlen(name) > 6) return -1;
    int k = atoi(name);
    for (int c = 0; c < s->n_classes; c++)
        if (class_group(s, c) == sg && k-- == 0) return c;
    return -1;
}

/* the error for the set's class c that maps to no class of the scheme's group sg: names the
 * first file labelled with it and the classes it could be */
static int no_class(const dataset *ds, const ds_scheme *s, int c, int sg) {
    const char *file = ds->root;
    for (int i = 0; i < ds->n_items; i++)
        if (ds_hot(ds, i)[c]) {
            file = ds->items[i].path;
            break;
        }
    char list[600] = "";
    int n = 0;
    for (int k = 0; k < s->n_classes; k++) {
        if (class_group(s, k) != sg) continue;
        size_t L = strlen(list);
        if (n < 12) snprintf(list + L, sizeof list - L, "%s%s", n ? ", " : "", s->classes[k]);
        else if (n == 12) snprintf(list + L, sizeof list - L, ", ...");
        n++;
    }
    const char *gname = s->n_groups > 1 ? s->group_names[sg] : "";
    return sn_error("%s: %s '%s' is not one of the %d %s%sclasses of %s (%s; or a number from 0 to %d)", file,
                    ds->group_names[ds->group[c]], ds->classes[c], n, gname, *gname ? " " : "", s->source, list,
                    n - 1);
}

/* the set's classes, groups and targets replaced by the scheme's through map[old class] */
static int remap(dataset *ds, const ds_scheme *s, const int *map) {
    const int S = s->n_classes, ng = s->n_groups > 1 ? s->n_groups : 1;
    uint8_t *hot = calloc((size_t)(ds->n_items ? ds->n_items : 1) * (size_t)S, 1);
    char **classes = calloc((size_t)S, sizeof(char *)), **gnames = calloc((size_t)ng, sizeof(char *));
    int *group = calloc((size_t)S, sizeof(int)), r = 0;
    if (!hot || !classes || !gnames || !group) r = sn_error("out of memory");
    for (int c = 0; r == 0 && c < S; c++) {
        group[c] = class_group(s, c);
        if (!(classes[c] = ds_strdup(s->classes[c]))) r = sn_error("out of memory");
    }
    for (int g = 0; r == 0 && g < ng; g++) { /* one group: the set's own name for it ("product") */
        const char *name = s->n_groups > 1 ? s->group_names[g] : ds->n_groups == 1 ? ds->group_names[0] : "class";
        if (!(gnames[g] = ds_strdup(name))) r = sn_error("out of memory");
    }
    if (r < 0) {
        for (int c = 0; classes && c < S; c++) free(classes[c]);
        for (int g = 0; gnames && g < ng; g++) free(gnames[g]);
        free(hot), free(classes), free(gnames), free(group);
        return -1;
    }
    for (int i = 0; i < ds->n_items; i++) {
        for (int c = 0; c < ds->n_classes; c++)
            if (ds_hot(ds, i)[c]) hot[(size_t)i * S + map[c]] = 1;
        if (ds->kind == DS_SINGLE) ds->items[i].label = map[ds->items[i].label];
    }
    for (int c = 0; c < ds->n_classes; c++) free(ds->classes[c]);
    for (int g = 0; g < ds->n_groups; g++) free(ds->group_names[g]);
    free(ds->classes), free(ds->group_names), free(ds->group), free(ds->hot);
    ds->classes = classes, ds->group_names = gnames, ds->group = group, ds->hot = hot;
    ds->n_classes = S, ds->n_groups = ng;
    return 0;
}

int ds_adopt_scheme(dataset *ds, const ds_scheme *s) {
    if (ds->kind != s->kind)
        return sn_error("%s: %s-label photos (task %s), but %s is %s-label", ds->root,
                        ds->kind == DS_MULTI ? "multi" : "single", ds->task ? ds->task : "?", s->source,
                        s->kind == DS_MULTI ? "multi" : "single");
    int *map = malloc(sizeof(int) * (size_t)ds->n_classes), r = 0;
    if (!map) return sn_error("out of memory");
    for (int c = 0; r == 0 && c < ds->n_classes; c++) {
        int sg = scheme_group(ds, ds->group[c], s);
        if (sg < 0) {
            r = sn_error("%s: label group '%s' is not one of the %d of %s", ds->root, ds->group_names[ds->group[c]],
                         s->n_groups, s->source);
        } else if ((map[c] = scheme_class(s, sg, ds->classes[c])) < 0) {
            r = no_class(ds, s, c, sg);
        }
    }
    if (r == 0) r = remap(ds, s, map);
    free(map);
    return r;
}
