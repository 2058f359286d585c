/* inference.c - a classifier's probabilities for photos, with test-time augmentation (see
 * classifier.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "classifier/calibration.h"
#include "classifier/classifier.h"
#include "classifier/metrics.h"
#include "core/error.h"
#include "data/augment.h"

void classifier_probs(const classifier *c, int n, const float *logits, float *probs) {
    calibration_probs(n, c->n_classes, logits, c->temperature, classifier_is_multi(c), probs);
}

int classifier_input(const classifier *c, const image *im, float *out) {
    return image_to_input(im, c->size, c->mean, c->std, out);
}

int classifier_group_best(const classifier *c, int g, const float *probs) {
    int lo = c->n_groups ? c->group_lo[g] : 0, hi = c->n_groups ? c->group_hi[g] : c->n_classes;
    return metrics_group_argmax(probs, lo, hi);
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* the source of the TTA views: short side at most max_side (a copy when already small enough) */
static int shrink_copy(const image *im, int max_side, image *out) {
    int s = im->w < im->h ? im->w : im->h;
    if (s <= max_side) {
        out->w = im->w;
        out->h = im->h;
        out->rgb = malloc((size_t)im->w * im->h * 3);
        if (!out->rgb) return sn_error("out of memory");
        memcpy(out->rgb, im->rgb, (size_t)im->w * im->h * 3);
        return 0;
    }
    int w = im->w == s ? max_side : (int)((double)im->w * max_side / s + 0.5);
    int h = im->h == s ? max_side : (int)((double)im->h * max_side / s + 0.5);
    return image_resize(im, w < 1 ? 1 : w, h < 1 ? 1 : h, out);
}

int classifier_image_probs(const classifier *c, net *n, image *im, int views, uint64_t seed, float *x,
                           float *one, float *probs, double ms[2]) {
    const int S = c->size, K = c->n_classes;
    double prep = 0, compute = 0, t0 = now_ms();
    image src = {0};
    if (views > 0 && shrink_copy(im, S * 5 / 4, &src) < 0) {
        image_free(im);
        return -1;
    }
    aug_opts aug;
    aug_defaults(&aug);
    prep += now_ms() - t0;
    int rc = 0;
    for (int v = 0; v <= views && rc == 0; v++) {
        double ta = now_ms();
        if (v == 0) {
            rc = classifier_input(c, im, x);
            image_free(im); /* the other views come from src */
        } else {
            aug_params ap;
            aug_draw(&aug, seed, 1000000ull + (unsigned long long)v, 0, &ap);
            aug_warp(&src, &ap, S, c->mean, c->std, x);
        }
        double tb = now_ms();
        prep += tb - ta;
        if (rc < 0) break;
        /* a net already sized for one image does not allocate here */
        const float *logits = net_set_batch(n, 1) == 0 ? net_forward(n, x, false) : NULL;
        if (!logits) {
            rc = -1;
            break;
        }
        classifier_probs(c, 1, logits, one);
        for (int k = 0; k < K; k++) probs[k] = v == 0 ? one[k] : probs[k] + one[k];
        compute += now_ms() - tb;
    }
    image_free(im);
    image_free(&src);
    if (rc < 0) return -1;
    if (views > 0)
        for (int k = 0; k < K; k++) probs[k] /= (float)(views + 1);
    if (ms) ms[0] = prep, ms[1] = compute;
    return 0;
}
