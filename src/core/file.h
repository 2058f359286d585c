/* file.h - whole-file reads for the format readers (safetensors, TFLite, images).
 *
 * sn_read_file(path, &len, max) returns the file's bytes in a malloc'd buffer (free() it) and its
 * length, or NULL with an error naming the file: cannot open (with the system's reason), not a
 * regular file, larger than max bytes (max 0 = no limit), out of memory, or a short read.
 */
#ifndef STYLENET_FILE_H
#define STYLENET_FILE_H
#include <stddef.h>
#include <stdint.h>

uint8_t *sn_read_file(const char *path, size_t *len, size_t max);
#endif
