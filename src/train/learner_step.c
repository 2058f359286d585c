/* learner_step.c - one training step of a net (see learner.h, learner_step).  Depends only on
 * nn and the optimiser, so a benchmark links it without the data pipeline. */
#include "train/learner.h"
#include "core/fault.h"

int learner_step(net *m, optim *opt, const float *x, int first, int n, const learner_loss *loss, float *loss_out) {
    if (net_set_batch(m, n) < 0) return -1;
    const float *logits = x ? net_forward(m, x, true) : net_forward_from(m, first, true);
    if (!logits) return -1; /* out of memory for activations */
    *loss_out = loss->fn(loss->ctx, n, logits, loss->dl);
    net_zero_grad(m);
    if (net_backward(m, loss->dl) < 0) return -1;
    sn_fault_point("step"); /* the fault tests' kill -9 during a step (core/fault.h) */
    if (loss->reduce) loss->reduce(loss->ctx);
    optim_step(opt, m);
    return 0;
}
