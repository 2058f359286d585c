/* dataset.h - image data sets with their labels, and the seeded train/validation split.
 *
 * Contract (for the trainer)
 * --------------------------
 *   ds_options o = {.root = "../shared/data/style", .task = "multi"};
 *   dataset *ds = ds_open(&o);                  // lists files, reads labels; NULL + sn_error on failure
 *   ds_decode(ds, &(ds_decode_opts){0});        // decodes every image once into the in-memory cache,
 *                                               // drops (and counts) bad images; with .strict fatal
 *   ds_split sp; ds_make_split(ds, 42, 0.2f, true, &sp);   // sp.train / sp.valid: item indices
 *   ... loader_create(ds, sp.train, sp.n_train, ...) (data/loader.h) ...
 *   ds_split_free(&sp); ds_free(ds);
 *
 * - A dataset is a list of items: path and labels.  ds->kind is DS_SINGLE (softmax: one class per
 *   item, item.label in [0, n_classes)) or DS_MULTI (sigmoid: any number of tags, item.label = -1).
 *   For both kinds ds_hot(ds, i) gives the item's n_classes targets as bytes 0/1 (one-hot for
 *   single), so a trainer can treat both alike.
 * - Class names: ds->classes[n_classes].  For sets whose labels come in groups (the Style set's
 *   brand and product), ds->group[c] says which group class c belongs to and ds->group_names[g]
 *   names it; for Style `multi` the 17 tags are the 7 brands (group 0 "brand") then the 10
 *   products (group 1 "product"), every item has exactly one tag of each group.  Other sets:
 *   n_groups = 1, group[c] = 0.
 * - Items are sorted by path relative to the root (folder and pattern sets) or kept in CSV row
 *   order, so indices, and so seeded splits, are the same on every machine.
 * - Layouts (ds_open picks one from the options):
 *   1. folder per class (ImageNet): root/<class>/<image>; if root has train/ and valid/ (or val/)
 *      folders, those are the split (ds->fixed_split).  Single-label.
 *   2. CSV (o.csv): a file column and a labels column (default: the first two columns; choose by
 *      header name or 0-based number); labels are tags split on o.label_delim (default ' '):
 *      multi-label when some row has more than one tag, or o.task = "multi".  Duplicated rows
 *      and rows naming missing files are reported (by line) and skipped.
 *   3. pattern (o.pattern, e.g. "{brand}_{product}_{n}.png"): labels from file names; fields
 *      named n, id, or starting with '_' are ignored; o.names gives a names file (sections
 *      separated by blank lines, one per label field, lines "Name[,index]").  The Style preset:
 *      when root holds style.txt and files named <int>_<int>_<int>.png, the pattern
 *      "{brand}_{product}_{n}.png" with names style.txt is used (labels never come from
 *      style.csv).  Tasks: one field name ("brand", "product": single-label over that
 *      section's names), "multi" (every field's names as tags), "combo" (single-label over the
 *      occurring field combinations, e.g. "Gucci handbag").  Default: "multi" when there are
 *      several fields.
 * - Bad input (a missing folder, an empty class, an unreadable or non-image file, a label not in
 *   the names file, a CSV row naming a missing file or duplicating another): each adds a line
 *   naming the file (and line) and the problem to ds->problems; a bad item is skipped and
 *   counted in ds->n_skipped.  With o.strict (or ds_decode_opts.strict) the first one is fatal.
 *   A missing root, a set with no usable items, or one with fewer than two classes (a
 *   classifier needs at least two; ds_open's message names the folder or CSV file) is always
 *   an error.
 * - Fixed classes (o.scheme: a model's classes, or the training set's for a separate validation
 *   folder): the labels read are mapped onto the scheme's classes, which become the set's
 *   (ds_adopt_scheme).  A folder without class folders (and no --csv, --pattern or style.txt) is
 *   read with the scheme's pattern; the task defaults to the scheme's.  A label maps to the
 *   class of the same name in its label group (groups matched by name, else by position), or,
 *   when it is a number k and no class has that name, to the group's k-th class (as a names
 *   file's "Name,k" lines do for the Style set).  A label with no class is an error naming the
 *   first file that has it and the classes it could be; so is a set whose kind (single- or
 *   multi-label) differs from the scheme's.  A set of one class is then allowed.
 * - Thread safety: after ds_decode the dataset is read-only and may be shared by loader threads.
 */
#ifndef STYLENET_DATASET_H
#define STYLENET_DATASET_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "io/image.h"

typedef enum { DS_SINGLE = 0, DS_MULTI = 1 } ds_kind;

typedef struct {
    char *path;  /* full path (root joined) */
    char *rel;   /* path relative to the root, as shown in messages and used for sorting */
    int label;   /* single: class index; multi: -1 */
    int valid;   /* fixed split: 1 validation, 0 training; -1 when the set gives none */
    image cache; /* decoded (and resized) pixels when ds_decode kept them; rgb NULL otherwise */
} ds_item;

/* the classes a data set is to be labelled with, fixed beforehand (a model's, or the training
 * set's): see "Fixed classes" above */
typedef struct {
    ds_kind kind;                   /* single- or multi-label */
    int n_classes;
    char *const *classes;           /* in output order */
    const int *group;               /* [n_classes] label group of each class (contiguous); NULL: one group */
    int n_groups;                   /* 0 or 1: one group */
    const char *const *group_names; /* [n_groups] */
    const char *task;               /* the task the labels are read with ("multi", "brand", "single", ...) */
    const char *pattern;            /* file-name pattern for a folder of photos without class folders; NULL: none */
    const char *source;             /* whose classes they are, for messages ("the model style.stn") */
} ds_scheme;

typedef struct {
    const char *root;        /* the data folder (required) */
    const char *task;        /* see above; NULL = the layout's default */
    /* CSV layout */
    const char *csv;         /* CSV file, relative to root unless absolute */
    const char *file_col;    /* header name or 0-based column number; default "0" */
    const char *label_col;   /* default "1" */
    const char *folder;      /* images are in root/folder (default: root) */
    char label_delim;        /* tag separator (default ' ') */
    /* pattern layout */
    const char *pattern;     /* e.g. "{brand}_{product}_{n}.png" */
    const char *names;       /* names file, relative to the working directory (the Style preset's
                                style.txt: to root) */
    /* validation given by the data */
    const char *valid_dir;   /* folder layout: name of the validation folder (default: valid or val) */
    const char *valid_list;  /* file listing validation items (relative paths), one a line */
    bool strict;             /* the first bad input is an error */
    const ds_scheme *scheme; /* NULL, or the classes the labels are mapped onto (see above) */
} ds_options;

typedef struct {
    ds_kind kind;
    int n_items, n_classes, n_groups;
    ds_item *items;
    char **classes;
    int *group;              /* [n_classes] group of each class */
    char **group_names;      /* [n_groups] */
    uint8_t *hot;            /* [n_items * n_classes] 0/1 targets */
    bool fixed_split;        /* items carry valid = 0/1 from the data (valid folder or list) */
    char *root, *layout, *task; /* layout: a one-line description, e.g. "style preset: pattern ..." */
    char *pattern;           /* the file-name pattern of the pattern layouts; NULL for the others */
    int n_skipped;           /* bad items dropped */
    int n_problems;
    char **problems;         /* one message per problem, naming the file */
    /* filled by ds_decode */
    size_t cache_bytes;      /* bytes of pixels kept in memory */
    int n_cached;            /* items whose pixels are kept */
    int max_side;            /* short side of the cached images is at most this */
} dataset;

dataset *ds_open(const ds_options *o);
void ds_free(dataset *ds);
static inline const uint8_t *ds_hot(const dataset *ds, int i) { return ds->hot + (size_t)i * ds->n_classes; }

typedef struct {
    size_t budget_bytes; /* pixel bytes kept in memory (default 2 GiB); beyond it images stream from disk */
    int max_side;        /* cached images are resized so the short side is at most this (default 256) */
    int n_threads;       /* decoding threads (default 2) */
    bool strict;         /* a bad image is an error (default: skipped, counted, reported) */
} ds_decode_opts;

/* decodes every item once: keeps pixels within the budget, drops bad items (ds->n_skipped,
 * ds->problems) unless strict (then -1 naming the file).  -1 also when no item is left. */
int ds_decode(dataset *ds, const ds_decode_opts *o);
/* the item's pixels at cache resolution: from the cache (no copy; *owned = false) or decoded
 * from disk and resized (*owned = true: image_free it).  Thread safe. */
int ds_image(const dataset *ds, int i, image *out, bool *owned);

typedef struct {
    int *train, *valid; /* ascending item indices */
    int n_train, n_valid;
    bool stratified;    /* whether stratification was possible and used */
} ds_split;

/* Seeded split.  With a fixed split in the data it is used as given (seed and pct ignored).
 * Otherwise round(n * pct) items go to validation; stratified: proportionally from every class
 * (single) or every distinct tag set (multi), by largest remainders, keeping at least one item
 * of every class in training.  Same seed -> same split on every machine. */
int ds_make_split(const dataset *ds, uint64_t seed, float valid_pct, bool stratify, ds_split *out);
void ds_split_free(ds_split *s);

/* the data set's classes, groups, task and pattern as a scheme for another folder (pointers into
 * ds; gn: room for ds->n_groups group-name pointers).  source: for messages. */
ds_scheme ds_scheme_of(const dataset *ds, const char **gn, const char *source);
/* maps ds's labels onto the scheme's classes (see "Fixed classes"); -1 with an error naming a file */
int ds_adopt_scheme(dataset *ds, const ds_scheme *s);
/* K folds for cross-validation: fold_of[i] in [0, k) for every item, stratified as the split is
 * (items sorted by their targets, then by the seeded key, dealt to the folds in turn, so every
 * class and tag set is spread over the folds and the folds' sizes differ by at most one).  Same
 * seed -> same folds on every machine.  A given split in the data is not used.  -1 when k is
 * not in [2, n_items]. */
int ds_make_folds(const dataset *ds, uint64_t seed, int k, int *fold_of);
/* fold `fold` as the validation share, the others as training */
int ds_fold_split(const dataset *ds, const int *fold_of, int fold, ds_split *out);
/* every item into the training share (valid false) or the validation share (valid true) */
int ds_split_all(const dataset *ds, bool valid, ds_split *out);
/* appends valid's items to ds as its validation share (ds's own items all train: a fixed split),
 * with valid's problems; the classes must be the same (ds_adopt_scheme(valid, ds_scheme_of(ds))
 * makes them so).  valid keeps its other contents (ds_free it).  -1 with an error. */
int ds_append_valid(dataset *ds, dataset *valid);

/* label text of item i: the class name, or the tags joined by " + " */
void ds_label_text(const dataset *ds, int i, char *buf, size_t cap);
#endif
