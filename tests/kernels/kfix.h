/* kfix.h - minimal, header-only safetensors reader for the kernel tests (private to
 * tests/kernels; the library's own reader is src/io/).  Reads the whole file, parses the JSON
 * header with cJSON, and hands out float32 tensors by name as 64-byte aligned copies that
 * kfix_close() frees.  Metadata strings ("__metadata__") are read with kfix_meta().
 */
#ifndef STYLENET_TEST_KFIX_H
#define STYLENET_TEST_KFIX_H
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char *buf; /* whole file */
    size_t size, data_off;
    cJSON *hdr;
    void **owned;
    int n_owned, cap_owned;
} kfix;

static inline int kfix_open(kfix *k, const char *path) {
    memset(k, 0, sizeof *k);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("# cannot open %s (run tools/make_fixtures.py; set STYLENET_FIXTURES)\n", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    k->buf = malloc(sz > 0 ? (size_t)sz : 1);
    if (!k->buf || sz < 8 || fread(k->buf, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        printf("# cannot read %s\n", path);
        return -1;
    }
    fclose(f);
    k->size = (size_t)sz;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | k->buf[i];
    if (hl > k->size - 8) {
        printf("# %s: bad header length\n", path);
        return -1;
    }
    k->hdr = cJSON_ParseWithLength((const char *)k->buf + 8, (size_t)hl);
    k->data_off = 8 + (size_t)hl;
    if (!k->hdr) {
        printf("# %s: bad JSON header\n", path);
        return -1;
    }
    return 0;
}

static inline void kfix_close(kfix *k) {
    for (int i = 0; i < k->n_owned; i++) free(k->owned[i]);
    free(k->owned);
    cJSON_Delete(k->hdr);
    free(k->buf);
    memset(k, 0, sizeof *k);
}

static inline int kfix_has(const kfix *k, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(k->hdr, name) != NULL;
}

/* a float32 tensor's data (copied, aligned, freed by kfix_close) and element count; NULL if
 * missing or not F32 (and prints a note) */
static inline float *kfix_get(kfix *k, const char *name, size_t *count) {
    cJSON *t = cJSON_GetObjectItemCaseSensitive(k->hdr, name);
    cJSON *dt = t ? cJSON_GetObjectItemCaseSensitive(t, "dtype") : NULL;
    cJSON *off = t ? cJSON_GetObjectItemCaseSensitive(t, "data_offsets") : NULL;
    if (!t || !cJSON_IsString(dt) || strcmp(dt->valuestring, "F32") || cJSON_GetArraySize(off) != 2) {
        printf("# fixture tensor '%s' missing or not F32\n", name);
        return NULL;
    }
    size_t a = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, b = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    if (b < a || k->data_off + b > k->size || (b - a) % 4) {
        printf("# fixture tensor '%s' has bad offsets\n", name);
        return NULL;
    }
    size_t bytes = b - a, alloc = (bytes + 63) / 64 * 64;
    float *p = aligned_alloc(64, alloc ? alloc : 64);
    if (!p) return NULL;
    memcpy(p, k->buf + k->data_off + a, bytes);
    if (k->n_owned == k->cap_owned) {
        k->cap_owned = k->cap_owned ? 2 * k->cap_owned : 64;
        k->owned = realloc(k->owned, sizeof(void *) * (size_t)k->cap_owned);
    }
    k->owned[k->n_owned++] = p;
    if (count) *count = bytes / 4;
    return p;
}

/* same, name built printf-style */
static inline float *kfix_getf(kfix *k, size_t *count, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline float *kfix_getf(kfix *k, size_t *count, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return kfix_get(k, name, count);
}

static inline const char *kfix_meta(const kfix *k, const char *key) {
    cJSON *m = cJSON_GetObjectItemCaseSensitive(k->hdr, "__metadata__");
    cJSON *v = m ? cJSON_GetObjectItemCaseSensitive(m, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* splits a comma-separated case list into names[] (at most max); returns the count */
static inline int kfix_list(const char *s, char names[][64], int max) {
    int n = 0;
    while (s && *s && n < max) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len > 63) len = 63;
        memcpy(names[n], s, len);
        names[n][len] = 0;
        n++;
        s = e ? e + 1 : NULL;
    }
    return n;
}
#endif
