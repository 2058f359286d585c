/* libFuzzer harness for io/safetensors: open from memory, read every tensor and metadata entry,
 * look every name up, then rewrite the file with the writer and check that the rewrite reopens
 * to the same tensors and is a fixed point (serialising it again gives the same bytes).
 * Build and run: make fuzz (see the end of the Makefile). */
#include "core/error.h"
#include "io/safetensors.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(c)                                                              \
    do {                                                                        \
        if (!(c)) {                                                             \
            fprintf(stderr, "fuzz_safetensors: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                            \
        }                                                                       \
    } while (0)

static void read_all(const st_file *f) {
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_tensor_at(f, i);
        REQUIRE(t && t->name && t->name[0]);
        REQUIRE(st_find(f, t->name) == t);
        REQUIRE(t->nbytes == t->numel * st_dtype_size(t->dtype));
        switch (t->dtype) {
        case ST_F32: case ST_F16: case ST_BF16: case ST_F64: {
            float *o = malloc(t->numel * sizeof(float) + 1);
            REQUIRE(o);
            REQUIRE(st_read_f32(f, t, o, t->numel) == 0);
            REQUIRE(st_read_i64(f, t, (int64_t *)o, t->numel) < 0); /* wrong kind: error, no write */
            free(o);
            break;
        }
        default: {
            int64_t *o = malloc(t->numel * sizeof(int64_t) + 1);
            REQUIRE(o);
            (void)st_read_i64(f, t, o, t->numel); /* U64 > INT64_MAX fails cleanly */
            REQUIRE(st_read_f32(f, t, (float *)o, t->numel) < 0);
            free(o);
        }
        }
        if (t->numel) REQUIRE(st_read_f32(f, t, NULL, t->numel - 1) < 0); /* wrong count */
    }
    for (size_t i = 0; i < st_meta_count(f); i++) {
        const char *k = st_meta_key(f, i), *v = st_meta_value(f, i);
        REQUIRE(k && v && st_meta(f, k) == v);
    }
}

static st_writer *rewrite(const st_file *f) {
    st_writer *w = st_writer_new();
    REQUIRE(w);
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_tensor_at(f, i);
        REQUIRE(st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) == 0);
    }
    for (size_t i = 0; i < st_meta_count(f); i++)
        REQUIRE(st_writer_meta(w, st_meta_key(f, i), st_meta_value(f, i)) == 0);
    return w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file *f = st_open_mem(data, size, "fuzz.safetensors");
    if (!f) {
        const char *e = sn_last_error();
        REQUIRE(e && e[0] && strncmp(e, "fuzz.safetensors", 16) == 0);
        return 0;
    }
    read_all(f);
    st_writer *w = rewrite(f);
    uint8_t *b1, *b2;
    size_t n1, n2;
    REQUIRE(st_writer_serialize(w, &b1, &n1) == 0);
    st_file *g = st_open_mem(b1, n1, "rewrite");
    if (!g) fprintf(stderr, "%s\n", sn_last_error());
    REQUIRE(g);
    REQUIRE(st_count(g) == st_count(f) && st_meta_count(g) == st_meta_count(f));
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *a = st_tensor_at(f, i), *b = st_find(g, a->name);
        REQUIRE(b && b->dtype == a->dtype && b->ndim == a->ndim && b->nbytes == a->nbytes);
        REQUIRE(memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->ndim) == 0);
        REQUIRE(a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0);
    }
    st_writer *w2 = rewrite(g);
    REQUIRE(st_writer_serialize(w2, &b2, &n2) == 0);
    REQUIRE(n1 == n2 && memcmp(b1, b2, n1) == 0);
    free(b1);
    free(b2);
    st_writer_free(w);
    st_writer_free(w2);
    st_close(g);
    st_close(f);
    return 0;
}
