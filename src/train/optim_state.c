/* optim_state.c - the optimiser's moments and step counts in a safetensors file (see optim.h).
 *
 * Each trainable parameter P (not a buffer) gets optim.m.P and, unless SGD, optim.v.P (float32,
 * numel elements); optim.t holds the step count of every parameter (int64, n_params). */
#include <stdio.h>
#include "core/error.h"
#include "train/optim.h"

int optim_add_to_writer(const optim *o, const net *m, st_writer *w) {
    char name[160];
    for (int i = 0; i < m->n_params; i++) {
        const param *p = &m->params[i];
        if (p->buffer) continue;
        int64_t shape[1] = {(int64_t)p->numel};
        snprintf(name, sizeof name, "optim.m.%s", p->name);
        if (st_writer_add_f32(w, name, 1, shape, o->m + p->off) < 0) return -1;
        if (o->v) {
            snprintf(name, sizeof name, "optim.v.%s", p->name);
            if (st_writer_add_f32(w, name, 1, shape, o->v + p->off) < 0) return -1;
        }
    }
    int64_t tshape[1] = {m->n_params};
    return st_writer_add(w, "optim.t", ST_I64, 1, tshape, o->t);
}

/* tensor name of f into dst[n] as float32; -1 naming it when missing or of another size */
static int read_moment(const st_file *f, const char *name, float *dst, size_t n) {
    const st_tensor *t = st_find(f, name);
    if (!t || st_read_f32(f, t, dst, n) < 0)
        return sn_error("%s: optimiser state '%s' missing or of the wrong size", st_filename(f), name);
    return 0;
}

int optim_load_st(optim *o, const net *m, const st_file *f) {
    char name[160];
    for (int i = 0; i < m->n_params; i++) {
        const param *p = &m->params[i];
        if (p->buffer) continue;
        snprintf(name, sizeof name, "optim.m.%s", p->name);
        if (read_moment(f, name, o->m + p->off, p->numel) < 0) return -1;
        if (o->v) {
            snprintf(name, sizeof name, "optim.v.%s", p->name);
            if (read_moment(f, name, o->v + p->off, p->numel) < 0) return -1;
        }
    }
    const st_tensor *tt = st_find(f, "optim.t");
    if (!tt || st_read_i64(f, tt, o->t, (size_t)m->n_params) < 0)
        return sn_error("%s: optimiser step counts missing", st_filename(f));
    return 0;
}
