/* file.h - whole-file reads for the format readers (safetensors, TFLite, images), and atomic
 * whole-file writes for every file that matters (models and checkpoints, ONNX, plots, reports,
 * validation predictions).
 *
 * sn_read_file(path, &len, max) returns the file's bytes in a malloc'd buffer (free() it) and its
 * length, or NULL with an error naming the file: cannot open (with the system's reason), not a
 * regular file, larger than max bytes (max 0 = no limit), out of memory, or a short read.
 *
 * sn_write_file_atomic(path, write, ctx) has write(f, ctx) fill "<path>.tmp.<pid>", then flushes
 * and fsyncs it, renames it over path and fsyncs the folder (best effort): path holds either its
 * old content or the whole new one.  write returns 0, or -1 with an error set (its message is
 * kept, prefixed with path).  Every failure after that is an error naming path, the step
 * (writing, syncing, closing, renaming) and the system's reason, e.g. "run/checkpoint.safetensors:
 * writing run/checkpoint.safetensors.tmp.812 failed: No space left on device": a short or failed
 * stdio write (the stream's error flag), fflush, fsync, fclose and rename are each checked.  On
 * any failure the temporary file is removed and path is left as it was.  Only the final fsync of
 * the folder is best effort (some file systems refuse it; the new file is in place by then).
 *
 * sn_remove_stale_temps(path) removes the "<path>.tmp.<pid>" files that a killed process left
 * behind (those whose pid is no running process); it returns how many it removed.
 */
#ifndef STYLENET_FILE_H
#define STYLENET_FILE_H
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>

uint8_t *sn_read_file(const char *path, size_t *len, size_t max);
int sn_write_file_atomic(const char *path, int (*write)(FILE *f, void *ctx), void *ctx);
int sn_remove_stale_temps(const char *path);
#endif
