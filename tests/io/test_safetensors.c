/* test_safetensors: io/safetensors.h against files written by Python's safetensors package
 * (tools/fixtures_io.py), our writer's output read back by Python ($STYLENET_PY), byte-identical
 * rewrites, every validation rule, truncated files, the atomic save, and the writer's walk of what
 * it would write in file order. */
#include "../common/check.h"
#include "core/file.h"
#include "core/error.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the fixtures' patterns (tools/fixtures_io.py) */
static double float_pattern(size_t i) { return ((double)i - 7) * 0.375; }
static int64_t int_pattern(size_t i, int64_t lo, int64_t hi) { return lo + ((int64_t)i * 7919 + 3) % (hi - lo + 1); }

static bool same_f32_bits(const float *a, const float *b, size_t n, size_t *bad) {
    *bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i])) continue;
        if (memcmp(&a[i], &b[i], 4) != 0) (*bad)++;
    }
    return *bad == 0;
}

static void test_python_dtypes(void) {
    const char *path = fixture_path("io_st_dtypes_np.safetensors");
    st_file *f = st_open(path);
    if (!check(f != NULL, "open numpy-written file with every dtype: %s", f ? "ok" : sn_last_error())) return;
    check(st_count(f) == 9 && st_meta_count(f) == 0, "9 tensors, no metadata (got %zu, %zu)", st_count(f), st_meta_count(f));
    const char *fl[] = {"f64", "f32", "f16"};
    st_dtype fd[] = {ST_F64, ST_F32, ST_F16};
    for (int k = 0; k < 3; k++) {
        const st_tensor *t = st_find(f, fl[k]);
        float out[24];
        bool ok = t && t->dtype == fd[k] && t->ndim == 3 && t->shape[0] == 2 && t->shape[1] == 3 && t->shape[2] == 4 &&
                  t->numel == 24 && st_read_f32(f, t, out, 24) == 0;
        for (size_t i = 0; ok && i < 24; i++) ok = out[i] == (float)float_pattern(i);
        check(ok, "%s: dtype, shape [2,3,4] and values exact", fl[k]);
    }
    struct { const char *n; st_dtype d; int64_t lo, hi; } in[] = {
        {"i64", ST_I64, -(1ll << 40), 1ll << 40}, {"i32", ST_I32, INT32_MIN, INT32_MAX}, {"i16", ST_I16, -32768, 32767},
        {"i8", ST_I8, -128, 127}, {"u8", ST_U8, 0, 255}, {"bool", ST_BOOL, 0, 1}};
    for (int k = 0; k < 6; k++) {
        const st_tensor *t = st_find(f, in[k].n);
        int64_t out[24];
        bool ok = t && t->dtype == in[k].d && t->numel == 24 && st_read_i64(f, t, out, 24) == 0;
        for (size_t i = 0; ok && i < 24; i++) ok = out[i] == int_pattern(i, in[k].lo, in[k].hi);
        check(ok, "%s: dtype and values exact", in[k].n);
    }
    const st_tensor *t = st_find(f, "i32");
    float fo[24];
    check(st_read_f32(f, t, fo, 24) < 0 && strstr(sn_last_error(), "'i32'") && strstr(sn_last_error(), path),
          "st_read_f32 on I32 is an error naming file and tensor: %s", sn_last_error());
    int64_t io[24];
    check(st_read_i64(f, st_find(f, "f32"), io, 24) < 0, "st_read_i64 on F32 is an error: %s", sn_last_error());
    check(st_read_f32(f, st_find(f, "f32"), fo, 23) < 0 && strstr(sn_last_error(), "24"),
          "wrong element count is an error: %s", sn_last_error());
    check(st_find(f, "nope") == NULL && st_tensor_at(f, 9) == NULL, "absent name / index give NULL");
    size_t prev = 0;
    bool ordered = true;
    for (size_t i = 0; i < st_count(f); i++) {
        ordered = ordered && st_tensor_at(f, i)->offset >= prev;
        prev = st_tensor_at(f, i)->offset;
    }
    check(ordered, "st_tensor_at walks in data order");
    st_close(f);
}

static void test_python_torch(void) {
    st_file *f = st_open(fixture_path("io_st_torch.safetensors"));
    if (!check(f != NULL, "open torch-written file (BF16, F16 patterns): %s", f ? "ok" : sn_last_error())) return;
    const st_tensor *t = st_find(f, "bf16");
    float out[24];
    bool ok = t && t->dtype == ST_BF16 && st_read_f32(f, t, out, 24) == 0;
    for (size_t i = 0; ok && i < 24; i++) ok = out[i] == (float)float_pattern(i);
    check(ok, "bf16 pattern exact");
    const char *pairs[][2] = {{"f16_all", "f16_all_ref"}, {"bf16_rand", "bf16_rand_ref"}, {"f64_rand", "f64_rand_ref"}};
    for (int k = 0; k < 3; k++) {
        const st_tensor *a = st_find(f, pairs[k][0]), *r = st_find(f, pairs[k][1]);
        if (!check(a && r && a->numel == r->numel && r->dtype == ST_F32, "%s present", pairs[k][0])) continue;
        float *x = malloc(a->numel * 4), *y = malloc(a->numel * 4);
        size_t bad = 0;
        ok = st_read_f32(f, a, x, a->numel) == 0 && st_read_f32(f, r, y, r->numel) == 0;
        check(ok && same_f32_bits(x, y, a->numel, &bad), "%s -> float32 bit-exact vs torch (%zu elements, %zu differ)",
              pairs[k][0], a->numel, bad);
        free(x);
        free(y);
    }
    st_close(f);
}

static void test_python_meta_empty(void) {
    st_file *f = st_open(fixture_path("io_st_meta.safetensors"));
    if (check(f != NULL, "open file with metadata: %s", f ? "ok" : sn_last_error())) {
        const char *q = st_meta(f, "quote");
        check(st_meta_count(f) == 4 && st_meta(f, "arch") && strcmp(st_meta(f, "arch"), "resnet34") == 0 &&
                  strcmp(st_meta(f, "classes"), "cat,dog") == 0 && strcmp(st_meta(f, "empty"), "") == 0 &&
                  q && strcmp(q, "a \"b\" \\ c\n\t\xc3\xa9\xe4\xb8\xad") == 0 && st_meta(f, "nope") == NULL,
              "metadata: 4 keys, escapes and UTF-8 decoded");
        st_close(f);
    }
    f = st_open(fixture_path("io_st_empty.safetensors"));
    if (check(f != NULL, "open file with empty tensors and scalars: %s", f ? "ok" : sn_last_error())) {
        const st_tensor *e = st_find(f, "empty"), *e1 = st_find(f, "empty1"), *s = st_find(f, "scalar"),
                        *si = st_find(f, "scalar_i64");
        float v = 0;
        int64_t iv = 0;
        check(e && e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 3 && e->numel == 0 && e->nbytes == 0 &&
                  st_read_f32(f, e, &v, 0) == 0 && e1 && e1->numel == 0,
              "empty tensors [0,3] and [0]: numel 0");
        check(s && s->ndim == 0 && s->numel == 1 && st_read_f32(f, s, &v, 1) == 0 && v == 2.5f, "scalar F32 = 2.5");
        check(si && si->ndim == 0 && st_read_i64(f, si, &iv, 1) == 0 && iv == 7, "scalar I64 = 7");
        st_close(f);
    }
    f = st_open(fixture_path("io_st_none.safetensors"));
    check(f && st_count(f) == 0 && st_meta_count(f) == 0, "file with no tensors opens, empty");
    st_close(f);
}

static st_writer *copy_to_writer(const st_file *f, bool with_meta) {
    st_writer *w = st_writer_new();
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_tensor_at(f, i);
        if (st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) < 0) { st_writer_free(w); return NULL; }
    }
    for (size_t i = 0; with_meta && i < st_meta_count(f); i++) st_writer_meta(w, st_meta_key(f, i), st_meta_value(f, i));
    return w;
}

static void test_byte_identical(void) {
    const char *files[] = {"io_st_dtypes_np.safetensors", "io_st_torch.safetensors", "io_st_meta1.safetensors",
                           "io_st_empty.safetensors", "io_st_none.safetensors"};
    for (int k = 0; k < 5; k++) {
        size_t n = 0, m = 0;
        uint8_t *ref = sn_read_file(fixture_path(files[k]), &n, 0), *ours = NULL;
        st_file *f = st_open(fixture_path(files[k]));
        st_writer *w = f ? copy_to_writer(f, true) : NULL;
        bool ok = ref && w && st_writer_serialize(w, &ours, &m) == 0 && m == n && memcmp(ours, ref, n) == 0;
        check(ok, "%s: read + rewrite is byte-identical to Python's file (%zu vs %zu bytes)", files[k], m, n);
        free(ref);
        free(ours);
        st_writer_free(w);
        st_close(f);
    }
    /* several metadata keys: Python's order is a hash map's, ours sorted; the rest is identical */
    st_file *f = st_open(fixture_path("io_st_meta.safetensors"));
    st_writer *w = f ? copy_to_writer(f, true) : NULL;
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    bool ok = w && st_writer_serialize(w, &b1, &n1) == 0;
    st_file *g = ok ? st_open_mem(b1, n1, "rewrite") : NULL;
    st_writer *w2 = g ? copy_to_writer(g, true) : NULL;
    ok = w2 && st_writer_serialize(w2, &b2, &n2) == 0 && n1 == n2 && memcmp(b1, b2, n1) == 0 && st_meta_count(g) == 4 &&
         strcmp(st_meta(g, "quote"), st_meta(f, "quote")) == 0;
    check(ok, "metadata file: our rewrite is a fixed point and keeps every value");
    const char *hdr = b1 ? (const char *)b1 + 8 : "";
    check(b1 && strncmp(hdr, "{\"__metadata__\":{\"arch\":\"resnet34\",\"classes\":\"cat,dog\",\"empty\":\"\",\"quote\":"
                             "\"a \\\"b\\\" \\\\ c\\n\\t\xc3\xa9\xe4\xb8\xad\"}", 88) == 0,
          "metadata first, keys sorted, serde_json escaping: %.100s", hdr);
    free(b1);
    free(b2);
    st_writer_free(w);
    st_writer_free(w2);
    st_close(g);
    st_close(f);
}

/* what st_writer_walk listed: its entries as text, one per line */
typedef struct {
    char text[4096];
    size_t n;
} walk_log;

static void log_meta(void *ctx, const char *key, const char *value) {
    walk_log *l = ctx;
    l->n += (size_t)snprintf(l->text + l->n, sizeof l->text - l->n, "meta %s=%s\n", key, value);
}

static void log_tensor(void *ctx, const st_tensor *t) {
    walk_log *l = ctx;
    l->n += (size_t)snprintf(l->text + l->n, sizeof l->text - l->n, "tensor %s %d %d [%lld] %zu %zu %zu:", t->name,
                             (int)t->dtype, t->ndim, t->ndim ? (long long)t->shape[0] : -1, t->numel, t->nbytes,
                             t->offset);
    for (size_t i = 0; i < t->nbytes && l->n < sizeof l->text; i++)
        l->n += (size_t)snprintf(l->text + l->n, sizeof l->text - l->n, "%02x", ((const uint8_t *)t->data)[i]);
    l->n += (size_t)snprintf(l->text + l->n, sizeof l->text - l->n, "\n");
}

/* st_writer_walk lists the entries in the order, and with the values, st_open of the file gives */
static void test_writer_walk(void) {
    st_writer *w = st_writer_new();
    const float f[3] = {1, -2, 0.5f};
    const int64_t i64[2] = {7, -9}, s3 = 3, s2 = 2, s0 = 0;
    const uint8_t u8[2] = {1, 2};
    bool ok = w && st_writer_meta(w, "zeta", "last") == 0 && st_writer_meta(w, "alpha", "first") == 0 &&
              st_writer_add_f32(w, "b.weight", 1, &s3, f) == 0 && st_writer_add(w, "a.count", ST_I64, 1, &s2, i64) == 0 &&
              st_writer_add(w, "a.flags", ST_U8, 1, &s2, u8) == 0 && st_writer_add_f32(w, "a.weight", 1, &s3, f) == 0 &&
              st_writer_add_f32(w, "empty", 1, &s0, f) == 0 && st_writer_add_f32(w, "scalar", 0, NULL, f) == 0 &&
              st_writer_meta(w, "mid", "x") == 0 && st_writer_add(w, "z0", ST_I64, 1, &s0, i64) == 0 &&
              st_writer_add_f32(w, "a.empty", 1, &s0, f) == 0; /* empty tensors at one offset: read by name */
    walk_log walked = {0}, read = {0};
    ok = ok && st_writer_walk(w, log_meta, log_tensor, &walked) == 0;
    uint8_t *b = NULL;
    size_t n = 0;
    st_file *g = ok && st_writer_serialize(w, &b, &n) == 0 ? st_open_mem(b, n, "walk") : NULL;
    for (size_t i = 0; g && i < st_meta_count(g); i++) log_meta(&read, st_meta_key(g, i), st_meta_value(g, i));
    for (size_t i = 0; g && i < st_count(g); i++) log_tensor(&read, st_tensor_at(g, i));
    const char *head = "meta alpha=first\nmeta mid=x\nmeta zeta=last\ntensor a.count";
    check(g && st_count(g) == 8 && walked.n < sizeof walked.text && !strcmp(walked.text, read.text) &&
              !strncmp(walked.text, head, strlen(head)),
          "the walk lists metadata and tensors as the file holds them%s%s%s%s", g ? "" : " (no file)",
          strcmp(walked.text, read.text) ? ":\n" : "", strcmp(walked.text, read.text) ? walked.text : "",
          strcmp(walked.text, read.text) ? read.text : "");
    st_close(g);
    free(b);
    st_writer_free(w);
}

static const char *python(void) {
    const char *p = getenv("STYLENET_PY");
    return p && p[0] ? p : "build/venv/bin/python";
}

static void test_python_reads_ours(void) {
    char dir[] = "/tmp/stylenet_st_XXXXXX";
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return;
    char a[256], b[256], cmd[2048];
    snprintf(a, sizeof a, "%s/ours.safetensors", dir);
    snprintf(b, sizeof b, "%s/python.safetensors", dir);
    st_writer *w = st_writer_new();
    int64_t shape[3] = {2, 3, 4};
    double f64[24];
    float f32[24];
    uint16_t f16[24], bf16[24];
    int64_t i64[24];
    int32_t i32[24];
    int16_t i16[24];
    int8_t i8[24];
    uint8_t u8[24], bl[24];
    for (size_t i = 0; i < 24; i++) {
        f64[i] = float_pattern(i);
        f32[i] = (float)f64[i];
        uint32_t bits;
        memcpy(&bits, &f32[i], 4);
        bf16[i] = (uint16_t)(bits >> 16); /* exact: the pattern has few mantissa bits */
        /* f16 from f32 for these exact small values */
        uint32_t e = (bits >> 23) & 0xFF, man = bits & 0x7FFFFF, s = bits >> 31;
        f16[i] = f32[i] == 0 ? (uint16_t)(s << 15) : (uint16_t)(s << 15 | (e - 112) << 10 | man >> 13);
        i64[i] = int_pattern(i, -(1ll << 40), 1ll << 40);
        i32[i] = (int32_t)int_pattern(i, INT32_MIN, INT32_MAX);
        i16[i] = (int16_t)int_pattern(i, -32768, 32767);
        i8[i] = (int8_t)int_pattern(i, -128, 127);
        u8[i] = (uint8_t)int_pattern(i, 0, 255);
        bl[i] = (uint8_t)int_pattern(i, 0, 1);
    }
    int64_t zshape[2] = {0, 3};
    float scalar = 2.5f;
    bool ok = st_writer_add(w, "f64", ST_F64, 3, shape, f64) == 0 && st_writer_add_f32(w, "f32", 3, shape, f32) == 0 &&
              st_writer_add(w, "f16", ST_F16, 3, shape, f16) == 0 && st_writer_add(w, "bf16", ST_BF16, 3, shape, bf16) == 0 &&
              st_writer_add(w, "i64", ST_I64, 3, shape, i64) == 0 && st_writer_add(w, "i32", ST_I32, 3, shape, i32) == 0 &&
              st_writer_add(w, "i16", ST_I16, 3, shape, i16) == 0 && st_writer_add(w, "i8", ST_I8, 3, shape, i8) == 0 &&
              st_writer_add(w, "u8", ST_U8, 3, shape, u8) == 0 && st_writer_add(w, "bool", ST_BOOL, 3, shape, bl) == 0 &&
              st_writer_add_f32(w, "empty", 2, zshape, NULL) == 0 && st_writer_add_f32(w, "scalar", 0, NULL, &scalar) == 0 &&
              st_writer_add_f32(w, "na\"me\\\xc3\xa9", 0, NULL, &scalar) == 0 &&
              st_writer_meta(w, "arch", "resnet34") == 0 && st_writer_meta(w, "q", "a\"b\\c\n\x01\xc3\xa9") == 0 &&
              st_writer_meta(w, "arch", "resnet50") == 0 && st_writer_save(w, a) == 0;
    if (!check(ok, "write every dtype, empty, scalar, odd name, metadata: %s", ok ? "ok" : sn_last_error())) {
        st_writer_free(w);
        return;
    }
    snprintf(cmd, sizeof cmd,
             "%s -c '\n"
             "import sys, numpy as np, torch\n"
             "from safetensors import safe_open\n"
             "from safetensors.torch import load_file, save_file\n"
             "a, b = sys.argv[1], sys.argv[2]\n"
             "with safe_open(a, \"pt\") as f: meta = f.metadata()\n"
             "assert meta == {\"arch\": \"resnet50\", \"q\": \"a\\\"b\\\\c\\n\\x01\\u00e9\"}, meta\n"
             "t = load_file(a)\n"
             "pat = (np.arange(24) - 7) * 0.375\n"
             "ip = lambda lo, hi: lo + (np.arange(24) * 7919 + 3) %% (hi - lo + 1)\n"
             "for k in [\"f64\", \"f32\", \"f16\", \"bf16\"]: assert np.array_equal(t[k].double().numpy().ravel(), pat), k\n"
             "assert t[\"f64\"].dtype == torch.float64 and t[\"bf16\"].dtype == torch.bfloat16 and t[\"f16\"].dtype == torch.float16\n"
             "for k, lo, hi in [(\"i64\", -2**40, 2**40), (\"i32\", -2**31, 2**31-1), (\"i16\", -2**15, 2**15-1), (\"i8\", -128, 127), (\"u8\", 0, 255)]:\n"
             "    assert np.array_equal(t[k].numpy().ravel(), ip(lo, hi)), k\n"
             "assert t[\"bool\"].dtype == torch.bool and np.array_equal(t[\"bool\"].numpy().ravel(), ip(0, 1) == 1)\n"
             "assert list(t[\"f32\"].shape) == [2, 3, 4] and list(t[\"empty\"].shape) == [0, 3] and t[\"scalar\"].shape == ()\n"
             "assert t[\"scalar\"].item() == 2.5 and t[\"na\\\"me\\\\\\u00e9\"].item() == 2.5\n"
             "save_file(t, b)\n"
             "print(\"PYOK\")' %s %s 2>&1",
             python(), a, b);
    FILE *p = popen(cmd, "r");
    char out[4096] = {0};
    size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
    int rc = p ? pclose(p) : -1;
    out[got] = 0;
    check(rc == 0 && strstr(out, "PYOK"), "Python safetensors reads our file: every dtype, shape, value, metadata%s%s",
          rc ? ": " : "", rc ? out : "");
    /* Python re-saves the tensors (no metadata): identical to our file without metadata */
    st_writer *w2 = st_writer_new();
    st_file *f = st_open(a);
    for (size_t i = 0; f && i < st_count(f); i++) {
        const st_tensor *t = st_tensor_at(f, i);
        st_writer_add(w2, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    uint8_t *ours = NULL, *theirs = NULL;
    size_t n1 = 0, n2 = 0;
    theirs = sn_read_file(b, &n2, 0);
    ok = f && st_writer_serialize(w2, &ours, &n1) == 0 && theirs && n1 == n2 && memcmp(ours, theirs, n1) == 0;
    check(ok, "Python's save_file of the same tensors is byte-identical to ours (%zu vs %zu bytes)", n1, n2);
    /* atomic save: no temp file left, existing file replaced */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", a, (long)getpid());
    struct stat s;
    check(stat(tmp, &s) != 0, "no temp file left behind after save");
    ok = st_writer_save(w2, a) == 0;
    size_t n3 = 0;
    uint8_t *again = sn_read_file(a, &n3, 0);
    check(ok && again && n3 == n1 && memcmp(again, ours, n1) == 0, "save over an existing file replaces it");
    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", dir);
    check(st_writer_save(w2, bad) < 0 && strstr(sn_last_error(), bad), "save into a missing directory fails naming the file: %s",
          sn_last_error());
    free(again);
    free(ours);
    free(theirs);
    st_close(f);
    st_writer_free(w);
    st_writer_free(w2);
    unlink(a);
    unlink(b);
    rmdir(dir);
}

/* builds a file image from a header string and data_len bytes of data */
static uint8_t *mk(const char *hdr, size_t data_len, size_t *n) {
    size_t h = strlen(hdr);
    *n = 8 + h + data_len;
    uint8_t *b = calloc(1, *n + 1);
    uint64_t hl = h;
    memcpy(b, &hl, 8);
    memcpy(b + 8, hdr, h);
    return b;
}

static void expect_fail(const char *what, const char *hdr, size_t data_len, const char *needle) {
    size_t n;
    uint8_t *b = mk(hdr, data_len, &n);
    st_file *f = st_open_mem(b, n, "bad.safetensors");
    const char *e = sn_last_error();
    check(!f && strstr(e, "bad.safetensors") && (!needle || strstr(e, needle)), "rejects %s: %s", what, f ? "(opened!)" : e);
    st_close(f);
    free(b);
}

static void expect_ok(const char *what, const char *hdr, size_t data_len) {
    size_t n;
    uint8_t *b = mk(hdr, data_len, &n);
    st_file *f = st_open_mem(b, n, "ok.safetensors");
    check(f != NULL, "accepts %s: %s", what, f ? "ok" : sn_last_error());
    st_close(f);
    free(b);
}

static void test_validation(void) {
    uint8_t small[7] = {0};
    st_file *f = st_open_mem(small, 7, "tiny.safetensors");
    check(!f && strstr(sn_last_error(), "tiny.safetensors"), "rejects a 7-byte file: %s", sn_last_error());
    uint8_t big[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    f = st_open_mem(big, 16, "len.safetensors");
    check(!f && strstr(sn_last_error(), "exceeds the file size"), "rejects header length > file: %s", sn_last_error());
    uint8_t huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    f = st_open_mem(huge, 16, "len.safetensors");
    check(!f, "rejects header length 2^63: %s", sn_last_error());
    f = st_open("/nonexistent/x.safetensors");
    check(!f && strstr(sn_last_error(), "/nonexistent/x.safetensors"), "missing file: %s", sn_last_error());
    const char *T = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_ok("a minimal valid file", T, 8);
    expect_ok("trailing spaces after the JSON", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}    ", 8);
    expect_ok("unknown extra keys in an entry", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8);
    expect_fail("invalid JSON", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "JSON");
    expect_fail("garbage after the JSON", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}x", 8, "trailing");
    expect_fail("a header that is not an object", "[1,2]   ", 0, "object");
    expect_fail("data section longer than the tensors", T, 12, "cover");
    expect_fail("data section shorter than the offsets", T, 4, "'t'");
    expect_fail("unknown dtype", "{\"t\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "'t'");
    expect_fail("missing dtype", "{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'t'");
    expect_fail("negative dim", "{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "'t'");
    expect_fail("fractional dim", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, "'t'");
    expect_fail("string dim", "{\"t\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, "'t'");
    expect_fail("rank 9", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, "rank");
    expect_fail("element count overflow",
                "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
                "overflow");
    expect_fail("byte size overflow", "{\"t\":{\"dtype\":\"F64\",\"shape\":[4503599627370496,4096],\"data_offsets\":[0,8]}}",
                8, "overflow");
    expect_fail("size mismatch", "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12");
    expect_fail("begin > end", "{\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, "'t'");
    expect_fail("offsets out of range", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 8, "exceed");
    expect_fail("three offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, "'t'");
    expect_fail("huge offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1e300,1e300]}}", 8, "'t'");
    expect_fail("overlapping tensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlaps");
    expect_fail("a hole between tensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "hole");
    expect_fail("duplicate names",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "duplicate tensor name 'a'");
    expect_fail("duplicate __metadata__", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__");
    expect_fail("non-string metadata", "{\"__metadata__\":{\"a\":1}}", 0, "'a'");
    expect_fail("duplicate metadata keys", "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, "'a'");
    expect_fail("an empty tensor name", "{\"\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, "empty name");
    expect_fail("invalid UTF-8", "{\"\xff\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, "UTF-8");
    expect_fail("a non-object entry", "{\"t\":[1]}", 0, "'t'");
    /* writer errors */
    st_writer *w = st_writer_new();
    float x = 1;
    int64_t neg = -1;
    check(st_writer_add_f32(w, "a", 0, NULL, &x) == 0 && st_writer_add_f32(w, "a", 0, NULL, &x) < 0 &&
              strstr(sn_last_error(), "'a'"),
          "writer: duplicate name is an error: %s", sn_last_error());
    check(st_writer_add_f32(w, "", 0, NULL, &x) < 0 && st_writer_add_f32(w, "__metadata__", 0, NULL, &x) < 0 &&
              st_writer_add_f32(w, "n", 1, &neg, &x) < 0 && st_writer_add_f32(w, "r", 9, &neg, &x) < 0,
          "writer: empty name, __metadata__, negative dim, rank 9 are errors");
    st_writer_free(w);
}

static void test_truncation(void) {
    size_t n;
    uint8_t *b = sn_read_file(fixture_path("io_st_dtypes_np.safetensors"), &n, 0);
    if (!check(b != NULL, "read fixture")) return;
    int bad = 0, unnamed = 0;
    for (size_t k = 0; k < n; k++) {
        st_file *f = st_open_mem(b, k, "cut.safetensors");
        if (f) bad++;
        else if (!strstr(sn_last_error(), "cut.safetensors")) unnamed++;
        st_close(f);
    }
    check(bad == 0 && unnamed == 0, "every proper prefix (%zu) of a valid file fails with a named error (%d opened, %d unnamed)",
          n, bad, unnamed);
    /* every single-byte corruption: opens or fails cleanly (ASan/UBSan builds check the rest) */
    int opened = 0, failed = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t save = b[k];
        b[k] ^= (uint8_t)(0x5A + k);
        st_file *f = st_open_mem(b, n, "flip.safetensors");
        if (f) {
            for (size_t i = 0; i < st_count(f); i++) {
                const st_tensor *t = st_tensor_at(f, i);
                float *o = malloc(t->numel * 8 + 8);
                if (st_read_f32(f, t, o, t->numel) < 0) (void)st_read_i64(f, t, (int64_t *)o, t->numel);
                free(o);
            }
            opened++;
        } else if (sn_last_error()[0]) failed++;
        st_close(f);
        b[k] = save;
    }
    check(opened + failed == (int)n, "every single-byte corruption opens or fails with a message (%d opened, %d failed)",
          opened, failed);
    free(b);
}

static const test_case cases[] = {
    {"python_dtypes", test_python_dtypes},
    {"python_torch", test_python_torch},
    {"python_meta_empty", test_python_meta_empty},
    {"byte_identical", test_byte_identical},
    {"python_reads_ours", test_python_reads_ours},
    {"validation", test_validation},
    {"truncation", test_truncation},
    {"writer_walk", test_writer_walk},
};
TEST_MAIN(cases)
