/* data_report.h - what a data set holds, for `stylenet data`: images per class in the training
 * and validation shares, tag combinations, and a picture of augmented training samples.
 *
 * - report_class_counts(ds, sp, train, valid): per class, the training and the validation images
 *   that have it (train[n_classes], valid[n_classes]).
 * - report_tag_sets(ds, lim, &n_sets): the distinct tag combinations of the set's images
 *   (*n_sets; for multi-label sets with several tag groups, e.g. Style's brand + product pairs)
 *   and how many of them have fewer than lim images (the return value); -1 when out of memory.
 * - report_sample_grid(ds, sp, aug, n, size, seed, path): the first batch of n augmented
 *   training samples, as training draws them with seed and aug (NULL: aug_defaults) at size x
 *   size pixels, in a grid with their labels under each (wrapped to the tile's width; a label
 *   mixed by CutMix shows each class with its share, e.g. "Gucci 0.7 + Dior 0.3"), written as a PNG.  -1 with an error naming
 *   path (no training images, out of memory, an unwritable file).
 */
#ifndef STYLENET_DATA_REPORT_H
#define STYLENET_DATA_REPORT_H
#include <stdint.h>
#include "data/augment.h"
#include "data/dataset.h"

void report_class_counts(const dataset *ds, const ds_split *sp, int *train, int *valid);
int report_tag_sets(const dataset *ds, int lim, int *n_sets);
int report_sample_grid(const dataset *ds, const ds_split *sp, const aug_opts *aug, int n, int size, uint64_t seed,
                       const char *path);
#endif
