/* dataset_build.c - strings, folders and label files for the layouts, and the builder that turns
 * a layout's items into a dataset (see dataset_build.h). */
#include "data/dataset_build.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/error.h"
#include "core/file.h"

/* ------------------------------------------------------------------ strings and files */

char *ds_strdup(const char *s) {
    char *d = malloc(strlen(s) + 1);
    if (d) strcpy(d, s);
    return d;
}

char *ds_join(const char *a, const char *b) {
    if (!a || !a[0] || b[0] == '/') return ds_strdup(b);
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 2);
    if (!p) return NULL;
    memcpy(p, a, na);
    size_t k = na;
    if (na && a[na - 1] != '/') p[k++] = '/';
    memcpy(p + k, b, nb + 1);
    return p;
}

bool ds_is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

bool ds_is_file(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

char *ds_read_text(const char *path) {
    size_t n;
    uint8_t *b = sn_read_file(path, &n, 0);
    if (!b) return NULL;
    char *t = realloc(b, n + 1);
    if (!t) {
        free(b);
        sn_error("%s: out of memory reading it", path);
        return NULL;
    }
    t[n] = 0;
    return t;
}

char *ds_trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

int ds_sl_push(ds_strlist *l, const char *s) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, sizeof(char *) * (size_t)cap);
        if (!v) return sn_error("out of memory");
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = ds_strdup(s))) return sn_error("out of memory");
    l->n++;
    return 0;
}

int ds_sl_find(const ds_strlist *l, const char *s) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s)) return i;
    return -1;
}

void ds_sl_free(ds_strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int ds_list_dir(const char *path, bool dirs, ds_strlist *out) {
    DIR *d = opendir(path);
    if (!d) return sn_error("%s: cannot open folder: %s", path, strerror(errno));
    struct dirent *e;
    int r = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *full = ds_join(path, e->d_name);
        if (!full) {
            r = sn_error("out of memory");
            break;
        }
        bool ok = dirs ? ds_is_dir(full) : ds_is_file(full);
        free(full);
        if (ok && ds_sl_push(out, e->d_name) < 0) {
            r = -1;
            break;
        }
    }
    closedir(d);
    if (r == 0 && out->n) qsort(out->v, (size_t)out->n, sizeof(char *), cmp_str);
    return r;
}

/* ------------------------------------------------------------------ the builder */

int ds_problem(ds_builder *b, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (b->strict) { /* the first problem is the error: without what would have been done about it */
        char *tail = strstr(msg, "; ");
        while (tail && strstr(tail + 2, "; ")) tail = strstr(tail + 2, "; ");
        if (tail) *tail = 0;
        return sn_error("%s", msg);
    }
    dataset *ds = b->ds;
    char **p = realloc(ds->problems, sizeof(char *) * (size_t)(ds->n_problems + 1));
    if (!p) return sn_error("out of memory");
    ds->problems = p;
    if (!(p[ds->n_problems] = ds_strdup(msg))) return sn_error("out of memory");
    ds->n_problems++;
    return 0;
}

int ds_add_item(ds_builder *b, const char *rel, const int *tags, int n_tags, int valid) {
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 256;
        ds_raw_item *v = realloc(b->items, sizeof(ds_raw_item) * (size_t)cap);
        if (!v) return sn_error("out of memory");
        b->items = v;
        b->cap = cap;
    }
    ds_raw_item *it = &b->items[b->n];
    it->rel = ds_strdup(rel);
    it->tags = malloc(sizeof(int) * (size_t)(n_tags ? n_tags : 1));
    if (!it->rel || !it->tags) {
        free(it->rel);
        free(it->tags);
        return sn_error("out of memory");
    }
    if (n_tags) memcpy(it->tags, tags, sizeof(int) * (size_t)n_tags);
    it->n_tags = n_tags;
    it->valid = valid;
    it->line = 0;
    b->n++;
    return 0;
}

void ds_builder_free(ds_builder *b) {
    for (int i = 0; i < b->n; i++) {
        free(b->items[i].rel);
        free(b->items[i].tags);
    }
    free(b->items);
}

int ds_sort_classes(ds_builder *b, ds_strlist *names) {
    int n = names->n;
    if (n == 0) return 0;
    char **sorted = malloc(sizeof(char *) * (size_t)n);
    int *map = malloc(sizeof(int) * (size_t)n);
    if (!sorted || !map) {
        free(sorted);
        free(map);
        return sn_error("out of memory");
    }
    memcpy(sorted, names->v, sizeof(char *) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(char *), cmp_str);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (sorted[j] == names->v[i]) map[i] = j;
    memcpy(names->v, sorted, sizeof(char *) * (size_t)n);
    for (int i = 0; i < b->n; i++)
        for (int k = 0; k < b->items[i].n_tags; k++) b->items[i].tags[k] = map[b->items[i].tags[k]];
    free(sorted);
    free(map);
    return 0;
}

/* ds->classes, ds->group and the group names from the layout's lists */
static int finish_classes(dataset *ds, const ds_strlist *names, const int *group, ds_strlist *group_names) {
    for (int c = 0; c < names->n; c++) {
        if (!(ds->classes[c] = ds_strdup(names->v[c]))) return sn_error("out of memory");
        ds->group[c] = group ? group[c] : 0;
    }
    if (group_names && group_names->n) {
        ds->n_groups = group_names->n;
        ds->group_names = group_names->v;
        memset(group_names, 0, sizeof *group_names);
        return 0;
    }
    ds->n_groups = 1;
    ds->group_names = calloc(1, sizeof(char *));
    if (!ds->group_names || !(ds->group_names[0] = ds_strdup("class"))) return sn_error("out of memory");
    return 0;
}

int ds_finish(ds_builder *b, const ds_strlist *names, const int *group, ds_strlist *group_names, ds_kind kind,
              const char *base, const char *source) {
    dataset *ds = b->ds;
    if (b->n == 0) return sn_error("%s: no usable images found", ds->root);
    if (names->n == 0)
        return sn_error("%s: no classes (no image has a label); a classifier needs at least two classes", source);
    if (names->n == 1 && !b->fixed_classes)
        return sn_error("%s: only one class ('%s'); a classifier needs at least two classes", source, names->v[0]);
    ds->kind = kind;
    ds->n_classes = names->n;
    ds->classes = calloc((size_t)names->n, sizeof(char *));
    ds->group = calloc((size_t)names->n, sizeof(int));
    ds->items = calloc((size_t)b->n, sizeof(ds_item));
    ds->hot = calloc((size_t)b->n * (size_t)names->n, 1);
    if (!ds->classes || !ds->group || !ds->items || !ds->hot) return sn_error("out of memory");
    if (finish_classes(ds, names, group, group_names) < 0) return -1;
    ds->fixed_split = false;
    for (int i = 0; i < b->n; i++) {
        ds_raw_item *r = &b->items[i];
        ds_item *it = &ds->items[ds->n_items++];
        it->path = ds_join(base, r->rel);
        it->rel = r->rel;
        r->rel = NULL;
        if (!it->path) return sn_error("out of memory");
        it->label = kind == DS_SINGLE ? r->tags[0] : -1;
        it->valid = r->valid;
        if (r->valid >= 0) ds->fixed_split = true;
        for (int k = 0; k < r->n_tags; k++) ds->hot[(size_t)i * names->n + r->tags[k]] = 1;
    }
    return 0;
}
