#include "core/error.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char err_buf[1024];

int sn_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return -1;
}

int sn_error_prefix(const char *fmt, ...) {
    char pre[512], old[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    size_t n = strlen(pre);
    if (n > sizeof err_buf - 3) n = sizeof err_buf - 3;
    memcpy(err_buf, pre, n);
    memcpy(err_buf + n, ": ", 2);
    size_t room = sizeof err_buf - n - 3, m = strlen(old);
    if (m > room) m = room;
    memcpy(err_buf + n + 2, old, m);
    err_buf[n + 2 + m] = 0;
    return -1;
}

const char *sn_last_error(void) { return err_buf[0] ? err_buf : "unknown error"; }

void *sn_alloc(size_t bytes, const char *what) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) sn_error("out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *sn_calloc(size_t bytes, const char *what) {
    void *p = sn_alloc(bytes, what);
    if (p) memset(p, 0, bytes);
    return p;
}

void sn_free(void *p) { free(p); }
