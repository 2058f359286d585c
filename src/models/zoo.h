/* zoo.h - the model zoo: torchvision ResNet-18/34/50 and MobileNetV2, TF-slim MobileNetV2 (the
 * layout of mobilenet_v2_1.0_224_quant.tflite), EfficientNet-Lite0/1/2 (the layout of the PyPI
 * package efficientnet-lite-pytorch 0.1.0), and fastai's transfer-learning head.
 *
 * Contract
 * - model_build(arch, num_classes, opts) returns a complete network (input [h, w, 3] NHWC,
 *   output the logits [1, 1, num_classes] per image) with every parameter initialised as the
 *   reference framework does, or NULL with an error (sn_last_error()).  An unknown arch gives
 *   "unknown architecture 'x' (known: resnet18, ..., efficientnet_lite2)" (model_known_archs).
 *   num_classes <= 0 means the reference default: 1000 for the torchvision and EfficientNet-Lite
 *   models, 1001 (index 0 = background) for mobilenet_v2_tf.
 * - Names.  Body and default classifier parameters carry the exact keys of the reference state
 *   dict, so weights load by name (io/state.h):
 *     resnet*        torchvision: conv1, bn1, layer{1..4}.{b}.conv{1,2[,3]}, .bn{1,2[,3]},
 *                    .downsample.{0,1}, fc.
 *     mobilenet_v2   torchvision 0.14: features.0.{0,1}, features.{1..17}.conv.*, features.18.{0,1},
 *                    classifier.1 (classifier.0 is the Dropout).
 *     mobilenet_v2_tf  TF-slim scopes, BN folded into a conv bias:  MobilenetV2/Conv,
 *                    MobilenetV2/expanded_conv/{depthwise,project},
 *                    MobilenetV2/expanded_conv_{1..16}/{expand,depthwise,project}, MobilenetV2/Conv_1,
 *                    MobilenetV2/Logits/Conv2d_1c_1x1 -- each with ".weight" and ".bias".
 *                    Convolutions are created in the order of the TFLite file's CONV_2D /
 *                    DEPTHWISE_CONV_2D operators (53 of them), with TensorFlow 'SAME' padding.
 *                    Classifier: global average pool (the file's 7x7 AVERAGE_POOL_2D at 224x224)
 *                    and a 1x1 conv with bias, 1280 -> num_classes.
 *     efficientnet_lite{0,1,2}  efficientnet-lite-pytorch 0.1.0: _conv_stem, _bn0,
 *                    _blocks.<i>.{_expand_conv,_bn0,_depthwise_conv,_bn1,_project_conv,_bn2} (block 0
 *                    has no expansion), _conv_head, _bn1, _fc.  TensorFlow 'SAME' padding, BN eps
 *                    1e-3 / momentum 0.01, ReLU6; width x1.0/1.0/1.1 and depth x1.0/1.1/1.2 as the
 *                    package rounds them (stem 32 and head 1280 fixed; 16/21/21 blocks); drop-path
 *                    (the package's drop_connect) on each residual branch at rate
 *                    drop_connect x block index / blocks, training only; classifier global average
 *                    pool, Dropout(0.2 / 0.2 / 0.3), _fc.
 *   The fastai head (MODEL_HEAD_FASTAI) is named "head.<i>" with i the index in fastai v1's
 *   create_head nn.Sequential: [0 AdaptiveConcatPool2d, 1 Flatten, 2 BatchNorm1d(2F),
 *   3 Dropout(ps/2), 4 Linear(2F, lin_ftrs), 5 ReLU, 6 BatchNorm1d(lin_ftrs), 7 Dropout(ps),
 *   8 Linear(lin_ftrs, n)].  As fastai's bn_drop_lin, a Dropout whose p is 0 is left out and the
 *   later indices shift down (ps = 0 gives head.2, head.3, head.5, head.6).
 * - Init (net_init_params with opts->seed):  torchvision: convs kaiming-normal fan_out, BN 1/0,
 *   ResNet fc nn.Linear default (uniform +-1/sqrt(fan_in), weight and bias), MobileNetV2
 *   classifier normal(0, 0.01) with zero bias.  fastai head (apply_init(head, kaiming_normal_)
 *   skips batch norms): linear weights kaiming-normal fan_in, biases 0; BatchNorm1d keeps
 *   PyTorch's defaults 1/0 (fastai's 1e-3 BN bias is batchnorm_2d in conv_layer, not the head).
 *   mobilenet_v2_tf: convs kaiming-normal fan_out with zero bias, logits normal(0, 0.01).
 *   efficientnet_lite*: PyTorch's defaults (the package sets none): convs and _fc uniform
 *   +-1/sqrt(fan_in) (_fc's bias too), BN 1/0.
 * - Layer groups (net_set_group; for freezing and discriminative learning rates):
 *     resnet*:        0 = conv1..layer2, 1 = layer3, layer4, 2 = head  (fastai's _resnet_split)
 *     mobilenet_v2*:  0 = features.0..6 (to stride 8), 1 = features.7..18, 2 = head
 *                     (the same cut as ResNet: where the stride-16 stage starts)
 *     efficientnet_lite*: 0 = stem and the stages to stride 8, 1 = the stride-16 stage (k3, 80
 *                     channels x width) to _conv_head, 2 = head
 *   The classifier or fastai head is group 2; HEAD_NONE leaves a body with groups 0 and 1.
 */
#ifndef STYLENET_ZOO_H
#define STYLENET_ZOO_H
#include <stdint.h>
#include <stdio.h>
#include "nn/net.h"

typedef enum {
    MODEL_HEAD_DEFAULT, /* the architecture's own classifier (fc / classifier / Logits conv) */
    MODEL_HEAD_FASTAI,  /* fastai v1 create_head: concat pool, BN, dropout, linear, relu, ... */
    MODEL_HEAD_NONE     /* body only: output is the last feature map [h/32, w/32, features] */
} model_head;

typedef struct {
    int in_h, in_w;     /* input size; <= 0 means 224 */
    model_head head;
    float ps;           /* fastai head dropout: ps before the last linear, ps/2 before the first */
    int lin_ftrs;       /* fastai head hidden width (512) */
    float dropout;      /* the default classifier's dropout; < 0 = the architecture's own (mobilenet_v2
                           0.2, efficientnet_lite0/1 0.2, lite2 0.3) */
    float drop_connect; /* efficientnet_lite: block i's drop-path rate is drop_connect x i / blocks; < 0 = 0.2,
                           0 = no drop-path nodes */
    uint64_t seed;      /* parameter init seed */
} model_opts;

/* the defaults above: 224x224, MODEL_HEAD_DEFAULT, ps 0.5, lin_ftrs 512, dropout and drop_connect
 * -1 (the architecture's own), seed 42 */
model_opts model_default_opts(void);

/* opts NULL = model_default_opts() */
net *model_build(const char *arch, int num_classes, const model_opts *opts);

/* channels of the body's last feature map (512, 512, 2048, 1280 for the rest); -1 with an error if the
 * architecture is unknown */
int model_body_features(const char *arch);
/* efficientnet-lite<variant>'s block count and the input channels of its _conv_head (16/21/21 and
 * 320/320/352); -1 for an unknown variant */
int model_efficientnet_lite_layout(int variant, int *blocks, int *head_in);
/* "resnet18, resnet34, resnet50, mobilenet_v2, mobilenet_v2_tf, efficientnet_lite0, ..." */
const char *model_known_archs(void);

/* appends fastai's head to node x ([h, w, nf]) of m in group 2 and returns its output node
 * (-1 on error); declares fastai's init for its parameters (call net_init_params after) */
int model_fastai_head(net *m, int x, int num_classes, float ps, int lin_ftrs);

/* parameters as PyTorch counts them (sum of p.numel() for p in model.parameters()): every
 * parameter except the BN running statistics */
size_t model_num_params(const net *m);

/* one line per node: index, op, module name, output shape, parameters, group; then totals */
void model_summary(const net *m, FILE *f);
#endif
