/* test_tflite: io/tflite.h on a tiny model with known contents (tools/fixtures_io.py writes it
 * with the flatbuffers builder), on both MobileNetV2 files in $STYLENET_SHARED/weights against the
 * PyPI `tflite` package's reading (tensors, ops, options, dequantised constants), and on
 * truncated and corrupted files. */
#include "../common/check.h"
#include "core/file.h"
#include "core/error.h"
#include "io/tflite.h"
#include <cjson/cJSON.h>
#include "io/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool ints_are(const int32_t *a, int n, const int *want, int wn) {
    if (n != wn) return false;
    for (int i = 0; i < n; i++)
        if (a[i] != want[i]) return false;
    return true;
}

static float dq(float scale, int64_t q, int64_t zp) { return (float)((double)scale * (double)(q - zp)); }

static void test_tiny(void) {
    const char *path = fixture_path("io_tfl_tiny.tflite");
    tfl_model *m = tfl_open(path);
    if (!check(m != NULL, "open tiny model: %s", m ? "ok" : sn_last_error())) return;
    check(tfl_version(m) == 3 && strcmp(tfl_description(m), "stylenet tiny test model") == 0 && tfl_num_buffers(m) == 7 &&
              tfl_num_opcodes(m) == 8 && tfl_num_subgraphs(m) == 1 && tfl_num_tensors(m) == 13 && tfl_num_ops(m) == 7,
          "model: version 3, description, 7 buffers, 8 op codes, 1 subgraph, 13 tensors, 7 ops");
    const tfl_subgraph *g = tfl_subgraph_at(m, 0);
    check(strcmp(g->name, "main") == 0 && ints_are(g->inputs, g->n_inputs, (int[]){0}, 1) &&
              ints_are(g->outputs, g->n_outputs, (int[]){9, 11}, 2) && tfl_subgraph_at(m, 1) == NULL,
          "subgraph name, inputs [0], outputs [9, 11]");
    const char *names[] = {"input", "conv/w", "conv/b", "conv/out", "dw/w", "dw/out", "pool/out", "reshape/shape",
                           "reshape/out", "softmax", "fconst", "add/out", "ext"};
    int types[] = {TFL_UINT8, TFL_UINT8, TFL_INT32, TFL_UINT8, TFL_INT8, TFL_UINT8, TFL_UINT8, TFL_INT32,
                   TFL_UINT8, TFL_FLOAT32, TFL_FLOAT32, TFL_FLOAT32, TFL_FLOAT32};
    unsigned bufs[] = {0, 1, 2, 0, 3, 0, 0, 4, 0, 0, 5, 0, 6};
    bool ok = true;
    for (int i = 0; i < 13; i++) {
        const tfl_tensor *t = tfl_tensor_at(m, i);
        ok = ok && strcmp(t->name, names[i]) == 0 && t->type == types[i] && t->buffer == bufs[i] &&
             ((t->data != NULL) == (bufs[i] != 0));
    }
    check(ok, "tensor names, types, buffers, which have data");
    const tfl_tensor *in = tfl_tensor_at(m, 0), *w = tfl_tensor_at(m, 1), *dw = tfl_tensor_at(m, 4);
    check(ints_are(in->shape, in->ndim, (int[]){1, 4, 4, 2}, 4) && in->n_scale == 1 && in->scale[0] == 0.5f &&
              in->n_zero_point == 1 && in->zero_point[0] == 128 && in->n_min == 1 && in->min[0] == -64.0f &&
              in->n_max == 1 && in->max[0] == 63.5f,
          "input: shape, scale, zero point, min, max");
    check(ints_are(dw->shape, dw->ndim, (int[]){1, 3, 3, 3}, 4) && dw->n_scale == 3 && dw->quantized_dimension == 3 &&
              dw->scale[2] == 0.3f && dw->data_len == 27,
          "depthwise weight: per-channel, 3 scales, quantized_dimension 3");
    /* dequantisation */
    float o[32];
    const uint8_t cw[6] = {130, 110, 120, 255, 0, 121};
    ok = tfl_dequantize(m, 1, o, 6) == 0;
    for (int i = 0; ok && i < 6; i++) ok = o[i] == dq(0.02f, cw[i], 120);
    check(ok && ints_are(w->shape, w->ndim, (int[]){3, 1, 1, 2}, 4), "uint8 per-tensor: 0.02 * (q - 120)");
    const int64_t cb[3] = {100, -200, 2147483647};
    ok = tfl_dequantize(m, 2, o, 3) == 0;
    for (int i = 0; ok && i < 3; i++) ok = o[i] == dq(0.01f, cb[i], 0);
    check(ok, "int32 bias: 0.01 * q (including INT32_MAX)");
    const float sc[3] = {0.1f, 0.2f, 0.3f};
    ok = tfl_dequantize(m, 4, o, 27) == 0;
    for (int i = 0; ok && i < 27; i++) ok = o[i] == dq(sc[i % 3], (int8_t)((i * 37) % 256 - 128), 0);
    check(ok, "int8 per-channel along the last axis");
    ok = tfl_dequantize(m, 7, o, 2) == 0 && o[0] == 1 && o[1] == 3;
    check(ok, "unquantised int32 constant converts as is");
    ok = tfl_dequantize(m, 10, o, 2) == 0 && o[0] == 0.5f && o[1] == -2.25f;
    check(ok, "float32 passthrough");
    ok = tfl_dequantize(m, 12, o, 4) == 0 && o[0] == 1 && o[1] == 2 && o[2] == 3 && o[3] == 4;
    check(ok, "buffer stored outside the FlatBuffer (offset/size)");
    check(tfl_dequantize(m, 3, o, 48) < 0 && strstr(sn_last_error(), "no constant data") && strstr(sn_last_error(), path) &&
              strstr(sn_last_error(), "conv/out"),
          "activation tensor: error naming file and tensor: %s", sn_last_error());
    check(tfl_dequantize(m, 1, o, 5) < 0 && strstr(sn_last_error(), "6 elements"), "wrong count: %s", sn_last_error());
    check(tfl_dequantize(m, 13, o, 1) < 0 && tfl_tensor_at(m, 13) == NULL && tfl_op_at(m, 7) == NULL,
          "index out of range: %s", sn_last_error());
    /* operators */
    const tfl_op *op = tfl_op_at(m, 0);
    check(op->builtin == TFL_OP_CONV_2D && op->options_type == TFL_OPT_CONV2D && ints_are(op->inputs, op->n_inputs, (int[]){0, 1, 2}, 3) &&
              ints_are(op->outputs, op->n_outputs, (int[]){3}, 1) && op->padding == TFL_PAD_SAME && op->stride_w == 2 &&
              op->stride_h == 1 && op->activation == TFL_ACT_RELU6 && op->dilation_w == 1 && op->dilation_h == 1 &&
              op->version == 1 && op->custom_code == NULL,
          "op 0: CONV_2D from deprecated_builtin_code only, SAME, stride 2x1, RELU6");
    op = tfl_op_at(m, 1);
    check(op->builtin == TFL_OP_DEPTHWISE_CONV_2D && ints_are(op->inputs, op->n_inputs, (int[]){3, 4, -1}, 3) &&
              op->padding == TFL_PAD_VALID && op->stride_w == 2 && op->stride_h == 2 && op->depth_multiplier == 1 &&
              op->activation == TFL_ACT_RELU && op->dilation_w == 1,
          "op 1: DEPTHWISE_CONV_2D, absent bias (-1), VALID, depth multiplier 1, RELU, default dilation");
    op = tfl_op_at(m, 2);
    check(op->builtin == TFL_OP_AVERAGE_POOL_2D && op->options_type == TFL_OPT_POOL2D && op->filter_w == 2 &&
              op->filter_h == 2 && op->stride_w == 2 && op->padding == TFL_PAD_VALID,
          "op 2: AVERAGE_POOL_2D 2x2 / 2, VALID");
    op = tfl_op_at(m, 3);
    check(op->builtin == TFL_OP_RESHAPE && ints_are(op->new_shape, op->n_new_shape, (int[]){1, 3}, 2), "op 3: RESHAPE new_shape [1, 3]");
    op = tfl_op_at(m, 4);
    check(op->builtin == TFL_OP_SOFTMAX && op->beta == 1.0f, "op 4: SOFTMAX beta 1");
    op = tfl_op_at(m, 5);
    check(op->builtin == TFL_OP_ADD && op->version == 2 && op->activation == TFL_ACT_RELU, "op 5: ADD version 2, RELU");
    op = tfl_op_at(m, 6);
    check(op->builtin == TFL_OP_CUSTOM && op->custom_code && strcmp(op->custom_code, "MyCustom") == 0 &&
              op->options_type == TFL_OPT_NONE,
          "op 6: custom op code 'MyCustom'");
    tfl_close(m);
}

static void test_tiny_corrupt(void) {
    size_t n;
    uint8_t *b = sn_read_file(fixture_path("io_tfl_tiny.tflite"), &n, 0);
    if (!check(b != NULL, "read tiny model")) return;
    int opened = 0, unnamed = 0;
    for (size_t k = 0; k < n; k++) {
        tfl_model *m = tfl_open_mem(b, k, "cut.tflite");
        if (m) opened++;
        else if (!strstr(sn_last_error(), "cut.tflite")) unnamed++;
        tfl_close(m);
    }
    check(opened == 0 && unnamed == 0, "every proper prefix (%zu) of the tiny model fails with a named error (%d opened, %d unnamed)",
          n, opened, unnamed);
    uint8_t *c = malloc(n);
    memcpy(c, b, n);
    memcpy(c + 4, "XXXX", 4);
    tfl_model *m = tfl_open_mem(c, n, "id.tflite");
    check(!m && strstr(sn_last_error(), "TFL3"), "wrong file identifier: %s", sn_last_error());
    memcpy(c, b, n);
    c[0] = 0xF0; c[1] = c[2] = c[3] = 0xFF;
    m = tfl_open_mem(c, n, "root.tflite");
    check(!m && strstr(sn_last_error(), "outside"), "root offset outside the file: %s", sn_last_error());
    /* op 0's inputs vector [0, 1, 2]: point one at a tensor that does not exist */
    static const uint8_t pat[16] = {3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0};
    memcpy(c, b, n);
    uint8_t *at = memmem(c, n, pat, 16);
    if (at) at[12] = 99;
    m = at ? tfl_open_mem(c, n, "idx.tflite") : NULL;
    check(at && !m && strstr(sn_last_error(), "operator 0") && strstr(sn_last_error(), "99"),
          "operator input index out of range: %s", sn_last_error());
    /* vector length beyond the file */
    memcpy(c, b, n);
    if (at) at[0] = 0xFF, at[1] = 0xFF, at[2] = 0xFF;
    m = at ? tfl_open_mem(c, n, "len.tflite") : NULL;
    check(at && !m && strstr(sn_last_error(), "runs past the end"), "vector length past the end: %s", sn_last_error());
    /* every single-byte corruption: opens (then walks fine) or fails with a message */
    int ok_n = 0, fail_n = 0;
    for (size_t k = 0; k < n; k++) {
        memcpy(c, b, n);
        c[k] ^= (uint8_t)(0xA5 ^ k);
        m = tfl_open_mem(c, n, "flip.tflite");
        if (m) {
            for (int i = 0; i < tfl_num_tensors(m); i++) {
                const tfl_tensor *t = tfl_tensor_at(m, i);
                int64_t e = tfl_numel(t);
                if (e < 0 || !t->data || (uint64_t)e > t->data_len) continue;
                float *o = malloc((size_t)e * 4 + 4);
                (void)tfl_dequantize(m, i, o, (size_t)e);
                free(o);
            }
            ok_n++;
        } else if (strstr(sn_last_error(), "flip.tflite"))
            fail_n++;
        tfl_close(m);
    }
    check(ok_n + fail_n == (int)n, "every single-byte corruption (%zu) opens or fails with a named error (%d opened, %d failed)",
          n, ok_n, fail_n);
    free(c);
    free(b);
    m = tfl_open("/nonexistent/x.tflite");
    check(!m && strstr(sn_last_error(), "/nonexistent/x.tflite"), "missing file: %s", sn_last_error());
}


static void put32(uint8_t *b, size_t at, uint32_t v) { memcpy(b + at, &v, 4); }
static void put16(uint8_t *b, size_t at, uint16_t v) { memcpy(b + at, &v, 2); }

/* K subgraphs that all share one subgraph table whose tensors vector holds K references to one
 * tensor table: a valid FlatBuffer of ~8K bytes describing K*K tensors.  For large K it must be
 * refused quickly instead of allocating K*K tensor structures. */
static uint8_t *shared_tables(size_t K, size_t *len) {
    size_t v = 28, vt2 = 32 + 4 * K, sg = vt2 + 8, tv = sg + 8, vt3 = tv + 4 + 4 * K, x = vt3 + 4;
    size_t n = x + 4;
    uint8_t *b = calloc(1, n);
    put32(b, 0, 20);
    memcpy(b + 4, "TFL3", 4);
    put16(b, 8, 10), put16(b, 10, 8), put16(b, 12, 0), put16(b, 14, 0), put16(b, 16, 4); /* model vtable */
    put32(b, 20, 20 - 8), put32(b, 24, (uint32_t)(v - 24));                                /* model table */
    put32(b, v, (uint32_t)K);
    for (size_t i = 0; i < K; i++) put32(b, v + 4 + 4 * i, (uint32_t)(sg - (v + 4 + 4 * i)));
    put16(b, vt2, 6), put16(b, vt2 + 2, 8), put16(b, vt2 + 4, 4); /* subgraph vtable: tensors */
    put32(b, sg, (uint32_t)(sg - vt2)), put32(b, sg + 4, (uint32_t)(tv - (sg + 4)));
    put32(b, tv, (uint32_t)K);
    for (size_t i = 0; i < K; i++) put32(b, tv + 4 + 4 * i, (uint32_t)(x - (tv + 4 + 4 * i)));
    put16(b, vt3, 4), put16(b, vt3 + 2, 4); /* empty tensor table */
    put32(b, x, (uint32_t)(x - vt3));
    *len = n;
    return b;
}

static void test_shared_tables(void) {
    size_t n;
    uint8_t *b = shared_tables(8, &n);
    tfl_model *m = tfl_open_mem(b, n, "shared8.tflite");
    check(m && tfl_num_subgraphs(m) == 8 && tfl_num_tensors(m) == 8 && tfl_subgraph_at(m, 7)->n_tensors == 8,
          "hand-built FlatBuffer with shared tables, 8 x 8 tensors, opens: %s", m ? "ok" : sn_last_error());
    tfl_close(m);
    free(b);
    b = shared_tables(2000, &n);
    m = tfl_open_mem(b, n, "shared.tflite");
    check(!m && strstr(sn_last_error(), "shared.tflite") && strstr(sn_last_error(), "more data than the file holds"),
          "%zu-byte file whose tables share vectors (2000 x 2000 tensors) is refused: %s", n, m ? "(opened)" : sn_last_error());
    tfl_close(m);
    free(b);
}

static int json_int(const cJSON *o, const char *k, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : def;
}

static bool json_ints(const cJSON *a, const int32_t *x, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return false;
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++)
        if (e->valueint != x[i]) return false;
    return true;
}

/* every tensor against the tflite package's table (tens: the fixture's "tensors") */
static void real_tensors(const char *key, const tfl_model *m, const cJSON *tens) {
    int bad = 0, i = 0, per_channel = 0;
    for (const cJSON *t = tens ? tens->child : NULL; t; t = t->next, i++) {
        const tfl_tensor *x = tfl_tensor_at(m, i);
        const char *nm = cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring;
        bool ok = x && strcmp(x->name, nm) == 0 && x->type == json_int(t, "type", -1) &&
                  json_ints(cJSON_GetObjectItemCaseSensitive(t, "shape"), x->shape, x->ndim) &&
                  (int)x->buffer == json_int(t, "buffer", -1) && (int)x->data_len == json_int(t, "data", -1) &&
                  x->n_scale == json_int(t, "n_scale", -1) && x->quantized_dimension == json_int(t, "qdim", -1);
        if (!ok && bad++ < 3) note("%s tensor %d '%s' differs", key, i, nm);
        if (x && x->n_scale > 1) per_channel++;
    }
    check(bad == 0 && i == tfl_num_tensors(m), "%s: every tensor's name, type, shape, buffer, data size, scale count, axis match (%d bad)",
          key, bad);
    if (strcmp(key, "ptq") == 0) check(per_channel > 50, "ptq: per-channel quantised tensors present (%d)", per_channel);
}

/* every constant tensor dequantised against the tflite package + numpy (the fixture's t<i>) */
static void real_constants(const char *key, tfl_model *m, st_file *ref) {
    int n_const = 0, n_exact = 0, bad = 0;
    double worst = 0;
    for (int i = 0; i < tfl_num_tensors(m); i++) {
        char tn[32];
        snprintf(tn, sizeof tn, "t%d", i);
        const st_tensor *r = st_find(ref, tn);
        const tfl_tensor *x = tfl_tensor_at(m, i);
        if (!r) {
            if (x->data) bad++;
            continue;
        }
        n_const++;
        float *a = malloc(r->numel * 4 + 4), *b = malloc(r->numel * 4 + 4);
        if (tfl_dequantize(m, i, a, r->numel) < 0 || st_read_f32(ref, r, b, r->numel) < 0) {
            note("%s", sn_last_error());
            bad++;
        } else {
            bool exact = memcmp(a, b, r->numel * 4) == 0;
            n_exact += exact;
            for (size_t k = 0; k < r->numel; k++) {
                double d = fabs((double)a[k] - b[k]), s = fabs((double)b[k]);
                double rel = s > 0 ? d / s : d;
                if (rel > worst) worst = rel;
            }
        }
        free(a);
        free(b);
    }
    check(bad == 0 && n_const > 100 && worst <= 1e-6,
          "%s: all %d constant tensors dequantise as the tflite package + numpy (%d bit-exact, worst rel err %.3g)", key,
          n_const, n_exact, worst);
}

/* every operator against the tflite package's table (ops: the fixture's "ops"), the op mix,
 * and what sets the two files apart */
static void real_ops(const char *key, tfl_model *m, const cJSON *ops) {
    int bad = 0, i = 0, counts[256] = {0};
    for (const cJSON *o = ops ? ops->child : NULL; o; o = o->next, i++) {
        const tfl_op *x = tfl_op_at(m, i);
        if (!x) { bad++; continue; }
        if (x->builtin >= 0 && x->builtin < 256) counts[x->builtin]++;
        bool ok = x->builtin == json_int(o, "opcode", -1) && x->options_type == json_int(o, "options", -1) &&
                  json_ints(cJSON_GetObjectItemCaseSensitive(o, "inputs"), x->inputs, x->n_inputs) &&
                  json_ints(cJSON_GetObjectItemCaseSensitive(o, "outputs"), x->outputs, x->n_outputs);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "stride");
        if (st) ok = ok && json_ints(st, (int32_t[]){x->stride_w, x->stride_h}, 2) && x->padding == json_int(o, "padding", -1) &&
                     x->activation == json_int(o, "act", -1);
        const cJSON *dil = cJSON_GetObjectItemCaseSensitive(o, "dilation");
        if (dil) ok = ok && json_ints(dil, (int32_t[]){x->dilation_w, x->dilation_h}, 2);
        const cJSON *flt = cJSON_GetObjectItemCaseSensitive(o, "filter");
        if (flt) ok = ok && json_ints(flt, (int32_t[]){x->filter_w, x->filter_h}, 2);
        if (cJSON_GetObjectItemCaseSensitive(o, "depth_multiplier"))
            ok = ok && x->depth_multiplier == json_int(o, "depth_multiplier", -1);
        if (cJSON_GetObjectItemCaseSensitive(o, "act") && !st) ok = ok && x->activation == json_int(o, "act", -1);
        const cJSON *beta = cJSON_GetObjectItemCaseSensitive(o, "beta");
        if (beta) ok = ok && x->beta == (float)beta->valuedouble;
        const cJSON *ns = cJSON_GetObjectItemCaseSensitive(o, "new_shape");
        if (ns) ok = ok && json_ints(ns, x->new_shape, x->n_new_shape);
        if (!ok && bad++ < 3) note("%s op %d (%s) differs", key, i, tfl_op_name(x->builtin));
    }
    check(bad == 0 && i == tfl_num_ops(m), "%s: every op's code, inputs, outputs, strides, padding, activation, options match (%d bad)",
          key, bad);
    note("%s: CONV_2D %d, DEPTHWISE_CONV_2D %d, ADD %d, AVERAGE_POOL_2D %d, MEAN %d, RESHAPE %d, SOFTMAX %d, QUANTIZE %d", key,
         counts[TFL_OP_CONV_2D], counts[TFL_OP_DEPTHWISE_CONV_2D], counts[TFL_OP_ADD], counts[TFL_OP_AVERAGE_POOL_2D],
         counts[TFL_OP_MEAN], counts[TFL_OP_RESHAPE], counts[TFL_OP_SOFTMAX], counts[TFL_OP_QUANTIZE]);
    check(counts[TFL_OP_CONV_2D] == 36 && counts[TFL_OP_DEPTHWISE_CONV_2D] == 17 && counts[TFL_OP_ADD] == 10 &&
              counts[TFL_OP_RESHAPE] == 1 && counts[TFL_OP_SOFTMAX] == 1,
          "%s: MobileNetV2 op mix: 36 CONV_2D, 17 DEPTHWISE_CONV_2D, 10 ADD, RESHAPE, SOFTMAX", key);
    if (strcmp(key, "quant") == 0) {
        const tfl_op *cls = tfl_op_at(m, 63), *first = tfl_op_at(m, 0);
        const tfl_tensor *cw = cls ? tfl_tensor_at(m, cls->inputs[1]) : NULL;
        check(counts[TFL_OP_AVERAGE_POOL_2D] == 1 && cls && cls->builtin == TFL_OP_CONV_2D && cw &&
                  ints_are(cw->shape, cw->ndim, (int[]){1001, 1, 1, 1280}, 4) && cw->type == TFL_UINT8 && cw->n_scale == 1 &&
                  tfl_op_at(m, 64)->builtin == TFL_OP_RESHAPE && tfl_op_at(m, 65)->builtin == TFL_OP_SOFTMAX &&
                  first->stride_w == 2 && first->activation == TFL_ACT_RELU6 && first->padding == TFL_PAD_SAME,
              "quant: first conv stride 2 SAME RELU6; AVERAGE_POOL_2D; classifier CONV_2D 1280 -> 1001 (uint8); RESHAPE; SOFTMAX");
    } else {
        int axis0 = 0, axis3 = 0;
        for (int k = 0; k < tfl_num_ops(m); k++) {
            const tfl_op *o = tfl_op_at(m, k);
            if (o->builtin != TFL_OP_CONV_2D && o->builtin != TFL_OP_DEPTHWISE_CONV_2D) continue;
            const tfl_tensor *wt = tfl_tensor_at(m, o->inputs[1]);
            if (wt->type != TFL_INT8 || wt->n_scale != wt->shape[wt->quantized_dimension]) continue;
            if (o->builtin == TFL_OP_CONV_2D && wt->quantized_dimension == 0) axis0++;
            if (o->builtin == TFL_OP_DEPTHWISE_CONV_2D && wt->quantized_dimension == 3) axis3++;
        }
        check(axis0 == 36 && axis3 == 17, "ptq: int8 per-channel weights, axis 0 for 36 convs, axis 3 for 17 depthwise (%d, %d)",
              axis0, axis3);
    }
}

static void test_real(const char *key, const char *file, int want_ops) {
    char fx[64];
    snprintf(fx, sizeof fx, "io_tfl_%s.safetensors", key);
    const char *path = shared_path(file);
    tfl_model *m = tfl_open(path);
    st_file *ref = st_open(fixture_path(fx));
    if (!check(m && ref, "%s: open model and reference: %s", file, (m && ref) ? "ok" : sn_last_error())) {
        tfl_close(m);
        st_close(ref);
        return;
    }
    cJSON *ops = cJSON_Parse(st_meta(ref, "ops")), *tens = cJSON_Parse(st_meta(ref, "tensors"));
    cJSON *ins = cJSON_Parse(st_meta(ref, "inputs")), *outs = cJSON_Parse(st_meta(ref, "outputs"));
    const tfl_subgraph *g = tfl_subgraph_at(m, 0);
    check(ops && tens && tfl_num_ops(m) == want_ops && cJSON_GetArraySize(ops) == want_ops &&
              tfl_num_tensors(m) == atoi(st_meta(ref, "n_tensors")) && tfl_num_buffers(m) == atoi(st_meta(ref, "n_buffers")) &&
              tfl_version(m) == (uint32_t)atoi(st_meta(ref, "version")) && json_ints(ins, g->inputs, g->n_inputs) &&
              json_ints(outs, g->outputs, g->n_outputs),
          "%s: %d ops, %d tensors, %d buffers, version, subgraph inputs/outputs as the tflite package reads them", key,
          tfl_num_ops(m), tfl_num_tensors(m), tfl_num_buffers(m));
    real_tensors(key, m, tens);
    real_constants(key, m, ref);
    real_ops(key, m, ops);
    cJSON_Delete(ops);
    cJSON_Delete(tens);
    cJSON_Delete(ins);
    cJSON_Delete(outs);
    tfl_close(m);
    st_close(ref);
}

static void test_real_prefixes(void) {
    size_t n;
    uint8_t *b = sn_read_file(shared_path("weights/mobilenet_v2_1.0_224_quant.tflite"), &n, 0);
    st_file *ref = st_open(fixture_path("io_tfl_quant.safetensors"));
    if (!check(b && ref && st_meta(ref, "data_end"), "read the real model and its reference")) {
        free(b);
        st_close(ref);
        return;
    }
    tfl_model *m = tfl_open_mem(b, n, "whole.tflite");
    check(m != NULL, "the whole file opens from memory: %s", m ? "ok" : sn_last_error());
    const uint8_t *md = NULL;
    size_t mdl = 0;
    const char *mname = m ? tfl_metadata(m, 0, &md, &mdl) : NULL;
    check(m && tfl_num_metadata(m) == 2 && mname && strcmp(mname, "min_runtime_version") == 0 && md && mdl > 0 &&
              tfl_metadata(m, 2, NULL, NULL) == NULL,
          "model metadata: 2 entries, first 'min_runtime_version' (%zu bytes)", mdl);
    tfl_close(m);
    /* the FlatBuffer's last referenced byte is the end of the last buffer's data (the tflite
     * package's offsets); after it this file carries a zip of labels that nothing references */
    size_t data_end = (size_t)atoll(st_meta(ref, "data_end"));
    int opened_before = 0, unnamed = 0, tried = 0, opened_after = 0;
    for (int k = 0; k < 500; k++) {
        size_t len = k < 100   ? (size_t)k
                     : k < 400 ? (size_t)((double)(k - 100) / 300 * (double)n)
                               : data_end - 1 - (size_t)(k - 400) * 37;
        tried++;
        tfl_model *p = tfl_open_mem(b, len, "prefix.tflite");
        if (p && len < data_end) opened_before++;
        if (p && len >= data_end) opened_after++;
        if (!p && !strstr(sn_last_error(), "prefix.tflite")) unnamed++;
        tfl_close(p);
    }
    check(opened_before == 0 && unnamed == 0,
          "%d prefixes of the real model (0..99, 300 spread over the file, 100 just below the FlatBuffer's end at %zu of %zu) "
          "fail with a named error unless they hold the whole FlatBuffer (%d opened too early, %d unnamed; %d later ones opened)",
          tried, data_end, n, opened_before, unnamed, opened_after);
    st_close(ref);
    free(b);
}

static void test_real_quant(void) { test_real("quant", "weights/mobilenet_v2_1.0_224_quant.tflite", 66); }
static void test_real_ptq(void) { test_real("ptq", "weights/tf2_mobilenet_v2_1.0_224_ptq.tflite", 68); }

static const test_case cases[] = {
    {"tiny", test_tiny},
    {"tiny_corrupt", test_tiny_corrupt},
    {"shared_tables", test_shared_tables},
    {"real_quant", test_real_quant},
    {"real_ptq", test_real_ptq},
    {"real_prefixes", test_real_prefixes},
};
TEST_MAIN(cases)
