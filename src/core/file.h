/* file.h - whole-file reads for the format readers (safetensors, TFLite, images), and atomic
 * whole-file writes for the format writers (safetensors, ONNX).
 *
 * sn_read_file(path, &len, max) returns the file's bytes in a malloc'd buffer (free() it) and its
 * length, or NULL with an error naming the file: cannot open (with the system's reason), not a
 * regular file, larger than max bytes (max 0 = no limit), out of memory, or a short read.
 *
 * sn_write_file_atomic(path, write, ctx) has write(f, ctx) fill "<path>.tmp.<pid>", then flushes
 * and fsyncs it, renames it over path and fsyncs the folder (best effort): path holds either its
 * old content or the whole new one.  write returns 0, or -1 with an error set (its message is
 * kept, prefixed with path); a failed stdio write is reported with the system's reason.  On any
 * failure the temporary file is removed.
 */
#ifndef STYLENET_FILE_H
#define STYLENET_FILE_H
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>

uint8_t *sn_read_file(const char *path, size_t *len, size_t max);
int sn_write_file_atomic(const char *path, int (*write)(FILE *f, void *ctx), void *ctx);
#endif
