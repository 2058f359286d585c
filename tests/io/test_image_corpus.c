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

typedef struct {
    int files, decoded, named, seeds, seeds_ok;
    size_t bytes;
} corpus_stats;

/* a decoded image through the warp and the validation transform (small ones only) */
static void transform(const image *im, float *out) {
    if (im->w > 256 || im->h > 256) return;
    aug_params p;
    aug_identity(&p);
    p.angle = 33;
    p.zoom = 0.8f;
    aug_warp(im, &p, 16, AUG_HALF, AUG_HALF, out);
    aug_center(im, 16, AUG_HALF, AUG_HALF, out);
}

/* decodes every corpus file, counting; a failure whose message does not name the file is a
 * failed check.  false when the corpus folder is not found. */
static bool scan(corpus_stats *s) {
    memset(s, 0, sizeof *s);
    char root[PATH_MAX];
    if (!check(find_repo_dir("tests/fuzz/corpus/image", root, sizeof root), "found tests/fuzz/corpus/image"))
        return false;
    DIR *d = opendir(root);
    struct dirent *e;
    float *out = malloc(sizeof(float) * 16 * 16 * 3);
    while (d && out && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        size_t n;
        uint8_t *b = sn_read_file(path, &n, 0);
        if (!b) continue;
        s->files++;
        s->bytes += n;
        image im;
        bool seed = !strncmp(e->d_name, "seed_", 5);
        s->seeds += seed;
        if (image_decode(b, n, e->d_name, &im) == 0) {
            s->decoded++;
            s->seeds_ok += seed;
            transform(&im, out);
            image_free(&im);
        } else if (strstr(sn_last_error(), e->d_name)) {
            s->named++;
        } else {
            check(false, "%s fails without naming itself: %s", e->d_name, sn_last_error());
        }
        free(b);
    }
    if (d) closedir(d);
    free(out);
    return true;
}

static void decode_or_name(void) {
    corpus_stats s;
    if (!scan(&s)) return;
    check(s.files > 0 && s.decoded + s.named == s.files,
          "corpus/image: %d files (%zu bytes): %d decode, %d fail with a message naming the file", s.files, s.bytes,
          s.decoded, s.named);
}

static void seeds_decode(void) {
    corpus_stats s;
    if (!scan(&s)) return;
    check(s.seeds > 0 && s.seeds_ok == s.seeds, "every seed (valid PNG/JPEG/WebP of each kind) decodes (%d of %d)",
          s.seeds_ok, s.seeds);
}

static const test_case cases[] = {
    {"decode_or_name", decode_or_name},
    {"seeds_decode", seeds_decode},
};

TEST_MAIN(cases)
