/* photos.c - the photos a verb is given: files as they are, folders expanded (see cli.h). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "cli/cli.h"

enum { MAX_DEPTH = 32 };

void cli_paths_free(cli_paths *p) {
    for (int i = 0; i < p->n; i++) free(p->v[i]);
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* appends a copy of s; -1 when out of memory */
static int push(cli_paths *p, const char *s) {
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        char **v = realloc(p->v, sizeof(char *) * (size_t)cap);
        if (!v) return -1;
        p->v = v;
        p->cap = cap;
    }
    if (!(p->v[p->n] = strdup(s))) return -1;
    p->n++;
    return 0;
}

static bool photo_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") ||
                   !strcasecmp(dot, ".webp"));
}

static int by_path(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the photos of folder dir (and of its subfolders when recursive) into out; problems are
 * printed and counted in *failed; -1 when out of memory */
static int scan(const char *dir, bool recursive, int depth, cli_paths *out, int *failed) {
    if (depth > MAX_DEPTH) {
        fprintf(stderr, "stylenet: %s: folders nested deeper than %d (a link to a folder above?): skipped\n", dir,
                MAX_DEPTH);
        (*failed)++;
        return 0;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "stylenet: %s: cannot read the folder: %s\n", dir, strerror(errno));
        (*failed)++;
        return 0;
    }
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* hidden, . and .. */
        char *full = malloc(len + strlen(e->d_name) + 2);
        if (!full) {
            rc = -1;
            break;
        }
        sprintf(full, "%.*s/%s", (int)len, dir, e->d_name);
        struct stat st;
        if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (recursive) rc = scan(full, true, depth + 1, out, failed);
        } else if (photo_name(e->d_name)) {
            rc = push(out, full);
        }
        free(full);
    }
    closedir(d);
    return rc;
}

int cli_photos(char *const *args, int n, bool recursive, cli_paths *out, int *failed) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(args[i], &st) != 0 || !S_ISDIR(st.st_mode)) { /* a file, or a name image_load will report */
            if (push(out, args[i]) < 0) goto oom;
            continue;
        }
        int first = out->n;
        if (scan(args[i], recursive, 0, out, failed) < 0) goto oom;
        if (out->n == first) {
            fprintf(stderr, "stylenet: %s: no photos (.png, .jpg, .jpeg, .webp) in the folder%s\n", args[i],
                    recursive ? " or below it" : "");
            (*failed)++;
            continue;
        }
        qsort(out->v + first, (size_t)(out->n - first), sizeof(char *), by_path);
    }
    return 0;
oom:
    cli_paths_free(out);
    return -1;
}
