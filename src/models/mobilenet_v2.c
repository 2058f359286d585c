/* mobilenet_v2.c - MobileNetV2 1.0 in two layouts (see zoo.h):
 *   torchvision 0.14 (conv + BatchNorm, symmetric padding, names features.N.conv.M), and
 *   TF-slim as in mobilenet_v2_1.0_224_quant.tflite (BN folded into conv biases, TensorFlow 'SAME'
 *   padding, convolutions in the file's operator order, names MobilenetV2/expanded_conv_N/...).
 * Both: stem 3x3/2 conv to 32, 17 inverted-residual blocks (expand 1x1 + ReLU6 unless t == 1,
 * depthwise 3x3 + ReLU6, linear 1x1 projection, residual add when stride 1 and cin == cout), a 1x1
 * conv to 1280 + ReLU6, then the classifier. */
#include <stdio.h>
#include "core/error.h"
#include "models/zoo_internal.h"

/* the inverted-residual settings of both papers' code: expansion t, channels c, repeats n, stride s */
static const int settings[7][4] = {
    {1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
};
#define STEM_CH 32
#define LAST_CH 1280
#define GROUP1_FROM 7 /* features.7 (expanded_conv_6): the first stride-16 block */

/* ---------------------------------------------------------------- torchvision */

/* Conv2dNormActivation: <name>.0 conv (no bias), <name>.1 BN, ReLU6 */
static int tv_conv_bn_relu6(net *m, int x, const char *name, int cout, int k, int stride, int groups) {
    char cn[80], bn[80];
    snprintf(cn, sizeof cn, "%s.0", name);
    snprintf(bn, sizeof bn, "%s.1", name);
    x = zoo_set_init(m, net_conv(m, x, cn, cout, k, stride, (k - 1) / 2, groups, false), INIT_KAIMING_OUT, INIT_ZERO);
    x = net_bn(m, x, bn, 1e-5f, 0.1f);
    return net_relu6(m, x);
}

int zoo_mobilenet_v2_body(net *m, int x) {
    net_set_group(m, 0);
    x = tv_conv_bn_relu6(m, x, "features.0", STEM_CH, 3, 2, 1);
    int f = 1, cin = STEM_CH;
    for (int s = 0; s < 7; s++) {
        for (int r = 0; r < settings[s][2]; r++, f++) {
            if (f == GROUP1_FROM) net_set_group(m, 1);
            const int t = settings[s][0], cout = settings[s][1], stride = r == 0 ? settings[s][3] : 1;
            const int hidden = cin * t;
            char name[64];
            int j = 0, y = x;
            if (t != 1) {
                snprintf(name, sizeof name, "features.%d.conv.%d", f, j++);
                y = tv_conv_bn_relu6(m, y, name, hidden, 1, 1, 1);
            }
            snprintf(name, sizeof name, "features.%d.conv.%d", f, j++);
            y = tv_conv_bn_relu6(m, y, name, hidden, 3, stride, hidden);
            snprintf(name, sizeof name, "features.%d.conv.%d", f, j++);
            y = zoo_set_init(m, net_conv(m, y, name, cout, 1, 1, 0, 1, false), INIT_KAIMING_OUT, INIT_ZERO);
            snprintf(name, sizeof name, "features.%d.conv.%d", f, j++);
            y = net_bn(m, y, name, 1e-5f, 0.1f);
            x = (stride == 1 && cin == cout) ? net_add(m, x, y) : y;
            cin = cout;
        }
    }
    return tv_conv_bn_relu6(m, x, "features.18", LAST_CH, 1, 1, 1);
}

/* adaptive_avg_pool2d(1), flatten, classifier = Sequential(Dropout(p), Linear(1280, n)) */
int zoo_mobilenet_v2_classifier(net *m, int x, int num_classes, float dropout) {
    net_set_group(m, 2);
    x = net_gap(m, x);
    x = net_dropout(m, x, dropout);
    return zoo_set_init(m, net_linear(m, x, "classifier.1", num_classes, true), INIT_NORMAL_001, INIT_ZERO);
}

/* ---------------------------------------------------------------- TF-slim (folded) */

static int tf_conv(net *m, int x, const char *scope, const char *what, int cout, int k, int stride,
                   int groups, bool relu6) {
    char name[80];
    snprintf(name, sizeof name, "MobilenetV2/%s%s%s", scope, what[0] ? "/" : "", what);
    x = zoo_set_init(m, net_conv_same(m, x, name, cout, k, stride, groups, true), INIT_KAIMING_OUT, INIT_ZERO);
    return relu6 ? net_relu6(m, x) : x;
}

int zoo_mobilenet_v2_tf_body(net *m, int x) {
    net_set_group(m, 0);
    x = tf_conv(m, x, "Conv", "", STEM_CH, 3, 2, 1, true);
    int b = 0, cin = STEM_CH;
    for (int s = 0; s < 7; s++) {
        for (int r = 0; r < settings[s][2]; r++, b++) {
            if (b + 1 == GROUP1_FROM) net_set_group(m, 1);
            const int t = settings[s][0], cout = settings[s][1], stride = r == 0 ? settings[s][3] : 1;
            const int hidden = cin * t;
            char scope[40];
            if (b == 0) snprintf(scope, sizeof scope, "expanded_conv");
            else snprintf(scope, sizeof scope, "expanded_conv_%d", b);
            int y = x;
            if (t != 1) y = tf_conv(m, y, scope, "expand", hidden, 1, 1, 1, true);
            y = tf_conv(m, y, scope, "depthwise", hidden, 3, stride, hidden, true);
            y = tf_conv(m, y, scope, "project", cout, 1, 1, 1, false);
            x = (stride == 1 && cin == cout) ? net_add(m, y, x) : y;
            cin = cout;
        }
    }
    return tf_conv(m, x, "Conv_1", "", LAST_CH, 1, 1, 1, true);
}

/* Logits: AvgPool (7x7 VALID in the file = global at 224x224) then Conv2d_1c_1x1 with bias */
int zoo_mobilenet_v2_tf_logits(net *m, int x, int num_classes) {
    net_set_group(m, 2);
    x = net_gap(m, x);
    return zoo_set_init(m, net_conv(m, x, "MobilenetV2/Logits/Conv2d_1c_1x1", num_classes, 1, 1, 0, 1, true),
                        INIT_NORMAL_001, INIT_ZERO);
}
