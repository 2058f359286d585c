/* dataset.c - data sets from class folders, CSV label files and file-name patterns; image cache;
 * seeded stratified split.  See dataset.h for the contract. */
#include "data/dataset.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"
#include "core/rng.h"

/* ------------------------------------------------------------------ small helpers */

static char *xstrdup(const char *s) {
    char *d = malloc(strlen(s) + 1);
    if (d) strcpy(d, s);
    return d;
}

static char *join(const char *a, const char *b) {
    if (!a || !a[0] || b[0] == '/') return xstrdup(b);
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 2);
    if (!p) return NULL;
    memcpy(p, a, na);
    size_t k = na;
    if (na && a[na - 1] != '/') p[k++] = '/';
    memcpy(p + k, b, nb + 1);
    return p;
}

static bool is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static bool is_file(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

typedef struct {
    char **v;
    int n, cap;
} strlist;

static int sl_push(strlist *l, const char *s) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, sizeof(char *) * (size_t)cap);
        if (!v) return sn_error("out of memory");
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = xstrdup(s))) return sn_error("out of memory");
    l->n++;
    return 0;
}

static int sl_find(const strlist *l, const char *s) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s)) return i;
    return -1;
}

static void sl_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* sorted non-hidden entries of a folder; dirs: true = only folders, false = only regular files */
static int list_dir(const char *path, bool dirs, strlist *out) {
    DIR *d = opendir(path);
    if (!d) return sn_error("%s: cannot open folder: %s", path, strerror(errno));
    struct dirent *e;
    int r = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *full = join(path, e->d_name);
        if (!full) { r = sn_error("out of memory"); break; }
        bool ok = dirs ? is_dir(full) : is_file(full);
        free(full);
        if (ok && sl_push(out, e->d_name) < 0) { r = -1; break; }
    }
    closedir(d);
    if (r == 0 && out->n) qsort(out->v, (size_t)out->n, sizeof(char *), cmp_str);
    return r;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        sn_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) { free(b); b = NULL; break; }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n - 1, f);
        if (got == 0) break;
        n += got;
    }
    fclose(f);
    if (!b) { sn_error("%s: out of memory reading it", path); return NULL; }
    b[n] = 0;
    if (len) *len = n;
    return b;
}

/* ------------------------------------------------------------------ building a data set */

typedef struct {
    char *rel;
    int *tags, n_tags; /* class indices (into the builder's class list) */
    int valid;
    int line;          /* CSV line (0 for other layouts) */
} raw_item;

typedef struct {
    dataset *ds;
    bool strict;
    raw_item *items;
    int n, cap;
} builder;

static int problem(builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int problem(builder *b, const char *fmt, ...) {
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
    if (!(p[ds->n_problems] = xstrdup(msg))) return sn_error("out of memory");
    ds->n_problems++;
    return 0;
}

static int add_item(builder *b, const char *rel, const int *tags, int n_tags, int valid) {
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 256;
        raw_item *v = realloc(b->items, sizeof(raw_item) * (size_t)cap);
        if (!v) return sn_error("out of memory");
        b->items = v;
        b->cap = cap;
    }
    raw_item *it = &b->items[b->n];
    it->rel = xstrdup(rel);
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

static void builder_free(builder *b) {
    for (int i = 0; i < b->n; i++) {
        free(b->items[i].rel);
        free(b->items[i].tags);
    }
    free(b->items);
}

/* moves the builder's items into ds with classes `names` (order kept) */
static int finish(builder *b, const strlist *names, const int *group, strlist *group_names, ds_kind kind,
                  const char *base) {
    dataset *ds = b->ds;
    if (b->n == 0) return sn_error("%s: no usable images found", ds->root);
    ds->kind = kind;
    ds->n_classes = names->n;
    ds->classes = calloc((size_t)names->n, sizeof(char *));
    ds->group = calloc((size_t)names->n, sizeof(int));
    ds->items = calloc((size_t)b->n, sizeof(ds_item));
    ds->hot = calloc((size_t)b->n * (size_t)names->n, 1);
    if (!ds->classes || !ds->group || !ds->items || !ds->hot) return sn_error("out of memory");
    for (int c = 0; c < names->n; c++) {
        if (!(ds->classes[c] = xstrdup(names->v[c]))) return sn_error("out of memory");
        ds->group[c] = group ? group[c] : 0;
    }
    if (group_names && group_names->n) {
        ds->n_groups = group_names->n;
        ds->group_names = group_names->v;
        memset(group_names, 0, sizeof *group_names);
    } else {
        ds->n_groups = 1;
        ds->group_names = calloc(1, sizeof(char *));
        if (!ds->group_names || !(ds->group_names[0] = xstrdup("class"))) return sn_error("out of memory");
    }
    ds->fixed_split = false;
    for (int i = 0; i < b->n; i++) {
        raw_item *r = &b->items[i];
        ds_item *it = &ds->items[ds->n_items];
        it->path = join(base, r->rel);
        it->rel = r->rel;
        r->rel = NULL;
        if (!it->path) return sn_error("out of memory");
        it->label = kind == DS_SINGLE ? r->tags[0] : -1;
        it->valid = r->valid;
        if (r->valid >= 0) ds->fixed_split = true;
        for (int k = 0; k < r->n_tags; k++) ds->hot[(size_t)ds->n_items * names->n + r->tags[k]] = 1;
        ds->n_items++;
    }
    return 0;
}

/* sorts discovered class names and remaps the items' tags */
static int sort_classes(builder *b, strlist *names) {
    int n = names->n;
    char **sorted = malloc(sizeof(char *) * (size_t)(n ? n : 1));
    int *map = malloc(sizeof(int) * (size_t)(n ? n : 1));
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

/* ------------------------------------------------------------------ layout 1: a folder per class */

static int scan_part(builder *b, const char *dir, const char *prefix, strlist *classes, bool add_classes, int valid) {
    strlist sub = {0};
    if (list_dir(dir, true, &sub) < 0) return -1;
    int r = 0, found = 0;
    for (int i = 0; i < sub.n && r == 0; i++) {
        char *cdir = join(dir, sub.v[i]);
        strlist files = {0};
        if (!cdir || list_dir(cdir, false, &files) < 0) {
            free(cdir);
            r = -1;
            break;
        }
        if (files.n == 0) {
            r = problem(b, "%s: class folder '%s' has no images; class left out", cdir, sub.v[i]);
        } else {
            int c = sl_find(classes, sub.v[i]);
            if (c < 0 && add_classes) {
                if (sl_push(classes, sub.v[i]) < 0) r = -1;
                c = classes->n - 1;
            }
            if (c < 0 && r == 0) {
                r = problem(b, "%s: class '%s' is not among the training classes; its %d files are left out", cdir,
                            sub.v[i], files.n);
            } else {
                for (int k = 0; k < files.n && r == 0; k++) {
                    char rel[PATH_MAX];
                    snprintf(rel, sizeof rel, "%s%s/%s", prefix, sub.v[i], files.v[k]);
                    r = add_item(b, rel, &c, 1, valid);
                    found++;
                }
            }
        }
        sl_free(&files);
        free(cdir);
    }
    if (r == 0 && sub.n == 0)
        r = sn_error("%s: no class folders (expected %s/<class>/<image>; or use --csv, or --pattern)", dir, dir);
    sl_free(&sub);
    return r;
}

static int open_folders(builder *b, const ds_options *o) {
    dataset *ds = b->ds;
    char *train = join(ds->root, "train"), *valid = NULL;
    if (o->valid_dir) valid = join(ds->root, o->valid_dir);
    else {
        valid = join(ds->root, "valid");
        if (valid && !is_dir(valid)) {
            free(valid);
            valid = join(ds->root, "val");
        }
    }
    if (!train || !valid) {
        free(train);
        free(valid);
        return sn_error("out of memory");
    }
    strlist classes = {0};
    int r;
    char desc[PATH_MAX + 64];
    if (is_dir(train) && is_dir(valid)) {
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
    if (r == 0) r = sort_classes(b, &classes);
    if (r == 0) ds->layout = xstrdup(desc);
    if (r == 0) r = finish(b, &classes, NULL, NULL, DS_SINGLE, ds->root);
    sl_free(&classes);
    free(train);
    free(valid);
    return r;
}

/* ------------------------------------------------------------------ layout 2: CSV */

/* one CSV record (RFC 4180: quotes, "" inside quotes, CRLF); returns fields, advances *p */
static int csv_record(const char **p, strlist *fields, int *line) {
    const char *s = *p;
    char *cell = malloc(strlen(s) + 1);
    if (!cell) return sn_error("out of memory");
    for (;;) {
        size_t n = 0;
        bool quoted = false;
        if (*s == '"') {
            quoted = true;
            s++;
            for (;;) {
                if (!*s) break; /* unterminated quote: take what is there */
                if (*s == '"' && s[1] == '"') {
                    cell[n++] = '"';
                    s += 2;
                } else if (*s == '"') {
                    s++;
                    break;
                } else {
                    if (*s == '\n') (*line)++;
                    cell[n++] = *s++;
                }
            }
        }
        while (*s && *s != ',' && *s != '\n' && *s != '\r') cell[n++] = *s++;
        cell[n] = 0;
        if (!quoted) { /* trim spaces around unquoted cells */
            char *a = cell;
            while (*a == ' ' || *a == '\t') a++;
            size_t m = strlen(a);
            while (m && (a[m - 1] == ' ' || a[m - 1] == '\t')) a[--m] = 0;
            memmove(cell, a, m + 1);
        }
        if (sl_push(fields, cell) < 0) {
            free(cell);
            return -1;
        }
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\r') s++;
        if (*s == '\n') {
            s++;
            (*line)++;
        }
        break;
    }
    free(cell);
    *p = s;
    return 0;
}

static int pick_col(const strlist *hdr, const char *want, const char *const *defaults, int fallback, const char *csv,
                    const char *what) {
    if (want) {
        char *end;
        long v = strtol(want, &end, 10);
        if (*want && !*end) {
            if (v < 0 || v >= hdr->n) return sn_error("%s: has %d columns; %s column %ld does not exist", csv, hdr->n, what, v);
            return (int)v;
        }
        int c = sl_find(hdr, want);
        if (c < 0) return sn_error("%s: no column named '%s' in the header (for the %s)", csv, want, what);
        return c;
    }
    for (int k = 0; defaults[k]; k++) {
        int c = sl_find(hdr, defaults[k]);
        if (c >= 0) return c;
    }
    if (fallback >= hdr->n) return sn_error("%s: needs at least %d columns for the %s", csv, fallback + 1, what);
    return fallback;
}

static int open_csv(builder *b, const ds_options *o) {
    dataset *ds = b->ds;
    char *csv = join(ds->root, o->csv);
    char *base = o->folder ? join(ds->root, o->folder) : xstrdup(ds->root);
    char *text = csv ? slurp(csv, NULL) : NULL;
    strlist hdr = {0}, row = {0}, classes = {0}, seen = {0};
    int *seen_line = NULL, *tags = NULL;
    int r = -1;
    if (!csv || !base || !text) goto done;
    const char *p = text;
    if (!strncmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    int line = 1;
    if (!*p) {
        sn_error("%s: empty CSV file", csv);
        goto done;
    }
    if (csv_record(&p, &hdr, &line) < 0) goto done;
    static const char *const fdef[] = {"file", "name", "fname", "filename", "image", "image_name", "path", NULL};
    static const char *const ldef[] = {"labels", "tags", "label", "tag", "class", NULL};
    int fc = pick_col(&hdr, o->file_col, fdef, 0, csv, "file names");
    int lc = fc < 0 ? -1 : pick_col(&hdr, o->label_col, ldef, fc == 0 ? 1 : 0, csv, "labels");
    if (fc < 0 || lc < 0) goto done;
    if (fc == lc) {
        sn_error("%s: the file and label columns are the same (%d)", csv, fc);
        goto done;
    }
    char delim = o->label_delim ? o->label_delim : ' ';
    bool any_multi = false;
    int cap_tags = 16;
    tags = malloc(sizeof(int) * (size_t)cap_tags);
    seen_line = malloc(sizeof(int) * 1024);
    int seen_cap = 1024;
    if (!tags || !seen_line) {
        sn_error("out of memory");
        goto done;
    }
    r = 0;
    while (*p && r == 0) {
        int at = line;
        for (int i = 0; i < row.n; i++) free(row.v[i]);
        row.n = 0;
        if ((r = csv_record(&p, &row, &line)) < 0) break;
        if (row.n == 1 && !row.v[0][0]) continue; /* blank line */
        if (row.n <= fc || row.n <= lc) {
            r = problem(b, "%s:%d: %d columns, expected at least %d; row skipped", csv, at, row.n,
                        (fc > lc ? fc : lc) + 1);
            ds->n_skipped++;
            continue;
        }
        const char *file = row.v[fc];
        if (!file[0]) {
            r = problem(b, "%s:%d: empty file name; row skipped", csv, at);
            ds->n_skipped++;
            continue;
        }
        int prev = sl_find(&seen, file);
        if (prev >= 0) {
            r = problem(b, "%s:%d: duplicate of line %d ('%s'); row skipped", csv, at, seen_line[prev], file);
            ds->n_skipped++;
            continue;
        }
        if (seen.n == seen_cap) {
            int *nl = realloc(seen_line, sizeof(int) * (size_t)seen_cap * 2);
            if (!nl) { r = sn_error("out of memory"); break; }
            seen_line = nl;
            seen_cap *= 2;
        }
        if ((r = sl_push(&seen, file)) < 0) break;
        seen_line[seen.n - 1] = at;
        char *full = join(base, file);
        if (!full) { r = sn_error("out of memory"); break; }
        bool exists = is_file(full);
        if (!exists) {
            r = problem(b, "%s:%d: '%s' names a missing file (%s); row skipped", csv, at, file, full);
            ds->n_skipped++;
        }
        free(full);
        if (!exists) continue;
        int nt = 0;
        char *lab = row.v[lc];
        for (char *t = lab; *t && r == 0;) {
            while (*t == delim || *t == ' ') t++;
            if (!*t) break;
            char *e = t;
            while (*e && *e != delim) e++;
            char save = *e;
            *e = 0;
            char *tt = t;
            size_t m = strlen(tt);
            while (m && tt[m - 1] == ' ') tt[--m] = 0;
            int c = sl_find(&classes, tt);
            if (c < 0) {
                if ((r = sl_push(&classes, tt)) < 0) break;
                c = classes.n - 1;
            }
            bool dup = false;
            for (int k = 0; k < nt; k++) dup |= tags[k] == c;
            if (!dup) {
                if (nt == cap_tags) {
                    int *ntg = realloc(tags, sizeof(int) * (size_t)cap_tags * 2);
                    if (!ntg) { r = sn_error("out of memory"); break; }
                    tags = ntg;
                    cap_tags *= 2;
                }
                tags[nt++] = c;
            }
            *e = save;
            t = save ? e + 1 : e;
        }
        if (r < 0) break;
        if (nt > 1) any_multi = true;
        r = add_item(b, file, tags, nt, -1);
        if (r == 0) b->items[b->n - 1].line = at;
    }
    if (r < 0) goto done;
    if (o->task && strcmp(o->task, "single") && strcmp(o->task, "multi")) {
        r = sn_error("%s: task '%s' is not one of single, multi for a CSV data set", csv, o->task);
        goto done;
    }
    ds_kind kind = any_multi ? DS_MULTI : DS_SINGLE;
    if (o->task && !strcmp(o->task, "multi")) kind = DS_MULTI;
    if (kind == DS_SINGLE) { /* a row without a label: fine for tags (none apply), not for one class */
        int keep = 0;
        for (int i = 0; i < b->n; i++) {
            if (b->items[i].n_tags == 0) {
                if (r == 0) r = problem(b, "%s:%d: '%s' has no label; row skipped", csv, b->items[i].line, b->items[i].rel);
                ds->n_skipped++;
                free(b->items[i].rel);
                free(b->items[i].tags);
                continue;
            }
            b->items[keep++] = b->items[i];
        }
        b->n = keep;
        if (r < 0) goto done;
    }
    else if (o->task && !strcmp(o->task, "single")) {
        if (any_multi) {
            r = sn_error("%s: --task single, but some rows have several labels (separated by '%c')", csv, delim);
            goto done;
        }
    }
    if ((r = sort_classes(b, &classes)) < 0) goto done;
    char desc[PATH_MAX + 128];
    snprintf(desc, sizeof desc, "CSV %s (file column '%s', labels column '%s')", o->csv, hdr.v[fc], hdr.v[lc]);
    ds->layout = xstrdup(desc);
    r = finish(b, &classes, NULL, NULL, kind, base);
done:
    sl_free(&hdr);
    sl_free(&row);
    sl_free(&classes);
    sl_free(&seen);
    free(seen_line);
    free(tags);
    free(text);
    free(csv);
    free(base);
    return r;
}

/* ------------------------------------------------------------------ layout 3: names from a pattern */

#define MAX_FIELDS 8

typedef struct {
    int n_tok;
    char *lit[MAX_FIELDS + 1]; /* literal before field k; lit[n_fields] = trailing literal */
    char *field[MAX_FIELDS];
    int n_fields;
    bool label[MAX_FIELDS];
} pattern;

static void pattern_free(pattern *pt) {
    for (int i = 0; i <= pt->n_fields; i++) free(pt->lit[i]);
    for (int i = 0; i < pt->n_fields; i++) free(pt->field[i]);
}

static int pattern_parse(const char *s, pattern *pt) {
    memset(pt, 0, sizeof *pt);
    const char *p = s;
    for (;;) {
        const char *open = strchr(p, '{');
        size_t n = open ? (size_t)(open - p) : strlen(p);
        char *lit = malloc(n + 1);
        if (!lit) return sn_error("out of memory");
        memcpy(lit, p, n);
        lit[n] = 0;
        pt->lit[pt->n_fields] = lit;
        if (!open) break;
        const char *close = strchr(open, '}');
        if (!close || close == open + 1) return sn_error("pattern '%s': a '{' without a named field and '}'", s);
        if (pt->n_fields == MAX_FIELDS) return sn_error("pattern '%s': more than %d fields", s, MAX_FIELDS);
        if (pt->n_fields > 0 && n == 0)
            return sn_error("pattern '%s': two fields must be separated by some fixed text", s);
        size_t fn = (size_t)(close - open - 1);
        char *f = malloc(fn + 1);
        if (!f) return sn_error("out of memory");
        memcpy(f, open + 1, fn);
        f[fn] = 0;
        pt->field[pt->n_fields] = f;
        pt->label[pt->n_fields] = !(f[0] == '_' || !strcmp(f, "n") || !strcmp(f, "id"));
        pt->n_fields++;
        p = close + 1;
    }
    int nl = 0;
    for (int i = 0; i < pt->n_fields; i++) nl += pt->label[i];
    if (nl == 0) return sn_error("pattern '%s': no label field (fields named n, id or _x are ignored)", s);
    return 0;
}

/* matches name against the pattern (fields non-empty, shortest match first, backtracking) */
static bool pattern_match_at(const pattern *pt, const char *s, int k, char vals[][256]) {
    /* at the start of field k (literal k already consumed) */
    if (k == pt->n_fields) return *s == 0;
    const char *next = pt->lit[k + 1];
    size_t nn = strlen(next);
    for (size_t len = 1; s[len - 1]; len++) {
        if (k + 1 == pt->n_fields) { /* last field: the rest must be exactly the trailing literal */
            size_t rest = strlen(s);
            if (rest < nn + 1 || strcmp(s + rest - nn, next)) return false;
            len = rest - nn;
        } else if (strncmp(s + len, next, nn)) {
            continue;
        }
        if (len >= 256) return false;
        memcpy(vals[k], s, len);
        vals[k][len] = 0;
        if (pattern_match_at(pt, s + len + nn, k + 1, vals)) return true;
        if (k + 1 == pt->n_fields) return false;
    }
    return false;
}

static bool pattern_match(const pattern *pt, const char *name, char vals[][256]) {
    size_t n0 = strlen(pt->lit[0]);
    if (strncmp(name, pt->lit[0], n0)) return false;
    if (pt->n_fields == 0) return !strcmp(name + n0, "");
    return pattern_match_at(pt, name + n0, 0, vals);
}

/* names file: sections separated by blank lines, lines "Name" or "Name,index" (spaces and extra
 * commas around are ignored).  section names are ordered by index. */
typedef struct {
    int n_sec;
    strlist names[MAX_FIELDS];
    int *index[MAX_FIELDS];
} names_file;

static void names_free(names_file *nf) {
    for (int s = 0; s < MAX_FIELDS; s++) {
        sl_free(&nf->names[s]);
        free(nf->index[s]);
    }
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

static int names_read(const char *path, names_file *nf) {
    memset(nf, 0, sizeof *nf);
    char *text = slurp(path, NULL);
    if (!text) return -1;
    int r = 0, line = 0, sec = -1;
    bool in_section = false;
    for (char *p = text; *p && r == 0;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        line++;
        char *l = trim(p);
        p = e ? e + 1 : p + strlen(p);
        if (!*l) {
            in_section = false;
            continue;
        }
        if (!in_section) {
            if (++sec == MAX_FIELDS) {
                r = sn_error("%s:%d: more than %d sections", path, line, MAX_FIELDS);
                break;
            }
            in_section = true;
        }
        char *comma = strchr(l, ',');
        long idx = nf->names[sec].n;
        if (comma) {
            *comma = 0;
            char *rest = comma + 1, *tok = NULL;
            for (char *t = strtok(rest, ", \t"); t; t = strtok(NULL, ", \t"))
                if (!tok) tok = t;
                else {
                    r = sn_error("%s:%d: expected 'name' or 'name,index', found more after the index", path, line);
                    break;
                }
            if (r) break;
            if (tok) {
                char *end;
                idx = strtol(tok, &end, 10);
                if (*end || idx < 0 || idx > 100000) {
                    r = sn_error("%s:%d: '%s' is not an index (expected 'name' or 'name,index')", path, line, tok);
                    break;
                }
            }
        }
        char *name = trim(l);
        if (!*name) {
            r = sn_error("%s:%d: empty name", path, line);
            break;
        }
        for (int k = 0; k < nf->names[sec].n; k++)
            if (nf->index[sec][k] == idx) {
                r = sn_error("%s:%d: index %ld given twice in this section", path, line, idx);
                break;
            }
        if (r) break;
        if ((r = sl_push(&nf->names[sec], name)) < 0) break;
        int *ni = realloc(nf->index[sec], sizeof(int) * (size_t)nf->names[sec].n);
        if (!ni) {
            r = sn_error("out of memory");
            break;
        }
        nf->index[sec] = ni;
        ni[nf->names[sec].n - 1] = (int)idx;
    }
    free(text);
    nf->n_sec = sec + 1;
    if (r == 0 && nf->n_sec == 0) r = sn_error("%s: no names in it", path);
    /* order each section by index */
    for (int s = 0; r == 0 && s < nf->n_sec; s++) {
        int n = nf->names[s].n;
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && nf->index[s][j - 1] > nf->index[s][j]; j--) {
                int ti = nf->index[s][j];
                nf->index[s][j] = nf->index[s][j - 1];
                nf->index[s][j - 1] = ti;
                char *tn = nf->names[s].v[j];
                nf->names[s].v[j] = nf->names[s].v[j - 1];
                nf->names[s].v[j - 1] = tn;
            }
    }
    if (r < 0) names_free(nf);
    return r;
}

static bool all_digits(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

static int open_pattern(builder *b, const char *pat, const char *names_path, const char *task, const char *preset) {
    dataset *ds = b->ds;
    pattern pt;
    names_file nf = {0};
    strlist files = {0}, vals[MAX_FIELDS] = {{0}}, classes = {0}, gnames = {0};
    int *group = NULL, *combo_of = NULL, n_combo = 0, lf[MAX_FIELDS], n_lab = 0;
    char *names_full = NULL;
    int r = pattern_parse(pat, &pt);
    if (r < 0) goto done;
    for (int f = 0; f < pt.n_fields; f++)
        if (pt.label[f]) lf[n_lab++] = f;
    if (names_path) {
        names_full = join(ds->root, names_path);
        if (!names_full || (r = names_read(names_full, &nf)) < 0) {
            r = -1;
            goto done;
        }
        if (nf.n_sec != n_lab) {
            r = sn_error("%s: %d section%s of names (separated by blank lines), but the pattern '%s' has %d label "
                         "field%s",
                         names_full, nf.n_sec, nf.n_sec == 1 ? "" : "s", pat, n_lab, n_lab == 1 ? "" : "s");
            goto done;
        }
    }
    if ((r = list_dir(ds->root, false, &files)) < 0) goto done;
    /* per matching file: the value index of each label field */
    int (*vi)[MAX_FIELDS] = malloc(sizeof(int[MAX_FIELDS]) * (size_t)(files.n ? files.n : 1));
    char **matched = calloc((size_t)(files.n ? files.n : 1), sizeof(char *));
    int n_match = 0;
    if (!vi || !matched) {
        free(vi);
        free(matched);
        r = sn_error("out of memory");
        goto done;
    }
    for (int i = 0; i < files.n && r == 0; i++) {
        char v[MAX_FIELDS][256];
        if (!pattern_match(&pt, files.v[i], v)) continue;
        bool ok = true;
        for (int k = 0; k < n_lab && ok && r == 0; k++) {
            const char *val = v[lf[k]];
            int idx = -1;
            if (names_path) {
                const strlist *sec = &nf.names[k];
                if (all_digits(val)) {
                    long want = strtol(val, NULL, 10);
                    for (int j = 0; j < sec->n; j++)
                        if (nf.index[k][j] == want) idx = j;
                }
                if (idx < 0) idx = sl_find(sec, val);
                if (idx < 0) {
                    r = problem(b, "%s/%s: %s '%s' is not in the names file %s; image skipped", ds->root, files.v[i],
                                pt.field[lf[k]], val, names_path);
                    ds->n_skipped++;
                    ok = false;
                }
            } else {
                idx = sl_find(&vals[k], val);
                if (idx < 0) {
                    if ((r = sl_push(&vals[k], val)) < 0) break;
                    idx = vals[k].n - 1;
                }
            }
            vi[n_match][k] = idx;
        }
        if (ok && r == 0) matched[n_match++] = files.v[i];
    }
    if (r < 0) {
        free(vi);
        free(matched);
        goto done;
    }
    if (!names_path) { /* value names found in the files: sorted (numerically when all are numbers) */
        for (int k = 0; k < n_lab; k++) {
            int n = vals[k].n;
            int *order = malloc(sizeof(int) * (size_t)(n ? n : 1)), *inv = malloc(sizeof(int) * (size_t)(n ? n : 1));
            if (!order || !inv) {
                free(order);
                free(inv);
                r = sn_error("out of memory");
                break;
            }
            bool num = true;
            for (int j = 0; j < n; j++) {
                order[j] = j;
                num &= all_digits(vals[k].v[j]);
            }
            for (int a = 1; a < n; a++)
                for (int j = a; j > 0; j--) {
                    const char *x = vals[k].v[order[j - 1]], *y = vals[k].v[order[j]];
                    bool gt = num ? strtol(x, NULL, 10) > strtol(y, NULL, 10) : strcmp(x, y) > 0;
                    if (!gt) break;
                    int t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
            char **v2 = malloc(sizeof(char *) * (size_t)(n ? n : 1));
            if (!v2) {
                free(order);
                free(inv);
                r = sn_error("out of memory");
                break;
            }
            for (int j = 0; j < n; j++) {
                v2[j] = vals[k].v[order[j]];
                inv[order[j]] = j;
            }
            memcpy(vals[k].v, v2, sizeof(char *) * (size_t)n);
            free(v2);
            for (int i = 0; i < n_match; i++) vi[i][k] = inv[vi[i][k]];
            free(order);
            free(inv);
        }
    }
    const strlist *sec[MAX_FIELDS];
    for (int k = 0; k < n_lab; k++) sec[k] = names_path ? &nf.names[k] : &vals[k];
    /* the task */
    ds_kind kind = DS_SINGLE;
    int single_field = -1;
    const char *tname = task ? task : (n_lab > 1 ? "multi" : "single");
    for (int k = 0; k < n_lab; k++)
        if (!strcmp(tname, pt.field[lf[k]])) single_field = k;
    if (!strcmp(tname, "single") && n_lab == 1) single_field = 0;
    if (single_field >= 0) {
        for (int j = 0; j < sec[single_field]->n && r == 0; j++) r = sl_push(&classes, sec[single_field]->v[j]);
        r = r < 0 ? r : sl_push(&gnames, pt.field[lf[single_field]]);
    } else if (!strcmp(tname, "multi")) {
        kind = DS_MULTI;
        int total = 0;
        for (int k = 0; k < n_lab; k++) total += sec[k]->n;
        group = malloc(sizeof(int) * (size_t)(total ? total : 1));
        if (!group) r = sn_error("out of memory");
        for (int k = 0; k < n_lab && r == 0; k++) {
            for (int j = 0; j < sec[k]->n && r == 0; j++) {
                group[classes.n] = k;
                r = sl_push(&classes, sec[k]->v[j]);
            }
            if (r == 0) r = sl_push(&gnames, pt.field[lf[k]]);
        }
    } else if (!strcmp(tname, "combo") && n_lab > 1) {
        /* occurring combinations, ordered by the fields' indices */
        int64_t *keys = malloc(sizeof(int64_t) * (size_t)(n_match ? n_match : 1));
        combo_of = malloc(sizeof(int) * (size_t)(n_match ? n_match : 1));
        if (!keys || !combo_of) r = sn_error("out of memory");
        for (int i = 0; i < n_match && r == 0; i++) {
            int64_t key = 0;
            for (int k = 0; k < n_lab; k++) key = key * 100003 + vi[i][k];
            keys[i] = key;
        }
        int64_t *uniq = malloc(sizeof(int64_t) * (size_t)(n_match ? n_match : 1));
        int *first = malloc(sizeof(int) * (size_t)(n_match ? n_match : 1));
        if (r == 0 && (!uniq || !first)) r = sn_error("out of memory");
        for (int i = 0; i < n_match && r == 0; i++) {
            int j = 0;
            while (j < n_combo && uniq[j] != keys[i]) j++;
            if (j == n_combo) {
                uniq[n_combo] = keys[i];
                first[n_combo++] = i;
            }
        }
        /* sort the combos by key */
        for (int a = 1; a < n_combo && r == 0; a++)
            for (int j = a; j > 0 && uniq[j - 1] > uniq[j]; j--) {
                int64_t t = uniq[j];
                uniq[j] = uniq[j - 1];
                uniq[j - 1] = t;
                int tf = first[j];
                first[j] = first[j - 1];
                first[j - 1] = tf;
            }
        for (int c = 0; c < n_combo && r == 0; c++) {
            char name[1024] = "";
            for (int k = 0; k < n_lab; k++) {
                size_t L = strlen(name);
                snprintf(name + L, sizeof name - L, "%s%s", k ? " " : "", sec[k]->v[vi[first[c]][k]]);
            }
            r = sl_push(&classes, name);
        }
        for (int i = 0; i < n_match && r == 0; i++) {
            int j = 0;
            while (uniq[j] != keys[i]) j++;
            combo_of[i] = j;
        }
        if (r == 0) r = sl_push(&gnames, "combo");
        free(keys);
        free(uniq);
        free(first);
    } else {
        char fields[512] = "";
        for (int k = 0; k < n_lab; k++) {
            size_t L = strlen(fields);
            snprintf(fields + L, sizeof fields - L, "%s, ", pt.field[lf[k]]);
        }
        r = sn_error("task '%s' is not one of %s%s", tname, fields, n_lab > 1 ? "multi, combo" : "single");
    }
    for (int i = 0; i < n_match && r == 0; i++) {
        int tags[MAX_FIELDS], nt = 0, off = 0;
        if (single_field >= 0) tags[nt++] = vi[i][single_field];
        else if (combo_of) tags[nt++] = combo_of[i];
        else
            for (int k = 0; k < n_lab; k++) {
                tags[nt++] = off + vi[i][k];
                off += sec[k]->n;
            }
        r = add_item(b, matched[i], tags, nt, -1);
    }
    free(vi);
    free(matched);
    if (r < 0) goto done;
    if (n_match == 0) {
        r = sn_error("%s: no file name matches the pattern '%s'", ds->root, pat);
        goto done;
    }
    char desc[PATH_MAX + 256];
    snprintf(desc, sizeof desc, "%spattern %s%s%s", preset ? preset : "", pat, names_path ? ", names " : "",
             names_path ? names_path : "");
    ds->layout = xstrdup(desc);
    free(ds->task);
    ds->task = xstrdup(tname);
    r = finish(b, &classes, group, &gnames, kind, ds->root);
done:
    pattern_free(&pt);
    names_free(&nf);
    sl_free(&files);
    for (int k = 0; k < MAX_FIELDS; k++) sl_free(&vals[k]);
    sl_free(&classes);
    sl_free(&gnames);
    free(group);
    free(combo_of);
    free(names_full);
    return r;
}

/* the Style set: style.txt beside files named <int>_<int>_<int>.png */
static bool is_style_layout(const char *root) {
    char *names = join(root, "style.txt");
    bool ok = names && is_file(names);
    free(names);
    if (!ok) return false;
    DIR *d = opendir(root);
    if (!d) return false;
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d)) != NULL) {
        int a, b2, c, n = 0;
        found = sscanf(e->d_name, "%d_%d_%d.png%n", &a, &b2, &c, &n) == 3 && n > 0 && e->d_name[n] == 0;
    }
    closedir(d);
    return found;
}

/* ------------------------------------------------------------------ opening */

static int apply_valid_list(builder *b, const char *path) {
    char *full = join(b->ds->root, path);
    char *text = full ? slurp(full, NULL) : NULL;
    int r = text ? 0 : -1, line = 0;
    for (int i = 0; i < b->n; i++) b->items[i].valid = 0;
    for (char *p = text; r == 0 && p && *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        line++;
        char *l = trim(p);
        p = e ? e + 1 : p + strlen(p);
        if (!*l) continue;
        int found = 0;
        for (int i = 0; i < b->n; i++)
            if (!strcmp(b->items[i].rel, l)) {
                b->items[i].valid = 1;
                found = 1;
            }
        if (!found) r = problem(b, "%s:%d: '%s' is not an item of the data set", full, line, l);
    }
    free(text);
    free(full);
    return r;
}

dataset *ds_open(const ds_options *o) {
    if (!o || !o->root || !o->root[0]) {
        sn_error("no data folder given");
        return NULL;
    }
    if (!is_dir(o->root)) {
        sn_error("%s: %s", o->root, access(o->root, F_OK) == 0 ? "not a folder" : "no such folder");
        return NULL;
    }
    dataset *ds = calloc(1, sizeof *ds);
    if (!ds) {
        sn_error("out of memory");
        return NULL;
    }
    ds->root = xstrdup(o->root);
    builder b = {.ds = ds, .strict = o->strict};
    int r;
    if (o->csv) {
        r = open_csv(&b, o);
        if (r == 0 && !ds->task) ds->task = xstrdup(ds->kind == DS_MULTI ? "multi" : "single");
    } else if (o->pattern) {
        r = open_pattern(&b, o->pattern, o->names, o->task, NULL);
    } else if (is_style_layout(o->root)) {
        r = open_pattern(&b, "{brand}_{product}_{n}.png", o->names ? o->names : "style.txt", o->task, "style preset: ");
    } else if (o->names) {
        sn_error("%s: --names goes with --pattern (file-name labels); folder and CSV sets name their classes", o->root);
        r = -1;
    } else {
        if (o->task && strcmp(o->task, "single")) {
            sn_error("%s: task '%s': a folder-per-class data set is single-label (task single)", o->root, o->task);
            r = -1;
        } else {
            r = open_folders(&b, o);
            if (r == 0) ds->task = xstrdup("single");
        }
    }
    builder_free(&b);
    if (r == 0 && o->valid_list) {
        /* re-mark from the list on the finished items */
        builder vb = {.ds = ds, .strict = o->strict};
        vb.n = ds->n_items;
        vb.items = calloc((size_t)ds->n_items, sizeof(raw_item));
        if (!vb.items) r = sn_error("out of memory");
        for (int i = 0; r == 0 && i < ds->n_items; i++) vb.items[i].rel = ds->items[i].rel;
        if (r == 0) r = apply_valid_list(&vb, o->valid_list);
        for (int i = 0; r == 0 && i < ds->n_items; i++) ds->items[i].valid = vb.items[i].valid;
        if (r == 0) ds->fixed_split = true;
        free(vb.items);
    }
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
    free(ds);
}

/* ------------------------------------------------------------------ decoding into the cache */

static int shrink(image *im, int max_side) {
    int s = im->w < im->h ? im->w : im->h;
    if (max_side <= 0 || s <= max_side) return 0;
    int w = im->w == s ? max_side : (int)lround((double)im->w * max_side / s);
    int h = im->h == s ? max_side : (int)lround((double)im->h * max_side / s);
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    image small;
    if (image_resize(im, w, h, &small) < 0) return -1;
    image_free(im);
    *im = small;
    return 0;
}

int ds_image(const dataset *ds, int i, image *out, bool *owned) {
    const ds_item *it = &ds->items[i];
    if (it->cache.rgb) {
        *out = it->cache;
        *owned = false;
        return 0;
    }
    *owned = true;
    if (image_load(it->path, out) < 0) return -1;
    if (shrink(out, ds->max_side) < 0) {
        image_free(out);
        return sn_error_prefix("%s", it->path);
    }
    return 0;
}

typedef struct {
    dataset *ds;
    atomic_int next;
    atomic_size_t bytes;
    size_t budget;
    char **err; /* per item: message when decoding failed */
    atomic_int oom;
} decode_job;

static void *decode_worker(void *arg) {
    decode_job *j = arg;
    dataset *ds = j->ds;
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= ds->n_items) break;
        ds_item *it = &ds->items[i];
        image im;
        if (image_load(it->path, &im) < 0 || shrink(&im, ds->max_side) < 0) {
            if (!(j->err[i] = xstrdup(sn_last_error()))) atomic_store(&j->oom, 1);
            continue;
        }
        size_t sz = (size_t)im.w * im.h * 3;
        size_t before = atomic_fetch_add(&j->bytes, sz);
        if (before + sz > j->budget) {
            atomic_fetch_sub(&j->bytes, sz);
            image_free(&im); /* over the budget: this one is decoded from disk when needed */
        } else {
            it->cache = im;
        }
    }
    return NULL;
}

int ds_decode(dataset *ds, const ds_decode_opts *o) {
    ds_decode_opts d = o ? *o : (ds_decode_opts){0};
    if (!d.budget_bytes) d.budget_bytes = (size_t)2 << 30;
    if (d.max_side <= 0) d.max_side = 256;
    if (d.n_threads <= 0) d.n_threads = 2;
    if (d.n_threads > 64) d.n_threads = 64;
    for (int i = 0; i < ds->n_items; i++) image_free(&ds->items[i].cache);
    ds->max_side = d.max_side;
    decode_job j = {.ds = ds, .budget = d.budget_bytes};
    atomic_init(&j.next, 0);
    atomic_init(&j.bytes, 0);
    atomic_init(&j.oom, 0);
    j.err = calloc((size_t)(ds->n_items ? ds->n_items : 1), sizeof(char *));
    if (!j.err) return sn_error("out of memory");
    pthread_t th[64];
    int started = 0;
    for (int t = 1; t < d.n_threads; t++)
        if (pthread_create(&th[started], NULL, decode_worker, &j) == 0) started++;
    decode_worker(&j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    int r = atomic_load(&j.oom) ? sn_error("out of memory") : 0;
    const int n0 = ds->n_items;
    /* bad images: fatal (strict) or reported and dropped, in item order */
    for (int i = 0; i < n0 && r == 0; i++) {
        if (!j.err[i]) continue;
        if (d.strict) {
            r = sn_error("%s", j.err[i]);
            break;
        }
        char msg[1200];
        snprintf(msg, sizeof msg, "%s; image skipped", j.err[i]);
        char **p = realloc(ds->problems, sizeof(char *) * (size_t)(ds->n_problems + 1));
        if (p) ds->problems = p;
        if (!p || !(p[ds->n_problems] = xstrdup(msg))) {
            r = sn_error("out of memory");
            break;
        }
        ds->n_problems++;
        ds->n_skipped++;
    }
    if (r == 0) { /* compact */
        int keep = 0;
        for (int i = 0; i < n0; i++) {
            if (j.err[i]) {
                free(ds->items[i].path);
                free(ds->items[i].rel);
                continue;
            }
            if (keep != i) {
                ds->items[keep] = ds->items[i];
                memmove(ds->hot + (size_t)keep * ds->n_classes, ds->hot + (size_t)i * ds->n_classes,
                        (size_t)ds->n_classes);
            }
            keep++;
        }
        ds->n_items = keep;
        if (keep == 0) r = sn_error("%s: no image could be decoded", ds->root);
    } else {
        for (int i = 0; i < n0; i++) image_free(&ds->items[i].cache);
    }
    for (int i = 0; i < n0; i++) free(j.err[i]);
    free(j.err);
    ds->cache_bytes = 0;
    ds->n_cached = 0;
    for (int i = 0; i < ds->n_items; i++)
        if (ds->items[i].cache.rgb) {
            ds->cache_bytes += (size_t)ds->items[i].cache.w * ds->items[i].cache.h * 3;
            ds->n_cached++;
        }
    return r;
}

/* ------------------------------------------------------------------ split */

enum { STREAM_SPLIT = 0x5917 };

typedef struct {
    const dataset *ds;
    uint64_t seed;
} split_ctx;

static _Thread_local const split_ctx *g_split; /* qsort has no context argument */

static uint64_t split_key(int i) { return rng_u64(g_split->seed, STREAM_SPLIT, (uint64_t)i); }

/* by target row (the stratum), then by the seeded random key */
static int cmp_stratum(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    const dataset *ds = g_split->ds;
    int c = memcmp(ds_hot(ds, i), ds_hot(ds, j), (size_t)ds->n_classes);
    if (c) return c;
    uint64_t ki = split_key(i), kj = split_key(j);
    return ki < kj ? -1 : ki > kj ? 1 : i - j;
}

static int cmp_random(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    uint64_t ki = split_key(i), kj = split_key(j);
    return ki < kj ? -1 : ki > kj ? 1 : i - j;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

typedef struct {
    int start, n, take;
    double frac;
    uint64_t tie;
} stratum;

static int cmp_frac(const void *a, const void *b) {
    const stratum *x = a, *y = b;
    if (x->frac != y->frac) return x->frac > y->frac ? -1 : 1;
    return x->tie < y->tie ? -1 : x->tie > y->tie ? 1 : x->start - y->start;
}

int ds_make_split(const dataset *ds, uint64_t seed, float valid_pct, bool stratify, ds_split *out) {
    memset(out, 0, sizeof *out);
    int n = ds->n_items;
    out->train = malloc(sizeof(int) * (size_t)(n ? n : 1));
    out->valid = malloc(sizeof(int) * (size_t)(n ? n : 1));
    int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
    char *is_valid = calloc((size_t)(n ? n : 1), 1);
    stratum *st = NULL;
    int r = 0;
    if (!out->train || !out->valid || !order || !is_valid) {
        r = sn_error("out of memory");
        goto done;
    }
    if (ds->fixed_split) {
        for (int i = 0; i < n; i++) is_valid[i] = ds->items[i].valid == 1;
    } else {
        if (!(valid_pct >= 0 && valid_pct < 1)) {
            r = sn_error("validation fraction %g is outside [0, 1)", (double)valid_pct);
            goto done;
        }
        int V = (int)lround((double)n * valid_pct);
        split_ctx ctx = {ds, seed};
        g_split = &ctx;
        for (int i = 0; i < n; i++) order[i] = i;
        bool done_strat = false;
        if (stratify && V > 0) {
            qsort(order, (size_t)n, sizeof(int), cmp_stratum);
            int ns = 0, in_singletons = 0;
            st = malloc(sizeof(stratum) * (size_t)n);
            if (!st) {
                r = sn_error("out of memory");
                goto done;
            }
            for (int i = 0; i < n;) {
                int k = i + 1;
                while (k < n && !memcmp(ds_hot(ds, order[i]), ds_hot(ds, order[k]), (size_t)ds->n_classes)) k++;
                st[ns++] = (stratum){.start = i, .n = k - i};
                if (k - i == 1) in_singletons++;
                i = k;
            }
            /* "where classes allow": not when most items are alone in their stratum */
            if (in_singletons * 2 <= n) {
                int given = 0;
                for (int s = 0; s < ns; s++) {
                    double q = (double)st[s].n * V / n;
                    int base = (int)floor(q);
                    if (base > st[s].n - 1) base = st[s].n - 1;
                    st[s].take = base;
                    st[s].frac = q - base;
                    st[s].tie = rng_u64(seed, STREAM_SPLIT + 1, (uint64_t)order[st[s].start]);
                    given += base;
                }
                qsort(st, (size_t)ns, sizeof(stratum), cmp_frac);
                for (int pass = 0; pass < 2 && given < V; pass++)
                    for (int s = 0; s < ns && given < V; s++)
                        if (st[s].take < st[s].n - 1 && (pass == 1 || st[s].frac > 0)) {
                            st[s].take++;
                            given++;
                        }
                for (int s = 0; s < ns; s++)
                    for (int k = 0; k < st[s].take; k++) is_valid[order[st[s].start + k]] = 1;
                done_strat = true;
                out->stratified = true;
            }
        }
        if (!done_strat) {
            qsort(order, (size_t)n, sizeof(int), cmp_random);
            for (int k = 0; k < V; k++) is_valid[order[k]] = 1;
        }
        g_split = NULL;
    }
    for (int i = 0; i < n; i++) {
        if (is_valid[i]) out->valid[out->n_valid++] = i;
        else out->train[out->n_train++] = i;
    }
    qsort(out->train, (size_t)out->n_train, sizeof(int), cmp_int);
    qsort(out->valid, (size_t)out->n_valid, sizeof(int), cmp_int);
done:
    free(order);
    free(is_valid);
    free(st);
    if (r < 0) ds_split_free(out);
    return r;
}

void ds_split_free(ds_split *s) {
    free(s->train);
    free(s->valid);
    memset(s, 0, sizeof *s);
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
