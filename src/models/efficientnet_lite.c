/* efficientnet_lite.c - EfficientNet-Lite0/1/2 (Tan & Le 2019, the "lite" variant: no
 * squeeze-excitation, ReLU6, stem and head not scaled) with the module names of the PyPI package
 * efficientnet-lite-pytorch 0.1.0 (its model.py / utils.py): a state dict with the package's keys
 * loads by name (io/state.h); see zoo.h.
 *   _conv_stem (3x3/2, 32) -> _bn0 -> ReLU6;
 *   _blocks.<i>: [_expand_conv 1x1 -> _bn0 -> ReLU6] -> _depthwise_conv kxk/s -> _bn1 -> ReLU6 ->
 *                _project_conv 1x1 -> _bn2, plus the block input when stride 1 and in == out, the
 *                branch then through drop-path (rate drop_connect x i / blocks, training only);
 *   _conv_head (1x1, 1280) -> _bn1 -> ReLU6; classifier: global average pool, dropout, _fc.
 * Every convolution has TensorFlow 'SAME' padding (asymmetric on stride 2), no bias, and PyTorch's
 * default init (uniform +-1/sqrt(fan_in)); batch norms eps 1e-3, momentum 0.01 (TF's 0.99). */
#include <math.h>
#include <stdio.h>
#include "core/error.h"
#include "models/zoo_internal.h"

/* the package's blocks_args for lite: repeats, kernel, stride, expand ratio, input and output filters */
static const int stages[7][6] = {
    {1, 3, 1, 1, 32, 16},   {2, 3, 2, 6, 16, 24},   {2, 5, 2, 6, 24, 40},  {3, 3, 2, 6, 40, 80},
    {3, 5, 1, 6, 80, 112}, {4, 5, 2, 6, 112, 192}, {1, 3, 1, 6, 192, 320},
};
#define STEM_CH 32
#define HEAD_CH 1280
#define GROUP1_STAGE 3 /* the first stride-16 stage: group 1 from here (as MobileNetV2's cut) */
#define BN_EPS 1e-3f
#define BN_MOMENTUM 0.01f

/* (width, depth) coefficients of efficientnet-lite0/1/2 */
static const double coeffs[3][2] = {{1.0, 1.0}, {1.0, 1.1}, {1.1, 1.2}};

/* utils.round_filters: filters x width to a multiple of 8, never more than 10% below */
static int round_filters(int filters, double width) {
    const double f = filters * width;
    int nf = (int)(f + 4) / 8 * 8;
    if (nf < 8) nf = 8;
    if (nf < 0.9 * f) nf += 8;
    return nf;
}

/* utils.round_repeats: ceil(depth x repeats) */
static int round_repeats(int repeats, double depth) { return (int)ceil(depth * repeats); }

/* a SAME-padded convolution without bias named <prefix>.<what>, PyTorch's default init */
static int conv(net *m, int x, const char *prefix, const char *what, int cout, int k, int stride, int groups) {
    char name[80];
    snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", what);
    return zoo_set_init(m, net_conv_same(m, x, name, cout, k, stride, groups, false), INIT_TORCH_DEFAULT, INIT_ZERO);
}

static int bn(net *m, int x, const char *prefix, const char *what) {
    char name[80];
    snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", what);
    return net_bn(m, x, name, BN_EPS, BN_MOMENTUM);
}

/* MBConvBlock _blocks.<b>: expand (when t != 1), depthwise, project; residual with drop-path */
static int mbconv(net *m, int x, int b, int cin, int cout, int k, int stride, int t, float drop) {
    char p[40];
    snprintf(p, sizeof p, "_blocks.%d", b);
    const int hidden = cin * t;
    int y = x;
    if (t != 1) y = net_relu6(m, bn(m, conv(m, y, p, "_expand_conv", hidden, 1, 1, 1), p, "_bn0"));
    y = net_relu6(m, bn(m, conv(m, y, p, "_depthwise_conv", hidden, k, stride, hidden), p, "_bn1"));
    y = bn(m, conv(m, y, p, "_project_conv", cout, 1, 1, 1), p, "_bn2");
    if (stride != 1 || cin != cout) return y;
    if (drop > 0) y = net_droppath(m, y, drop);
    return net_add(m, x, y);
}

int model_efficientnet_lite_layout(int variant, int *blocks, int *head_in) {
    if (variant < 0 || variant > 2) return -1;
    const double width = coeffs[variant][0], depth = coeffs[variant][1];
    *blocks = 0;
    for (int s = 0; s < 7; s++) *blocks += (s == 0 || s == 6) ? stages[s][0] : round_repeats(stages[s][0], depth);
    *head_in = round_filters(stages[6][5], width);
    return 0;
}

int zoo_efficientnet_lite_body(net *m, int x, int variant, float drop_connect) {
    if (variant < 0 || variant > 2) return sn_error("efficientnet-lite%d not built", variant);
    if (!(drop_connect >= 0 && drop_connect < 1))
        return sn_error("efficientnet-lite: drop connect rate %g, expected 0 <= rate < 1", drop_connect);
    const double width = coeffs[variant][0], depth = coeffs[variant][1];
    int reps[7], blocks = 0;
    for (int s = 0; s < 7; s++) { /* fix_head_stem: the first and last stage are not repeated more */
        reps[s] = (s == 0 || s == 6) ? stages[s][0] : round_repeats(stages[s][0], depth);
        blocks += reps[s];
    }
    net_set_group(m, 0);
    x = net_relu6(m, bn(m, conv(m, x, "", "_conv_stem", STEM_CH, 3, 2, 1), "", "_bn0"));
    int b = 0;
    for (int s = 0; s < 7; s++) {
        if (s == GROUP1_STAGE) net_set_group(m, 1);
        const int cout = round_filters(stages[s][5], width);
        int cin = s == 0 ? STEM_CH : round_filters(stages[s][4], width);
        for (int r = 0; r < reps[s]; r++, b++) {
            /* the package: drop_connect_rate * (float(idx) / len(self._blocks)) */
            const float drop = (float)(drop_connect * ((double)b / blocks));
            x = mbconv(m, x, b, cin, cout, stages[s][1], r == 0 ? stages[s][2] : 1, stages[s][3], drop);
            cin = cout;
        }
    }
    return net_relu6(m, bn(m, conv(m, x, "", "_conv_head", HEAD_CH, 1, 1, 1), "", "_bn1"));
}

/* _avg_pooling (AdaptiveAvgPool2d(1)), flatten, _dropout, _fc (nn.Linear's default init) */
int zoo_efficientnet_lite_classifier(net *m, int x, int num_classes, float dropout) {
    net_set_group(m, 2);
    x = net_gap(m, x);
    x = net_dropout(m, x, dropout);
    return zoo_set_init(m, net_linear(m, x, "_fc", num_classes, true), INIT_TORCH_DEFAULT, INIT_TORCH_DEFAULT);
}
