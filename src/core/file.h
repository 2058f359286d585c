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
 * Before it writes, it removes the temporary files of path that killed writers left behind
 * (sn_remove_stale_temps).
 *
 * sn_remove_stale_temps(path) removes the "<path>.tmp.<pid>" files that a killed process left
 * behind (those whose pid is no running process on this machine: a live pid, one of another
 * user, this process's own and any other name are kept); it returns how many it removed.  The
 * pid says nothing of other machines: in a folder that processes on several machines write the
 * same path to, one of them may remove another's temporary file, whose write then fails at its
 * rename (the target is left as it was).
 *
 * sn_check_writable(path) checks, before a long computation, that a file can be written at path
 * later: path is not a folder, and "<path>.tmp.<pid>" can be created in path's folder (it is
 * removed again; path itself is not touched).  0, or -1 with an error naming path, its folder
 * and the system's reason (e.g. "No such file or directory", "Read-only file system").
 */
#ifndef STYLENET_FILE_H
#define STYLENET_FILE_H
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>

uint8_t *sn_read_file(const char *path, size_t *len, size_t max);
int sn_write_file_atomic(const char *path, int (*write)(FILE *f, void *ctx), void *ctx);
int sn_remove_stale_temps(const char *path);
int sn_check_writable(const char *path);
#endif
