/* learner_dist.c - data-parallel training of a learner over the processes of dist.h (see
 * learner.h, "Data parallelism").  Each process trains on its share of every batch; the
 * gradients are summed across processes in buckets that start while backward is still running
 * (net->grad_ready), so that every process takes the same optimiser step. */
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "dist/dist.h"
#include "kernels/batchnorm.h"
#include "train/learner_internal.h"

/* floats per bucket: a sum starts once this many gradients at the end of the arena are final */
enum { BUCKET_FLOATS = 1 << 20, MAX_BUCKETS = 1024 };

struct learner_dist {
    size_t lo;                  /* the lowest trainable gradient's offset (below it: frozen) */
    size_t launched;            /* gradients from here to the arena's end are being summed */
    int n_req;
    dist_req req[MAX_BUCKETS];
    bool done[MAX_BUCKETS];
    float *bn;                  /* the BN running statistics, gathered to be averaged */
    size_t n_bn;
    double comm_bytes;          /* bytes of gradients summed in the current step */
    double wait_s, bytes;       /* since learner_dist_epoch_stats: waits for sums after backward, bytes */
    long steps;
};

/* the lowest offset of a parameter that takes gradients (n_floats when none does) */
static size_t lowest_trainable(const net *m) {
    size_t lo = m->n_floats;
    for (int p = 0; p < m->n_params; p++)
        if (!m->params[p].frozen && !m->params[p].buffer && m->params[p].off < lo) lo = m->params[p].off;
    return lo;
}

/* starts the sum of grad[from, d->launched) */
static void launch(learner *l, size_t from) {
    struct learner_dist *d = l->dist;
    if (d->launched <= from) return;
    if (d->n_req == MAX_BUCKETS) dist_abort(1, "gradient sums: too many buckets");
    d->req[d->n_req] = dist_iallreduce_sum_f(l->net->grad + from, d->launched - from);
    d->done[d->n_req++] = false;
    d->comm_bytes += (double)(d->launched - from) * sizeof(float);
    d->launched = from;
}

/* net_backward's hook: gradients from `off` on are final; a full bucket starts, and every
 * pending sum is given progress (MPI moves non-blocking collectives only inside its calls) */
static void grad_ready(void *ctx, size_t off) {
    learner *l = ctx;
    struct learner_dist *d = l->dist;
    if (off < d->lo) off = d->lo;
    if (d->launched - off >= BUCKET_FLOATS) launch(l, off);
    for (int k = 0; k < d->n_req; k++)
        if (!d->done[k]) d->done[k] = dist_test(d->req[k]);
}

int learner_dist_setup(learner *l) {
    if (!dist_active()) return 0;
    const int N = dist_size();
    if (l->o.batch < N) return sn_error("a batch of %d images cannot be shared by %d processes", l->o.batch, N);
    if (!(l->dist = calloc(1, sizeof *l->dist))) return sn_error("out of memory");
    l->net->grad_ready = grad_ready;
    l->net->grad_ready_ctx = l;
    if (dist_rank() != 0) l->o.events = NULL; /* rank 0 alone reports */
    /* every process starts from rank 0's weights and statistics */
    dist_bcast(l->net->data, l->net->n_floats * sizeof(float), 0);
    if (l->o.sync_bn) batchnorm_set_sync(dist_allreduce_sum_d);
    return 0;
}

void learner_dist_free(learner *l) {
    if (!l->dist) return;
    if (l->net->grad_ready_ctx == l) l->net->grad_ready = NULL;
    if (l->o.sync_bn) batchnorm_set_sync(NULL);
    free(l->dist->bn);
    free(l->dist);
    l->dist = NULL;
}

void learner_dist_share(const learner *l, int n_all, int *lo, int *n) {
    if (l->dist) dist_share(n_all, lo, n);
    else {
        *lo = 0;
        *n = n_all;
    }
}

void learner_dist_begin(learner *l, int n, int n_all) {
    if (!l->dist) return;
    struct learner_dist *d = l->dist;
    d->lo = lowest_trainable(l->net);
    d->launched = l->net->n_floats;
    d->n_req = 0;
    d->comm_bytes = 0;
    int lo, cnt;
    dist_share(n_all, &lo, &cnt);
    if (cnt != n) dist_abort(1, "a training step on a share that is not the process's own");
    l->net->sample0 = lo;
}

/* the loss's gradient of this process's n of n_all rows, scaled so that the sum over the
 * processes is the gradient of the whole batch's mean loss */
void learner_dist_scale(learner *l, int n, int n_all, float *dl) {
    if (!l->dist) return;
    const float s = (float)n / (float)n_all;
    for (size_t k = 0; k < (size_t)n * l->C; k++) dl[k] *= s;
}

void learner_dist_reduce(void *ctx) {
    learner *l = ctx;
    struct learner_dist *d = l->dist;
    if (!d) return;
    double t0 = learner_now();
    launch(l, d->lo);
    for (int k = 0; k < d->n_req; k++)
        if (!d->done[k]) dist_wait(d->req[k]);
    d->wait_s += learner_now() - t0;
    d->bytes += d->comm_bytes;
    d->steps++;
}

double learner_dist_loss(learner *l, int n, int n_all, double loss) {
    if (!l->dist) return loss;
    double v = loss * n / n_all;
    dist_allreduce_sum_d(&v, 1);
    return v;
}

/* the running statistics (mean, then variance) of every batch norm that trains with batch
 * statistics, copied into buf (NULL: only counted) or, back, from buf scaled by `scale`; the count */
static size_t bn_buffers(net *m, float *buf, bool back, float scale) {
    size_t o = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        const node *d = &m->nodes[i];
        if (d->op != OP_BN || d->bn_frozen) continue; /* frozen statistics are the same everywhere */
        const int ps[2] = {d->p_mean, d->p_var};
        for (int k = 0; k < 2; k++) {
            if (ps[k] < 0) continue;
            float *v = net_param(m, ps[k]);
            const size_t n = m->params[ps[k]].numel;
            if (buf && back)
                for (size_t j = 0; j < n; j++) v[j] = buf[o + j] * scale;
            else if (buf)
                memcpy(buf + o, v, sizeof(float) * n);
            o += n;
        }
    }
    return o;
}

int learner_dist_average_bn(learner *l) {
    if (!l->dist || l->o.sync_bn) return 0; /* with synchronised statistics they agree already */
    struct learner_dist *d = l->dist;
    const size_t n = bn_buffers(l->net, NULL, false, 1);
    if (n == 0) return 0;
    if (n > d->n_bn) {
        free(d->bn);
        if (!(d->bn = malloc(sizeof(float) * n))) return sn_error("out of memory");
        d->n_bn = n;
    }
    bn_buffers(l->net, d->bn, false, 1);
    dist_allreduce_sum_f(d->bn, n);
    bn_buffers(l->net, d->bn, true, 1.0f / (float)dist_size());
    return 0;
}

void learner_dist_sum(const learner *l, float *buf, size_t n) {
    if (l->dist) dist_allreduce_sum_f(buf, n);
}

void learner_dist_sum_d(const learner *l, double *buf, size_t n) {
    if (l->dist) dist_allreduce_sum_d(buf, n);
}

bool learner_writes(const learner *l) { return !l->dist || dist_rank() == 0; }

int learner_dist_epoch_stats(learner *l, double *bytes, double *wait_s) {
    struct learner_dist *d = l->dist;
    if (!d || d->steps == 0) return 0;
    *bytes = d->bytes / d->steps;
    *wait_s = d->wait_s / d->steps;
    d->bytes = d->wait_s = 0;
    d->steps = 0;
    return dist_size();
}
