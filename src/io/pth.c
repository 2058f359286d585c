/* pth.c - PyTorch checkpoints, zip and legacy formats (see pth.h). */
#include "io/pth.h"
#include "io/safetensors.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>
#include "core/error.h"
#include "core/file.h"
#include "io/pickle.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "io/pth.c assumes a little-endian host"
#endif

/* the legacy format's first pickle: protocol 2, LONG1 0x1950a86a20f9469cfc6c, STOP */
static const uint8_t legacy_magic[15] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                         0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

/* one storage, by key: where its bytes are once the container is read */
typedef struct {
    const char *key;
    pth_dtype dtype;
    int64_t numel;
    bool used;           /* some tensor of the state dict reads it */
    const uint8_t *data; /* numel * size bytes; NULL until read */
    uint8_t *owned;      /* zip: the entry's bytes */
} storage;

typedef struct {
    const char *file;
    pk_arena arena;
    storage *st;
    size_t nst;
    pk_value *dict; /* the state dict */
} loader;

pth_format pth_detect(const void *head, size_t n) {
    if (n >= 4 && !memcmp(head, "PK\3\4", 4)) return PTH_ZIP;
    if (n >= sizeof legacy_magic && !memcmp(head, legacy_magic, sizeof legacy_magic)) return PTH_LEGACY;
    return PTH_NOT;
}

pth_format pth_detect_file(const char *path) {
    uint8_t b[sizeof legacy_magic];
    FILE *f = fopen(path, "rb");
    if (!f) return PTH_NOT;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    return pth_detect(b, n);
}

static bool is_float(pth_dtype d) { return d == PTH_F32 || d == PTH_F64 || d == PTH_F16 || d == PTH_BF16; }

/* ---- the state dict and its storages ---- */

static bool all_tensors(const pk_value *d) {
    for (size_t i = 1; i < d->n; i += 2)
        if (d->items[i]->kind != PK_TENSOR) return false;
    return true;
}

/* the dict of tensors: top itself, or top["state_dict"] / top["model"] of a training checkpoint */
static int pick_state_dict(loader *L, pk_value *top) {
    if (top->kind != PK_DICT) return sn_error("%s: the pickled object is not a dict (a state dict)", L->file);
    L->dict = top;
    const bool plain = all_tensors(top);
    for (size_t i = 0; i + 1 < top->n && !plain; i += 2) {
        const pk_value *k = top->items[i];
        pk_value *v = top->items[i + 1];
        if (k->kind == PK_STR && (!strcmp(k->s, "state_dict") || !strcmp(k->s, "model")) && v->kind == PK_DICT) {
            L->dict = v;
            break;
        }
    }
    for (size_t i = 0; i + 1 < L->dict->n; i += 2) {
        const pk_value *k = L->dict->items[i], *v = L->dict->items[i + 1];
        if (k->kind != PK_STR || strlen(k->s) != k->len || !k->len)
            return sn_error("%s: state dict key %zu is not a non-empty string", L->file, i / 2);
        if (v->kind != PK_TENSOR) return sn_error("%s: state dict entry '%s' is not a tensor", L->file, k->s);
    }
    return 0;
}

static int cmp_storage(const void *a, const void *b) {
    return strcmp(((const storage *)a)->key, ((const storage *)b)->key);
}

static storage *find_storage(const loader *L, const char *key) {
    storage k = {.key = key};
    return bsearch(&k, L->st, L->nst, sizeof *L->st, cmp_storage);
}

/* every storage any persistent id named, sorted by key, one entry per key; marks those the
 * state dict's tensors read */
static int table_storages(loader *L) {
    size_t n = 0;
    for (pk_value *v = L->arena.all; v; v = v->next) n += v->kind == PK_STORAGE;
    if (!(L->st = calloc(n ? n : 1, sizeof *L->st))) return sn_error("%s: out of memory", L->file);
    for (pk_value *v = L->arena.all; v; v = v->next)
        if (v->kind == PK_STORAGE) L->st[L->nst++] = (storage){.key = v->s, .dtype = v->dtype, .numel = v->numel};
    qsort(L->st, L->nst, sizeof *L->st, cmp_storage);
    size_t u = 0;
    for (size_t i = 0; i < L->nst; i++) {
        if (u && !strcmp(L->st[u - 1].key, L->st[i].key)) {
            if (L->st[u - 1].dtype != L->st[i].dtype || L->st[u - 1].numel != L->st[i].numel)
                return sn_error("%s: storage '%s' is named with two different types or sizes", L->file, L->st[i].key);
            continue;
        }
        L->st[u++] = L->st[i];
    }
    L->nst = u;
    for (size_t i = 1; i < L->dict->n; i += 2) find_storage(L, L->dict->items[i]->storage->s)->used = true;
    return 0;
}

static int storage_bytes(const loader *L, const storage *s, size_t *bytes) {
    int64_t b;
    if (__builtin_mul_overflow(s->numel, (int64_t)pk_dtype_size(s->dtype), &b) || (uint64_t)b > SIZE_MAX)
        return sn_error("%s: storage '%s' of %lld elements overflows", L->file, s->key, (long long)s->numel);
    *bytes = (size_t)b;
    return 0;
}

/* ---- legacy: storages follow the key list pickle, each as int64 count + bytes ---- */

static int read_legacy(loader *L, const uint8_t *b, size_t len) {
    size_t pos = sizeof legacy_magic;
    pk_value *v = pk_load(&L->arena, b, len, &pos);
    if (!v) return -1;
    if (v->kind != PK_INT || v->i != 1001)
        return sn_error("%s: legacy checkpoint protocol version is not 1001", L->file);
    if (!(v = pk_load(&L->arena, b, len, &pos))) return -1;
    if (v->kind != PK_DICT) return sn_error("%s: legacy checkpoint system info is not a dict", L->file);
    for (size_t i = 0; i + 1 < v->n; i += 2)
        if (v->items[i]->kind == PK_STR && !strcmp(v->items[i]->s, "little_endian") &&
            !(v->items[i + 1]->kind == PK_BOOL && v->items[i + 1]->i))
            return sn_error("%s: checkpoint written on a big-endian machine (not supported)", L->file);
    pk_value *top = pk_load(&L->arena, b, len, &pos), *keys;
    if (!top || pick_state_dict(L, top) < 0) return -1;
    if (!(keys = pk_load(&L->arena, b, len, &pos))) return -1;
    if (keys->kind != PK_LIST) return sn_error("%s: legacy checkpoint storage key list is not a list", L->file);
    if (table_storages(L) < 0) return -1;
    for (size_t i = 0; i < keys->n; i++) {
        const pk_value *k = keys->items[i];
        storage *s = k->kind == PK_STR ? find_storage(L, k->s) : NULL;
        if (!s) return sn_error("%s: storage key %zu of the list is no storage of the state dict", L->file, i);
        if (s->data) return sn_error("%s: storage '%s' listed twice", L->file, s->key);
        size_t bytes = 0;
        int64_t count;
        if (len - pos < 8) return sn_error("%s: truncated: storage '%s' count missing at byte %zu", L->file, s->key, pos);
        memcpy(&count, b + pos, 8);
        pos += 8;
        if (count != s->numel)
            return sn_error("%s: storage '%s' holds %lld elements, its tensors say %lld", L->file, s->key,
                            (long long)count, (long long)s->numel);
        if (storage_bytes(L, s, &bytes) < 0) return -1;
        if (bytes > len - pos)
            return sn_error("%s: truncated: storage '%s' needs %zu bytes at byte %zu, %zu left", L->file, s->key,
                            bytes, pos, len - pos);
        s->data = b + pos;
        pos += bytes;
    }
    for (size_t i = 0; i < L->nst; i++)
        if (!L->st[i].data) return sn_error("%s: storage '%s' is missing from the file", L->file, L->st[i].key);
    return 0;
}

/* ---- zip: <prefix>/data.pkl and <prefix>/data/<key> ---- */

/* entry idx into a malloc'd buffer of exactly want bytes (want = (size_t)-1: its own size, <= max) */
static uint8_t *zip_entry(const loader *L, zip_t *z, zip_int64_t idx, size_t want, size_t max, size_t *got) {
    zip_stat_t st;
    const char *name = zip_get_name(z, (zip_uint64_t)idx, ZIP_FL_ENC_RAW);
    if (!name) name = "?";
    if (zip_stat_index(z, (zip_uint64_t)idx, 0, &st) < 0 || !(st.valid & ZIP_STAT_SIZE) ||
        !(st.valid & ZIP_STAT_COMP_SIZE)) {
        sn_error("%s: zip entry '%s' cannot be read: %s", L->file, name, zip_strerror(z));
        return NULL;
    }
    /* a compressed entry expands at most ~1032x (deflate): a bomb is refused before reading */
    if ((st.comp_method == ZIP_CM_STORE && st.size != st.comp_size) || st.size / 1100 > st.comp_size ||
        (want == (size_t)-1 && st.size > max) || (want != (size_t)-1 && st.size != want)) {
        sn_error("%s: zip entry '%s' holds %llu bytes (%llu compressed), expected %zu", L->file, name,
                 (unsigned long long)st.size, (unsigned long long)st.comp_size, want == (size_t)-1 ? max : want);
        return NULL;
    }
    size_t n = (size_t)st.size;
    uint8_t *buf = malloc(n ? n : 1), extra;
    zip_file_t *zf = buf ? zip_fopen_index(z, (zip_uint64_t)idx, 0) : NULL;
    if (!zf) {
        sn_error("%s: zip entry '%s': %s", L->file, name, buf ? zip_strerror(z) : "out of memory");
        free(buf);
        return NULL;
    }
    size_t done = 0;
    while (done < n) {
        zip_int64_t r = zip_fread(zf, buf + done, n - done);
        if (r <= 0) break;
        done += (size_t)r;
    }
    /* one more read reaches the end, where libzip checks the CRC */
    zip_int64_t tail = done == n ? zip_fread(zf, &extra, 1) : -1;
    if (done != n || tail != 0) {
        sn_error("%s: zip entry '%s' is damaged or truncated: %s", L->file, name, zip_file_strerror(zf));
        zip_fclose(zf);
        free(buf);
        return NULL;
    }
    zip_fclose(zf);
    *got = n;
    return buf;
}

/* the entry "<prefix>/data.pkl" with no other '/': its index, and prefix into pre */
static zip_int64_t find_data_pkl(const loader *L, zip_t *z, char *pre, size_t cap) {
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(z, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        const char *slash = name ? strchr(name, '/') : NULL;
        if (!slash || strcmp(slash, "/data.pkl") || (size_t)(slash - name) >= cap) continue;
        memcpy(pre, name, (size_t)(slash - name));
        pre[slash - name] = 0;
        return i;
    }
    sn_error("%s: zip file without <archive>/data.pkl: not a PyTorch checkpoint", L->file);
    return -1;
}

static int zip_storages(loader *L, zip_t *z, const char *pre, size_t len) {
    char name[400];
    zip_int64_t i = -1;
    snprintf(name, sizeof name, "%s/byteorder", pre);
    if ((i = zip_name_locate(z, name, ZIP_FL_ENC_RAW)) >= 0) {
        size_t n;
        uint8_t *b = zip_entry(L, z, i, (size_t)-1, 64, &n);
        bool got = b != NULL, little = got && n == 6 && !memcmp(b, "little", 6);
        free(b);
        if (!little) return got ? sn_error("%s: checkpoint byteorder is not 'little' (not supported)", L->file) : -1;
    }
    for (size_t k = 0; k < L->nst; k++) {
        storage *s = &L->st[k];
        size_t bytes = 0, n;
        if (!s->used) continue;
        if (storage_bytes(L, s, &bytes) < 0) return -1;
        if (bytes / 1100 > len) return sn_error("%s: storage '%s' of %zu bytes cannot be in this file", L->file, s->key, bytes);
        snprintf(name, sizeof name, "%s/data/%s", pre, s->key);
        if ((i = zip_name_locate(z, name, ZIP_FL_ENC_RAW)) < 0)
            return sn_error("%s: zip entry '%s' (storage of the state dict) is missing", L->file, name);
        if (!(s->owned = zip_entry(L, z, i, bytes, 0, &n))) return -1;
        s->data = s->owned;
    }
    return 0;
}

static int read_zip(loader *L, const uint8_t *b, size_t len) {
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(b, len, 0, &ze);
    zip_t *z = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    if (!z) {
        sn_error("%s: not a readable zip file: %s", L->file, zip_error_strerror(&ze));
        if (src) zip_source_free(src);
        zip_error_fini(&ze);
        return -1;
    }
    zip_error_fini(&ze);
    char pre[256];
    size_t n, pos = 0;
    int r = -1;
    zip_int64_t i = find_data_pkl(L, z, pre, sizeof pre);
    uint8_t *pkl = i >= 0 ? zip_entry(L, z, i, (size_t)-1, (size_t)1 << 30, &n) : NULL;
    if (pkl) {
        pk_value *top = pk_load(&L->arena, pkl, n, &pos);
        if (top && pick_state_dict(L, top) == 0 && table_storages(L) == 0) r = zip_storages(L, z, pre, len);
    }
    free(pkl);
    zip_discard(z);
    return r;
}

/* ---- tensors ---- */

/* n elements of dtype at p -> float out[n] */
static void convert_float(pth_dtype d, const uint8_t *p, size_t n, float *out) {
    if (d == PTH_F32) {
        if (n) memcpy(out, p, n * 4);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (d == PTH_F64) { double v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; continue; }
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        if (d == PTH_F16) { out[i] = st_half_to_float(h); continue; }
        uint32_t bits = (uint32_t)h << 16;
        memcpy(&out[i], &bits, 4);
    }
}

/* n elements of an integer dtype at p -> int64 out[n] */
static void convert_int(pth_dtype d, const uint8_t *p, size_t n, int64_t *out) {
    for (size_t i = 0; i < n; i++) {
        switch (d) {
        case PTH_I64: memcpy(&out[i], p + 8 * i, 8); break;
        case PTH_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case PTH_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); out[i] = v; break; }
        case PTH_I8: out[i] = (int8_t)p[i]; break;
        case PTH_BOOL: out[i] = p[i] != 0; break;
        default: out[i] = p[i]; break;
        }
    }
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const pth_tensor *const *)a)->name, (*(const pth_tensor *const *)b)->name);
}

/* a name twice in the state dict is an error */
static int unique_names(const loader *L, const pth_file *f) {
    const pth_tensor **p = malloc((f->n ? f->n : 1) * sizeof *p);
    if (!p) return sn_error("%s: out of memory", L->file);
    for (size_t i = 0; i < f->n; i++) p[i] = &f->t[i];
    qsort(p, f->n, sizeof *p, cmp_name);
    for (size_t i = 1; i < f->n; i++)
        if (!strcmp(p[i - 1]->name, p[i]->name)) {
            sn_error("%s: tensor '%s' appears twice", L->file, p[i]->name);
            free(p);
            return -1;
        }
    free(p);
    return 0;
}

/* the tensor's elements at p in row-major order: p itself when its strides are row-major, else
 * a malloc'd copy gathered through the strides (*copy, to free); NULL when out of memory */
static const uint8_t *row_major(const pk_value *v, const uint8_t *p, uint8_t **copy) {
    size_t es = pk_dtype_size(v->dtype);
    int64_t expect = 1;
    bool rm = true;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->stride[d] != expect) rm = false;
        expect *= v->shape[d];
    }
    *copy = NULL;
    if (rm || v->numel == 0) return p;
    uint8_t *c = malloc((size_t)v->numel * es);
    if (!c) return NULL;
    int64_t idx[PTH_MAX_DIMS] = {0};
    size_t src = 0;
    for (int64_t i = 0; i < v->numel; i++) {
        memcpy(c + (size_t)i * es, p + src * es, es);
        for (int d = v->ndim - 1; d >= 0; d--) {
            if (++idx[d] < v->shape[d]) {
                src += (size_t)v->stride[d];
                break;
            }
            idx[d] = 0;
            src -= (size_t)((v->shape[d] - 1) * v->stride[d]);
        }
    }
    *copy = c;
    return c;
}

/* the state dict's tensors into f->t, converted; views of one storage may each be as large
 * as it, but together at most 16 times the storages' bytes (a file cannot make us allocate
 * far more than it holds) */
static int make_tensors(loader *L, pth_file *f) {
    size_t n = L->dict->n / 2, in_bytes = 0, out_bytes = 0;
    for (size_t k = 0; k < L->nst; k++)
        if (L->st[k].used) in_bytes += (size_t)L->st[k].numel * pk_dtype_size(L->st[k].dtype);
    if (!(f->t = calloc(n ? n : 1, sizeof *f->t))) return sn_error("%s: out of memory", L->file);
    for (size_t i = 0; i < n; i++) {
        const pk_value *key = L->dict->items[2 * i], *v = L->dict->items[2 * i + 1];
        pth_tensor *t = &f->t[f->n++];
        if (!(t->name = strdup(key->s))) return sn_error("%s: out of memory", L->file);
        t->dtype = v->dtype;
        t->ndim = v->ndim;
        memcpy(t->shape, v->shape, sizeof t->shape);
        t->numel = (size_t)v->numel;
        out_bytes += t->numel * (is_float(t->dtype) ? 4 : 8);
        if (out_bytes > 16 * in_bytes + (1u << 20))
            return sn_error("%s: tensor '%s': the tensors' views of their storages add up to more than 16 times the "
                            "storages' size", L->file, t->name);
        const storage *s = find_storage(L, v->storage->s);
        uint8_t *copy;
        size_t at = (size_t)(v->storage->view_offset + v->offset) * pk_dtype_size(v->dtype);
        const uint8_t *p = row_major(v, s->data + at, &copy);
        bool fl = is_float(t->dtype);
        if (p && fl && (t->f32 = malloc(t->numel ? t->numel * 4 : 1))) convert_float(t->dtype, p, t->numel, t->f32);
        if (p && !fl && (t->i64 = malloc(t->numel ? t->numel * 8 : 1))) convert_int(t->dtype, p, t->numel, t->i64);
        free(copy);
        if (!t->f32 && !t->i64) return sn_error("%s: out of memory", L->file);
        f->converted += fl && t->dtype != PTH_F32;
    }
    return unique_names(L, f);
}

pth_file *pth_open_mem(const void *buf, size_t len, const char *name) {
    loader L = {.file = name};
    L.arena.file = name;
    pth_file *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(name))) {
        free(f);
        sn_error("%s: out of memory", name);
        return NULL;
    }
    f->format = pth_detect(buf, len);
    int r = -1;
    if (f->format == PTH_ZIP) r = read_zip(&L, buf, len);
    else if (f->format == PTH_LEGACY) r = read_legacy(&L, buf, len);
    else sn_error("%s: not a PyTorch checkpoint (neither a zip file nor the legacy pickle format)", name);
    if (r == 0) r = make_tensors(&L, f);
    for (size_t k = 0; k < L.nst; k++) free(L.st[k].owned);
    free(L.st);
    pk_arena_free(&L.arena);
    if (r < 0) {
        pth_close(f);
        return NULL;
    }
    return f;
}

pth_file *pth_open(const char *path) {
    size_t n;
    uint8_t *b = sn_read_file(path, &n, 0);
    if (!b) return NULL;
    pth_file *f = pth_open_mem(b, n, path);
    free(b);
    return f;
}

void pth_close(pth_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->t[i].name);
        free(f->t[i].f32);
        free(f->t[i].i64);
    }
    free(f->t);
    free(f->name);
    free(f);
}

const pth_tensor *pth_find(const pth_file *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}
