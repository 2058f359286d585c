/* conv_winograd.h - Winograd convolution F(m x m, 3 x 3) for the dense 3x3 stride-1 layers
 * (ResNet's) of a network prepared for inference and of a training network's forward and
 * backward-data passes, on NHWC fp32 tensors.
 *
 * Contract: d a conv_desc filled by conv_desc_init with groups 1, a 3x3 kernel and stride 1
 * (conv2d_winograd_takes); any padding (per side), any h, w, cin, cout.  For n images
 * x[n, h, w, cin] and residual res[n, oh, ow, cout] (NULL: none; it may be y itself):
 *   y = d->act(conv(x, w) + b + res)          (b may be NULL)
 * the bias after the sum, then the residual, then the activation, as the unfused passes do.
 *
 * How: the output is cut into m x m tiles, each read from an alpha x alpha input tile (alpha =
 * m + 2; zero outside the image).  Y = A^T [ (G w G^T) . (B^T d B) ] A: the input transform
 * B^T d B (vectorised over 8 channels), then alpha^2 independent GEMMs [tiles x cin] x [cin x
 * cout], then the output transform A^T M A with the bias, residual and activation applied before
 * the one store.  F(2x2,3x3) (alpha 4) does 16 multiplications per 4 outputs where a direct sum
 * does 36 (2.25x fewer), F(4x4,3x3) (alpha 6; Lavin and Gray's points 0, +-1, +-2, infinity) 36
 * per 16 (4x fewer), less the tiles' overhang at the map's edges.
 *
 * The weights are transformed by the caller (conv2d_winograd_pack: once at preparation for
 * inference, at each use in training) into alpha^2 matrices [cout rounded up to 8][cin], each
 * packed in panels of 24 output channels for the AVX2/FMA register-tiled kernel (gemm_tile.h,
 * which prefetches the next panel: the GEMMs of small maps have few rows and read their weights
 * from memory; a portable loop without AVX2).
 * A call takes its work buffers from the caller (conv2d_winograd_scratch floats, 64-byte
 * aligned) and allocates nothing.  The tiles run in blocks (2 MB of transformed input and output
 * at most); the work items are (block, group of output panels), shared by the threads (OpenMP,
 * omp_get_max_threads(), one inside a parallel region) with no barrier between the phases: the
 * channels are split only where there are fewer blocks than threads (small maps, where each
 * thread then reads only its share of the weights), and a thread with two items of one block
 * transforms its input once.  Every output is computed by one item in an order fixed by the
 * shape: bitwise the same for any thread count.
 *
 * Rounding: the transforms' coefficients make the error grow with alpha: against double sums,
 * the worst |y - ref| / (sum |x||w| + |b| + |res|) that tests/kernels/test_winograd.c measures
 * is 2.4e-7 for F(2x2) and 2.8e-6 for F(4x4); resnet18/34/50 at 224 px give logits within 7.4e-7
 * of the largest one of the direct path's.
 */
#ifndef STYLENET_CONV_WINOGRAD_H
#define STYLENET_CONV_WINOGRAD_H
#include <stdbool.h>
#include <stddef.h>
#include "kernels/conv.h"

/* whether d is a shape these kernels run: groups 1, 3x3 kernel, stride 1 */
bool conv2d_winograd_takes(const conv_desc *d);
/* the output tile m that inference uses for d: 4 from 20x20 maps up, 2 from 4x4, else 0 (run it
 * directly: too few outputs for the tiles' overhang).  Below 20x20 the maps have few tiles, each
 * GEMM reads its weights for few rows, and F(4x4)'s transformed weights (4x the plain ones,
 * against 1.8x for F(2x2)) cost more memory traffic than its multiplications save. */
int conv2d_winograd_tile(const conv_desc *d);
/* the output tile a training step (a batch of images, weights transformed every step) runs d
 * on: 4 from 16x16 maps up, 2 from 8x8, else 0 (the direct convolution).  Measured on resnet34's
 * training step at 128 px, batch 32, 2 threads (bench_net; maps 32, 16, 8, 4), in CPU seconds
 * per step (medians of 3 runs on a loaded machine): 3.20 with these thresholds, 3.42 with
 * conv2d_winograd_tile's, 3.95 with no Winograd.  A batch has more tiles per weight than one
 * image: F(4x4) pays from smaller maps, and the 4x4 maps' 4 tiles per image do not. */
int conv2d_winograd_train_tile(const conv_desc *d);
/* floats of d's transformed weights for tile m: (m + 2)^2 * cin * (cout rounded up to 8) */
size_t conv2d_winograd_weights_size(const conv_desc *d, int m);
/* the weights w[cout, 3, 3, cin] (OHWI) transformed for tile m into u[conv2d_winograd_weights_size]
 * (in double, rounded once; OpenMP threads) */
void conv2d_winograd_pack(const conv_desc *d, int m, const float *w, float *u);
/* the backward data pass of d as a convolution these kernels run: dx = conv(dy, w') where w' is
 * w rotated by 180 degrees with its input and output channels swapped, padding 2 - p per side.
 * Fills bd (input dy [oh, ow, cout], output dx [h, w, cin], ACT_NONE); false (bd unusable) when d
 * is not a shape these kernels run or a padding exceeds 2 */
bool conv2d_winograd_backward_data_desc(const conv_desc *d, conv_desc *bd);
/* w' of conv2d_winograd_backward_data_desc transformed for tile m into
 * u[conv2d_winograd_weights_size(bd, m)], from the forward weights w[bd->cin, 3, 3, bd->cout]
 * (OHWI of the forward convolution), as conv2d_winograd_pack */
void conv2d_winograd_pack_backward_data(const conv_desc *bd, int m, const float *w, float *u);
/* floats of work buffers conv2d_winograd_forward needs for n images with tile m, called where it
 * will be called (the thread count is omp_get_max_threads() outside a parallel region) */
size_t conv2d_winograd_scratch(const conv_desc *d, int m, int n);
/* y as above from the transformed weights u (tile m: 2 or 4), in scratch; -1 with an error
 * (nothing written) if d is not a shape these kernels run or m is neither 2 nor 4 */
int conv2d_winograd_forward(const conv_desc *d, int m, int n, const float *x, const float *u, const float *b,
                            const float *res, float *y, float *scratch);
#endif
