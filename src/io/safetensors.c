/* safetensors.c - the safetensors reader and the dtype table (see safetensors.h for the contract;
 * the writer is safetensors_write.c). */
#include "io/safetensors.h"
#include "io/safetensors_internal.h"
#include "core/error.h"
#include "core/file.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

bool st_utf8_valid(const uint8_t *s, size_t n) {
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

char *st_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
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


/* checks the 8-byte length and the header bytes of f->buf and parses the header; returns the JSON
 * object (the caller deletes it) and sets *data_len, or NULL after sn_error() */
static cJSON *parse_header(const st_file *f, size_t *data_len) {
    size_t len = f->len;
    if (len < 8) {
        sn_error("%s: file is %zu bytes, too short for the 8-byte header length", f->name, len);
        return NULL;
    }
    uint64_t hl;
    memcpy(&hl, f->buf, 8);
    if (hl > len - 8) {
        sn_error("%s: header length %llu exceeds the file size (%zu bytes)", f->name, (unsigned long long)hl, len);
        return NULL;
    }
    if (hl > ST_MAX_HEADER) {
        sn_error("%s: header length %llu exceeds the limit of %llu bytes", f->name, (unsigned long long)hl,
                 ST_MAX_HEADER);
        return NULL;
    }
    const char *hdr = (const char *)f->buf + 8;
    if (hl < 2 || hdr[0] != '{') {
        sn_error("%s: header is not a JSON object (it must start with '{')", f->name);
        return NULL;
    }
    if (!st_utf8_valid((const uint8_t *)hdr, (size_t)hl)) {
        sn_error("%s: header is not valid UTF-8", f->name);
        return NULL;
    }
    if (memchr(hdr, 0, (size_t)hl)) {
        sn_error("%s: header contains a NUL byte", f->name);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hl, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        size_t at = end && end >= hdr && end <= hdr + hl ? (size_t)(end - hdr) : 0;
        if (!root) {
            const char *ep = cJSON_GetErrorPtr();
            if (ep && ep >= hdr && ep <= hdr + hl) at = (size_t)(ep - hdr);
        }
        sn_error("%s: header is not valid JSON (near byte %zu of %llu)", f->name, at, (unsigned long long)hl);
        cJSON_Delete(root);
        return NULL;
    }
    for (const char *p = end; p < hdr + hl; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            sn_error("%s: header has trailing bytes after the JSON object (at byte %zu)", f->name, (size_t)(p - hdr));
            cJSON_Delete(root);
            return NULL;
        }
    *data_len = len - 8 - (size_t)hl;
    return root;
}

/* the "__metadata__" entry's string pairs into f->meta_kv (file order); -1 after sn_error() */
static int parse_meta(st_file *f, const cJSON *meta) {
    if (!cJSON_IsObject(meta)) return sn_error("%s: \"__metadata__\" is not a JSON object", f->name);
    size_t n = 0;
    for (const cJSON *e = meta->child; e; e = e->next) n++;
    f->meta_kv = calloc(2 * n + 1, sizeof(char *));
    if (!f->meta_kv) return sn_error("%s: out of memory", f->name);
    for (const cJSON *e = meta->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return sn_error("%s: metadata '%.200s' is not a string", f->name, e->string);
        for (size_t i = 0; i < f->n_meta; i++)
            if (strcmp(f->meta_kv[2 * i], e->string) == 0)
                return sn_error("%s: duplicate metadata key '%.200s'", f->name, e->string);
        f->meta_kv[2 * f->n_meta] = st_strdup(e->string);
        f->meta_kv[2 * f->n_meta + 1] = st_strdup(e->valuestring);
        f->n_meta++;
        if (!f->meta_kv[2 * f->n_meta - 2] || !f->meta_kv[2 * f->n_meta - 1])
            return sn_error("%s: out of memory", f->name);
    }
    return 0;
}

/* the header object's entries: "__metadata__" (at most one) into f->meta_kv, every other entry a
 * tensor into f->tensors (header order), validated against a data section of data_len bytes;
 * -1 after sn_error() */
static int parse_entries(st_file *f, const cJSON *root, size_t data_len) {
    size_t n_items = 0;
    const cJSON *meta = NULL;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (meta) return sn_error("%s: duplicate \"__metadata__\"", f->name);
            meta = e;
        } else
            n_items++;
    }
    if (meta && parse_meta(f, meta) < 0) return -1;
    f->tensors = calloc(n_items + 1, sizeof(st_tensor));
    f->by_name = calloc(n_items + 1, sizeof(size_t));
    if (!f->tensors || !f->by_name) return sn_error("%s: out of memory", f->name);
    for (const cJSON *e = root->child; e; e = e->next) {
        if (e == meta) continue;
        st_tensor *t = &f->tensors[f->n];
        t->name = st_strdup(e->string);
        if (!t->name) return sn_error("%s: out of memory", f->name);
        f->n++;
        if (t->name[0] == 0) return sn_error("%s: a tensor has an empty name", f->name);
        if (parse_tensor(f, e, t, data_len) < 0) return -1;
    }
    return 0;
}

/* sorts f->tensors by offset, checks that they tile data[data_len] exactly (contiguous, no
 * overlap, no hole, ending at its end) and points each tensor's data into it; -1 after sn_error() */
static int check_layout(st_file *f, const uint8_t *data, size_t data_len) {
    qsort(f->tensors, f->n, sizeof(st_tensor), cmp_offset);
    size_t pos = 0;
    for (size_t i = 0; i < f->n; i++) {
        st_tensor *t = &f->tensors[i];
        if (t->offset != pos) {
            if (t->offset < pos)
                return sn_error("%s: tensor '%s' (bytes %zu..%zu) overlaps the tensor before it (ending at %zu)",
                                f->name, t->name, t->offset, t->offset + t->nbytes, pos);
            return sn_error("%s: tensor '%s' begins at %zu, leaving a hole after byte %zu of the data section",
                            f->name, t->name, t->offset, pos);
        }
        pos += t->nbytes;
        t->data = data + t->offset;
    }
    if (pos != data_len) return sn_error("%s: tensors cover %zu bytes, but the data section has %zu", f->name, pos, data_len);
    return 0;
}

/* f->by_name: the tensor indices sorted by name; a duplicate name is an error (-1 after sn_error()) */
static int index_names(st_file *f) {
    for (size_t i = 0; i < f->n; i++) f->by_name[i] = i;
    qsort_r(f->by_name, f->n, sizeof(size_t), cmp_name_idx, f->tensors);
    for (size_t i = 1; i < f->n; i++)
        if (strcmp(f->tensors[f->by_name[i]].name, f->tensors[f->by_name[i - 1]].name) == 0)
            return sn_error("%s: duplicate tensor name '%s'", f->name, f->tensors[f->by_name[i]].name);
    return 0;
}

/* validates and indexes the file image buf[len] (taking ownership of it); NULL after sn_error() */
st_file *st_open_owned(uint8_t *buf, size_t len, const char *name) {
    st_file *f = calloc(1, sizeof *f);
    char *nm = st_strdup(name ? name : "(memory)");
    if (!f || !nm) {
        free(f); free(nm); free(buf);
        sn_error("%s: out of memory", name ? name : "(memory)");
        return NULL;
    }
    f->name = nm;
    f->buf = buf;
    f->len = len;
    size_t data_len = 0;
    cJSON *root = parse_header(f, &data_len);
    if (!root) {
        st_close(f);
        return NULL;
    }
    int rc = parse_entries(f, root, data_len);
    cJSON_Delete(root);
    if (rc < 0 || check_layout(f, buf + (len - data_len), data_len) < 0 || index_names(f) < 0) {
        st_close(f);
        return NULL;
    }
    return f;
}

st_file *st_open_mem(const void *buf, size_t len, const char *name) {
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        sn_error("%s: out of memory (%zu bytes)", name ? name : "(memory)", len);
        return NULL;
    }
    if (len) memcpy(copy, buf, len);
    return st_open_owned(copy, len, name);
}

st_file *st_open(const char *path) {
    size_t n;
    uint8_t *b = sn_read_file(path, &n, 0);
    return b ? st_open_owned(b, n, path) : NULL;
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

float st_half_to_float(uint16_t h) {
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
    case ST_F16: for (size_t i = 0; i < n; i++) { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = st_half_to_float(v); } return 0;
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
