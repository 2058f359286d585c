/* export.h - a classifier for other runtimes: ONNX.
 *
 * Contract
 * - classifier_export_onnx(c, path) writes the whole classifier -- body, head and the final
 *   activation -- as an ONNX model (io/onnx_export.h), at c's input size:
 *     input          "input"  float [batch, 3, size, size], NCHW, already normalised
 *     outputs        "logits" float [batch, K] and "probabilities" float [batch, K]: the sigmoid
 *                    of each logit / temperature for a multi-label model, the softmax over the
 *                    K classes otherwise -- the numbers `stylenet predict` reports (without TTA
 *                    views; the temperature is the classifier's calibration, 1 = none)
 *   "batch" is dynamic.  metadata_props holds the model file's entries (io/model_file.h: arch,
 *   head, size, mean, std, task, threshold, temperature, classes, groups, history; not
 *   stylenet.format) and
 *   states the preprocessing and outputs: input_layout "NCHW", input_size, input_range, preprocess
 *   (centre square crop, resize, RGB / 255, (x - mean) / std), outputs, decision (how predict turns
 *   probabilities into labels: argmax; per label group; or the threshold).
 * - 0, or -1 with an error naming the file and what is wrong.  The write is atomic.
 */
#ifndef STYLENET_EXPORT_H
#define STYLENET_EXPORT_H
#include "classifier/classifier.h"

int classifier_export_onnx(const classifier *c, const char *path);
#endif
