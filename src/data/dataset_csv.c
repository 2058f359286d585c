/* dataset_csv.c - the CSV layout: a file column and a labels column of tags.  See dataset.h. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "data/dataset_build.h"

/* one CSV record (RFC 4180: quotes, "" inside quotes, CRLF); appends its fields, advances *p
 * and counts the lines it spans in *line */
static int csv_record(const char **p, ds_strlist *fields, int *line) {
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
        if (ds_sl_push(fields, cell) < 0) {
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

/* the column `want` (header name or 0-based number), else the first header among defaults,
 * else column `fallback` */
static int pick_col(const ds_strlist *hdr, const char *want, const char *const *defaults, int fallback,
                    const char *csv, const char *what) {
    if (want) {
        char *end;
        long v = strtol(want, &end, 10);
        if (*want && !*end) {
            if (v < 0 || v >= hdr->n)
                return sn_error("%s: has %d columns; %s column %ld does not exist", csv, hdr->n, what, v);
            return (int)v;
        }
        int c = ds_sl_find(hdr, want);
        if (c < 0) return sn_error("%s: no column named '%s' in the header (for the %s)", csv, want, what);
        return c;
    }
    for (int k = 0; defaults[k]; k++) {
        int c = ds_sl_find(hdr, defaults[k]);
        if (c >= 0) return c;
    }
    if (fallback >= hdr->n) return sn_error("%s: needs at least %d columns for the %s", csv, fallback + 1, what);
    return fallback;
}

/* what reading the rows keeps */
typedef struct {
    const char *csv;    /* the CSV file, as messages name it */
    const char *base;   /* the folder the file names are relative to */
    int fc, lc;         /* file and labels columns */
    char delim;         /* tag separator */
    ds_strlist classes; /* tags in order of appearance */
    ds_strlist seen;    /* file names of the rows kept so far */
    int *seen_line, seen_cap;
    int *tags, cap_tags; /* the current row's tag indices */
    bool any_multi;      /* some row has several tags */
} csv_state;

static void csv_state_free(csv_state *st) {
    ds_sl_free(&st->classes);
    ds_sl_free(&st->seen);
    free(st->seen_line);
    free(st->tags);
}

/* the file and labels columns from the header */
static int csv_columns(const ds_strlist *hdr, const ds_options *o, csv_state *st) {
    static const char *const fdef[] = {"file", "name", "fname", "filename", "image", "image_name", "path", NULL};
    static const char *const ldef[] = {"labels", "tags", "label", "tag", "class", NULL};
    st->fc = pick_col(hdr, o->file_col, fdef, 0, st->csv, "file names");
    if (st->fc < 0) return -1;
    st->lc = pick_col(hdr, o->label_col, ldef, st->fc == 0 ? 1 : 0, st->csv, "labels");
    if (st->lc < 0) return -1;
    if (st->fc == st->lc) return sn_error("%s: the file and label columns are the same (%d)", st->csv, st->fc);
    return 0;
}

/* splits a labels cell on the delimiter (and spaces) into distinct tag indices st->tags[*nt],
 * adding new tags to st->classes; lab is cut up in place */
static int csv_tags(csv_state *st, char *lab, int *nt) {
    *nt = 0;
    for (char *t = lab; *t;) {
        while (*t == st->delim || *t == ' ') t++;
        if (!*t) break;
        char *e = t;
        while (*e && *e != st->delim) e++;
        char save = *e;
        *e = 0;
        size_t m = strlen(t);
        while (m && t[m - 1] == ' ') t[--m] = 0;
        int c = ds_sl_find(&st->classes, t);
        if (c < 0) {
            if (ds_sl_push(&st->classes, t) < 0) return -1;
            c = st->classes.n - 1;
        }
        bool dup = false;
        for (int k = 0; k < *nt; k++) dup |= st->tags[k] == c;
        if (!dup) {
            if (*nt == st->cap_tags) {
                int *ntg = realloc(st->tags, sizeof(int) * (size_t)st->cap_tags * 2);
                if (!ntg) return sn_error("out of memory");
                st->tags = ntg;
                st->cap_tags *= 2;
            }
            st->tags[(*nt)++] = c;
        }
        *e = save;
        t = save ? e + 1 : e;
    }
    return 0;
}

/* remembers a kept row's file name and line, for the duplicates that follow */
static int csv_seen(csv_state *st, const char *file, int at) {
    if (st->seen.n == st->seen_cap) {
        int cap = st->seen_cap ? st->seen_cap * 2 : 1024;
        int *nl = realloc(st->seen_line, sizeof(int) * (size_t)cap);
        if (!nl) return sn_error("out of memory");
        st->seen_line = nl;
        st->seen_cap = cap;
    }
    if (ds_sl_push(&st->seen, file) < 0) return -1;
    st->seen_line[st->seen.n - 1] = at;
    return 0;
}

/* one data row (line `at`): an item, or a problem (short row, no file name, duplicate, missing
 * file) and the row skipped */
static int csv_row(ds_builder *b, csv_state *st, ds_strlist *row, int at) {
    dataset *ds = b->ds;
    if (row->n <= st->fc || row->n <= st->lc) {
        ds->n_skipped++;
        return ds_problem(b, "%s:%d: %d columns, expected at least %d; row skipped", st->csv, at, row->n,
                          (st->fc > st->lc ? st->fc : st->lc) + 1);
    }
    const char *file = row->v[st->fc];
    if (!file[0]) {
        ds->n_skipped++;
        return ds_problem(b, "%s:%d: empty file name; row skipped", st->csv, at);
    }
    int prev = ds_sl_find(&st->seen, file);
    if (prev >= 0) {
        ds->n_skipped++;
        return ds_problem(b, "%s:%d: duplicate of line %d ('%s'); row skipped", st->csv, at, st->seen_line[prev],
                          file);
    }
    if (csv_seen(st, file, at) < 0) return -1;
    char *full = ds_join(st->base, file);
    if (!full) return sn_error("out of memory");
    if (!ds_is_file(full)) {
        ds->n_skipped++;
        int r = ds_problem(b, "%s:%d: '%s' names a missing file (%s); row skipped", st->csv, at, file, full);
        free(full);
        return r;
    }
    free(full);
    int nt;
    if (csv_tags(st, row->v[st->lc], &nt) < 0) return -1;
    if (nt > 1) st->any_multi = true;
    if (ds_add_item(b, file, st->tags, nt, -1) < 0) return -1;
    b->items[b->n - 1].line = at;
    return 0;
}

/* every row after the header, in order */
static int csv_rows(ds_builder *b, csv_state *st, const char *p, int line) {
    ds_strlist row = {0};
    int r = 0;
    while (*p && r == 0) {
        int at = line;
        for (int i = 0; i < row.n; i++) free(row.v[i]);
        row.n = 0;
        if ((r = csv_record(&p, &row, &line)) < 0) break;
        if (row.n == 1 && !row.v[0][0]) continue; /* blank line */
        r = csv_row(b, st, &row, at);
    }
    ds_sl_free(&row);
    return r;
}

/* single-label: a row without a label is a problem and skipped (for tags none apply, fine) */
static int csv_drop_unlabelled(ds_builder *b, const csv_state *st) {
    int keep = 0, r = 0;
    for (int i = 0; i < b->n; i++) {
        if (b->items[i].n_tags == 0) {
            if (r == 0)
                r = ds_problem(b, "%s:%d: '%s' has no label; row skipped", st->csv, b->items[i].line, b->items[i].rel);
            b->ds->n_skipped++;
            free(b->items[i].rel);
            free(b->items[i].tags);
            continue;
        }
        b->items[keep++] = b->items[i];
    }
    b->n = keep;
    return r;
}

/* the kind from the task and the rows: multi-label when asked for or when a row has several tags */
static int csv_kind(ds_builder *b, const csv_state *st, const char *task, ds_kind *kind) {
    if (task && strcmp(task, "single") && strcmp(task, "multi"))
        return sn_error("%s: task '%s' is not one of single, multi for a CSV data set", st->csv, task);
    *kind = st->any_multi ? DS_MULTI : DS_SINGLE;
    if (task && !strcmp(task, "multi")) *kind = DS_MULTI;
    if (*kind == DS_SINGLE) return csv_drop_unlabelled(b, st);
    if (task && !strcmp(task, "single") && st->any_multi)
        return sn_error("%s: --task single, but some rows have several labels (separated by '%c')", st->csv,
                        st->delim);
    return 0;
}

int ds_open_csv(ds_builder *b, const ds_options *o) {
    dataset *ds = b->ds;
    char *csv = ds_join(ds->root, o->csv);
    char *base = o->folder ? ds_join(ds->root, o->folder) : ds_strdup(ds->root);
    csv_state st = {.csv = csv, .base = base, .delim = o->label_delim ? o->label_delim : ' ', .cap_tags = 16};
    ds_strlist hdr = {0};
    char *text = NULL;
    int r = -1;
    if (!csv || !base) {
        sn_error("out of memory");
        goto done;
    }
    if (!(text = ds_read_text(csv))) goto done;
    const char *p = text;
    if (!strncmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    int line = 1;
    if (!*p) {
        sn_error("%s: empty CSV file", csv);
        goto done;
    }
    if (csv_record(&p, &hdr, &line) < 0 || csv_columns(&hdr, o, &st) < 0) goto done;
    if (!(st.tags = malloc(sizeof(int) * (size_t)st.cap_tags))) {
        sn_error("out of memory");
        goto done;
    }
    ds_kind kind = DS_SINGLE;
    if ((r = csv_rows(b, &st, p, line)) < 0 || (r = csv_kind(b, &st, o->task, &kind)) < 0 ||
        (r = ds_sort_classes(b, &st.classes)) < 0)
        goto done;
    char desc[PATH_MAX + 128];
    snprintf(desc, sizeof desc, "CSV %s (file column '%s', labels column '%s')", o->csv, hdr.v[st.fc], hdr.v[st.lc]);
    if (!(ds->layout = ds_strdup(desc))) r = sn_error("out of memory");
    if (r == 0) r = ds_finish(b, &st.classes, NULL, NULL, kind, base, csv);
done:
    ds_sl_free(&hdr);
    csv_state_free(&st);
    free(text);
    free(csv);
    free(base);
    return r;
}
