/* test_fuzz_corpus: every file of the fuzzing regression corpus (tests/fuzz/corpus/{safetensors,
 * tflite,pth}/: seeds, inputs that found new coverage, former crashers) goes through ALL readers;
 * each must either open (and then be walked completely: every tensor read / dequantised, every
 * op and index touched) or fail with a non-empty error message naming the input.  Run in the
 * ASan+UBSan build this replays the fuzzers' findings on every `make check-asan`. */
#include "../common/check.h"
#include "core/file.h"
#include "core/error.h"
#include "io/pth.h"
#include "io/safetensors.h"
#include "io/tflite.h"
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 1 opened, 0 failed with a message naming the input, -1 failed without */
static int try_safetensors(const uint8_t *b, size_t n, const char *name) {
    st_file *f = st_open_mem(b, n, name);
    if (!f) return sn_last_error()[0] && strstr(sn_last_error(), name) ? 0 : -1;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_tensor_at(f, i);
        void *o = malloc(t->numel * 8 + 8);
        if (st_read_f32(f, t, o, t->numel) < 0 && st_read_i64(f, t, o, t->numel) < 0 && t->dtype != ST_U64) {
            free(o);
            st_close(f);
            return -1; /* every non-U64 tensor converts one way or the other */
        }
        free(o);
        if (st_find(f, t->name) != t) {
            st_close(f);
            return -1;
        }
    }
    for (size_t i = 0; i < st_meta_count(f); i++)
        if (st_meta(f, st_meta_key(f, i)) != st_meta_value(f, i)) {
            st_close(f);
            return -1;
        }
    st_close(f);
    return 1;
}

static volatile unsigned long sink;

/* 1 opened and walked, 0 refused naming the input, -1 otherwise */
static int try_pth(const uint8_t *b, size_t n, const char *name) {
    pth_file *f = pth_open_mem(b, n, name);
    if (!f) return sn_last_error()[0] && strstr(sn_last_error(), name) ? 0 : -1;
    unsigned long acc = 0;
    bool ok = true;
    for (size_t i = 0; i < f->n; i++) {
        const pth_tensor *t = &f->t[i];
        ok = ok && pth_find(f, t->name) == t && (t->f32 == NULL) != (t->i64 == NULL);
        for (size_t k = 0; k < t->numel; k++) acc += t->f32 ? (unsigned long)(t->f32[k] != 0) : (unsigned long)t->i64[k];
    }
    pth_close(f);
    sink = acc;
    return ok ? 1 : -1;
}

static int try_tflite(const uint8_t *b, size_t n, const char *name) {
    tfl_model *m = tfl_open_mem(b, n, name);
    if (!m) return sn_last_error()[0] && strstr(sn_last_error(), name) ? 0 : -1;
    unsigned long acc = strlen(tfl_description(m));
    bool ok = true;
    for (int i = 0; i < tfl_num_metadata(m); i++) acc += strlen(tfl_metadata(m, i, NULL, NULL));
    for (int s = 0; s < tfl_num_subgraphs(m); s++) {
        const tfl_subgraph *g = tfl_subgraph_at(m, s);
        for (int i = 0; i < g->n_tensors; i++) {
            const tfl_tensor *t = &g->tensors[i];
            acc += strlen(t->name);
            for (size_t k = 0; k < t->data_len; k++) acc += t->data[k];
            int64_t e = tfl_numel(t);
            if (e < 0 || !t->data || (uint64_t)e > t->data_len) continue;
            float *o = malloc((size_t)e * 4 + 4);
            if (tfl_dequantize_tensor(m, t, o, (size_t)e) < 0 && !strstr(sn_last_error(), name)) ok = false;
            free(o);
        }
        for (int i = 0; i < g->n_ops; i++) {
            const tfl_op *o = &g->ops[i];
            for (int k = 0; k < o->n_inputs; k++)
                if (o->inputs[k] >= 0) acc += (unsigned long)g->tensors[o->inputs[k]].ndim;
            for (int k = 0; k < o->n_outputs; k++) acc += (unsigned long)g->tensors[o->outputs[k]].ndim;
            for (int k = 0; k < o->n_new_shape; k++) acc += (unsigned long)o->new_shape[k];
            acc += strlen(tfl_op_name(o->builtin)) + (o->custom_code ? strlen(o->custom_code) : 0);
        }
    }
    tfl_close(m);
    sink = acc;
    return ok ? 1 : -1;
}

/* every file of corpus/<kind>/ through every reader; k: 0 safetensors, 1 tflite, 2 pth (its own reader) */
static void corpus_kind(int k) {
    static const char *kinds[] = {"safetensors", "tflite", "pth"};
    char root[PATH_MAX];
    if (!check(find_repo_dir("tests/fuzz/corpus", root, sizeof root), "found tests/fuzz/corpus")) return;
    char dir[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/%s", root, kinds[k]);
    DIR *d = opendir(dir);
    if (!check(d != NULL, "open %s", dir)) return;
    int files = 0, bad = 0, opened[3] = {0, 0, 0};
    size_t bytes = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n;
        uint8_t *b = sn_read_file(path, &n, 0);
        if (!b) { bad++; continue; }
        files++;
        bytes += n;
        int a = try_safetensors(b, n, e->d_name), t = try_tflite(b, n, e->d_name), p = try_pth(b, n, e->d_name);
        if (a < 0 || t < 0 || p < 0) {
            bad++;
            note("%s: %s reader failed without a proper message", path,
                 a < 0 ? "safetensors" : t < 0 ? "tflite" : "pth");
        }
        opened[0] += a == 1;
        opened[1] += t == 1;
        opened[2] += p == 1;
        free(b);
    }
    closedir(d);
    check(files > 0 && bad == 0,
          "corpus/%s: %d files (%zu bytes) through every reader: each opens or fails with a named error "
          "(%d open as safetensors, %d as tflite, %d as pth, %d bad)",
          kinds[k], files, bytes, opened[0], opened[1], opened[2], bad);
    check(opened[k] > 0, "corpus/%s: some files (the seeds at least) open with their own reader (%d)", kinds[k], opened[k]);
}

static void case_safetensors(void) { corpus_kind(0); }
static void case_tflite(void) { corpus_kind(1); }
static void case_pth(void) { corpus_kind(2); }

static const test_case cases[] = {
    {"safetensors", case_safetensors},
    {"tflite", case_tflite},
    {"pth", case_pth},
};
TEST_MAIN(cases)
