/* test_image_corpus: every file of the image fuzzing regression corpus (tests/fuzz/corpus/image:
 * the seeds and the inputs libFuzzer found interesting) through image_decode and the data
 * transforms: each decodes or fails with a message naming it; nothing crashes (run under ASan). */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../common/check.h"
#include "core/error.h"
#include "data/augment.h"
#include "io/image.h"

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* tests/fuzz/corpus/image relative to the working directory, else above the test binary */
static bool find_corpus(char *out, size_t cap) {
    struct stat s;
    snprintf(out, cap, "tests/fuzz/corpus/image");
    if (stat(out, &s) == 0 && S_ISDIR(s.st_mode)) return true;
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) return false;
    exe[k] = 0;
    for (char *slash = strrchr(exe, '/'); slash; slash = strrchr(exe, '/')) {
        *slash = 0;
        snprintf(out, cap, "%s/tests/fuzz/corpus/image", exe);
        if (stat(out, &s) == 0 && S_ISDIR(s.st_mode)) return true;
    }
    return false;
}

int main(void) {
    char root[PATH_MAX];
    if (!check(find_corpus(root, sizeof root), "found tests/fuzz/corpus/image")) return check_exit();
    DIR *d = opendir(root);
    struct dirent *e;
    int files = 0, decoded = 0, named = 0, seeds = 0, seeds_ok = 0;
    size_t bytes = 0;
    float *out = malloc(sizeof(float) * 16 * 16 * 3);
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        size_t n;
        uint8_t *b = slurp(path, &n);
        if (!b) continue;
        files++;
        bytes += n;
        image im;
        bool seed = !strncmp(e->d_name, "seed_", 5);
        seeds += seed;
        if (image_decode(b, n, e->d_name, &im) == 0) {
            decoded++;
            seeds_ok += seed;
            if (im.w <= 256 && im.h <= 256) {
                aug_params p;
                aug_identity(&p);
                p.angle = 33;
                p.zoom = 0.8f;
                aug_warp(&im, &p, 16, AUG_HALF, AUG_HALF, out);
                aug_center(&im, 16, AUG_HALF, AUG_HALF, out);
            }
            image_free(&im);
        } else if (strstr(sn_last_error(), e->d_name)) {
            named++;
        } else {
            check(false, "%s fails without naming itself: %s", e->d_name, sn_last_error());
        }
        free(b);
    }
    if (d) closedir(d);
    free(out);
    check(files > 0 && decoded + named == files,
          "corpus/image: %d files (%zu bytes): %d decode, %d fail with a message naming the file", files, bytes,
          decoded, named);
    check(seeds > 0 && seeds_ok == seeds, "every seed (valid PNG/JPEG of each kind) decodes (%d of %d)", seeds_ok, seeds);
    return check_exit();
}
