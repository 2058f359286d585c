/* convert.c - any weights file as safetensors (see convert.h). */
#include "classifier/convert.h"
#include "classifier/classifier.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "io/tflite_net.h"
#include "io/weights.h"

/* every tensor and metadata entry of f into a new safetensors file at out */
static int copy_st(const st_file *f, const char *out) {
    st_writer *w = st_writer_new();
    if (!w) return sn_error("%s: out of memory", out);
    int r = 0;
    for (size_t i = 0; i < st_count(f) && r == 0; i++) {
        const st_tensor *t = st_tensor_at(f, i);
        r = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    for (size_t i = 0; i < st_meta_count(f) && r == 0; i++) r = st_writer_meta(w, st_meta_key(f, i), st_meta_value(f, i));
    if (r == 0) r = st_writer_save(w, out);
    st_writer_free(w);
    return r < 0 ? -1 : 0;
}

int classifier_convert(const char *in, const char *out, const char *labels) {
    if (tflite_is_file(in)) {
        classifier_load_opts lo = {.labels = labels};
        classifier *c = classifier_load(in, &lo);
        if (!c) return -1;
        int r = classifier_save(c, out);
        classifier_free(c);
        return r < 0 ? -1 : 0;
    }
    st_file *f = weights_open_st(in);
    if (!f) return -1;
    int r = copy_st(f, out);
    st_close(f);
    return r;
}
