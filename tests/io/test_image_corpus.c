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
#include "core/file.h"
#include "core/error.h"
#include "data/augment.h"
#include "io/image.h"

int main(void) {
    char root[PATH_MAX];
    if (!check(find_repo_dir("tests/fuzz/corpus/image", root, sizeof root), "found tests/fuzz/corpus/image")) return check_exit();
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
        uint8_t *b = sn_read_file(path, &n, 0);
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
