/* weights.c - PyTorch checkpoints behind the safetensors accessors (see weights.h). */
#include "io/weights.h"
#include <stdio.h>
#include <stdlib.h>
#include "core/error.h"
#include "io/safetensors_internal.h"

st_file *pth_to_st(const pth_file *f, const char *name) {
    st_writer *w = st_writer_new();
    if (!w) return NULL;
    int r = 0;
    for (size_t i = 0; i < f->n && r == 0; i++) {
        const pth_tensor *t = &f->t[i];
        r = t->f32 ? st_writer_add_f32(w, t->name, t->ndim, t->shape, t->f32)
                   : st_writer_add(w, t->name, ST_I64, t->ndim, t->shape, t->i64);
    }
    char conv[32];
    snprintf(conv, sizeof conv, "%d", f->converted);
    if (r == 0 && f->converted) r = st_writer_meta(w, "pth.converted", conv);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (r == 0) r = st_writer_serialize(w, &buf, &len);
    st_writer_free(w);
    if (r < 0) {
        sn_error_prefix("%s", name);
        return NULL;
    }
    return st_open_owned(buf, len, name);
}

st_file *weights_open_st(const char *path) {
    if (pth_detect_file(path) == PTH_NOT) return st_open(path);
    pth_file *f = pth_open(path);
    if (!f) return NULL;
    st_file *s = pth_to_st(f, path);
    pth_close(f);
    return s;
}
