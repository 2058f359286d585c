/* head.c - fastai v1's transfer-learning head (create_head / bn_drop_lin), see zoo.h. */
#include <stdio.h>
#include "core/error.h"
#include "models/zoo_internal.h"

int zoo_set_init(net *m, int nd, init_kind w, init_kind b) {
    if (nd < 0) return -1;
    const node *d = &m->nodes[nd];
    if (d->p_w >= 0) m->params[d->p_w].init = w;
    if (d->p_b >= 0) m->params[d->p_b].init = b;
    return nd;
}

/* fastai: layers = [AdaptiveConcatPool2d(), Flatten()]; then for (ni, no, p, actn) in
 * [(2F, lin_ftrs, ps/2, ReLU), (lin_ftrs, n, ps, None)]: BatchNorm1d(ni), Dropout(p) if p != 0,
 * Linear(ni, no), actn.  Indices count every module, so they name the parameters. */
int model_fastai_head(net *m, int x, int num_classes, float ps, int lin_ftrs) {
    if (!m || x < 0) return -1;
    if (num_classes <= 0) return sn_error("fastai head: %d classes", num_classes);
    if (lin_ftrs <= 0) return sn_error("fastai head: %d hidden features", lin_ftrs);
    if (!(ps >= 0 && ps < 1)) return sn_error("fastai head: ps = %g, expected 0 <= ps < 1", ps);
    net_set_group(m, 2);
    int idx = 0;
    char name[64];
    x = net_concatpool(m, x); /* head.0: [max | avg], as AdaptiveConcatPool2d */
    idx++;
    x = net_flatten(m, x);    /* head.1 */
    idx++;
    const int outs[2] = {lin_ftrs, num_classes};
    const float ps_[2] = {ps / 2, ps};
    for (int l = 0; l < 2; l++) {
        snprintf(name, sizeof name, "head.%d", idx++);
        x = net_bn(m, x, name, 1e-5f, 0.1f); /* BatchNorm1d defaults; init 1 / 0 */
        if (ps_[l] != 0) {
            x = net_dropout(m, x, ps_[l]);
            idx++;
        }
        snprintf(name, sizeof name, "head.%d", idx++);
        x = zoo_set_init(m, net_linear(m, x, name, outs[l], true), INIT_KAIMING_IN, INIT_ZERO);
        if (l == 0) {
            x = net_relu(m, x);
            idx++;
        }
    }
    if (x < 0) return sn_error_prefix("fastai head");
    return x;
}
