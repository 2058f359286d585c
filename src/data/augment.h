/* augment.h - fastai-style data augmentation as one affine warp per image, and the validation
 * transform.
 *
 * Contract
 * - aug_opts: fastai v1 get_transforms() defaults (aug_defaults): do_flip (p 0.5), max_rotate 10
 *   degrees, max_zoom 1.1, max_lighting 0.2, p_affine 0.75, p_lighting 0.75, no perspective warp;
 *   the shift augmentations below off.
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
 * - Shift augmentations (for photos unlike the catalogue's: aug_opts' second block, all off at 0,
 *   and then aug_draw and aug_warp are exactly as above).  aug_draw_shift draws them from their
 *   own keyed stream (so the draws above stay the same) and may override p's angle (rotation
 *   over the full circle) and zoom (random resized crop: area share in [rrc_min_scale, 1],
 *   aspect log-uniform in [1/rrc_ratio, rrc_ratio]).  aug_render then makes the image in one pass over the
 *   output: the map output -> source is a homography (the affine map above, stretched by the
 *   crop's aspect, after a perspective distortion that moves each output corner by up to
 *   `persp` of the half side); the product is sampled as aug_warp samples it; with a background
 *   (the photo's matte found, data/matte.h) the source's alpha is sampled too (0 outside the
 *   photo: the product scaled by bg_scale in [bg_min_scale, 1] lands anywhere on the new
 *   background), the background (data/background.h: bg_draw, S x S, keyed) is darkened by the
 *   matte's soft shadow at a random offset and the two are blended; lighting applies to both;
 *   colour jitter (hue rotation about the grey axis, saturation, contrast) is one 3 x 3 matrix
 *   per pixel.  Then, each when drawn: Gaussian blur, JPEG re-compression (libjpeg, in memory),
 *   random erasing of a rectangle (uniform noise), and normalisation.  CutMix (several products
 *   in one frame) is the loader's (data/loader.h): aug_shift.cutmix* say where and which.
 * - Source pixels are the cache's (data/dataset.h): for good quality keep the cache's short side
 *   near the training size (ds_decode_opts.max_side); sampling is bilinear without prefiltering,
 *   as fastai does.
 */
#ifndef STYLENET_AUGMENT_H
#define STYLENET_AUGMENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "io/image.h"

typedef struct {
    bool do_flip;       /* horizontal flip with probability 0.5 */
    float max_rotate;   /* degrees: uniform in [-max, max] */
    float max_zoom;     /* zoom uniform in [1, max_zoom] */
    float max_lighting; /* brightness in 0.5 +- max/2, contrast log-uniform in [1-max, 1/(1-max)] */
    float p_affine;     /* probability of the rotation, and (separately) of the zoom */
    float p_lighting;   /* probability of the brightness, and (separately) of the contrast change */
    /* shift augmentations: each a probability (0: off) and its strength */
    float bg_p;          /* put the product (catalogue matte) on a new background */
    float bg_photo_p;    /* share of new backgrounds from the photo library (the rest procedural) */
    float bg_min_scale;  /* product scale on a new background uniform in [bg_min_scale, 1] */
    float shadow_p;      /* soft drop shadow under the product on a new background */
    const char *bg_dirs; /* folders of background photos, comma-separated (NULL: BG_DEFAULT_DIRS
                            where installed; "none": procedural only); the loader loads them */
    struct bg_library *bg_lib; /* the photos (NULL: procedural only; data/background.h); not owned */
    float rotate_full_p; /* rotation uniform over the full circle */
    float rrc_p, rrc_min_scale; /* random resized crop: area share in [rrc_min_scale, 1] */
    float rrc_ratio;            /* and aspect log-uniform in [1/rrc_ratio, rrc_ratio] */
    float persp_p, persp;       /* perspective: corners moved by up to persp of the half side */
    float color_p, hue, saturation, contrast; /* hue +-hue turns; saturation, contrast x [1-s, 1+s] */
    float blur_p, blur_sigma;   /* Gaussian blur, sigma uniform in [0.3, blur_sigma] output pixels */
    float jpeg_p;               /* JPEG re-compression at quality uniform in [jpeg_min_q, 95] */
    int jpeg_min_q;
    float erase_p, erase_max;   /* random erasing: a rectangle of up to erase_max of the area */
    float cutmix_p;             /* paste a rectangle of another image; targets mixed by area */
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

/* what aug_draw_shift drew for one image (aug_render's input besides aug_params) */
typedef struct {
    bool active;          /* anything below is on: aug_render, not aug_warp */
    uint64_t key;         /* the image's key for bg_draw and the erasing noise */
    bool bg;              /* new background (used when the photo has a matte) */
    float bg_scale;       /* product scale on it */
    float shadow, shadow_dx, shadow_dy; /* opacity; offset as a share of the source's short side */
    float aspect;         /* crop window width / height (1: square) */
    bool persp_on;
    float persp[8];       /* corner moves (x, y) of the corners (-1,-1), (1,-1), (-1,1), (1,1) */
    bool color;
    float hue, sat, con;  /* turns; factors */
    float blur;           /* sigma in output pixels, 0: none */
    int jpeg_q;           /* 0: none */
    bool erase;
    float erase_box[4];   /* x, y, w, h as shares of the side */
    bool cutmix;
    float cutmix_pick;    /* [0, 1): which other image (the loader's choice) */
    float cutmix_box[4];  /* x, y, w, h as shares of the side */
} aug_shift;

void aug_defaults(aug_opts *o);
/* aug_defaults gives the shift augmentations' strengths with every probability 0;
 * aug_shift_preset turns on a combination for photos unlike the catalogue's (--shift-aug) */
void aug_shift_preset(aug_opts *o);
/* every shift probability to 0 (test-time augmentation keeps only the fastai transforms) */
void aug_shift_off(aug_opts *o);
bool aug_shift_enabled(const aug_opts *o);
/* the shift augmentations that are on, as the command-line flags that give them (probability,
 * then its strengths), e.g. "--bg-p 0.5 --bg-photo-p 0.5 --bg-min-scale 0.5 --shadow-p 0.5";
 * "" when none; cut to cap */
void aug_shift_describe(const aug_opts *o, char *buf, size_t cap);
void aug_identity(aug_params *p);
void aug_draw(const aug_opts *o, uint64_t seed, uint64_t epoch, uint64_t item, aug_params *p);
/* the affine map, output pixel (x, y) (integer index of its centre) -> continuous source pixel
 * index: sx = m[0] + m[1] x + m[2] y, sy = m[3] + m[4] x + m[5] y */
void aug_matrix(const aug_params *p, int src_w, int src_h, int S, float m[6]);
/* warped, lit and normalised S x S x 3 floats */
void aug_warp(const image *src, const aug_params *p, int S, const float mean[3], const float std_[3], float *out);
void aug_draw_shift(const aug_opts *o, uint64_t seed, uint64_t epoch, uint64_t item, aug_params *p, aug_shift *s);
struct matte_map;
/* the shift pipeline (see above) into out[S*S*3]; m: the source's matte (NULL or !m->ok: no
 * background replacement).  -1 only when out of memory (JPEG buffers) */
int aug_render(const image *src, const struct matte_map *m, const aug_params *p, const aug_shift *s,
               const aug_opts *o, uint64_t seed, int S, const float mean[3], const float std_[3], float *out);
/* validation transform; -1 only when out of memory */
int aug_center(const image *src, int S, const float mean[3], const float std_[3], float *out);

/* normalisations: torchvision ImageNet weights; TF MobileNet's [-1, 1] */
extern const float AUG_IMAGENET_MEAN[3], AUG_IMAGENET_STD[3], AUG_HALF[3];
#endif
