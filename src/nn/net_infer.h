/* net_infer.h - a network prepared for inference: the frozen path that predict, eval, serve, the
 * library API and bench_net's infer rows run.
 *
 * Contract
 * - net_prepare_inference(src) returns a NEW network computing src's eval-mode forward (running
 *   statistics, no dropout) with parameters of its own; src is not changed and keeps training.
 *   In it:
 *     - every batch norm that reads a convolution read by nothing else is folded into that
 *       convolution: w' = w * s, b' = (b - mean) * s + beta per output channel, with
 *       s = gamma / sqrt(var + eps), computed in double and rounded once;
 *     - every batch norm whose one reader is a linear layer (through dropouts: fastai's head) is
 *       folded into the linear layer: W' = W * s per input column, b' = b + W (beta - mean * s);
 *     - dropout and drop-path (identities in eval mode) are left out;
 *     - other batch norms stay batch norms (running statistics).
 *   The folded network rounds differently from src (a product s * w is rounded once into the
 *   weight instead of scaling each sum): logits agree to about 1e-5 of their scale, not bitwise.
 *   Its weights are frozen (net_freeze_weights) and its parameters take no gradients.
 * - The plan of a prepared network adds the inference fusions (net_internal.h, net_run.c), none of
 *   which has a backward pass:
 *     - a depthwise convolution (with its ReLU/ReLU6) read only by a 1x1 convolution is computed
 *       with it, block of rows by block of rows (kernels/conv_dwpw.h), and so is the 1x1
 *       expansion (with its ReLU/ReLU6) the depthwise convolution reads when read by nothing
 *       else: a whole inverted-residual block in one pass, whose expanded and depthwise outputs
 *       never go to memory.  The weights of each depthwise convolution and of the 1x1 ones
 *       it reads and that read it are packed once for it, into buffer parameters
 *       "<name>.packed" of those convolutions, and its work buffers come from the net's pool:
 *       a pass allocates nothing once the pool has grown;
 *     - a residual add of such a pair's output is done in the pair's pass (the GEMM accumulates
 *       onto the residual);
 *     - a ReLU/ReLU6 of a residual add read by nothing else is applied in the add's pass;
 *     - (as in every net) a ReLU/ReLU6 of a convolution is the convolution's post-op.
 * - A batch of more than one image, with more than one OpenMP thread and no node kept but the
 *   output (net_keep), runs image by image: one worker thread per OpenMP thread, each with a net
 *   sharing the parameters (net_share, batch 1, one OpenMP thread), on a contiguous share of the
 *   batch.  Each image's activations stay in its core's cache, and the threads never wait for each
 *   other inside a layer.  An image's logits are then those of a batch-1 pass on one thread.
 * - A prepared network refuses to train: net_forward with training = true and net_backward fail
 *   with an error naming the reason.  net_share, net_set_batch, net_set_input_size work as usual.
 * - Names: convolutions and linear layers keep src's names (plus the "<name>.packed" buffers
 *   above); folded batch norms have no parameters left, so a prepared network is not saved (io/
 *   would find their parameters missing).
 * NULL with an error if out of memory, or if src has a layer the preparation cannot copy.
 */
#ifndef STYLENET_NET_INFER_H
#define STYLENET_NET_INFER_H
#include "nn/net.h"

net *net_prepare_inference(const net *src);
#endif
