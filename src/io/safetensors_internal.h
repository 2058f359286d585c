/* safetensors_internal.h - helpers shared by the safetensors reader (safetensors.c) and writer
 * (safetensors_write.c); not part of the public API (include io/safetensors.h instead).
 *
 * - st_utf8_valid: whether s[0..n) is well-formed UTF-8 (no overlong forms, no surrogates, no
 *   code points above U+10FFFF).
 * - st_strdup: a malloc'd copy of s; NULL when out of memory (no error set).
 */
#ifndef STYLENET_SAFETENSORS_INTERNAL_H
#define STYLENET_SAFETENSORS_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool st_utf8_valid(const uint8_t *s, size_t n);
char *st_strdup(const char *s);
/* opens a safetensors file from buf[len], taking ownership of buf (freed by st_close, or at once on
 * failure): st_open_mem without the copy */
st_file *st_open_owned(uint8_t *buf, size_t len, const char *name);
#endif
