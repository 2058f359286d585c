/* onnx_export.h - a network's inference graph as an ONNX model file.
 *
 * Contract
 * - onnx_export_net(m, opts, path) writes m (from its input node to net_output(m)) as an ONNX
 *   model: IR version 7, the default domain at opset 13, every parameter an initializer under
 *   its PyTorch name ("layer1.0.conv1.weight", conv weights OIHW), so ONNX Runtime, OpenVINO,
 *   onnx.checker and friends take it as any torchvision export.
 * - Graph input "input": float [batch, C, H, W] (NCHW, the ONNX convention; stylenet's own NHWC
 *   input transposed), H, W, C of m's input node; "batch" is a symbolic (dynamic) dimension.
 *   Graph outputs, float [batch, K] with K = the output node's h*w*c: "logits", and, unless
 *   opts->final is ONNX_FINAL_NONE, "probabilities" = Sigmoid(z) or Softmax(z, axis 1) of
 *   z = logits, or z = Mul(logits, 1 / opts->temperature) when that is > 0 and not 1.
 * - Nodes, eval-mode semantics: convolution -> Conv with explicit per-side pads [top, left,
 *   bottom, right] (so TensorFlow SAME padding, asymmetric on stride 2, is exact; never
 *   auto_pad), group, strides; batch norm -> BatchNormalization (running statistics, eps);
 *   ReLU -> Relu; ReLU6 -> Clip(0, 6); residual add -> Add; max / average pool -> MaxPool /
 *   AveragePool (pads, count_include_pad); global average pool -> GlobalAveragePool; concat pool
 *   -> Concat(GlobalMaxPool, GlobalAveragePool) on channels, max first (fastai's order); flatten
 *   -> Flatten (after a Transpose to NHWC when the map is larger than 1x1, as stylenet flattens
 *   channels last); linear -> Gemm (transB); dropout and drop-path are the identity in eval and
 *   emit nothing.
 * - opts->meta: n_meta key/value string pairs stored as the model's metadata_props (the caller
 *   states the preprocessing there); opts->doc: the model's doc_string (may be NULL).
 * - The file is written atomically (core/file.h).  0, or -1 with an error naming the file and
 *   what is wrong (out of memory, a node ONNX cannot express here, a write failure).
 *
 * The protobuf messages are ONNX's own schema (onnx.proto from Debian's libonnx-dev) compiled to
 * C by protobuf-c at build time (build/gen/onnx.pb-c.h); nothing here encodes protobuf by hand.
 */
#ifndef STYLENET_ONNX_EXPORT_H
#define STYLENET_ONNX_EXPORT_H
#include "nn/net.h"

typedef enum { ONNX_FINAL_NONE, ONNX_FINAL_SIGMOID, ONNX_FINAL_SOFTMAX } onnx_final;

typedef struct {
    onnx_final final;
    float temperature;       /* > 0 and != 1: probabilities of logits / temperature (calibration) */
    const char *const *meta; /* {key0, value0, key1, value1, ...} */
    int n_meta;
    const char *doc;
} onnx_export_opts;

int onnx_export_net(const net *m, const onnx_export_opts *opts, const char *path);
#endif
