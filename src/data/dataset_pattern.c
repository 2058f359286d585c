/* dataset_pattern.c - the file-name pattern layout ("{brand}_{product}_{n}.png": labels from the
 * file names, optionally named by a names file) and the Style preset.  See dataset.h. */
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "data/dataset_build.h"

#define MAX_FIELDS 8

/* ------------------------------------------------------------------ the pattern */

typedef struct {
    char *lit[MAX_FIELDS + 1]; /* literal before field k; lit[n_fields] = trailing literal */
    char *field[MAX_FIELDS];
    int n_fields;
    bool label[MAX_FIELDS];    /* false for the ignored fields: n, id, _x */
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

/* matches s from the start of field k (literal k already consumed): fields non-empty, shortest
 * match first, backtracking */
static bool pattern_match_at(const pattern *pt, const char *s, int k, char vals[][256]) {
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

/* the field values of name in vals[field], when it matches */
static bool pattern_match(const pattern *pt, const char *name, char vals[][256]) {
    size_t n0 = strlen(pt->lit[0]);
    if (strncmp(name, pt->lit[0], n0)) return false;
    if (pt->n_fields == 0) return !strcmp(name + n0, "");
    return pattern_match_at(pt, name + n0, 0, vals);
}

/* ------------------------------------------------------------------ the names file */

/* sections separated by blank lines, lines "Name" or "Name,index" (spaces and extra commas
 * around are ignored); each section's names ordered by index */
typedef struct {
    int n_sec;
    ds_strlist names[MAX_FIELDS];
    int *index[MAX_FIELDS];
} names_file;

static void names_free(names_file *nf) {
    for (int s = 0; s < MAX_FIELDS; s++) {
        ds_sl_free(&nf->names[s]);
        free(nf->index[s]);
    }
}

/* one non-blank line l (line number `line`) into section sec */
static int names_line(const char *path, int line, char *l, names_file *nf, int sec) {
    char *comma = strchr(l, ',');
    long idx = nf->names[sec].n;
    if (comma) {
        *comma = 0;
        char *tok = NULL, *save = NULL;
        for (char *t = strtok_r(comma + 1, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
            if (tok)
                return sn_error("%s:%d: expected 'name' or 'name,index', found more after the index", path, line);
            tok = t;
        }
        if (tok) {
            char *end;
            idx = strtol(tok, &end, 10);
            if (*end || idx < 0 || idx > 100000)
                return sn_error("%s:%d: '%s' is not an index (expected 'name' or 'name,index')", path, line, tok);
        }
    }
    char *name = ds_trim(l);
    if (!*name) return sn_error("%s:%d: empty name", path, line);
    for (int k = 0; k < nf->names[sec].n; k++)
        if (nf->index[sec][k] == idx) return sn_error("%s:%d: index %ld given twice in this section", path, line, idx);
    if (ds_sl_push(&nf->names[sec], name) < 0) return -1;
    int *ni = realloc(nf->index[sec], sizeof(int) * (size_t)nf->names[sec].n);
    if (!ni) return sn_error("out of memory");
    nf->index[sec] = ni;
    ni[nf->names[sec].n - 1] = (int)idx;
    return 0;
}

/* orders each section by index (insertion sort: stable) */
static void names_sort(names_file *nf) {
    for (int s = 0; s < nf->n_sec; s++) {
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
}

static int names_read(const char *path, names_file *nf) {
    memset(nf, 0, sizeof *nf);
    char *text = ds_read_text(path);
    if (!text) return -1;
    int r = 0, line = 0, sec = -1;
    bool in_section = false;
    for (char *p = text; *p && r == 0;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        line++;
        char *l = ds_trim(p);
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
        r = names_line(path, line, l, nf, sec);
    }
    free(text);
    nf->n_sec = sec + 1;
    if (r == 0 && nf->n_sec == 0) r = sn_error("%s: no names in it", path);
    if (r == 0) names_sort(nf);
    if (r < 0) names_free(nf);
    return r;
}

static bool all_digits(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

/* ------------------------------------------------------------------ the layout */

typedef struct {
    pattern pt;
    const char *pat;                   /* the pattern's text */
    const char *names_path;            /* the names file (a path to open as it is), NULL without one */
    names_file nf;
    int lf[MAX_FIELDS], n_lab;         /* the label fields: field index of each */
    ds_strlist vals[MAX_FIELDS];       /* without names file: each label field's values found */
    const ds_strlist *sec[MAX_FIELDS]; /* each label field's value names (nf or vals) */
    int (*vi)[MAX_FIELDS];             /* per matched file: value index of each label field */
    char **matched;                    /* the matched file names (pointing into the folder list) */
    int n_match;
    /* from the task */
    const char *tname;
    ds_kind kind;
    int single_field;                  /* single-label on this label field, -1 otherwise */
    ds_strlist classes, gnames;
    int *group, *combo_of;
} pat_state;

static void pat_state_free(pat_state *st) {
    pattern_free(&st->pt);
    names_free(&st->nf);
    for (int k = 0; k < MAX_FIELDS; k++) ds_sl_free(&st->vals[k]);
    free(st->vi);
    free(st->matched);
    ds_sl_free(&st->classes);
    ds_sl_free(&st->gnames);
    free(st->group);
    free(st->combo_of);
}

/* reads the names file: one section per label field */
static int pat_names(pat_state *st) {
    const char *path = st->names_path;
    int r = names_read(path, &st->nf);
    if (r == 0 && st->nf.n_sec != st->n_lab)
        r = sn_error("%s: %d section%s of names (separated by blank lines), but the pattern '%s' has %d label "
                     "field%s",
                     path, st->nf.n_sec, st->nf.n_sec == 1 ? "" : "s", st->pat, st->n_lab, st->n_lab == 1 ? "" : "s");
    return r;
}

/* the value index of label field k's value val in file `file`: from the names file (by index
 * when val is a number, else by name; -1 and a problem when absent) or from the values found */
static int pat_value(ds_builder *b, pat_state *st, int k, const char *val, const char *file, int *idx) {
    *idx = -1;
    if (!st->names_path) {
        *idx = ds_sl_find(&st->vals[k], val);
        if (*idx >= 0) return 0;
        if (ds_sl_push(&st->vals[k], val) < 0) return -1;
        *idx = st->vals[k].n - 1;
        return 0;
    }
    const ds_strlist *sec = &st->nf.names[k];
    if (all_digits(val)) {
        long want = strtol(val, NULL, 10);
        for (int j = 0; j < sec->n; j++)
            if (st->nf.index[k][j] == want) *idx = j;
    }
    if (*idx < 0) *idx = ds_sl_find(sec, val);
    if (*idx >= 0) return 0;
    b->ds->n_skipped++;
    return ds_problem(b, "%s/%s: %s '%s' is not in the names file %s; image skipped", b->ds->root, file,
                      st->pt.field[st->lf[k]], val, st->names_path);
}

/* the files matching the pattern, with their label fields' value indices */
static int pat_match_files(ds_builder *b, pat_state *st, const ds_strlist *files) {
    st->vi = malloc(sizeof(int[MAX_FIELDS]) * (size_t)(files->n ? files->n : 1));
    st->matched = calloc((size_t)(files->n ? files->n : 1), sizeof(char *));
    if (!st->vi || !st->matched) return sn_error("out of memory");
    for (int i = 0; i < files->n; i++) {
        char v[MAX_FIELDS][256];
        if (!pattern_match(&st->pt, files->v[i], v)) continue;
        bool ok = true;
        for (int k = 0; k < st->n_lab && ok; k++) {
            int idx;
            if (pat_value(b, st, k, v[st->lf[k]], files->v[i], &idx) < 0) return -1;
            ok = idx >= 0;
            st->vi[st->n_match][k] = idx;
        }
        if (ok) st->matched[st->n_match++] = files->v[i];
    }
    return 0;
}

/* without a names file: each field's values sorted (numerically when all are numbers) and the
 * files' value indices remapped */
static int pat_sort_values(pat_state *st) {
    for (int k = 0; k < st->n_lab; k++) {
        ds_strlist *vals = &st->vals[k];
        int n = vals->n;
        int *order = malloc(sizeof(int) * (size_t)(n ? n : 1)), *inv = malloc(sizeof(int) * (size_t)(n ? n : 1));
        char **v2 = malloc(sizeof(char *) * (size_t)(n ? n : 1));
        if (!order || !inv || !v2) {
            free(order);
            free(inv);
            free(v2);
            return sn_error("out of memory");
        }
        bool num = true;
        for (int j = 0; j < n; j++) {
            order[j] = j;
            num &= all_digits(vals->v[j]);
        }
        for (int a = 1; a < n; a++)
            for (int j = a; j > 0; j--) {
                const char *x = vals->v[order[j - 1]], *y = vals->v[order[j]];
                bool gt = num ? strtol(x, NULL, 10) > strtol(y, NULL, 10) : strcmp(x, y) > 0;
                if (!gt) break;
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        for (int j = 0; j < n; j++) {
            v2[j] = vals->v[order[j]];
            inv[order[j]] = j;
        }
        memcpy(vals->v, v2, sizeof(char *) * (size_t)n);
        for (int i = 0; i < st->n_match; i++) st->vi[i][k] = inv[st->vi[i][k]];
        free(v2);
        free(order);
        free(inv);
    }
    return 0;
}

/* task combo: one class per occurring combination of the fields' values, ordered by the
 * fields' indices, named by the values joined with spaces */
static int pat_combos(pat_state *st) {
    size_t m = (size_t)(st->n_match ? st->n_match : 1);
    int64_t *keys = malloc(sizeof(int64_t) * m), *uniq = malloc(sizeof(int64_t) * m);
    int *first = malloc(sizeof(int) * m), n_combo = 0, r = 0;
    st->combo_of = malloc(sizeof(int) * m);
    if (!keys || !uniq || !first || !st->combo_of) r = sn_error("out of memory");
    for (int i = 0; i < st->n_match && r == 0; i++) {
        int64_t key = 0;
        for (int k = 0; k < st->n_lab; k++) key = key * 100003 + st->vi[i][k];
        keys[i] = key;
        int j = 0;
        while (j < n_combo && uniq[j] != key) j++;
        if (j == n_combo) {
            uniq[n_combo] = key;
            first[n_combo++] = i;
        }
    }
    for (int a = 1; a < n_combo; a++) /* by key */
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
        for (int k = 0; k < st->n_lab; k++) {
            size_t L = strlen(name);
            snprintf(name + L, sizeof name - L, "%s%s", k ? " " : "", st->sec[k]->v[st->vi[first[c]][k]]);
        }
        r = ds_sl_push(&st->classes, name);
    }
    for (int i = 0; i < st->n_match && r == 0; i++) {
        int j = 0;
        while (uniq[j] != keys[i]) j++;
        st->combo_of[i] = j;
    }
    if (r == 0) r = ds_sl_push(&st->gnames, "combo");
    free(keys);
    free(uniq);
    free(first);
    return r;
}

/* task multi: every field's value names as tags, grouped by field */
static int pat_multi(pat_state *st) {
    int total = 0, r = 0;
    for (int k = 0; k < st->n_lab; k++) total += st->sec[k]->n;
    st->group = malloc(sizeof(int) * (size_t)(total ? total : 1));
    if (!st->group) return sn_error("out of memory");
    for (int k = 0; k < st->n_lab && r == 0; k++) {
        for (int j = 0; j < st->sec[k]->n && r == 0; j++) {
            st->group[st->classes.n] = k;
            r = ds_sl_push(&st->classes, st->sec[k]->v[j]);
        }
        if (r == 0) r = ds_sl_push(&st->gnames, st->pt.field[st->lf[k]]);
    }
    return r;
}

/* the classes for the task: a label field's name (single-label on it), "single" (with one label
 * field), "multi" or "combo" (with several); default multi with several fields */
static int pat_task(pat_state *st, const char *task) {
    const int n_lab = st->n_lab;
    st->kind = DS_SINGLE;
    st->single_field = -1;
    st->tname = task ? task : (n_lab > 1 ? "multi" : "single");
    for (int k = 0; k < n_lab; k++)
        if (!strcmp(st->tname, st->pt.field[st->lf[k]])) st->single_field = k;
    if (!strcmp(st->tname, "single") && n_lab == 1) st->single_field = 0;
    if (st->single_field >= 0) {
        const ds_strlist *sec = st->sec[st->single_field];
        for (int j = 0; j < sec->n; j++)
            if (ds_sl_push(&st->classes, sec->v[j]) < 0) return -1;
        return ds_sl_push(&st->gnames, st->pt.field[st->lf[st->single_field]]);
    }
    if (!strcmp(st->tname, "multi")) {
        st->kind = DS_MULTI;
        return pat_multi(st);
    }
    if (!strcmp(st->tname, "combo") && n_lab > 1) return pat_combos(st);
    char fields[512] = "";
    for (int k = 0; k < n_lab; k++) {
        size_t L = strlen(fields);
        snprintf(fields + L, sizeof fields - L, "%s, ", st->pt.field[st->lf[k]]);
    }
    return sn_error("task '%s' is not one of %s%s", st->tname, fields, n_lab > 1 ? "multi, combo" : "single");
}

/* one item per matched file with its tags for the task */
static int pat_add_items(ds_builder *b, const pat_state *st) {
    for (int i = 0; i < st->n_match; i++) {
        int tags[MAX_FIELDS], nt = 0, off = 0;
        if (st->single_field >= 0) tags[nt++] = st->vi[i][st->single_field];
        else if (st->combo_of) tags[nt++] = st->combo_of[i];
        else
            for (int k = 0; k < st->n_lab; k++) {
                tags[nt++] = off + st->vi[i][k];
                off += st->sec[k]->n;
            }
        if (ds_add_item(b, st->matched[i], tags, nt, -1) < 0) return -1;
    }
    return 0;
}

/* ds->layout and ds->task, then the dataset from the items */
static int pat_finish(ds_builder *b, pat_state *st, const char *preset) {
    dataset *ds = b->ds;
    char desc[PATH_MAX + 256], source[PATH_MAX + 256];
    snprintf(desc, sizeof desc, "%spattern %s%s%s", preset ? preset : "", st->pat, st->names_path ? ", names " : "",
             st->names_path ? st->names_path : "");
    free(ds->layout);
    free(ds->task);
    free(ds->pattern);
    ds->layout = ds_strdup(desc);
    ds->task = ds_strdup(st->tname);
    ds->pattern = ds_strdup(st->pat);
    if (!ds->layout || !ds->task || !ds->pattern) return sn_error("out of memory");
    snprintf(source, sizeof source, "%s (pattern %s, task %s)", ds->root, st->pat, st->tname);
    return ds_finish(b, &st->classes, st->group, &st->gnames, st->kind, ds->root, source);
}

int ds_open_pattern(ds_builder *b, const char *pat, const char *names_path, const char *task, const char *preset) {
    dataset *ds = b->ds;
    pat_state st = {.pat = pat, .names_path = names_path};
    ds_strlist files = {0};
    int r = pattern_parse(pat, &st.pt);
    if (r < 0) goto done;
    for (int f = 0; f < st.pt.n_fields; f++)
        if (st.pt.label[f]) st.lf[st.n_lab++] = f;
    if ((names_path && (r = pat_names(&st)) < 0) || (r = ds_list_dir(ds->root, false, &files)) < 0 ||
        (r = pat_match_files(b, &st, &files)) < 0 || (!names_path && (r = pat_sort_values(&st)) < 0))
        goto done;
    for (int k = 0; k < st.n_lab; k++) st.sec[k] = names_path ? &st.nf.names[k] : &st.vals[k];
    if ((r = pat_task(&st, task)) < 0 || (r = pat_add_items(b, &st)) < 0) goto done;
    if (st.n_match == 0) {
        r = sn_error("%s: no file name matches the pattern '%s'", ds->root, pat);
        goto done;
    }
    r = pat_finish(b, &st, preset);
done:
    pat_state_free(&st);
    ds_sl_free(&files);
    return r;
}

bool ds_is_style_layout(const char *root) {
    char *names = ds_join(root, "style.txt");
    bool ok = names && ds_is_file(names);
    free(names);
    if (!ok) return false;
    DIR *d = opendir(root);
    if (!d) return false;
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d)) != NULL) {
        int a, b, c, n = 0;
        found = sscanf(e->d_name, "%d_%d_%d.png%n", &a, &b, &c, &n) == 3 && n > 0 && e->d_name[n] == 0;
    }
    closedir(d);
    return found;
}
