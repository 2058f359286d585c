/* zoo_internal.h - shared by the model builders in src/models/ (not part of the public API). */
#ifndef STYLENET_ZOO_INTERNAL_H
#define STYLENET_ZOO_INTERNAL_H
#include <stdbool.h>
#include "nn/net.h"
#include "models/zoo.h"

/* declares the init of node nd's weight and bias (if it has them); nd < 0 is passed through */
int zoo_set_init(net *m, int nd, init_kind w, init_kind b);

/* bodies: append to input node x, return the last feature map's node (or -1) */
int zoo_resnet_body(net *m, int x, int depth);
int zoo_mobilenet_v2_body(net *m, int x);
int zoo_mobilenet_v2_tf_body(net *m, int x);
/* variant 0, 1, 2 = efficientnet-lite0/1/2; drop_connect: the stochastic-depth rate (0 = no
 * drop-path nodes) */
int zoo_efficientnet_lite_body(net *m, int x, int variant, float drop_connect);

/* default classifiers, in group 2 */
int zoo_resnet_fc(net *m, int x, int num_classes);
int zoo_mobilenet_v2_classifier(net *m, int x, int num_classes, float dropout);
int zoo_mobilenet_v2_tf_logits(net *m, int x, int num_classes);
int zoo_efficientnet_lite_classifier(net *m, int x, int num_classes, float dropout);
#endif
