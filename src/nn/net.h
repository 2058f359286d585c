/* net.h - a network as a list of nodes in topological order.
 *
 * Contract
 * - Build: net_create() makes node 0, the input [h, w, c] (NHWC per image, see kernels/conv.h).
 *   Each builder call appends one node that reads earlier nodes and returns its index, or -1
 *   with an error (sn_last_error()).  A builder given an input index < 0 returns -1 at once, so
 *   a model function may check only its last call.  The last node built is the output unless
 *   net->out is set.
 * - Names: a node with parameters is named by its PyTorch module path ("layer1.0.conv1"); its
 *   parameters are "<name>.weight", "<name>.bias", "<name>.running_mean", "<name>.running_var"
 *   exactly as in a torchvision state dict, so weights load by name.
 * - Parameters and gradients live in one arena each (net->data, net->grad, same offsets);
 *   net_param()/net_grad() give a parameter's floats.  Conv weights are stored OHWI and
 *   described with PyTorch's OIHW shape; io/ permutes at load and save.  BN running statistics
 *   are "buffers": saved and loaded, never given gradients.
 * - Layer groups: builders put nodes and parameters in net->cur_group (set it with
 *   net_set_group) for freezing and differential learning rates: 0 = early body, 1 = late body,
 *   2 = head, as fastai splits a model.
 * - Run: net_set_batch(n) sizes the activation buffers; net_forward(x, training) computes every
 *   node (training: BN uses batch statistics unless frozen, dropout and drop-path are on); net_backward(dout)
 *   walks the nodes back and ACCUMULATES d loss / d param into net->grad for every parameter
 *   that is not frozen (call net_zero_grad first).  Gradients are not propagated below the first
 *   node that has a trainable parameter upstream of the loss.
 * - Randomness (init, dropout, drop-path) comes from rng.h under net->seed: reproducible for a seed.
 *   A training forward counts net->step up by one; node i's masks in it use the stream
 *   step * 4096 + i (element index for dropout, sample index for drop-path).
 * - Memory: only what backward needs is kept between forward and backward.  The outputs of
 *   convolutions, adds, pools, linears, dropouts, drop-paths, the input, the output node and nodes marked
 *   with net_keep() persist; batch-norm and ReLU/ReLU6 outputs, and a convolution of the network
 *   input (the stem), are "transient": computed into pooled buffers while a consumer needs them
 *   and recomputed from their kept input (with the saved batch statistics, bitwise the same) when
 *   backward needs them.  Activation gradients live in the pool only from their first
 *   contribution to their node's backward.  So a transient node's output is absent after
 *   net_forward: read only kept nodes' outputs (net_node_y).
 * - Fusion plan: which nodes are transient, which passes are fused and which nodes need a
 *   gradient is decided once for the whole graph, when net_set_batch sizes the buffers, and again
 *   by what changes it (net_keep, net_freeze_groups, net_set_act_fusion); net_node_state shows it.
 *   Forward, in this order of decision:
 *     - a transient batch norm whose one consumer is a ReLU/ReLU6 or a residual add is computed
 *       by that consumer in the same pass (batch norm + activation, or + residual);
 *     - a convolution (neither kept nor the output) whose one consumer is a ReLU/ReLU6 applies
 *       the activation in its own pass, and the ReLU's output is kept instead of the
 *       convolution's (transient only if both were): TF MobileNetV2's conv + bias + ReLU6.
 *       net_set_act_fusion(m, false) leaves the ReLU a pass of its own;
 *     - a max pool whose input is a transient ReLU/ReLU6 (one consumer) of such a fused batch
 *       norm computes all three in one pass;
 *     - a network prepared for inference (nn/net_infer.h) adds the forward-only fusions listed there.
 *   Backward:
 *     - a ReLU/ReLU6 whose batch-norm input has one consumer runs both backward passes in one, in
 *       place on its gradient, which becomes the batch norm's input's gradient;
 *     - a depthwise convolution whose input is a kept ReLU/ReLU6 computed with its convolution,
 *       read by nothing else, writes that input's gradient already masked by the activation;
 *     - a ReLU/ReLU6 computed with a dense convolution sums the convolution's bias gradient in
 *       the pass that masks its gradient;
 *     - a max pool of ReLU(batch norm(x)), each read only by the next, with x a pooled output
 *       read only by the batch norm, runs the three backward passes in place over x's buffer.
 */
#ifndef STYLENET_NET_H
#define STYLENET_NET_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kernels/conv.h"
#include "kernels/pool.h"

typedef enum {
    OP_INPUT, OP_CONV, OP_BN, OP_RELU, OP_RELU6, OP_ADD, OP_MAXPOOL, OP_AVGPOOL,
    OP_GAP, OP_CONCATPOOL, OP_FLATTEN, OP_LINEAR, OP_DROPOUT, OP_DROPPATH
} op_kind;

typedef enum {
    INIT_NONE, INIT_ZERO, INIT_ONE,
    INIT_KAIMING_OUT,   /* normal, std = sqrt(2 / fan_out): torchvision's conv init */
    INIT_KAIMING_IN,    /* normal, std = sqrt(2 / fan_in): fastai's head linear init */
    INIT_TORCH_DEFAULT, /* uniform(+-1/sqrt(fan_in)): nn.Linear / nn.Conv2d defaults */
    INIT_NORMAL_001     /* normal, std 0.01: torchvision's MobileNetV2 classifier */
} init_kind;

typedef struct {
    char name[96];  /* "layer1.0.conv1.weight" */
    int ndim;
    int shape[4];   /* PyTorch's shape (conv weight: [O, I/groups, KH, KW]) */
    bool ohwi;      /* stored as [O, KH, KW, I/groups] */
    bool buffer;    /* running statistic: no gradient */
    bool frozen;    /* excluded from gradients and updates */
    int node, group;
    init_kind init;
    size_t off, numel; /* floats into net->data / net->grad */
} param;

typedef struct {
    op_kind op;
    char name[80];      /* module path, "" when the op has no parameters */
    int in0, in1;       /* input nodes (in1 only for OP_ADD), -1 if none */
    int h, w, c;        /* output shape per image */
    int group;
    conv_desc conv;     /* OP_CONV */
    bool same_pad;      /* OP_CONV: TensorFlow 'SAME' padding, recomputed when the input size changes */
    pool_desc pool;     /* OP_MAXPOOL, OP_AVGPOOL */
    int p_w, p_b, p_mean, p_var; /* parameter indices or -1 */
    float eps, momentum;         /* OP_BN */
    float p;                     /* OP_DROPOUT, OP_DROPPATH */
    bool bn_frozen;              /* OP_BN: use running statistics even when training */
    int64_t tracked;             /* OP_BN: batches seen (PyTorch's num_batches_tracked) */
    bool keep;                   /* output persists, addressable after a forward: set by net_keep */
} node;

/* per-node fusion plan and run-time state (buffers, gradients): private to src/nn/ */
struct node_run;

typedef struct {
    float *p;
    size_t cap;                  /* floats */
    bool used;
    bool own;                    /* p is an allocation of its own (arena full); else a piece of the arena */
} net_block;

typedef struct net {
    char arch[64];               /* e.g. "resnet34", set by the model function */
    node *nodes;
    struct node_run *run;        /* [cap_nodes], one per node: see net_internal.h */
    int n_nodes, cap_nodes;
    param *params;
    int n_params, cap_params;
    float *data, *grad;          /* parameter arena and gradient arena */
    size_t n_floats, cap_floats;
    int out;                     /* output node, -1 = last; set before net_set_batch */
    int cur_group;
    int batch;                   /* images of the current forward/backward */
    int cap_batch;               /* images the buffers are sized for (>= batch) */
    uint64_t seed, step;         /* randomness: init and dropout streams */
    bool training;
    net_block *pool;             /* buffers for transient activations and all activation gradients */
    int n_pool, cap_pool;
    float *arena;                /* the pool's address space (reserved, resident only where touched) */
    size_t arena_cap, arena_top; /* floats reserved, floats handed out so far */
    bool shared;                 /* made by net_share: params and data are another net's */
    unsigned long wkey;          /* != 0: parameters frozen by net_freeze_weights (inference) */
    bool act_unfused;            /* net_set_act_fusion(m, false); read-only */
    bool infer_only;             /* made by net_prepare_inference: eval-mode forwards only (nn/net_infer.h) */
    struct net **workers;        /* infer_only: nets sharing this one's parameters, one per thread (net_infer.c) */
    int n_workers;
    /* data parallelism (train/learner_dist.c): net_backward calls grad_ready(ctx, off) after each
     * node's backward, with off the lowest offset from which every gradient in net->grad is final
     * (nodes below never write them), so their sum across processes can start; NULL: not called */
    void (*grad_ready)(void *ctx, size_t off);
    void *grad_ready_ctx;
    int sample0;                 /* the first image's index in the whole batch a process trains a share
                                    of: dropout and drop-path masks are those of that image (0) */
} net;

net *net_create(int h, int w, int c);
void net_free(net *m);
/* a net that reads src's parameters (no copy) with activation buffers of its own, so several
 * threads can run inference (net_forward with training = false) at once; it has no gradients and
 * must not train.  src must outlive it; net_free frees only its own part.  NULL if out of memory */
net *net_share(const net *src);
void net_set_group(net *m, int group);

/* builders: each returns the new node's index or -1 */
/* conv with symmetric padding `pad` on all sides */
int net_conv(net *m, int x, const char *name, int cout, int k, int stride, int pad, int groups, bool bias);
/* conv with TensorFlow 'SAME' padding (asymmetric when needed) */
int net_conv_same(net *m, int x, const char *name, int cout, int k, int stride, int groups, bool bias);
/* conv from a full descriptor (h, w, cin are taken from x; per-side padding as given) */
int net_conv_desc(net *m, int x, const char *name, conv_desc d, bool bias);
int net_bn(net *m, int x, const char *name, float eps, float momentum);   /* PyTorch: 1e-5, 0.1 */
int net_relu(net *m, int x);
int net_relu6(net *m, int x);
int net_add(net *m, int a, int b);
int net_maxpool(net *m, int x, int k, int stride, int pad);
int net_avgpool(net *m, int x, pool_desc d); /* h, w, c taken from x */
int net_gap(net *m, int x);                   /* -> [1, 1, c] */
int net_concatpool(net *m, int x);            /* -> [1, 1, 2c]: [max | avg] */
int net_flatten(net *m, int x);               /* -> [1, 1, h*w*c] in NHWC order */
int net_linear(net *m, int x, const char *name, int out, bool bias); /* x must be [1, 1, in] */
int net_dropout(net *m, int x, float p);
/* stochastic depth (drop-path, "drop connect"): in training each sample's x is zeroed with
 * probability p, else scaled by 1/(1-p); identity in eval.  For a residual branch before its add. */
int net_droppath(net *m, int x, float p);

/* changes the input size (progressive resizing, or inference at another size): every node's
 * shape is recomputed (SAME padding too); parameters are untouched.  -1 with an error, and the
 * net unchanged, if a layer cannot take the new size (e.g. a linear after a spatial flatten). */
int net_set_input_size(net *m, int h, int w);

/* parameters */
float *net_param(net *m, int i);
float *net_grad(net *m, int i);
int net_find_param(const net *m, const char *name);      /* -1 if none */
size_t net_num_trainable(const net *m);                  /* floats that take gradients */
void net_init_params(net *m, uint64_t seed);              /* the init each param declares */
void net_freeze_groups(net *m, int below);                /* freeze groups < below, unfreeze the rest */
void net_freeze_bn(net *m, int below, bool frozen);       /* BN of groups < below: running stats */

/* keeps node i's output addressable after each forward (and writable before net_forward_from),
 * e.g. for a cache of body activations; -1 if out of memory */
int net_keep(net *m, int i);
/* node i's output buffer [cap_batch, h, w, c] after net_keep(m, i) (readable after a forward,
 * writable before net_forward_from); NULL for a node that is not kept or not yet sized */
float *net_node_y(net *m, int i);
/* node i's place in the plan and the state of its buffers, for tests and diagnostics: a mask
 * of NET_NODE_* (0 if there is no node i) */
enum {
    NET_NODE_HOLDS_Y = 1,    /* its output is present (a buffer of its own, or one from the pool) */
    NET_NODE_POOLED_Y = 2,   /* ... in a buffer from the pool */
    NET_NODE_TRANSIENT = 4,  /* plan: held only while a consumer needs it, recomputed for backward */
    NET_NODE_FUSED = 8,      /* plan: computed by its one consumer in that consumer's pass */
    NET_NODE_CONV_ACT = 16,  /* plan: a ReLU/ReLU6 computed in its input convolution's pass */
    NET_NODE_NEEDS_GRAD = 32 /* plan: backward computes d loss / d its output */
};
unsigned net_node_state(const net *m, int i);
/* on (the default): a ReLU/ReLU6 whose input is a convolution read by nothing else is computed in
 * the convolution's pass (see "Fusion plan"); off: in a pass of its own (tests compare the two) */
void net_set_act_fusion(net *m, bool on);
/* Promise that the parameters will not change any more (a model loaded to predict): eval-mode
 * forwards then keep convolution weights in the kernels' layout between calls.  Changing the
 * parameters afterwards is a bug, except through optim_step(), which lifts the promise.  Nets made
 * by net_share() from a frozen net are frozen too. */
void net_freeze_weights(net *m);
/* the algorithm of every convolution (CONV_ALGO_AUTO, the default, CONV_ALGO_DIRECT or CONV_ALGO_WINOGRAD: see conv.h) */
void net_set_conv_algo(net *m, int algo);

/* running */
/* n images per pass: buffers grow when n exceeds what they hold and are kept when it shrinks
 * (a short last batch costs no reallocation); -1 if out of memory */
int net_set_batch(net *m, int n);
/* x[n, h, w, c]; returns the output node's output, or NULL with an error if out of memory or the
 * net is not sized (net_set_batch) */
const float *net_forward(net *m, const float *x, bool training);
/* runs nodes first..output only, reading the outputs of earlier nodes as they are: with node
 * first-1's output (net_node_y) filled from a cache, this trains a head on precomputed body
 * activations.  Every node before first that a node from first on reads must be kept (net_keep)
 * or be the input; NULL with an error if one cannot be read */
const float *net_forward_from(net *m, int first, bool training);
void net_zero_grad(net *m);
/* dout: like the output; -1 with an error if out of memory (the gradients are then incomplete) or
 * the net is not sized */
int net_backward(net *m, const float *dout);
int net_output(const net *m);                             /* output node index */
size_t net_out_size(const net *m);                        /* floats per image of the output */
/* multiply-adds of one forward pass per image */
double net_macs(const net *m);
#endif
