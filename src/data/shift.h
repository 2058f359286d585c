/* shift.h - a deterministic stress version of validation photos: a proxy, measurable on the data
 * one has, for photos taken in the wild (editorial and lifestyle shots rather than catalogue ones).
 *
 * Contract
 * - shift_dataset(ds, idx, n, seed): a new data set of n items, item k the stress version of ds's
 *   item idx[k] with the same labels (classes, groups, targets, paths); its images are in the
 *   cache (square, the side of the source's cached short side).  Item k is rendered from
 *   (seed, k) alone, so the set is the same on every run, machine and thread count:
 *   1. the product is cut out with its soft matte (data/matte.h; a photo without a usable
 *      background keeps all of its pixels);
 *   2. a new background: a procedural texture (data/background.h) of SHIFT_SEED's own keys, not
 *      the training pool's, blurred as if out of focus, or a two-tone scene (two textures split
 *      by a line at any angle: a surface and a wall);
 *   3. clutter with probability 0.3: the product of another photo of idx (two with probability
 *      0.3 of that), at 25-45% of the frame, at any angle, centred near an edge (partly in
 *      frame), behind the product;
 *   4. the product at 60-95% of the frame, or with probability 0.2 a close-up at 110-140%
 *      (cropped by the frame), at a random position, with a soft drop shadow; turned by any
 *      angle with probability 0.3, else by up to 20 degrees either way;
 *   5. light with probability 0.5: a directional gradient across the frame (x0.7 to x1.2), a
 *      colour temperature cast (red and blue gains 1 +- 0.1) and a gamma in [0.8, 1.25].
 *   Training's augmentation draws none of these in this form (its backgrounds come from the
 *   training seed's pool and photo folders, its lighting is uniform, CutMix pastes rectangles
 *   and mixes the labels).  NULL + sn_error when out of memory or a photo cannot be read (the
 *   message names it).
 * - shift_render(ds, idx, n, alpha, k, seed, out): item k alone; alpha[j] is the matte of
 *   idx[j] at its cached size (matte_estimate; NULL entries are computed when needed).
 */
#ifndef STYLENET_SHIFT_H
#define STYLENET_SHIFT_H
#include <stdint.h>
#include "data/dataset.h"

#define SHIFT_SEED 0x5348494654ull /* the stress set's own seed, disjoint from training's */

dataset *shift_dataset(const dataset *ds, const int *idx, int n, uint64_t seed);
int shift_render(const dataset *ds, const int *idx, int n, float *const *alpha, int k, uint64_t seed, image *out);
#endif
