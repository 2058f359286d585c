/* tflite_net.h - load the weights of a TFLite convolutional network into a stylenet net.
 *
 * Contract: net_load_tflite(m, path) maps the file's CONV_2D and DEPTHWISE_CONV_2D operators, in
 * file order, onto m's OP_CONV nodes in node order (models/zoo.h builds mobilenet_v2_tf in that
 * order).  For each pair it checks the kind (dense / depthwise), weight shape, stride, padding
 * ('SAME' must match the node's per-side padding for the net's input size, 'VALID' must be zero)
 * and the fused activation (RELU6 / RELU / none must match the node that consumes the conv);
 * then it dequantises the weights and bias (tflite.h) into the net: OHWI stays OHWI, depthwise
 * [1, KH, KW, C*m] becomes [C*m, KH, KW, 1].  Any mismatch is an error naming the file, the
 * operator index and the node ("…: operator 12 (DEPTHWISE_CONV_2D) has stride 2, node
 * 'MobilenetV2/expanded_conv_2/depthwise' stride 1: not the same architecture"), and nothing of
 * m is changed unless everything matches.
 */
#ifndef STYLENET_TFLITE_NET_H
#define STYLENET_TFLITE_NET_H
#include "nn/net.h"

int net_load_tflite(net *m, const char *path);
/* the same for a body: the net's convolutions take the file's first ones, and the file's
 * remaining convolutions (its classifier) are skipped, e.g. the TFLite MobileNetV2 under a new
 * fastai head.  Returns the number of convolutions skipped, or -1. */
int net_load_tflite_body(net *m, const char *path);
/* true if the bytes start like a TFLite flatbuffer ("TFL3" at offset 4) */
int tflite_is_file(const char *path);
#endif
