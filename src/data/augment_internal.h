/* augment_internal.h - what augment.c and augment_shift.c share; private to src/data/augment*.c.
 *
 * - aug_lut: per channel, byte value -> lit (fastai lighting of p) and normalised float.
 * - aug_reflect: reflection about -0.5 and n - 0.5, then clipped to [0, n-1] (grid_sample's
 *   padding_mode='reflection', align_corners=False).
 */
#ifndef STYLENET_AUGMENT_INTERNAL_H
#define STYLENET_AUGMENT_INTERNAL_H
#include <math.h>
#include "data/augment.h"

void aug_lut(const aug_params *p, const float mean[3], const float std_[3], float lut[3][256]);

static inline float aug_reflect(float x, int n) {
    float t = fabsf(x + 0.5f), span = (float)n;
    float flips = floorf(t / span), extra = t - flips * span;
    x = ((int)flips % 2 == 0 ? extra : span - extra) - 0.5f;
    return x < 0 ? 0 : x > n - 1 ? (float)(n - 1) : x;
}
#endif
