/* matte.h - a soft foreground matte of a catalogue photo (one product on a near-white or flat
 * light grey background), and compositing the product over another background.
 *
 * Contract
 * - matte_estimate(src, o, alpha): alpha[h*w] in [0, 1], 1 = product.  The background colour is
 *   the per-channel median of the border pixels; the background is the region of pixels whose
 *   colour distance (largest channel difference, in [0, 1]) to it is below o->threshold AND that
 *   is 4-connected to the image border (a flood fill from the border).  Regions of background
 *   colour enclosed by the product (the hole of a ring or a handle) are not reached and stay
 *   product.  The hard mask is feathered: box-blurred twice with radius o->feather (about a
 *   Gaussian), then alpha = clamp((b - o->inset) / (1 - o->inset)) on the product and 0 on the
 *   background, so the soft edge lies inside the product and the light fringe of anti-aliased
 *   edges does not come along (no white halo); but a product pixel whose distance d to the background colour is well above the
 *   threshold t keeps alpha >= (d - t) / ((o->strong - 1) t) (opaque from strong x t on), so thin
 *   chains and strongly coloured edges stay whole.  Returns 1 when a matte was found; 0 when the photo has no usable background (fewer
 *   than o->min_border of the border pixels near the border colour, a border colour darker than
 *   o->min_light, or a product covering less than o->min_product or more than o->max_product of
 *   the image: an all-white image, a full-frame photo): then alpha is all 1 (the photo is used as
 *   it is); -1 when out of memory.  Deterministic: a pure function of the pixels and options.
 * - matte_composite(fg, alpha, bg, shadow, out): out = alpha fg + (1 - alpha) bg', where bg' is
 *   bg darkened by a soft drop shadow (the matte shifted by (dx, dy) pixels, box-blurred with
 *   radius blur, scaled by opacity: bg' = bg (1 - opacity * shadow)); shadow NULL or opacity 0:
 *   none.  fg, bg and out are w x h (out->rgb allocated by the caller or, when NULL, here).
 * - matte_map: the matte of one photo as kept for training (alpha as bytes 0..255 at the
 *   photo's resolution, plus the shadow: the alpha box-blurred and reduced by MATTE_SHADOW_F in
 *   each direction), and matte_cache: one lazily built matte_map per data set item, built at
 *   first use by whichever thread asks first (thread safe, lock free; a race builds twice and
 *   keeps one), so each photo's matte is computed once per cache, not per epoch.
 */
#ifndef STYLENET_MATTE_H
#define STYLENET_MATTE_H
#include <stdbool.h>
#include <stdint.h>
#include "io/image.h"

typedef struct {
    float threshold;   /* colour distance to the border colour that is still background (0.1) */
    int feather;       /* feathering radius in pixels (2) */
    float inset;       /* share of the feather ramp kept outside the product (0.3) */
    float strong;      /* product pixels at least strong x threshold from the background colour
                          stay opaque, with a ramp from 1 x (3; <= 1: feathering alone) */
    float min_border;  /* border pixels near the border colour, at least (0.5) */
    float min_light;   /* luma of the border colour, at least (0.5; 1 = white) */
    float min_product, max_product; /* product area share (0.01, 0.97) */
} matte_opts;

typedef struct {
    float dx, dy;    /* offset in pixels */
    int blur;        /* box-blur radius in pixels */
    float opacity;   /* 0: no shadow */
} matte_shadow;

void matte_defaults(matte_opts *o);
int matte_estimate(const image *src, const matte_opts *o, float *alpha);
int matte_composite(const image *fg, const float *alpha, const image *bg, const matte_shadow *shadow, image *out);

enum { MATTE_SHADOW_F = 4 };

typedef struct matte_map {
    int w, h;          /* the photo's size */
    bool ok;           /* matte_estimate found a background; false: alpha is all 255 */
    uint8_t *alpha;    /* [h * w] */
    int sw, sh;        /* shadow size: ceil(w / MATTE_SHADOW_F) x ceil(h / MATTE_SHADOW_F) */
    uint8_t *shadow;   /* [sh * sw] blurred alpha */
} matte_map;

int matte_map_build(const image *src, const matte_opts *o, matte_map *m);
void matte_map_free(matte_map *m);

typedef struct matte_cache matte_cache;
matte_cache *matte_cache_create(int n_items, const matte_opts *o);
/* item i's matte (src: its pixels, used when it is built); NULL + sn_error when out of memory */
const matte_map *matte_cache_get(matte_cache *c, int i, const image *src);
void matte_cache_free(matte_cache *c);
#endif
