/* file.c - whole-file reads and atomic writes (see file.h). */
#include "core/file.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"
#include "core/fault.h"

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

/* the folder that holds path into dir ("." for a bare name); path's last component */
static const char *folder_of(const char *path, char dir[4096]) {
    snprintf(dir, 4096, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = strrchr(path, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    else snprintf(dir, 4096, ".");
    return base ? base + 1 : path;
}

/* fsyncs the folder that holds path, so that a rename in it is durable (best effort: some file
 * systems refuse to sync a folder, and the new file is in place already) */
static void sync_dir(const char *path) {
    char dir[4096];
    folder_of(path, dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
}

/* the error of a failed step of writing tmp (the system's reason: errno, else EIO), the
 * temporary file closed (when fp is not NULL) and removed; -1 */
static int write_failed(const char *path, const char *tmp, FILE *fp, const char *step) {
    const int e = errno ? errno : EIO;
    if (fp) fclose(fp);
    unlink(tmp);
    return sn_error("%s: %s %s failed: %s", path, step, tmp, strerror(e));
}

/* "<path>.tmp.<pid>" of this process into tmp; -1 with an error when it does not fit */
static int temp_name(const char *path, char tmp[4096]) {
    if (snprintf(tmp, 4096, "%s.tmp.%ld", path, (long)getpid()) >= 4096) return sn_error("%s: path too long", path);
    return 0;
}

int sn_write_file_atomic(const char *path, int (*write)(FILE *f, void *ctx), void *ctx) {
    char tmp[4096];
    if (temp_name(path, tmp) < 0) return -1;
    sn_remove_stale_temps(path); /* those of an earlier write of path cut short by a kill */
    FILE *fp = fopen(tmp, "wb");
    if (!fp) return sn_error("%s: cannot create %s: %s", path, tmp, strerror(errno));
    errno = 0;
    if (write(fp, ctx) < 0) {
        fclose(fp);
        unlink(tmp);
        return sn_error_prefix("%s", path);
    }
    sn_fault_point("write");
    if (ferror(fp)) return write_failed(path, tmp, fp, "writing"); /* a short fwrite: errno says why */
    errno = 0;
    if (fflush(fp) != 0) return write_failed(path, tmp, fp, "writing");
    if (fsync(fileno(fp)) != 0) return write_failed(path, tmp, fp, "syncing");
    errno = 0;
    if (fclose(fp) != 0) return write_failed(path, tmp, NULL, "closing");
    if (rename(tmp, path) != 0) {
        const int e = errno;
        unlink(tmp);
        return sn_error("%s: cannot rename %s over it: %s", path, tmp, strerror(e));
    }
    sync_dir(path);
    return 0;
}

int sn_check_writable(const char *path) {
    char tmp[4096], dir[4096];
    struct stat s;
    if (stat(path, &s) == 0 && S_ISDIR(s.st_mode)) return sn_error("%s: is a folder, not a file name", path);
    if (temp_name(path, tmp) < 0) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        const int e = errno;
        folder_of(path, dir);
        return sn_error("%s: cannot write a file in the folder %s: %s", path, dir, strerror(e));
    }
    close(fd);
    unlink(tmp);
    return 0;
}

int sn_remove_stale_temps(const char *path) {
    char dir[4096];
    const char *base = folder_of(path, dir);
    DIR *d = opendir(dir);
    if (!d) return 0;
    const size_t bn = strlen(base);
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, bn) != 0 || strncmp(e->d_name + bn, ".tmp.", 5) != 0) continue;
        char *end;
        const long pid = strtol(e->d_name + bn + 5, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() || (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        removed += unlink(full) == 0;
    }
    closedir(d);
    return removed;
}
