/* file.c - whole-file reads (see file.h). */
#include "core/file.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"

uint8_t *sn_read_file(const char *path, size_t *len, size_t max) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sn_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat s;
    if (fstat(fd, &s) < 0 || !S_ISREG(s.st_mode)) {
        sn_error("%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    size_t n = (size_t)s.st_size, got = 0;
    if (max && n > max) {
        sn_error("%s: %zu bytes is more than the %zu this reader accepts", path, n, max);
        close(fd);
        return NULL;
    }
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        sn_error("%s: out of memory reading %zu bytes", path, n);
        close(fd);
        return NULL;
    }
    while (got < n) {
        ssize_t k = read(fd, b + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            sn_error("%s: read failed after %zu of %zu bytes: %s", path, got, n, k < 0 ? strerror(errno) : "file shrank");
            free(b);
            close(fd);
            return NULL;
        }
        got += (size_t)k;
    }
    close(fd);
    *len = n;
    return b;
}
