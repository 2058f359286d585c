/* convert.h - any weights file stylenet reads, written as safetensors for the Python world.
 *
 * Contract
 * - classifier_convert(in, out, labels): the format of `in` is told from its content.  A TFLite
 *   model is loaded as a classifier (its classes named by the labels file, one per line, when
 *   labels is not NULL) and saved as a stylenet model file (a safetensors file whose metadata
 *   says the architecture, classes and preprocessing; the tensors carry the net's parameter names).
 *   Anything else weights_open_st() reads -- safetensors, a stylenet model file, a PyTorch
 *   checkpoint (zip or legacy) -- is copied tensor by tensor with its names, dtypes (float tensors
 *   as F32, integer ones as I64) and metadata.
 * - `out` is written atomically (a temporary file, then rename): on failure the previous file at
 *   `out`, if any, is untouched.  0, or -1 with an error naming the file and what is wrong.
 */
#ifndef STYLENET_CONVERT_H
#define STYLENET_CONVERT_H
int classifier_convert(const char *in, const char *out, const char *labels);
#endif
