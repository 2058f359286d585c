/* ensemble.h - several models scored as one: the mean of their probabilities.
 *
 * ensemble_compatible(a, path_a, b, path_b): 0 when b can be averaged with a (the same task,
 * the same classes in the same order, the same label groups), else -1 with an error naming
 * both files and what differs.  Architectures, image sizes and normalisations may differ: each
 * model sees the images its own way and only the probabilities are averaged.
 */
#ifndef STYLENET_ENSEMBLE_H
#define STYLENET_ENSEMBLE_H
#include "io/model_file.h"

#define ENSEMBLE_MAX 16 /* models at most */

int ensemble_compatible(const sn_model *a, const char *path_a, const sn_model *b, const char *path_b);
#endif
