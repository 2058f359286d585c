/* state.c - see state.h for the contract. */
#include "io/state.h"
#include "io/weights.h"
#include "core/error.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char NBT[] = ".num_batches_tracked";

/* name starts with one of the comma-separated prefixes in list ("" matches everything) */
static bool under(const char *list, const char *name) {
    if (!list) return false;
    if (!list[0]) return true;
    const char *p = list;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || strncmp(name, p, n) == 0) return true;
        if (!e) return false;
        p = e + 1;
    }
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *s) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, i ? ",%lld" : "%lld", (long long)s[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* BN node whose num_batches_tracked tensor this is, or -1 */
static int bn_of(const net *m, const char *tensor) {
    size_t n = strlen(tensor), k = sizeof NBT - 1;
    if (n <= k || strcmp(tensor + n - k, NBT) != 0) return -1;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == OP_BN && strlen(m->nodes[i].name) == n - k && strncmp(m->nodes[i].name, tensor, n - k) == 0)
            return i;
    return -1;
}

static bool is_float(st_dtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64; }

typedef struct { int problems; const char *file; } errs;

/* records the first problem as the error message, counts the rest */
static void problem(errs *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(errs *e, const char *fmt, ...) {
    if (e->problems++ == 0) {
        char msg[768];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        sn_error("%s: %s", e->file, msg);
    }
}

int net_load_st(net *m, const st_file *f, const net_load_opts *opts) {
    static const net_load_opts strict = {NULL, NULL};
    if (!opts) opts = &strict;
    errs e = {0, st_filename(f)};
    int loaded = 0;
    /* pass 1: check everything */
    for (int i = 0; i < m->n_params; i++) {
        const param *p = &m->params[i];
        int64_t want[4];
        for (int d = 0; d < p->ndim; d++) want[d] = p->shape[d];
        char ws[96], gs[160];
        shape_str(ws, sizeof ws, p->ndim, want);
        const st_tensor *t = st_find(f, p->name);
        if (!t) {
            if (!under(opts->allow_missing, p->name)) problem(&e, "missing tensor '%s' (expected shape %s)", p->name, ws);
            continue;
        }
        bool same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == want[d];
        if (!same) {
            shape_str(gs, sizeof gs, t->ndim, t->shape);
            problem(&e, "tensor '%s' has shape %s, expected %s", p->name, gs, ws);
        } else if (!is_float(t->dtype))
            problem(&e, "tensor '%s' has dtype %s, expected a floating-point dtype", p->name, st_dtype_name(t->dtype));
        else
            loaded++;
    }
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_tensor_at(f, i);
        if (net_find_param(m, t->name) >= 0) continue;
        if (bn_of(m, t->name) >= 0) {
            if (is_float(t->dtype) || t->numel != 1 || t->ndim > 1) {
                char gs[160];
                shape_str(gs, sizeof gs, t->ndim, t->shape);
                problem(&e, "tensor '%s' is %s %s, expected a 0-dim integer tensor", t->name, st_dtype_name(t->dtype), gs);
            }
            continue;
        }
        if (!under(opts->ignore_extra, t->name)) {
            char gs[160];
            shape_str(gs, sizeof gs, t->ndim, t->shape);
            problem(&e, "unexpected tensor '%s' %s: not a parameter of the %s network", t->name, gs,
                    m->arch[0] ? m->arch : "(unnamed)");
        }
    }
    if (e.problems > 1) {
        char first[1024];
        snprintf(first, sizeof first, "%s", sn_last_error());
        sn_error("%s (and %d more problem%s)", first, e.problems - 1, e.problems > 2 ? "s" : "");
    }
    if (e.problems) return -1;
    /* pass 2: copy (conversions cannot fail now, except out of memory) */
    float *tmp = NULL;
    size_t tmp_n = 0;
    for (int i = 0; i < m->n_params; i++) {
        const param *p = &m->params[i];
        const st_tensor *t = st_find(f, p->name);
        if (!t) continue;
        float *dst = m->data + p->off;
        if (!p->ohwi) {
            if (st_read_f32(f, t, dst, p->numel) < 0) { free(tmp); return -1; }
            continue;
        }
        if (tmp_n < p->numel) {
            free(tmp);
            tmp = malloc(p->numel * sizeof(float));
            tmp_n = tmp ? p->numel : 0;
            if (!tmp) return sn_error("%s: out of memory loading '%s'", e.file, p->name);
        }
        if (st_read_f32(f, t, tmp, p->numel) < 0) { free(tmp); return -1; }
        int O = p->shape[0], I = p->shape[1], KH = p->shape[2], KW = p->shape[3];
        for (int o = 0; o < O; o++)
            for (int c = 0; c < I; c++)
                for (int y = 0; y < KH; y++)
                    for (int x = 0; x < KW; x++)
                        dst[(((size_t)o * KH + y) * KW + x) * I + c] = tmp[(((size_t)o * I + c) * KH + y) * KW + x];
    }
    free(tmp);
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_tensor_at(f, i);
        int nd = net_find_param(m, t->name) >= 0 ? -1 : bn_of(m, t->name);
        if (nd < 0) continue;
        int64_t v;
        if (st_read_i64(f, t, &v, 1) < 0) return -1;
        m->nodes[nd].tracked = v;
    }
    return loaded;
}

int net_load_safetensors(net *m, const char *path, const net_load_opts *opts) {
    st_file *f = weights_open_st(path);
    if (!f) return -1;
    int r = net_load_st(m, f, opts);
    st_close(f);
    return r;
}

int net_add_to_writer(const net *m, st_writer *w) {
    float *tmp = NULL;
    size_t tmp_n = 0;
    for (int i = 0; i < m->n_params; i++) {
        const param *p = &m->params[i];
        int64_t shape[4];
        for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
        const float *src = m->data + p->off;
        if (p->ohwi) {
            if (tmp_n < p->numel) {
                free(tmp);
                tmp = malloc(p->numel * sizeof(float));
                tmp_n = tmp ? p->numel : 0;
                if (!tmp) return sn_error("out of memory saving '%s'", p->name);
            }
            int O = p->shape[0], I = p->shape[1], KH = p->shape[2], KW = p->shape[3];
            for (int o = 0; o < O; o++)
                for (int y = 0; y < KH; y++)
                    for (int x = 0; x < KW; x++)
                        for (int c = 0; c < I; c++)
                            tmp[(((size_t)o * I + c) * KH + y) * KW + x] = src[(((size_t)o * KH + y) * KW + x) * I + c];
            src = tmp;
        }
        if (st_writer_add_f32(w, p->name, p->ndim, shape, src) < 0) {
            free(tmp);
            return -1;
        }
    }
    free(tmp);
    for (int i = 0; i < m->n_nodes; i++) {
        const node *d = &m->nodes[i];
        if (d->op != OP_BN) continue;
        char name[sizeof d->name + sizeof NBT];
        snprintf(name, sizeof name, "%s%s", d->name, NBT);
        int64_t v = d->tracked;
        if (st_writer_add(w, name, ST_I64, 0, NULL, &v) < 0) return -1;
    }
    return 0;
}

int net_save_safetensors(const net *m, const char *path, const char *const *meta, int n_meta) {
    st_writer *w = st_writer_new();
    if (!w) return sn_error_prefix("%s", path);
    int r = net_add_to_writer(m, w);
    for (int i = 0; r == 0 && i < n_meta; i++) r = st_writer_meta(w, meta[2 * i], meta[2 * i + 1]);
    if (r < 0) sn_error_prefix("%s", path);
    else r = st_writer_save(w, path);
    st_writer_free(w);
    return r;
}
