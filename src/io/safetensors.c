/* safetensors.c - see safetensors.h for the contract. */
#include "io/safetensors.h"
#include "core/error.h"
#include "core/file.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_MAX_HEADER 100000000ull /* the reference implementation's limit */

struct st_file {
    char *name;
    uint8_t *buf;          /* the whole file */
    size_t len;
    st_tensor *tensors;    /* file order */
    size_t n;
    size_t *by_name;       /* indices sorted by name */
    char **meta_kv;        /* key0, value0, key1, value1, ... */
    size_t n_meta;
};

static const struct { const char *name; size_t size; } dtypes[ST_NUM_DTYPES] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},   [ST_I8] = {"I8", 1},     [ST_I16] = {"I16", 2},
    [ST_U16] = {"U16", 2},   [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_I32] = {"I32", 4},
    [ST_U32] = {"U32", 4},   [ST_F32] = {"F32", 4}, [ST_F64] = {"F64", 8},   [ST_I64] = {"I64", 8},
    [ST_U64] = {"U64", 8},
};

const char *st_dtype_name(st_dtype d) { return (unsigned)d < ST_NUM_DTYPES ? dtypes[d].name : "?"; }
size_t st_dtype_size(st_dtype d) { return (unsigned)d < ST_NUM_DTYPES ? dtypes[d].size : 0; }

int st_dtype_parse(const char *s, st_dtype *out) {
    for (int i = 0; i < ST_NUM_DTYPES; i++)
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (st_dtype)i;
            return 0;
        }
    return -1;
}

/* ---------------------------------------------------------------- reading */

static bool valid_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t k;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; }
        else return false;
        if (n - i <= k) return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

/* a JSON number that must be a non-negative integer (exactly representable) */
static bool json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double v = j->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || v != floor(v)) return false;
    *out = (uint64_t)v;
    return true;
}

static int cmp_offset(const void *a, const void *b) {
    const st_tensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

void st_close(st_file *f) {
    if (!f) return;
    if (f->tensors)
        for (size_t i = 0; i < f->n; i++) free((char *)f->tensors[i].name);
    if (f->meta_kv)
        for (size_t i = 0; i < 2 * f->n_meta; i++) free(f->meta_kv[i]);
    free(f->tensors);
    free(f->by_name);
    free(f->meta_kv);
    free(f->buf);
    free(f->name);
    free(f);
}

static int parse_tensor(st_file *f, const cJSON *e, st_tensor *t, size_t data_len) {
    const char *nm = t->name;
    if (!cJSON_IsObject(e)) return sn_error("%s: tensor '%s': header entry is not a JSON object", f->name, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return sn_error("%s: tensor '%s': missing or non-string \"dtype\"", f->name, nm);
    if (st_dtype_parse(dt->valuestring, &t->dtype) < 0)
        return sn_error("%s: tensor '%s': unknown or unsupported dtype \"%.40s\"", f->name, nm, dt->valuestring);
    if (!cJSON_IsArray(sh)) return sn_error("%s: tensor '%s': missing or non-array \"shape\"", f->name, nm);
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS) return sn_error("%s: tensor '%s': rank %d exceeds %d", f->name, nm, nd, ST_MAX_DIMS);
    t->ndim = nd;
    size_t numel = 1;
    int d = 0;
    for (const cJSON *s = sh->child; s; s = s->next, d++) {
        uint64_t v;
        if (!json_uint(s, &v)) return sn_error("%s: tensor '%s': shape[%d] is not a non-negative integer", f->name, nm, d);
        t->shape[d] = (int64_t)v;
        if (v != 0 && numel > SIZE_MAX / v)
            return sn_error("%s: tensor '%s': shape overflows the element count", f->name, nm);
        numel *= (size_t)v;
    }
    size_t es = st_dtype_size(t->dtype);
    if (numel > SIZE_MAX / es) return sn_error("%s: tensor '%s': shape overflows the byte size", f->name, nm);
    t->numel = numel;
    t->nbytes = numel * es;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return sn_error("%s: tensor '%s': \"data_offsets\" is not an array of two integers", f->name, nm);
    uint64_t b, en;
    if (!json_uint(off->child, &b) || !json_uint(off->child->next, &en))
        return sn_error("%s: tensor '%s': \"data_offsets\" are not non-negative integers", f->name, nm);
    if (b > en)
        return sn_error("%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", f->name, nm,
                        (unsigned long long)b, (unsigned long long)en);
    if (en > data_len)
        return sn_error("%s: tensor '%s': data_offsets [%llu, %llu] exceed the data section (%zu bytes)", f->name,
                        nm, (unsigned long long)b, (unsigned long long)en, data_len);
    if (en - b != t->nbytes)
        return sn_error("%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, but %s shape needs %zu",
                        f->name, nm, (unsigned long long)b, (unsigned long long)en,
                        (unsigned long long)(en - b), dtypes[t->dtype].name, t->nbytes);
    t->offset = (size_t)b;
    return 0;
}

static int cmp_name_idx(const void *a, const void *b, void *ctx) {
    const st_tensor *t = ctx;
    return strcmp(t[*(const size_t *)a].name, t[*(const size_t *)b].name);
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* takes ownership of buf */
static st_file *parse(uint8_t *buf, size_t len, const char *name) {
    st_file *f = calloc(1, sizeof *f);
    char *nm = dupstr(name ? name : "(memory)");
    if (!f || !nm) {
        free(f); free(nm); free(buf);
        sn_error("%s: out of memory", name ? name : "(memory)");
        return NULL;
    }
    f->name = nm;
    f->buf = buf;
    f->len = len;
    cJSON *root = NULL;
    if (len < 8) {
        sn_error("%s: file is %zu bytes, too short for the 8-byte header length", f->name, len);
        goto fail;
    }
    uint64_t hl;
    memcpy(&hl, buf, 8);
    if (hl > len - 8) {
        sn_error("%s: header length %llu exceeds the file size (%zu bytes)", f->name, (unsigned long long)hl, len);
        goto fail;
    }
    if (hl > ST_MAX_HEADER) {
        sn_error("%s: header length %llu exceeds the limit of %llu bytes", f->name, (unsigned long long)hl,
                 ST_MAX_HEADER);
        goto fail;
    }
    const char *hdr = (const char *)buf + 8;
    size_t data_len = len - 8 - (size_t)hl;
    const uint8_t *data = buf + 8 + hl;
    if (hl < 2 || hdr[0] != '{') {
        sn_error("%s: header is not a JSON object (it must start with '{')", f->name);
        goto fail;
    }
    if (!valid_utf8((const uint8_t *)hdr, (size_t)hl)) {
        sn_error("%s: header is not valid UTF-8", f->name);
        goto fail;
    }
    if (memchr(hdr, 0, (size_t)hl)) {
        sn_error("%s: header contains a NUL byte", f->name);
        goto fail;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)hl, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        size_t at = end && end >= hdr && end <= hdr + hl ? (size_t)(end - hdr) : 0;
        if (!root) {
            const char *ep = cJSON_GetErrorPtr();
            if (ep && ep >= hdr && ep <= hdr + hl) at = (size_t)(ep - hdr);
        }
        sn_error("%s: header is not valid JSON (near byte %zu of %llu)", f->name, at, (unsigned long long)hl);
        goto fail;
    }
    for (const char *p = end; p < hdr + hl; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            sn_error("%s: header has trailing bytes after the JSON object (at byte %zu)", f->name, (size_t)(p - hdr));
            goto fail;
        }
    size_t n_items = 0;
    const cJSON *meta = NULL;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (meta) {
                sn_error("%s: duplicate \"__metadata__\"", f->name);
                goto fail;
            }
            meta = e;
        } else
            n_items++;
    }
    if (meta) {
        if (!cJSON_IsObject(meta)) {
            sn_error("%s: \"__metadata__\" is not a JSON object", f->name);
            goto fail;
        }
        size_t nm_ = 0;
        for (const cJSON *e = meta->child; e; e = e->next) nm_++;
        f->meta_kv = calloc(2 * nm_ + 1, sizeof(char *));
        if (!f->meta_kv) { sn_error("%s: out of memory", f->name); goto fail; }
        for (const cJSON *e = meta->child; e; e = e->next) {
            if (!cJSON_IsString(e)) {
                sn_error("%s: metadata '%.200s' is not a string", f->name, e->string);
                goto fail;
            }
            for (size_t i = 0; i < f->n_meta; i++)
                if (strcmp(f->meta_kv[2 * i], e->string) == 0) {
                    sn_error("%s: duplicate metadata key '%.200s'", f->name, e->string);
                    goto fail;
                }
            f->meta_kv[2 * f->n_meta] = dupstr(e->string);
            f->meta_kv[2 * f->n_meta + 1] = dupstr(e->valuestring);
            f->n_meta++;
            if (!f->meta_kv[2 * f->n_meta - 2] || !f->meta_kv[2 * f->n_meta - 1]) {
                sn_error("%s: out of memory", f->name);
                goto fail;
            }
        }
    }
    f->tensors = calloc(n_items + 1, sizeof(st_tensor));
    f->by_name = calloc(n_items + 1, sizeof(size_t));
    if (!f->tensors || !f->by_name) { sn_error("%s: out of memory", f->name); goto fail; }
    for (const cJSON *e = root->child; e; e = e->next) {
        if (e == meta) continue;
        st_tensor *t = &f->tensors[f->n];
        t->name = dupstr(e->string);
        if (!t->name) { sn_error("%s: out of memory", f->name); goto fail; }
        f->n++;
        if (t->name[0] == 0) {
            sn_error("%s: a tensor has an empty name", f->name);
            goto fail;
        }
        if (parse_tensor(f, e, t, data_len) < 0) goto fail;
    }
    cJSON_Delete(root);
    root = NULL;
    qsort(f->tensors, f->n, sizeof(st_tensor), cmp_offset);
    size_t pos = 0;
    for (size_t i = 0; i < f->n; i++) {
        st_tensor *t = &f->tensors[i];
        if (t->offset != pos) {
            if (t->offset < pos)
                sn_error("%s: tensor '%s' (bytes %zu..%zu) overlaps the tensor before it (ending at %zu)", f->name,
                         t->name, t->offset, t->offset + t->nbytes, pos);
            else
                sn_error("%s: tensor '%s' begins at %zu, leaving a hole after byte %zu of the data section", f->name,
                         t->name, t->offset, pos);
            goto fail;
        }
        pos += t->nbytes;
        t->data = data + t->offset;
    }
    if (pos != data_len) {
        sn_error("%s: tensors cover %zu bytes, but the data section has %zu", f->name, pos, data_len);
        goto fail;
    }
    for (size_t i = 0; i < f->n; i++) f->by_name[i] = i;
    qsort_r(f->by_name, f->n, sizeof(size_t), cmp_name_idx, f->tensors);
    for (size_t i = 1; i < f->n; i++)
        if (strcmp(f->tensors[f->by_name[i]].name, f->tensors[f->by_name[i - 1]].name) == 0) {
            sn_error("%s: duplicate tensor name '%s'", f->name, f->tensors[f->by_name[i]].name);
            goto fail;
        }
    return f;
fail:
    cJSON_Delete(root);
    st_close(f);
    return NULL;
}

st_file *st_open_mem(const void *buf, size_t len, const char *name) {
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        sn_error("%s: out of memory (%zu bytes)", name ? name : "(memory)", len);
        return NULL;
    }
    if (len) memcpy(copy, buf, len);
    return parse(copy, len, name);
}

st_file *st_open(const char *path) {
    size_t n;
    uint8_t *b = sn_read_file(path, &n, 0);
    return b ? parse(b, n, path) : NULL;
}

const char *st_filename(const st_file *f) { return f->name; }
size_t st_count(const st_file *f) { return f->n; }
const st_tensor *st_tensor_at(const st_file *f, size_t i) { return i < f->n ? &f->tensors[i] : NULL; }

const st_tensor *st_find(const st_file *f, const char *name) {
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const st_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_kv[2 * i], key) == 0) return f->meta_kv[2 * i + 1];
    return NULL;
}
size_t st_meta_count(const st_file *f) { return f->n_meta; }
const char *st_meta_key(const st_file *f, size_t i) { return i < f->n_meta ? f->meta_kv[2 * i] : NULL; }
const char *st_meta_value(const st_file *f, size_t i) { return i < f->n_meta ? f->meta_kv[2 * i + 1] : NULL; }

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1F, m = h & 0x3FF, bits;
    if (e == 0x1F) bits = sign | 0x7F800000u | (m << 13);            /* inf / nan */
    else if (e != 0) bits = sign | ((e + 112) << 23) | (m << 13);     /* normal */
    else if (m == 0) bits = sign;                                     /* zero */
    else {                                                            /* subnormal: renormalise */
        e = 113;
        while (!(m & 0x400)) { m <<= 1; e--; }
        bits = sign | (e << 23) | ((m & 0x3FF) << 13);
    }
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

static int check_n(const st_file *f, const st_tensor *t, size_t n) {
    if (n != t->numel)
        return sn_error("%s: tensor '%s' has %zu elements, caller asked for %zu", f->name, t->name, t->numel, n);
    return 0;
}

int st_read_f32(const st_file *f, const st_tensor *t, float *out, size_t n) {
    if (check_n(f, t, n) < 0) return -1;
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case ST_F32: if (n) memcpy(out, p, n * 4); return 0;
    case ST_F64: for (size_t i = 0; i < n; i++) { double v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; } return 0;
    case ST_F16: for (size_t i = 0; i < n; i++) { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = half_to_float(v); } return 0;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, p + 2 * i, 2);
            uint32_t b = (uint32_t)v << 16;
            memcpy(&out[i], &b, 4);
        }
        return 0;
    default:
        return sn_error("%s: tensor '%s' has dtype %s, expected a floating-point dtype (F32, F16, BF16, F64)",
                        f->name, t->name, dtypes[t->dtype].name);
    }
}

int st_read_i64(const st_file *f, const st_tensor *t, int64_t *out, size_t n) {
    if (check_n(f, t, n) < 0) return -1;
    if (t->dtype == ST_F32 || t->dtype == ST_F64 || t->dtype == ST_F16 || t->dtype == ST_BF16)
        return sn_error("%s: tensor '%s' has dtype %s, expected an integer dtype", f->name, t->name,
                        dtypes[t->dtype].name);
    const uint8_t *p = t->data;
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case ST_BOOL: case ST_U8: out[i] = p[i]; break;
        case ST_I8: out[i] = (int8_t)p[i]; break;
        case ST_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); out[i] = v; break; }
        case ST_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = v; break; }
        case ST_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case ST_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case ST_I64: memcpy(&out[i], p + 8 * i, 8); break;
        case ST_U64: {
            uint64_t v;
            memcpy(&v, p + 8 * i, 8);
            if (v > INT64_MAX)
                return sn_error("%s: tensor '%s': U64 value %llu at [%zu] does not fit int64", f->name, t->name,
                                (unsigned long long)v, i);
            out[i] = (int64_t)v;
            break;
        }
        default: /* floats, rejected above */
            break;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- writing */

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
    if (!valid_utf8((const uint8_t *)name, strlen(name)))
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
    size_t es = dtypes[dtype].size;
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
    t->name = dupstr(name);
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
    if (!valid_utf8((const uint8_t *)key, strlen(key)) || !valid_utf8((const uint8_t *)value, strlen(value)))
        return sn_error("safetensors writer: metadata '%s' is not valid UTF-8", key);
    char *v = dupstr(value);
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
    char *k = dupstr(key);
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

/* header (padded) and the tensor order; returns -1 on out-of-memory */
static int build_header(const st_writer *w, sbuf *h, size_t *order, size_t *total_data) {
    size_t *morder = malloc((w->n_meta + 1) * sizeof(size_t));
    if (!morder) return sn_error("safetensors writer: out of memory");
    for (size_t i = 0; i < w->n; i++) order[i] = i;
    for (size_t i = 0; i < w->n_meta; i++) morder[i] = i;
    qsort_r(order, w->n, sizeof(size_t), cmp_write, (void *)w);
    qsort_r(morder, w->n_meta, sizeof(size_t), cmp_meta, (void *)w);
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
        sb_str(h, dtypes[t->dtype].name);
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
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        free(order);
        free(h.b);
        return sn_error("%s: path too long", path);
    }
    int rc = -1;
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        sn_error("%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    uint64_t hl = h.n;
    bool ok = fwrite(&hl, 8, 1, fp) == 1 && fwrite(h.b, 1, h.n, fp) == h.n;
    for (size_t i = 0; ok && i < w->n; i++) {
        const wtensor *t = &w->t[order[i]];
        ok = t->nbytes == 0 || fwrite(t->data, 1, t->nbytes, fp) == t->nbytes;
    }
    if (!ok || fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        sn_error("%s: writing %s failed: %s", path, tmp, strerror(errno));
        fclose(fp);
        unlink(tmp);
        goto done;
    }
    if (fclose(fp) != 0) {
        sn_error("%s: closing %s failed: %s", path, tmp, strerror(errno));
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        sn_error("%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        unlink(tmp);
        goto done;
    }
    /* make the rename durable: fsync the directory (best effort) */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    else snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    rc = 0;
done:
    free(order);
    free(h.b);
    return rc;
}
