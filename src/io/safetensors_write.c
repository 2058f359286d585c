/* safetensors_write.c - the safetensors writer (see safetensors.h for the contract). */
#include "io/safetensors.h"
#include "io/safetensors_internal.h"
#include "core/error.h"
#include "core/file.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors_write.c assumes a little-endian host"
#endif

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t nbytes;
    uint8_t *data;
} wtensor;

struct st_writer {
    wtensor *t;
    size_t n, cap;
    char **meta;   /* key, value pairs */
    size_t n_meta, cap_meta;
};

st_writer *st_writer_new(void) {
    st_writer *w = calloc(1, sizeof *w);
    if (!w) sn_error("safetensors writer: out of memory");
    return w;
}

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    for (size_t i = 0; i < 2 * w->n_meta; i++) free(w->meta[i]);
    free(w->t);
    free(w->meta);
    free(w);
}

int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                  const void *data) {
    if (!name || !name[0]) return sn_error("safetensors writer: empty tensor name");
    if (strcmp(name, "__metadata__") == 0) return sn_error("safetensors writer: '__metadata__' is not a tensor name");
    if (!st_utf8_valid((const uint8_t *)name, strlen(name)))
        return sn_error("safetensors writer: tensor name '%s' is not valid UTF-8", name);
    if ((unsigned)dtype >= ST_NUM_DTYPES) return sn_error("safetensors writer: tensor '%s': bad dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > ST_MAX_DIMS)
        return sn_error("safetensors writer: tensor '%s': rank %d outside 0..%d", name, ndim, ST_MAX_DIMS);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) return sn_error("safetensors writer: duplicate tensor name '%s'", name);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return sn_error("safetensors writer: tensor '%s': negative dim %lld", name, (long long)shape[d]);
        if (shape[d] && numel > SIZE_MAX / (uint64_t)shape[d])
            return sn_error("safetensors writer: tensor '%s': shape overflows", name);
        numel *= (size_t)shape[d];
    }
    size_t es = st_dtype_size(dtype);
    if (numel > SIZE_MAX / es) return sn_error("safetensors writer: tensor '%s': shape overflows", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return sn_error("safetensors writer: out of memory");
        w->t = t;
        w->cap = cap;
    }
    wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->nbytes = numel * es;
    t->name = st_strdup(name);
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return sn_error("safetensors writer: tensor '%s': out of memory (%zu bytes)", name, t->nbytes);
    }
    if (t->nbytes) memcpy(t->data, data, t->nbytes);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    w->n++;
    return 0;
}

int st_writer_add_f32(st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data) {
    return st_writer_add(w, name, ST_F32, ndim, shape, data);
}

int st_writer_meta(st_writer *w, const char *key, const char *value) {
    if (!key || !value) return sn_error("safetensors writer: NULL metadata key or value");
    if (!st_utf8_valid((const uint8_t *)key, strlen(key)) || !st_utf8_valid((const uint8_t *)value, strlen(value)))
        return sn_error("safetensors writer: metadata '%s' is not valid UTF-8", key);
    char *v = st_strdup(value);
    if (!v) return sn_error("safetensors writer: out of memory");
    for (size_t i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta[2 * i], key) == 0) {
            free(w->meta[2 * i + 1]);
            w->meta[2 * i + 1] = v;
            return 0;
        }
    if (w->n_meta == w->cap_meta) {
        size_t cap = w->cap_meta ? 2 * w->cap_meta : 8;
        char **m = realloc(w->meta, 2 * cap * sizeof(char *));
        if (!m) { free(v); return sn_error("safetensors writer: out of memory"); }
        w->meta = m;
        w->cap_meta = cap;
    }
    char *k = st_strdup(key);
    if (!k) { free(v); return sn_error("safetensors writer: out of memory"); }
    w->meta[2 * w->n_meta] = k;
    w->meta[2 * w->n_meta + 1] = v;
    w->n_meta++;
    return 0;
}

typedef struct { char *b; size_t n, cap; bool oom; } sbuf;

static void sb_put(sbuf *s, const char *p, size_t n) {
    if (s->oom) return;
    if (s->n + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->n + n + 1) cap *= 2;
        char *b = realloc(s->b, cap);
        if (!b) { s->oom = true; return; }
        s->b = b;
        s->cap = cap;
    }
    memcpy(s->b + s->n, p, n);
    s->n += n;
    s->b[s->n] = 0;
}
static void sb_str(sbuf *s, const char *p) { sb_put(s, p, strlen(p)); }
static void sb_fmt(sbuf *s, const char *fmt, unsigned long long v) {
    char tmp[32];
    int k = snprintf(tmp, sizeof tmp, fmt, v);
    sb_put(s, tmp, (size_t)k);
}

/* a JSON string escaped exactly as serde_json does */
static void sb_json_str(sbuf *s, const char *p) {
    sb_put(s, "\"", 1);
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) {
                snprintf(u, sizeof u, "\\u%04x", c);
                esc = u;
            }
        }
        if (esc) sb_str(s, esc);
        else sb_put(s, (const char *)&c, 1);
    }
    sb_put(s, "\"", 1);
}

static int cmp_write(const void *a, const void *b, void *ctx) {
    const st_writer *w = ctx;
    const wtensor *x = &w->t[*(const size_t *)a], *y = &w->t[*(const size_t *)b];
    if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1;
    return strcmp(x->name, y->name);
}
static int cmp_meta(const void *a, const void *b, void *ctx) {
    const st_writer *w = ctx;
    return strcmp(w->meta[2 * *(const size_t *)a], w->meta[2 * *(const size_t *)b]);
}

/* the file's order of the tensors (order[n]) and of the metadata entries (morder[n_meta]) */
static void file_order(const st_writer *w, size_t *order, size_t *morder) {
    for (size_t i = 0; i < w->n; i++) order[i] = i;
    for (size_t i = 0; i < w->n_meta; i++) morder[i] = i;
    qsort_r(order, w->n, sizeof(size_t), cmp_write, (void *)w);
    qsort_r(morder, w->n_meta, sizeof(size_t), cmp_meta, (void *)w);
}

/* header (padded) and the tensor order; returns -1 on out-of-memory */
static int build_header(const st_writer *w, sbuf *h, size_t *order, size_t *total_data) {
    size_t *morder = malloc((w->n_meta + 1) * sizeof(size_t));
    if (!morder) return sn_error("safetensors writer: out of memory");
    file_order(w, order, morder);
    sb_put(h, "{", 1);
    bool first = true;
    if (w->n_meta) {
        sb_str(h, "\"__metadata__\":{");
        for (size_t i = 0; i < w->n_meta; i++) {
            if (i) sb_put(h, ",", 1);
            sb_json_str(h, w->meta[2 * morder[i]]);
            sb_put(h, ":", 1);
            sb_json_str(h, w->meta[2 * morder[i] + 1]);
        }
        sb_put(h, "}", 1);
        first = false;
    }
    free(morder);
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const wtensor *t = &w->t[order[i]];
        if (!first) sb_put(h, ",", 1);
        first = false;
        sb_json_str(h, t->name);
        sb_str(h, ":{\"dtype\":\"");
        sb_str(h, st_dtype_name(t->dtype));
        sb_str(h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) sb_fmt(h, d ? ",%llu" : "%llu", (unsigned long long)t->shape[d]);
        sb_fmt(h, "],\"data_offsets\":[%llu", off);
        off += t->nbytes;
        sb_fmt(h, ",%llu]}", off);
    }
    sb_put(h, "}", 1);
    while (h->n % 8) sb_put(h, " ", 1);
    if (h->oom) return sn_error("safetensors writer: out of memory building the header");
    *total_data = off;
    return 0;
}

typedef struct {
    const st_writer *w;
    const size_t *off;
} read_ctx;

/* st_open's order of the tensors: by offset, then size, then name */
static int cmp_read(const void *a, const void *b, void *ctx) {
    const read_ctx *c = ctx;
    const size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (c->off[i] != c->off[j]) return c->off[i] < c->off[j] ? -1 : 1;
    if (c->w->t[i].nbytes != c->w->t[j].nbytes) return c->w->t[i].nbytes < c->w->t[j].nbytes ? -1 : 1;
    return strcmp(c->w->t[i].name, c->w->t[j].name);
}

int st_writer_walk(const st_writer *w, void (*meta)(void *ctx, const char *key, const char *value),
                   void (*tensor)(void *ctx, const st_tensor *t), void *ctx) {
    size_t *order = malloc((w->n + 1) * sizeof(size_t)), *morder = malloc((w->n_meta + 1) * sizeof(size_t));
    size_t *off = malloc((w->n + 1) * sizeof(size_t));
    int rc = order && morder && off ? 0 : sn_error("safetensors writer: out of memory");
    if (rc == 0) {
        file_order(w, order, morder);
        for (size_t i = 0, pos = 0; i < w->n; pos += w->t[order[i]].nbytes, i++) off[order[i]] = pos;
        qsort_r(order, w->n, sizeof(size_t), cmp_read, &(read_ctx){w, off}); /* empty tensors share offsets */
        for (size_t i = 0; i < w->n_meta; i++) meta(ctx, w->meta[2 * morder[i]], w->meta[2 * morder[i] + 1]);
    }
    for (size_t i = 0; rc == 0 && i < w->n; i++) {
        const wtensor *t = &w->t[order[i]];
        st_tensor v = {.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .numel = t->nbytes / st_dtype_size(t->dtype),
                       .nbytes = t->nbytes, .offset = off[order[i]], .data = t->data};
        memcpy(v.shape, t->shape, sizeof v.shape);
        tensor(ctx, &v);
    }
    free(order);
    free(morder);
    free(off);
    return rc;
}

int st_writer_serialize(const st_writer *w, uint8_t **out, size_t *len) {
    size_t *order = malloc((w->n + 1) * sizeof(size_t));
    sbuf h = {0};
    size_t total;
    if (!order) return sn_error("safetensors writer: out of memory");
    if (build_header(w, &h, order, &total) < 0) {
        free(order);
        free(h.b);
        return -1;
    }
    size_t n = 8 + h.n + total;
    uint8_t *b = malloc(n);
    if (!b) {
        free(order);
        free(h.b);
        return sn_error("safetensors writer: out of memory (%zu bytes)", n);
    }
    uint64_t hl = h.n;
    memcpy(b, &hl, 8);
    memcpy(b + 8, h.b, h.n);
    size_t pos = 8 + h.n;
    for (size_t i = 0; i < w->n; i++) {
        const wtensor *t = &w->t[order[i]];
        if (t->nbytes) memcpy(b + pos, t->data, t->nbytes);
        pos += t->nbytes;
    }
    free(order);
    free(h.b);
    *out = b;
    *len = n;
    return 0;
}

typedef struct {
    const st_writer *w;
    const sbuf *h;
    const size_t *order;
} st_out;

/* the file's bytes: header length, header, tensors in data order */
static int write_st(FILE *fp, void *ctx) {
    const st_out *o = ctx;
    uint64_t hl = o->h->n;
    bool ok = fwrite(&hl, 8, 1, fp) == 1 && fwrite(o->h->b, 1, o->h->n, fp) == o->h->n;
    for (size_t i = 0; ok && i < o->w->n; i++) {
        const wtensor *t = &o->w->t[o->order[i]];
        ok = t->nbytes == 0 || fwrite(t->data, 1, t->nbytes, fp) == t->nbytes;
    }
    return 0; /* a failed fwrite sets the stream's error flag, which the caller reports */
}

int st_writer_save(const st_writer *w, const char *path) {
    size_t *order = malloc((w->n + 1) * sizeof(size_t));
    sbuf h = {0};
    size_t total;
    if (!order) return sn_error("%s: out of memory", path);
    if (build_header(w, &h, order, &total) < 0) {
        free(order);
        free(h.b);
        return sn_error_prefix("%s", path);
    }
    st_out o = {w, &h, order};
    int rc = sn_write_file_atomic(path, write_st, &o);
    free(order);
    free(h.b);
    return rc;
}
