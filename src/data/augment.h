/* augment.h - fastai-style data augmentation as one affine warp per image, and the validation
 * transform.
 *
 * Contract
 * - aug_opts: fastai v1 get_transforms() defaults (aug_defaults): do_flip (p 0.5), max_rotate 10
 *   degrees, max_zoom 1.1, max_lighting 0.2, p_affine 0.75, p_lighting 0.75, no perspective warp.
 * - aug_draw: one image's random parameters from core/rng.h keyed by (seed, epoch, item): the
 *   same for any thread count, batch composition or machine.
 * - aug_warp: rotation, zoom (about a random centre, fastai's row_pct/col_pct), horizontal flip and
 *   the random position of the square crop window in a non-square image are composed into ONE
 *   affine map from output pixels to source pixels; each output pixel is sampled bilinearly from
 *   the source with reflection padding (torch grid_sample(mode='bilinear',
 *   padding_mode='reflection', align_corners=False) with theta = R(angle) . Z(zoom, centre) .
 *   F(flip), in the normalised coordinates of the source's square crop window).  Lighting is
 *   fastai's: y = sigmoid((logit(x) + logit(brightness)) * contrast), applied to the source values
 *   through a 256-entry table per channel (so before, not after, interpolation), fused with the
 *   normalisation (y - mean[c]) / std[c].  Output: S x S x 3 floats (HWC).
 * - aug_center (validation): resize so the short side is S (antialiased image_resize), centre
 *   crop S x S, normalise.  An aug_identity() warp of a square image reproduces it up to the
 *   difference between bilinear sampling and the antialiasing filter (exact when no resizing).
 * - Source pixels are the cache's (data/dataset.h): for good quality keep the cache's short side
 *   near the training size (ds_decode_opts.max_side); sampling is bilinear without prefiltering,
 *   as fastai does.
 */
#ifndef STYLENET_AUGMENT_H
#define STYLENET_AUGMENT_H
#include <stdbool.h>
#include <stdint.h>
#include "io/image.h"

typedef struct {
    bool do_flip;       /* horizontal flip with probability 0.5 */
    float max_rotate;   /* degrees: uniform in [-max, max] */
    float max_zoom;     /* zoom uniform in [1, max_zoom] */
    float max_lighting; /* brightness in 0.5 +- max/2, contrast log-uniform in [1-max, 1/(1-max)] */
    float p_affine;     /* probability of the rotation, and (separately) of the zoom */
    float p_lighting;   /* probability of the brightness, and (separately) of the contrast change */
} aug_opts;

typedef struct {
    float angle;      /* degrees, counter-clockwise in the image as shown */
    float zoom;       /* >= 1 magnifies */
    float zoom_x, zoom_y; /* zoom centre, fraction of the crop window [0,1] (0.5: middle) */
    bool flip;        /* horizontal */
    float crop_x, crop_y; /* position of the square crop window in a non-square source, [0,1] */
    float brightness; /* fastai's change: 0.5 = none */
    float contrast;   /* fastai's scale: 1 = none */
} aug_params;

void aug_defaults(aug_opts *o);
void aug_identity(aug_params *p);
void aug_draw(const aug_opts *o, uint64_t seed, uint64_t epoch, uint64_t item, aug_params *p);
/* the affine map, output pixel (x, y) (integer index of its centre) -> continuous source pixel
 * index: sx = m[0] + m[1] x + m[2] y, sy = m[3] + m[4] x + m[5] y */
void aug_matrix(const aug_params *p, int src_w, int src_h, int S, float m[6]);
/* warped, lit and normalised S x S x 3 floats */
void aug_warp(const image *src, const aug_params *p, int S, const float mean[3], const float std_[3], float *out);
/* validation transform; -1 only when out of memory */
int aug_center(const image *src, int S, const float mean[3], const float std_[3], float *out);

/* normalisations: torchvision ImageNet weights; TF MobileNet's [-1, 1] */
extern const float AUG_IMAGENET_MEAN[3], AUG_IMAGENET_STD[3], AUG_HALF[3];
#endif
