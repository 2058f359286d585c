/* act.h - the element-wise activations that kernels apply fused into other passes.
 *
 * Contract: ACT_NONE / ACT_RELU / ACT_RELU6 name an activation wherever a kernel takes one
 * (convolution, batch norm, pooling); a leaf header, included by every kernel that fuses one.
 */
#ifndef STYLENET_ACT_H
#define STYLENET_ACT_H
typedef enum { ACT_NONE = 0, ACT_RELU = 1, ACT_RELU6 = 2 } sn_act;
#endif
