/* predictions.h - what a finished training run leaves for `stylenet report` besides its history.
 *
 * predictions_write(run_dir, model, ds, split, opts, model_path, wall_seconds) scores the
 * validation images once more with the trained model (plain, no TTA, eval mode: the same numbers
 * as the run's final "valid" metrics) and writes, each atomically (temp file, then rename):
 *
 * - run_dir/valid_predictions.jsonl: one JSON object per validation image, in split order:
 *     {"item": 12, "path": "/abs/path/0_1_003.png", "rel": "0_1_003.png",
 *      "truth": [0, 8], "probs": [0.91, ...], "loss": 0.153}
 *   truth: the indices of the image's true classes (one for single-label data); probs: the
 *   model's probability of every class (sigmoid for multi-label, softmax for single-label, of the
 *   logits divided by the model's temperature);
 *   loss: the image's own loss from those probabilities (metrics_image_loss in
 *   classifier/metrics.h: mean binary cross-entropy over the classes for multi-label data,
 *   -log p(true class) for single-label, at most 16.1).
 * - run_dir/run.json: what the report needs to name things:
 *     {"format": 1, "kind": "multi"|"single", "task": "multi", "model": "/abs/style.stn",
 *      "arch": ..., "size": 128, "threshold": 0.2, "temperature": 1.55, "data": "/abs/data/style", "layout": ...,
 *      "classes": [...], "groups": [{"name": "brand", "first": 0, "end": 7}, ...],
 *      "train_images": 715, "valid_images": 179, "wall_seconds": 106.2,
 *      "valid": {"loss": ..., "fbeta"|"accuracy": ..., "<group>": ..., "all_right": ...},
 *      "training": <the model's training history (recipe, rate, final metrics with and without
 *                   TTA), without its per-epoch list, which history.jsonl holds>}
 *   groups is empty when the classes form no groups.
 *
 * Returns 0, or -1 with an error naming the file.  opts: the run's learner options (batch size,
 * threshold, seed); its run_dir is not used (the history is left alone).
 */
#ifndef STYLENET_PREDICTIONS_H
#define STYLENET_PREDICTIONS_H
#include "data/dataset.h"
#include "classifier/classifier.h"
#include "train/learner.h"

int predictions_write(const char *run_dir, classifier *m, dataset *ds, const ds_split *split, const learner_opts *opts,
                      const char *model_path, double wall_seconds);
#endif
