/* libFuzzer harness for io/pth (PyTorch checkpoints, zip and legacy): open from memory; a refusal
 * must name the input; an opened file is walked completely (every tensor found by name, shape
 * product equal to numel, exactly one of the float / int64 arrays, every value read).
 * Build and run: make fuzz (see the end of the Makefile). */
#include "core/error.h"
#include "io/pth.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(c)                                                                 \
    do {                                                                           \
        if (!(c)) {                                                                \
            fprintf(stderr, "fuzz_pth: %s:%d: %s\n", __FILE__, __LINE__, #c);      \
            abort();                                                               \
        }                                                                          \
    } while (0)

static volatile double sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pth_file *f = pth_open_mem(data, size, "fuzz.pth");
    if (!f) {
        const char *e = sn_last_error();
        REQUIRE(e && strncmp(e, "fuzz.pth", 8) == 0);
        return 0;
    }
    REQUIRE(f->format == pth_detect(data, size) && f->format != PTH_NOT);
    double acc = 0;
    for (size_t i = 0; i < f->n; i++) {
        const pth_tensor *t = &f->t[i];
        REQUIRE(t->name && pth_find(f, t->name) == t);
        REQUIRE(t->ndim >= 0 && t->ndim <= PTH_MAX_DIMS);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->shape[d];
        REQUIRE(numel == t->numel);
        REQUIRE((t->f32 == NULL) != (t->i64 == NULL));
        for (size_t k = 0; k < t->numel; k++) acc += t->f32 ? (double)t->f32[k] : (double)t->i64[k];
    }
    sink = acc;
    pth_close(f);
    return 0;
}
