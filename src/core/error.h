/* error.h - how stylenet reports failure.
 *
 * Contract: a function that can fail returns -1 (or NULL) and first calls sn_error() with a
 * message that names the file or object and what is wrong, e.g.
 *   "model.safetensors: tensor 'layer1.0.conv1.weight' has shape [64,3,3,3], expected [64,64,3,3]".
 * The message lives in a thread-local buffer (like errno) until the next sn_error() on that
 * thread; sn_last_error() reads it.  Nothing in the library prints or exits on its own.
 */
#ifndef STYLENET_ERROR_H
#define STYLENET_ERROR_H
#include <stddef.h>

int sn_error(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* always returns -1 */
/* prefixes the current message: "ctx: <old message>" (e.g. the file name around a parse error) */
int sn_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *sn_last_error(void);

/* checked allocation: NULL with an error message naming what and how much */
void *sn_alloc(size_t bytes, const char *what);          /* 64-byte aligned, uninitialised */
void *sn_calloc(size_t bytes, const char *what);         /* 64-byte aligned, zeroed */
void sn_free(void *p);
#endif
