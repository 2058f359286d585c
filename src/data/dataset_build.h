/* dataset_build.h - what the data set layouts share; private to src/data/dataset*.c.
 *
 * Contract
 * - A layout (dataset_folder.c, dataset_csv.c, dataset_pattern.c) lists its items into a
 *   ds_builder: ds_add_item() per item with its relative path and tag indices into the layout's
 *   class list, ds_problem() per bad input (recorded in ds->problems, or the error with strict).
 *   It ends with ds_finish(), which moves the items into the dataset with their classes; the
 *   caller (ds_open) frees the builder with ds_builder_free().
 * - ds_finish() is where every layout's data set is validated: no items, or fewer than two
 *   classes (one is enough when a scheme fixes the classes), is an error naming the folder or
 *   file the set came from.
 * - Helpers return -1 (or NULL) after sn_error(); ds_join() and ds_strdup() return NULL without
 *   a message when out of memory.
 */
#ifndef STYLENET_DATASET_BUILD_H
#define STYLENET_DATASET_BUILD_H
#include <stdbool.h>
#include "data/dataset.h"

/* strings and files */
char *ds_strdup(const char *s);
/* a/b (one '/' between them); b alone when b is absolute or a is empty; malloc'd */
char *ds_join(const char *a, const char *b);
bool ds_is_dir(const char *p);
bool ds_is_file(const char *p);
/* the whole file as a NUL-terminated string (malloc'd), or NULL with an error naming the file */
char *ds_read_text(const char *path);
/* s without leading and trailing white space (trailing space is cut in place) */
char *ds_trim(char *s);

typedef struct {
    char **v;
    int n, cap;
} ds_strlist;

int ds_sl_push(ds_strlist *l, const char *s);       /* appends a copy */
int ds_sl_find(const ds_strlist *l, const char *s); /* index of s, -1 when absent */
void ds_sl_free(ds_strlist *l);
/* sorted (strcmp) non-hidden entries of a folder: dirs true = only folders, false = only files */
int ds_list_dir(const char *path, bool dirs, ds_strlist *out);

/* the items a layout found, before they become the dataset's */
typedef struct {
    char *rel;
    int *tags, n_tags; /* class indices (into the layout's class list) */
    int valid;         /* 1 validation, 0 training, -1 not given */
    int line;          /* CSV line (0 for other layouts) */
} ds_raw_item;

typedef struct {
    dataset *ds;
    bool strict;
    bool fixed_classes;  /* the classes come from a scheme (ds_options.scheme): one class is enough */
    ds_raw_item *items;
    int n, cap;
} ds_builder;

/* records a bad input in ds->problems; with strict it is the error instead (the text after the
 * last "; ", what would have been done about it, dropped) */
int ds_problem(ds_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ds_add_item(ds_builder *b, const char *rel, const int *tags, int n_tags, int valid);
void ds_builder_free(ds_builder *b);
/* sorts the class names (strcmp) and remaps the items' tags to the new order */
int ds_sort_classes(ds_builder *b, ds_strlist *names);
/* validates the set (items, at least two classes; errors name `source`) and moves the builder's
 * items into b->ds: classes `names` in their order, group[c] of each (NULL: all 0), group names
 * (taken over; NULL or empty: one group "class"), item paths joined to `base` */
int ds_finish(ds_builder *b, const ds_strlist *names, const int *group, ds_strlist *group_names, ds_kind kind,
              const char *base, const char *source);

/* the layouts: each fills b->ds (items, classes, layout description; the pattern layout also
 * its task) */
int ds_open_folders(ds_builder *b, const ds_options *o);
int ds_open_csv(ds_builder *b, const ds_options *o);
/* names_path: the names file to open (NULL: none); preset: a prefix for the layout description
 * (NULL: none) */
int ds_open_pattern(ds_builder *b, const char *pat, const char *names_path, const char *task, const char *preset);
/* the Style set: style.txt beside files named <int>_<int>_<int>.png */
bool ds_is_style_layout(const char *root);
#endif
