/* optim.h - optimisers over a net's parameter arena: SGD with momentum, Adam, AdamW.
 *
 * Contract
 * - One optimiser per net; its state (momentum / first and second moments) lives in arenas with
 *   the net's parameter offsets.  optim_step() updates every parameter that is neither a buffer
 *   nor frozen, using its layer group's learning rate lr[group] (differential learning rates:
 *   e.g. lr/9, lr/3, lr for groups 0, 1, 2) and the gradients in net->grad.
 * - Semantics are PyTorch's (torch.optim.SGD / Adam / AdamW), checked against it in tests:
 *     SGD:   g += wd*p; buf = momentum*buf + g (buf = g at the first step); p -= lr*buf
 *     Adam:  g += wd*p (L2); m = b1*m + (1-b1) g; v = b2*v + (1-b2) g^2;
 *            p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *     AdamW: p *= 1 - lr*wd (decoupled weight decay, fastai's "true_wd"); then Adam without L2.
 *   t counts steps per parameter tensor (a tensor frozen for a while resumes its own count, as
 *   PyTorch's per-parameter state does).
 * - bn_wd = false exempts batch-norm weights and biases, and all biases, from weight decay
 *   (fastai's bn_wd=False); default true as fastai v1.
 * - beta1 (and SGD momentum) may be changed between steps (optim_set_momentum: one-cycle
 *   schedules momentum).
 * - State: optim_copy_state() copies the moments and step counts between two optimisers of one
 *   net (optim_clone() makes the copy to restore later); optim_add_to_writer() / optim_load_st()
 *   (optim_state.c) store them in a safetensors file as tensors optim.m.<param>, optim.v.<param>
 *   (not for SGD) and optim.t, so a checkpoint resumes the very same updates.
 * - Deterministic; parallel over parameters (OpenMP).
 */
#ifndef STYLENET_OPTIM_H
#define STYLENET_OPTIM_H
#include <stdbool.h>
#include <stdint.h>
#include "io/safetensors.h"
#include "nn/net.h"

typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } optim_kind;

#define OPTIM_MAX_GROUPS 8

typedef struct {
    optim_kind kind;
    float lr[OPTIM_MAX_GROUPS]; /* per layer group */
    float momentum;             /* SGD momentum, or Adam beta1 */
    float beta2, eps;
    float wd;
    bool bn_wd;
    /* state */
    float *m, *v;               /* same offsets as net->data */
    int64_t *t;                 /* steps taken, per parameter */
    size_t n_floats;
    int n_params;
} optim;

/* defaults: momentum / beta1 0.9, beta2 0.99 (fastai v1), eps 1e-8 (PyTorch), bn_wd true */
optim *optim_create(const net *m, optim_kind kind, float lr, float wd);
void optim_free(optim *o);
void optim_set_lr(optim *o, float lr);                     /* every group */
void optim_set_lrs(optim *o, const float *lrs, int n);     /* group i gets lrs[i] */
void optim_set_momentum(optim *o, float momentum);         /* SGD momentum, or Adam beta1 */
void optim_set_bn_wd(optim *o, bool bn_wd);                /* false: no decay of BN and biases */
void optim_step(optim *o, net *m);
/* a copy of o, state included; NULL (sn_error) when out of memory */
optim *optim_clone(const optim *o);
/* dst's moments and step counts become src's (both made for the same net) */
void optim_copy_state(optim *dst, const optim *src);
/* optim_state.c: o's state for net m into w (tensors optim.m.*, optim.v.*, optim.t); -1 (sn_error)
 * on failure */
int optim_add_to_writer(const optim *o, const net *m, st_writer *w);
/* reads that state back from f into o; -1 with an error naming f's file and the missing or
 * mis-sized tensor */
int optim_load_st(optim *o, const net *m, const st_file *f);
const char *optim_name(optim_kind k);
int optim_parse(const char *name, optim_kind *k);          /* "sgd" | "adam" | "adamw" */
#endif
