/* tflite.c - see tflite.h for the contract.
 *
 * FlatBuffers in brief (what is checked): the file starts with a u32 offset to the root table
 * and the 4-byte identifier.  A table at position t starts with an i32 s; its vtable is at
 * t - s: u16 vtable size, u16 table size, then one u16 per field (offset from t, 0 = absent).
 * A reference field holds a u32 relative to its own position; a vector is a u32 count followed
 * by the elements; a string is a byte vector followed by a NUL; a vector of tables holds u32
 * offsets relative to each element.  Every read below goes through in_range().
 */
#include "io/tflite.h"
#include "core/error.h"
#include "core/file.h"
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tflite.c assumes a little-endian host"
#endif

struct tfl_model {
    char *name;
    uint8_t *buf;
    size_t len;
    uint32_t version;
    const char *description;
    int n_buffers, n_opcodes, n_subgraphs;
    const uint8_t **buf_data; /* per buffer */
    size_t *buf_len;
    struct opcode { int builtin, version; const char *custom; } *opcodes;
    int n_metadata;
    struct meta { const char *name; uint32_t buffer; } *metadata;
    tfl_subgraph *subgraphs;
    void **allocs;             /* everything allocated while parsing */
    size_t n_allocs, cap_allocs;
};

typedef struct {
    tfl_model *m;
    const uint8_t *b;
    size_t n;
    size_t budget;             /* elements/structs that may still be materialised */
    char what[160];            /* where we are, for messages */
} rd;

typedef struct { size_t pos, vt; unsigned vtsize, tsize; } tbl;

static int fail(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(rd *r, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sn_error("%s: %s%s%s", r->m->name, r->what, r->what[0] ? ": " : "", msg);
}

static bool in_range(const rd *r, size_t pos, size_t len) { return pos <= r->n && len <= r->n - pos; }
static uint32_t rd_u32(const rd *r, size_t pos) { uint32_t v; memcpy(&v, r->b + pos, 4); return v; }
static uint16_t rd_u16(const rd *r, size_t pos) { uint16_t v; memcpy(&v, r->b + pos, 2); return v; }

static void *m_alloc(rd *r, size_t count, size_t size) {
    if (count > r->budget) {
        fail(r, "tables and vectors reference more data than the file holds (%zu bytes); shared or "
                "overlapping structures?", r->n);
        return NULL;
    }
    r->budget -= count;
    tfl_model *m = r->m;
    if (m->n_allocs == m->cap_allocs) {
        size_t cap = m->cap_allocs ? 2 * m->cap_allocs : 64;
        void **a = realloc(m->allocs, cap * sizeof *a);
        if (!a) { sn_error("%s: out of memory", m->name); return NULL; }
        m->allocs = a;
        m->cap_allocs = cap;
    }
    void *p = calloc(count ? count : 1, size);
    if (!p) { sn_error("%s: out of memory (%zu x %zu bytes)", m->name, count, size); return NULL; }
    m->allocs[m->n_allocs++] = p;
    return p;
}

static int table_at(rd *r, size_t pos, tbl *t) {
    if (!in_range(r, pos, 4)) return fail(r, "table at %zu lies outside the file (%zu bytes)", pos, r->n);
    int32_t so;
    memcpy(&so, r->b + pos, 4);
    int64_t vt = (int64_t)pos - so;
    if (vt < 0 || !in_range(r, (size_t)vt, 4))
        return fail(r, "vtable of the table at %zu lies outside the file", pos);
    t->pos = pos;
    t->vt = (size_t)vt;
    t->vtsize = rd_u16(r, t->vt);
    t->tsize = rd_u16(r, t->vt + 2);
    if (t->vtsize < 4 || (t->vtsize & 1) || !in_range(r, t->vt, t->vtsize))
        return fail(r, "vtable at %zu has a bad size %u", t->vt, t->vtsize);
    if (t->tsize < 4 || !in_range(r, pos, t->tsize))
        return fail(r, "table at %zu of size %u runs past the end of the file", pos, t->tsize);
    return 0;
}

/* field offset within the table, 0 when absent; -1 if it does not fit the table */
static long field(rd *r, const tbl *t, int id, size_t size, const char *fname) {
    size_t e = 4 + 2 * (size_t)id;
    if (e + 2 > t->vtsize) return 0;
    unsigned vo = rd_u16(r, t->vt + e);
    if (!vo) return 0;
    if (vo < 4 || vo + size > t->tsize)
        return fail(r, "field %s at offset %u does not fit the table (size %u)", fname, vo, t->tsize);
    return (long)vo;
}

/* scalar field: 1 read, 0 absent (out keeps the default), -1 error */
static int scalar(rd *r, const tbl *t, int id, size_t size, void *out, const char *fname) {
    long vo = field(r, t, id, size, fname);
    if (vo <= 0) return (int)vo;
    memcpy(out, r->b + t->pos + (size_t)vo, size);
    return 1;
}
static int s_i32(rd *r, const tbl *t, int id, int *out, const char *fname) {
    int32_t v = *out;
    int k = scalar(r, t, id, 4, &v, fname);
    *out = v;
    return k;
}
static int s_i8(rd *r, const tbl *t, int id, int *out, const char *fname) {
    int8_t v = (int8_t)*out;
    int k = scalar(r, t, id, 1, &v, fname);
    *out = v;
    return k;
}
static int s_u8(rd *r, const tbl *t, int id, int *out, const char *fname) {
    uint8_t v = (uint8_t)*out;
    int k = scalar(r, t, id, 1, &v, fname);
    *out = v;
    return k;
}

/* reference field -> absolute target position: 1, 0 absent, -1 error */
static int ref(rd *r, const tbl *t, int id, size_t *target, const char *fname) {
    long vo = field(r, t, id, 4, fname);
    if (vo <= 0) return (int)vo;
    size_t p = t->pos + (size_t)vo;
    size_t tg = p + rd_u32(r, p);
    if (!in_range(r, tg, 4)) return fail(r, "%s points outside the file (to %zu of %zu)", fname, tg, r->n);
    *target = tg;
    return 1;
}

static int vec_at(rd *r, size_t pos, size_t esize, int *count, size_t *data, const char *fname) {
    if (!in_range(r, pos, 4)) return fail(r, "%s vector at %zu lies outside the file", fname, pos);
    uint32_t c = rd_u32(r, pos);
    size_t d = pos + 4;
    if (c > (r->n - d) / esize)
        return fail(r, "%s vector of %u elements runs past the end of the file", fname, c);
    if (c > INT_MAX) return fail(r, "%s vector of %u elements is too long", fname, c);
    *count = (int)c;
    *data = d;
    return 0;
}

/* vector field: 1, 0 absent (count 0), -1 */
static int vec(rd *r, const tbl *t, int id, size_t esize, int *count, size_t *data, const char *fname) {
    size_t tg = 0;
    *count = 0;
    *data = 0;
    int k = ref(r, t, id, &tg, fname);
    if (k <= 0) return k;
    return vec_at(r, tg, esize, count, data, fname) < 0 ? -1 : 1;
}

static int str(rd *r, const tbl *t, int id, const char **out, const char *fname) {
    int c;
    size_t d;
    int k = vec(r, t, id, 1, &c, &d, fname);
    if (k <= 0) return k;
    if (!in_range(r, d + (size_t)c, 1) || r->b[d + (size_t)c] != 0)
        return fail(r, "string %s is not NUL-terminated inside the file", fname);
    *out = (const char *)r->b + d;
    return 1;
}

/* copies a vector of 4- or 8-byte scalars into an aligned array */
static int copy_vec(rd *r, const tbl *t, int id, size_t esize, const void **out, int *count, const char *fname) {
    size_t d;
    *out = NULL;
    int k = vec(r, t, id, esize, count, &d, fname);
    if (k <= 0) return k;
    void *p = m_alloc(r, (size_t)*count, esize);
    if (!p) return -1;
    if (*count) memcpy(p, r->b + d, (size_t)*count * esize);
    *out = p;
    return 1;
}

/* element i of a vector of tables */
static int vec_table(rd *r, size_t data, int i, tbl *t) {
    size_t p = data + 4 * (size_t)i;
    size_t tg = p + rd_u32(r, p);
    return table_at(r, tg, t);
}

/* ---------------------------------------------------------------- parsing */

static int parse_quant(rd *r, size_t pos, tfl_tensor *t) {
    tbl q;
    if (table_at(r, pos, &q) < 0) return -1;
    const void *p;
    if (copy_vec(r, &q, 0, 4, &p, &t->n_min, "quantization.min") < 0) return -1;
    t->min = p;
    if (copy_vec(r, &q, 1, 4, &p, &t->n_max, "quantization.max") < 0) return -1;
    t->max = p;
    if (copy_vec(r, &q, 2, 4, &p, &t->n_scale, "quantization.scale") < 0) return -1;
    t->scale = p;
    if (copy_vec(r, &q, 3, 8, &p, &t->n_zero_point, "quantization.zero_point") < 0) return -1;
    t->zero_point = p;
    if (s_i32(r, &q, 6, &t->quantized_dimension, "quantization.quantized_dimension") < 0) return -1;
    return 0;
}

static int parse_tensor(rd *r, const tbl *tt, tfl_tensor *t) {
    tfl_model *m = r->m;
    int c;
    size_t d;
    if (vec(r, tt, 0, 4, &c, &d, "shape") < 0) return -1;
    if (c > TFL_MAX_DIMS) return fail(r, "rank %d exceeds %d", c, TFL_MAX_DIMS);
    t->ndim = c;
    for (int i = 0; i < c; i++) memcpy(&t->shape[i], r->b + d + 4 * (size_t)i, 4);
    if (s_u8(r, tt, 1, &t->type, "type") < 0) return -1;
    if (scalar(r, tt, 2, 4, &t->buffer, "buffer") < 0) return -1;
    t->name = "";
    if (str(r, tt, 3, &t->name, "name") < 0) return -1;
    size_t qp = 0;
    int k = ref(r, tt, 4, &qp, "quantization");
    if (k < 0 || (k > 0 && parse_quant(r, qp, t) < 0)) return -1;
    int var = 0;
    if (s_u8(r, tt, 5, &var, "is_variable") < 0) return -1;
    t->is_variable = var != 0;
    if (t->buffer >= (uint32_t)m->n_buffers) {
        if (!(t->buffer == 0 && m->n_buffers == 0))
            return fail(r, "buffer index %u out of range (%d buffers)", t->buffer, m->n_buffers);
    } else {
        t->data = m->buf_data[t->buffer];
        t->data_len = m->buf_len[t->buffer];
    }
    return 0;
}

static int parse_options(rd *r, const tbl *ot, tfl_op *o) {
    switch (o->options_type) {
    case TFL_OPT_CONV2D:
        if (s_i8(r, ot, 0, &o->padding, "padding") < 0 || s_i32(r, ot, 1, &o->stride_w, "stride_w") < 0 ||
            s_i32(r, ot, 2, &o->stride_h, "stride_h") < 0 || s_i8(r, ot, 3, &o->activation, "fused_activation_function") < 0 ||
            s_i32(r, ot, 4, &o->dilation_w, "dilation_w_factor") < 0 || s_i32(r, ot, 5, &o->dilation_h, "dilation_h_factor") < 0)
            return -1;
        break;
    case TFL_OPT_DEPTHWISE_CONV2D:
        if (s_i8(r, ot, 0, &o->padding, "padding") < 0 || s_i32(r, ot, 1, &o->stride_w, "stride_w") < 0 ||
            s_i32(r, ot, 2, &o->stride_h, "stride_h") < 0 || s_i32(r, ot, 3, &o->depth_multiplier, "depth_multiplier") < 0 ||
            s_i8(r, ot, 4, &o->activation, "fused_activation_function") < 0 ||
            s_i32(r, ot, 5, &o->dilation_w, "dilation_w_factor") < 0 || s_i32(r, ot, 6, &o->dilation_h, "dilation_h_factor") < 0)
            return -1;
        break;
    case TFL_OPT_POOL2D:
        if (s_i8(r, ot, 0, &o->padding, "padding") < 0 || s_i32(r, ot, 1, &o->stride_w, "stride_w") < 0 ||
            s_i32(r, ot, 2, &o->stride_h, "stride_h") < 0 || s_i32(r, ot, 3, &o->filter_w, "filter_width") < 0 ||
            s_i32(r, ot, 4, &o->filter_h, "filter_height") < 0 || s_i8(r, ot, 5, &o->activation, "fused_activation_function") < 0)
            return -1;
        break;
    case TFL_OPT_FULLY_CONNECTED:
    case TFL_OPT_ADD:
        if (s_i8(r, ot, 0, &o->activation, "fused_activation_function") < 0) return -1;
        break;
    case TFL_OPT_SOFTMAX:
        if (scalar(r, ot, 0, 4, &o->beta, "beta") < 0) return -1;
        break;
    case TFL_OPT_CONCATENATION:
        if (s_i32(r, ot, 0, &o->axis, "axis") < 0 || s_i8(r, ot, 1, &o->activation, "fused_activation_function") < 0)
            return -1;
        break;
    case TFL_OPT_RESHAPE: {
        const void *p;
        if (copy_vec(r, ot, 0, 4, &p, &o->n_new_shape, "new_shape") < 0) return -1;
        o->new_shape = p;
        break;
    }
    default:
        break;
    }
    return 0;
}

static int check_indices(rd *r, const int32_t *idx, int n, int n_tensors, bool allow_absent, const char *fname) {
    for (int i = 0; i < n; i++)
        if (idx[i] >= n_tensors || idx[i] < (allow_absent ? -1 : 0))
            return fail(r, "%s[%d] = %d is not a tensor index (%d tensors)", fname, i, (int)idx[i], n_tensors);
    return 0;
}

static int parse_op(rd *r, const tbl *tt, tfl_op *o, int n_tensors) {
    tfl_model *m = r->m;
    uint32_t oi = 0;
    if (scalar(r, tt, 0, 4, &oi, "opcode_index") < 0) return -1;
    if (oi >= (uint32_t)m->n_opcodes) return fail(r, "opcode_index %u out of range (%d operator codes)", oi, m->n_opcodes);
    o->opcode_index = (int)oi;
    o->builtin = m->opcodes[oi].builtin;
    o->version = m->opcodes[oi].version;
    o->custom_code = m->opcodes[oi].custom;
    const void *p;
    if (copy_vec(r, tt, 1, 4, &p, &o->n_inputs, "inputs") < 0) return -1;
    o->inputs = p;
    if (copy_vec(r, tt, 2, 4, &p, &o->n_outputs, "outputs") < 0) return -1;
    o->outputs = p;
    if (check_indices(r, o->inputs, o->n_inputs, n_tensors, true, "inputs") < 0 ||
        check_indices(r, o->outputs, o->n_outputs, n_tensors, false, "outputs") < 0)
        return -1;
    o->dilation_w = o->dilation_h = 1;
    if (s_u8(r, tt, 3, &o->options_type, "builtin_options_type") < 0) return -1;
    size_t op = 0;
    int k = ref(r, tt, 4, &op, "builtin_options");
    if (k < 0) return -1;
    if (k > 0) {
        tbl ot;
        if (table_at(r, op, &ot) < 0 || parse_options(r, &ot, o) < 0) return -1;
    }
    return 0;
}

static int parse_subgraph(rd *r, int si, const tbl *st, tfl_subgraph *g) {
    int c;
    size_t d;
    snprintf(r->what, sizeof r->what, "subgraph %d", si);
    g->name = "";
    if (str(r, st, 4, &g->name, "name") < 0) return -1;
    if (vec(r, st, 0, 4, &c, &d, "tensors") < 0) return -1;
    g->tensors = m_alloc(r, (size_t)c, sizeof(tfl_tensor));
    if (!g->tensors) return -1;
    g->n_tensors = c;
    for (int i = 0; i < c; i++) {
        tbl tt;
        snprintf(r->what, sizeof r->what, "subgraph %d tensor %d", si, i);
        if (vec_table(r, d, i, &tt) < 0 || parse_tensor(r, &tt, &g->tensors[i]) < 0) return -1;
    }
    snprintf(r->what, sizeof r->what, "subgraph %d", si);
    const void *p;
    if (copy_vec(r, st, 1, 4, &p, &g->n_inputs, "inputs") < 0) return -1;
    g->inputs = p;
    if (copy_vec(r, st, 2, 4, &p, &g->n_outputs, "outputs") < 0) return -1;
    g->outputs = p;
    if (check_indices(r, g->inputs, g->n_inputs, g->n_tensors, false, "inputs") < 0 ||
        check_indices(r, g->outputs, g->n_outputs, g->n_tensors, false, "outputs") < 0)
        return -1;
    if (vec(r, st, 3, 4, &c, &d, "operators") < 0) return -1;
    g->ops = m_alloc(r, (size_t)c, sizeof(tfl_op));
    if (!g->ops) return -1;
    g->n_ops = c;
    for (int i = 0; i < c; i++) {
        tbl ot;
        snprintf(r->what, sizeof r->what, "subgraph %d operator %d", si, i);
        if (vec_table(r, d, i, &ot) < 0 || parse_op(r, &ot, &g->ops[i], g->n_tensors) < 0) return -1;
    }
    return 0;
}

static int parse_model(rd *r) {
    tfl_model *m = r->m;
    snprintf(r->what, sizeof r->what, "model");
    if (r->n < 8) return fail(r, "file is %zu bytes, too short for a FlatBuffer", r->n);
    if (memcmp(r->b + 4, "TFL3", 4) != 0) {
        char id[5];
        for (int i = 0; i < 4; i++) id[i] = (r->b[4 + i] >= 32 && r->b[4 + i] < 127) ? (char)r->b[4 + i] : '?';
        id[4] = 0;
        return fail(r, "not a TFLite model (file identifier '%s', expected 'TFL3')", id);
    }
    tbl mt;
    if (table_at(r, rd_u32(r, 0), &mt) < 0) return -1;
    if (scalar(r, &mt, 0, 4, &m->version, "version") < 0) return -1;
    m->description = "";
    if (str(r, &mt, 3, &m->description, "description") < 0) return -1;
    int c;
    size_t d;
    /* buffers first: tensors point into them */
    if (vec(r, &mt, 4, 4, &c, &d, "buffers") < 0) return -1;
    m->n_buffers = c;
    m->buf_data = m_alloc(r, (size_t)c, sizeof(*m->buf_data));
    m->buf_len = m_alloc(r, (size_t)c, sizeof(*m->buf_len));
    if (!m->buf_data || !m->buf_len) return -1;
    for (int i = 0; i < c; i++) {
        tbl bt;
        int bc;
        size_t bd;
        snprintf(r->what, sizeof r->what, "buffer %d", i);
        if (vec_table(r, d, i, &bt) < 0) return -1;
        int k = vec(r, &bt, 0, 1, &bc, &bd, "data");
        if (k < 0) return -1;
        if (k > 0 && bc > 0) {
            m->buf_data[i] = r->b + bd;
            m->buf_len[i] = (size_t)bc;
        } else {
            uint64_t off = 0, size = 0;
            if (scalar(r, &bt, 1, 8, &off, "offset") < 0 || scalar(r, &bt, 2, 8, &size, "size") < 0) return -1;
            if (off > 1 && size > 0) { /* data stored after the FlatBuffer, offset from the file start */
                if (off > r->n || size > r->n - off)
                    return fail(r, "external data [%llu, +%llu) lies outside the file (%zu bytes)",
                                (unsigned long long)off, (unsigned long long)size, r->n);
                m->buf_data[i] = r->b + off;
                m->buf_len[i] = (size_t)size;
            }
        }
    }
    snprintf(r->what, sizeof r->what, "model");
    if (vec(r, &mt, 1, 4, &c, &d, "operator_codes") < 0) return -1;
    m->n_opcodes = c;
    m->opcodes = m_alloc(r, (size_t)c, sizeof(*m->opcodes));
    if (!m->opcodes) return -1;
    for (int i = 0; i < c; i++) {
        tbl ot;
        int dep = 0, code = 0, ver = 1;
        const char *custom = NULL;
        snprintf(r->what, sizeof r->what, "operator_code %d", i);
        if (vec_table(r, d, i, &ot) < 0 || s_i8(r, &ot, 0, &dep, "deprecated_builtin_code") < 0 ||
            str(r, &ot, 1, &custom, "custom_code") < 0 || s_i32(r, &ot, 2, &ver, "version") < 0 ||
            s_i32(r, &ot, 3, &code, "builtin_code") < 0)
            return -1;
        m->opcodes[i].builtin = code > dep ? code : dep;
        m->opcodes[i].version = ver;
        m->opcodes[i].custom = custom;
    }
    snprintf(r->what, sizeof r->what, "model");
    if (vec(r, &mt, 6, 4, &c, &d, "metadata") < 0) return -1;
    m->n_metadata = c;
    m->metadata = m_alloc(r, (size_t)c, sizeof(*m->metadata));
    if (!m->metadata) return -1;
    for (int i = 0; i < c; i++) {
        tbl et;
        snprintf(r->what, sizeof r->what, "metadata %d", i);
        m->metadata[i].name = "";
        if (vec_table(r, d, i, &et) < 0 || str(r, &et, 0, &m->metadata[i].name, "name") < 0 ||
            scalar(r, &et, 1, 4, &m->metadata[i].buffer, "buffer") < 0)
            return -1;
        if (m->metadata[i].buffer >= (uint32_t)m->n_buffers)
            return fail(r, "buffer index %u out of range (%d buffers)", m->metadata[i].buffer, m->n_buffers);
    }
    snprintf(r->what, sizeof r->what, "model");
    if (vec(r, &mt, 2, 4, &c, &d, "subgraphs") < 0) return -1;
    if (c < 1) return fail(r, "the model has no subgraphs");
    m->n_subgraphs = c;
    m->subgraphs = m_alloc(r, (size_t)c, sizeof(tfl_subgraph));
    if (!m->subgraphs) return -1;
    for (int i = 0; i < c; i++) {
        tbl st;
        snprintf(r->what, sizeof r->what, "subgraph %d", i);
        if (vec_table(r, d, i, &st) < 0 || parse_subgraph(r, i, &st, &m->subgraphs[i]) < 0) return -1;
    }
    return 0;
}

void tfl_close(tfl_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_allocs; i++) free(m->allocs[i]);
    free(m->allocs);
    free(m->buf);
    free(m->name);
    free(m);
}

/* takes ownership of buf */
static tfl_model *open_buf(uint8_t *buf, size_t len, const char *name) {
    if (!name) name = "(memory)";
    tfl_model *m = calloc(1, sizeof *m);
    char *nm = m ? strdup(name) : NULL;
    if (!m || !nm) {
        free(m);
        free(buf);
        sn_error("%s: out of memory", name);
        return NULL;
    }
    m->name = nm;
    m->buf = buf;
    m->len = len;
    rd r = {.m = m, .b = buf, .n = len, .budget = len + 4096};
    if (parse_model(&r) < 0) {
        tfl_close(m);
        return NULL;
    }
    return m;
}

tfl_model *tfl_open_mem(const void *buf, size_t len, const char *name) {
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        sn_error("%s: out of memory (%zu bytes)", name ? name : "(memory)", len);
        return NULL;
    }
    if (len) memcpy(copy, buf, len);
    return open_buf(copy, len, name);
}

tfl_model *tfl_open(const char *path) {
    size_t n;
    uint8_t *b = sn_read_file(path, &n, 0);
    return b ? open_buf(b, n, path) : NULL;
}

/* ---------------------------------------------------------------- accessors */

const char *tfl_filename(const tfl_model *m) { return m->name; }
uint32_t tfl_version(const tfl_model *m) { return m->version; }
const char *tfl_description(const tfl_model *m) { return m->description; }
int tfl_num_buffers(const tfl_model *m) { return m->n_buffers; }
int tfl_num_opcodes(const tfl_model *m) { return m->n_opcodes; }
int tfl_num_subgraphs(const tfl_model *m) { return m->n_subgraphs; }
int tfl_num_metadata(const tfl_model *m) { return m->n_metadata; }
const char *tfl_metadata(const tfl_model *m, int i, const uint8_t **data, size_t *len) {
    if (i < 0 || i >= m->n_metadata) return NULL;
    if (data) *data = m->buf_data[m->metadata[i].buffer];
    if (len) *len = m->buf_len[m->metadata[i].buffer];
    return m->metadata[i].name;
}
const tfl_subgraph *tfl_subgraph_at(const tfl_model *m, int i) {
    return i >= 0 && i < m->n_subgraphs ? &m->subgraphs[i] : NULL;
}
int tfl_num_tensors(const tfl_model *m) { return m->subgraphs[0].n_tensors; }
const tfl_tensor *tfl_tensor_at(const tfl_model *m, int i) {
    return i >= 0 && i < m->subgraphs[0].n_tensors ? &m->subgraphs[0].tensors[i] : NULL;
}
int tfl_num_ops(const tfl_model *m) { return m->subgraphs[0].n_ops; }
const tfl_op *tfl_op_at(const tfl_model *m, int i) {
    return i >= 0 && i < m->subgraphs[0].n_ops ? &m->subgraphs[0].ops[i] : NULL;
}

int64_t tfl_numel(const tfl_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0) return -1;
        if (t->shape[i] && n > INT64_MAX / t->shape[i]) return -1;
        n *= t->shape[i];
    }
    return n;
}

size_t tfl_type_size(int type) {
    switch (type) {
    case TFL_FLOAT32: case TFL_INT32: case TFL_UINT32: return 4;
    case TFL_FLOAT16: case TFL_INT16: case TFL_UINT16: case TFL_BFLOAT16: return 2;
    case TFL_UINT8: case TFL_INT8: case TFL_BOOL: return 1;
    case TFL_INT64: case TFL_UINT64: case TFL_FLOAT64: case TFL_COMPLEX64: return 8;
    case TFL_COMPLEX128: return 16;
    default: return 0;
    }
}

const char *tfl_type_name(int type) {
    static const char *names[] = {"FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING", "BOOL",
                                  "INT16", "COMPLEX64", "INT8", "FLOAT64", "COMPLEX128", "UINT64",
                                  "RESOURCE", "VARIANT", "UINT32", "UINT16", "INT4", "BFLOAT16"};
    return type >= 0 && type < (int)(sizeof names / sizeof *names) ? names[type] : "UNKNOWN";
}

const char *tfl_op_name(int b) {
    switch (b) {
    case TFL_OP_ADD: return "ADD";
    case TFL_OP_AVERAGE_POOL_2D: return "AVERAGE_POOL_2D";
    case TFL_OP_CONCATENATION: return "CONCATENATION";
    case TFL_OP_CONV_2D: return "CONV_2D";
    case TFL_OP_DEPTHWISE_CONV_2D: return "DEPTHWISE_CONV_2D";
    case TFL_OP_DEQUANTIZE: return "DEQUANTIZE";
    case TFL_OP_FULLY_CONNECTED: return "FULLY_CONNECTED";
    case TFL_OP_LOGISTIC: return "LOGISTIC";
    case TFL_OP_MAX_POOL_2D: return "MAX_POOL_2D";
    case TFL_OP_MUL: return "MUL";
    case TFL_OP_RELU: return "RELU";
    case TFL_OP_RELU6: return "RELU6";
    case TFL_OP_RESHAPE: return "RESHAPE";
    case TFL_OP_SOFTMAX: return "SOFTMAX";
    case TFL_OP_PAD: return "PAD";
    case TFL_OP_MEAN: return "MEAN";
    case TFL_OP_SQUEEZE: return "SQUEEZE";
    case TFL_OP_HARD_SWISH: return "HARD_SWISH";
    case TFL_OP_QUANTIZE: return "QUANTIZE";
    case TFL_OP_CUSTOM: return "CUSTOM";
    default: return "UNKNOWN";
    }
}

/* ---------------------------------------------------------------- dequantisation */

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1F, mt = h & 0x3FF, bits;
    if (e == 0x1F) bits = sign | 0x7F800000u | (mt << 13);
    else if (e != 0) bits = sign | ((e + 112) << 23) | (mt << 13);
    else if (mt == 0) bits = sign;
    else {
        e = 113;
        while (!(mt & 0x400)) { mt <<= 1; e--; }
        bits = sign | (e << 23) | ((mt & 0x3FF) << 13);
    }
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

static int64_t load_int(const uint8_t *p, int type, size_t i) {
    switch (type) {
    case TFL_UINT8: return p[i];
    case TFL_INT8: return (int8_t)p[i];
    case TFL_INT16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case TFL_INT32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    default: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; } /* TFL_INT64 */
    }
}

int tfl_dequantize_tensor(const tfl_model *m, const tfl_tensor *t, float *out, size_t n) {
    char nm[160];
    const char *f = m->name;
    snprintf(nm, sizeof nm, "'%.100s'", t->name);
    for (int s = 0; s < m->n_subgraphs; s++) {
        const tfl_subgraph *g = &m->subgraphs[s];
        if (t >= g->tensors && t < g->tensors + g->n_tensors) {
            if (s == 0) snprintf(nm, sizeof nm, "%d '%.100s'", (int)(t - g->tensors), t->name);
            else snprintf(nm, sizeof nm, "%d '%.100s' (subgraph %d)", (int)(t - g->tensors), t->name, s);
        }
    }
    int64_t numel = tfl_numel(t);
    if (numel < 0) return sn_error("%s: tensor %s has a dynamic or overflowing shape", f, nm);
    if ((uint64_t)numel != n)
        return sn_error("%s: tensor %s has %lld elements, caller asked for %zu", f, nm, (long long)numel, n);
    if (!t->data && n > 0)
        return sn_error("%s: tensor %s has no constant data (buffer %u is empty)", f, nm, t->buffer);
    size_t es = tfl_type_size(t->type);
    bool integer = t->type == TFL_UINT8 || t->type == TFL_INT8 || t->type == TFL_INT16 || t->type == TFL_INT32 ||
                   t->type == TFL_INT64;
    if (!integer && t->type != TFL_FLOAT32 && t->type != TFL_FLOAT16 && t->type != TFL_FLOAT64)
        return sn_error("%s: tensor %s has type %s, which cannot be dequantised", f, nm, tfl_type_name(t->type));
    if (n > SIZE_MAX / es || (n > 0 && t->data_len != n * es))
        return sn_error("%s: tensor %s: buffer %u holds %zu bytes, but %lld %s elements need %llu", f, nm,
                        t->buffer, t->data_len, (long long)numel, tfl_type_name(t->type),
                        (unsigned long long)numel * es);
    const uint8_t *p = t->data;
    switch (t->type) {
    case TFL_FLOAT32: if (n) memcpy(out, p, n * 4); return 0;
    case TFL_FLOAT16: for (size_t i = 0; i < n; i++) { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = f16_to_f32(v); } return 0;
    case TFL_FLOAT64: for (size_t i = 0; i < n; i++) { double v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; } return 0;
    default: break;
    }
    int ns = t->n_scale;
    if (ns < 1) { /* a plain integer constant (e.g. a reshape's shape): values as they are */
        for (size_t i = 0; i < n; i++) out[i] = (float)load_int(p, t->type, i);
        return 0;
    }
    if (t->n_zero_point != 0 && t->n_zero_point != ns)
        return sn_error("%s: tensor %s has %d scales but %d zero points", f, nm, ns, t->n_zero_point);
    size_t inner = 1, channels = 1;
    if (ns > 1) {
        int qd = t->quantized_dimension;
        if (qd < 0 || qd >= t->ndim)
            return sn_error("%s: tensor %s: quantized_dimension %d outside its rank %d", f, nm, qd, t->ndim);
        if (t->shape[qd] != ns)
            return sn_error("%s: tensor %s has %d scales, but dimension %d has size %d", f, nm, ns, qd,
                            (int)t->shape[qd]);
        for (int i = qd + 1; i < t->ndim; i++) inner *= (size_t)t->shape[i];
        channels = (size_t)ns;
    }
    for (size_t i = 0; i < n; i++) {
        size_t c = ns > 1 ? (i / inner) % channels : 0;
        int64_t q = load_int(p, t->type, i), zp = t->n_zero_point ? t->zero_point[c] : 0, diff;
        double dq = __builtin_sub_overflow(q, zp, &diff) ? (double)q - (double)zp : (double)diff;
        out[i] = (float)((double)t->scale[c] * dq);
    }
    return 0;
}

int tfl_dequantize(const tfl_model *m, int tensor, float *out, size_t n) {
    const tfl_tensor *t = tfl_tensor_at(m, tensor);
    if (!t) return sn_error("%s: tensor index %d out of range (%d tensors)", m->name, tensor, tfl_num_tensors(m));
    return tfl_dequantize_tensor(m, t, out, n);
}
