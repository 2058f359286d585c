/* resnet.c - torchvision's ResNet-18/34 (BasicBlock) and ResNet-50 (Bottleneck, v1.5: the stride
 * is on the 3x3 conv2), with torchvision's module names; see zoo.h. */
#include <stdio.h>
#include "core/error.h"
#include "models/zoo_internal.h"

/* conv (no bias, kaiming fan_out) + BN (eps 1e-5, momentum 0.1) named <prefix>.conv<i> / .bn<i> */
static int conv_bn(net *m, int x, const char *prefix, int i, int cout, int k, int stride, int pad) {
    char cn[80], bn[80];
    snprintf(cn, sizeof cn, "%s.conv%d", prefix, i);
    snprintf(bn, sizeof bn, "%s.bn%d", prefix, i);
    x = zoo_set_init(m, net_conv(m, x, cn, cout, k, stride, pad, 1, false), INIT_KAIMING_OUT, INIT_ZERO);
    return net_bn(m, x, bn, 1e-5f, 0.1f);
}

/* identity, or downsample = Sequential(conv1x1(stride), BN) when the shape changes */
static int shortcut(net *m, int x, const char *prefix, int cout, int stride) {
    if (x < 0) return -1;
    if (stride == 1 && m->nodes[x].c == cout) return x;
    char cn[80], bn[80];
    snprintf(cn, sizeof cn, "%s.downsample.0", prefix);
    snprintf(bn, sizeof bn, "%s.downsample.1", prefix);
    int s = zoo_set_init(m, net_conv(m, x, cn, cout, 1, stride, 0, 1, false), INIT_KAIMING_OUT, INIT_ZERO);
    return net_bn(m, s, bn, 1e-5f, 0.1f);
}

static int basic_block(net *m, int x, const char *prefix, int planes, int stride) {
    int y = conv_bn(m, x, prefix, 1, planes, 3, stride, 1);
    y = net_relu(m, y);
    y = conv_bn(m, y, prefix, 2, planes, 3, 1, 1);
    int s = shortcut(m, x, prefix, planes, stride); /* created after the main path: state-dict order */
    return net_relu(m, net_add(m, y, s));
}

static int bottleneck(net *m, int x, const char *prefix, int planes, int stride) {
    int y = net_relu(m, conv_bn(m, x, prefix, 1, planes, 1, 1, 0));
    y = net_relu(m, conv_bn(m, y, prefix, 2, planes, 3, stride, 1));
    y = conv_bn(m, y, prefix, 3, planes * 4, 1, 1, 0);
    int s = shortcut(m, x, prefix, planes * 4, stride);
    return net_relu(m, net_add(m, y, s));
}

int zoo_resnet_body(net *m, int x, int depth) {
    static const int b18[4] = {2, 2, 2, 2}, b34[4] = {3, 4, 6, 3};
    const int *blocks = depth == 18 ? b18 : b34; /* resnet50 has resnet34's block counts */
    const bool bottle = depth == 50;
    if (depth != 18 && depth != 34 && depth != 50) return sn_error("resnet: depth %d not built", depth);
    net_set_group(m, 0);
    x = zoo_set_init(m, net_conv(m, x, "conv1", 64, 7, 2, 3, 1, false), INIT_KAIMING_OUT, INIT_ZERO);
    x = net_bn(m, x, "bn1", 1e-5f, 0.1f);
    x = net_relu(m, x);
    x = net_maxpool(m, x, 3, 2, 1);
    for (int l = 0; l < 4; l++) {
        if (l == 2) net_set_group(m, 1); /* fastai _resnet_split: body[6] = layer3 starts group 1 */
        const int planes = 64 << l;
        for (int b = 0; b < blocks[l]; b++) {
            char prefix[40];
            snprintf(prefix, sizeof prefix, "layer%d.%d", l + 1, b);
            const int stride = (b == 0 && l > 0) ? 2 : 1;
            x = bottle ? bottleneck(m, x, prefix, planes, stride) : basic_block(m, x, prefix, planes, stride);
        }
    }
    return x;
}

/* avgpool (AdaptiveAvgPool2d(1)) + flatten + fc, nn.Linear's default init */
int zoo_resnet_fc(net *m, int x, int num_classes) {
    net_set_group(m, 2);
    x = net_gap(m, x);
    return zoo_set_init(m, net_linear(m, x, "fc", num_classes, true), INIT_TORCH_DEFAULT, INIT_TORCH_DEFAULT);
}
