/* model_proof.h - shared by tests/models/test_*.c (static inline functions): whole-network
 * comparison of a zoo model against the PyTorch reference data written by
 * tools/fixtures_models.py (see its docstring for the file contents and layouts).
 *
 * The reference is PyTorch's pass in float64 (rounded to float32 once), so the error measured is
 * ours alone.  Tolerances, per tensor, max |ours - ref| <= max(A, 4 x f32err) where f32err is
 * PyTorch's own float32 error on that tensor (max over its plain pass and two passes with 1e-7
 * relative input noise, stored by the oracle):
 *   logits (eval and train)     A = 1e-4 x max|ref|
 *   loss                        A = 1e-5 x |ref|
 *   running statistics after    A = 1e-4 x max|ref|
 *   gradients                   A = 1e-3 x max|ref| + 1e-5 x the largest gradient of the model
 *                               (the floor is for tensors whose exact gradient is ~0, e.g. a BN
 *                               bias feeding a conv + train-mode BN, where only noise is left)
 * The 4 x f32err branch only matters where float32 noise flips a ReLU / max-pool decision on a
 * batch of 2 (resnet50's fixture: no seed without such flips was found; PyTorch's own float32
 * gradients differ there by up to ~10% from float64); everywhere else A is the binding limit.
 * The measured worst errors are printed as "# " notes.
 *
 * Each check runs twice: with every convolution on a direct algorithm (CONV_ALGO_DIRECT: the same
 * sums as PyTorch's, the proof proper), then with every 3x3 stride-1 layer that oneDNN can run on
 * its Winograd F(4x4,3x3) on it (CONV_ALGO_WINOGRAD; by default stylenet does so on large enough
 * batches), whose rounding is a few times a direct sum's (tests/kernels/test_conv.c): there the
 * f32err factor is PROOF_K_WINOGRAD instead of 4.  On a
 * well-conditioned net that changes nothing (A binds); on resnet34 + fastai head in train mode
 * with a batch of 2, where PyTorch's own float32 gradients are off by ~0.5% of their scale, the
 * Winograd rounding is amplified to ~8% in layer2's weight gradients (measured ~16 x f32err).
 */
#ifndef STYLENET_TEST_MODEL_PROOF_H
#define STYLENET_TEST_MODEL_PROOF_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../common/check.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "io/state.h"
#include "kernels/conv.h"
#include "kernels/loss.h"
#include "models/zoo.h"
#include "nn/net.h"

#define PROOF_RTOL_LOGITS 1e-4f
#define PROOF_RTOL_LOSS 1e-5f
#define PROOF_RTOL_STATS 1e-4f
#define PROOF_RTOL_GRAD 1e-3f
#define PROOF_GRAD_FLOOR 1e-5f
#define PROOF_K_TORCH 4.0
#define PROOF_K_WINOGRAD 32.0

/* the f32err factor of the pass being checked (PROOF_K_TORCH, or PROOF_K_WINOGRAD) */
static double proof_k_torch = PROOF_K_TORCH;

static inline double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline st_file *open_fixture(const char *name) {
    st_file *f = st_open(fixture_path(name));
    if (!f) check(false, "open fixture %s: %s (run tools/make_fixtures.py)", name, sn_last_error());
    return f;
}

/* the named tensor as floats (malloc'd), its element count in *n; NULL after a failed check */
static inline float *fixture_f32(st_file *f, const char *name, size_t *n) {
    const st_tensor *t = st_find(f, name);
    if (!t) {
        check(false, "%s: tensor '%s' present", st_filename(f), name);
        return NULL;
    }
    float *v = malloc((t->numel ? t->numel : 1) * sizeof(float));
    if (!v || st_read_f32(f, t, v, t->numel) < 0) {
        check(false, "%s: read '%s': %s", st_filename(f), name, sn_last_error());
        free(v);
        return NULL;
    }
    if (n) *n = t->numel;
    return v;
}

static inline bool is_tracked_counter(const char *name) {
    const char *s = "num_batches_tracked";
    size_t l = strlen(name), k = strlen(s);
    return l >= k && !strcmp(name + l - k, s);
}

/* the net's parameter names equal the state file's keys (PyTorch's num_batches_tracked counters,
 * which stylenet keeps per node rather than as parameters, aside); shapes equal too */
static inline bool check_names(const net *m, st_file *f, const char *what) {
    int missing = 0, extra = 0, badshape = 0;
    char first[256] = "";
    for (int i = 0; i < m->n_params; i++) {
        const param *p = &m->params[i];
        const st_tensor *t = st_find(f, p->name);
        if (!t) {
            if (!missing++ && !first[0]) snprintf(first, sizeof first, "ours but not torch's: %s", p->name);
            continue;
        }
        bool same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same && !badshape++ && !first[0]) snprintf(first, sizeof first, "shape differs: %s", p->name);
    }
    size_t keys = 0;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_tensor_at(f, i);
        if (is_tracked_counter(t->name)) continue;
        keys++;
        if (net_find_param(m, t->name) < 0 && !extra++ && !first[0])
            snprintf(first, sizeof first, "torch's but not ours: %s", t->name);
    }
    return check(!missing && !extra && !badshape, "%s: %d parameter names and shapes equal PyTorch's state dict "
                 "(%zu keys besides num_batches_tracked; %d missing, %d extra, %d shapes differ) %s",
                 what, m->n_params, keys, missing, extra, badshape, first);
}

typedef struct {
    st_file *ref;
    int n, classes;
    float *x;
    int *target;
} proof_io;

static inline bool proof_open(proof_io *io, const char *tag, int classes) {
    char name[128];
    snprintf(name, sizeof name, "models_%s_ref.safetensors", tag);
    memset(io, 0, sizeof *io);
    io->ref = open_fixture(name);
    if (!io->ref) return false;
    size_t nx, nt = 0;
    io->x = fixture_f32(io->ref, "x", &nx);
    if (!io->x) return false;
    const st_tensor *tx = st_find(io->ref, "x");
    io->n = (int)tx->shape[0];
    io->classes = classes;
    if (st_find(io->ref, "target")) { /* train references only */
        float *t = fixture_f32(io->ref, "target", &nt);
        if (!t || nt != (size_t)io->n) {
            free(t);
            return check(false, "%s: target has %zu entries for %d images", name, nt, io->n);
        }
        io->target = malloc(nt * sizeof(int));
        for (size_t i = 0; i < nt; i++) io->target[i] = (int)t[i];
        free(t);
    }
    return true;
}

static inline void proof_close(proof_io *io) {
    st_close(io->ref);
    free(io->x);
    free(io->target);
}

/* PyTorch's own float32 error on reference tensor `key` (max abs vs its float64 pass), 0 if absent */
static inline double torch_f32_err(st_file *ref, const char *key) {
    char k[160];
    snprintf(k, sizeof k, "f32err.%s", key);
    const st_tensor *t = st_find(ref, k);
    float e = 0;
    if (t && t->numel == 1) st_read_f32(ref, t, &e, 1);
    return e;
}

/* max |got - ref| <= max(rtol * max|ref|, proof_k_torch * PyTorch's own float32 error) */
static inline bool compare_tensor(const char *what, st_file *ref, const char *key, const float *got, size_t n, float rtol) {
    size_t nr;
    float *r = fixture_f32(ref, key, &nr);
    if (!r) return false;
    bool ok = check(nr == n, "%s: %zu values (torch %zu)", what, n, nr);
    if (ok) {
        double e, s, t = torch_f32_err(ref, key);
        max_err(got, r, n, &e, &s);
        double allowed = fmax(rtol * s, proof_k_torch * t);
        ok = check(e <= allowed, "%s: max err %.3g, scale %.3g (rel %.3g; tol rel %.0e, or %g x PyTorch's own "
                   "float32 error %.3g)", what, e, s, s > 0 ? e / s : e, rtol, proof_k_torch, t);
    }
    free(r);
    return ok;
}

/* loads the state, checks eval-mode logits */
static inline bool proof_eval_one(net *m, const proof_io *io, const char *tag, const char *state) {
    char what[160];
    double t0 = now_s();
    int r = net_load_safetensors(m, fixture_path(state), NULL); /* strict: every name, no extras */
    bool ok = check(r == m->n_params, "%s: load %s by name (%d of %d params)%s%s", tag, state, r, m->n_params,
                    r < 0 ? ": " : "", r < 0 ? sn_last_error() : "");
    if (!ok) return false;
    if (!check(net_set_batch(m, io->n) == 0, "%s: batch %d", tag, io->n)) return false;
    const float *y = net_forward(m, io->x, false);
    snprintf(what, sizeof what, "%s: eval-mode logits vs PyTorch", tag);
    ok = compare_tensor(what, io->ref, "logits_eval", y, (size_t)io->n * io->classes, PROOF_RTOL_LOGITS);
    note("%s: load + eval forward %.2f s", tag, now_s() - t0);
    return ok;
}

/* one train step's forward + backward (weights already loaded): logits, loss, every gradient,
 * the running statistics after */
static inline bool proof_train_one(net *m, const proof_io *io, const char *tag) {
    char what[200];
    double t0 = now_s();
    if (!check(net_set_batch(m, io->n) == 0, "%s: batch %d", tag, io->n)) return false;
    net_zero_grad(m);
    const float *y = net_forward(m, io->x, true);
    snprintf(what, sizeof what, "%s: train-mode logits vs PyTorch", tag);
    bool ok = compare_tensor(what, io->ref, "logits_train", y, (size_t)io->n * io->classes, PROOF_RTOL_LOGITS);
    float *dlogits = malloc((size_t)io->n * io->classes * sizeof(float));
    float loss = loss_softmax_ce(io->n, io->classes, y, io->target, dlogits);
    snprintf(what, sizeof what, "%s: cross-entropy loss vs PyTorch", tag);
    ok &= compare_tensor(what, io->ref, "loss", &loss, 1, PROOF_RTOL_LOSS);
    net_backward(m, dlogits);
    free(dlogits);
    double t1 = now_s();

    /* gradients: every non-buffer parameter against grad.<name> */
    int n_grads = 0, n_missing = 0, n_bad = 0;
    double gmax = 0;
    for (int i = 0; i < m->n_params; i++) {
        if (m->params[i].buffer) continue;
        char key[128];
        snprintf(key, sizeof key, "grad.%s", m->params[i].name);
        const st_tensor *t = st_find(io->ref, key);
        if (!t) continue;
        float *r = fixture_f32(io->ref, key, NULL);
        for (size_t j = 0; r && j < t->numel; j++) gmax = fmax(gmax, fabs(r[j]));
        free(r);
    }
    double worst = -1, worst_err = 0, worst_scale = 0, worst_torch = 0, worst_ratio = 0, worst_rel = 0;
    char worst_name[96] = "";
    for (int i = 0; i < m->n_params; i++) {
        const param *p = &m->params[i];
        if (p->buffer) continue;
        char key[128];
        snprintf(key, sizeof key, "grad.%s", p->name);
        const st_tensor *t = st_find(io->ref, key);
        if (!t || t->numel != p->numel) {
            n_missing++;
            if (n_missing <= 3) note("%s: no reference gradient of matching size for %s", tag, p->name);
            continue;
        }
        float *r = fixture_f32(io->ref, key, NULL);
        if (!r) { n_missing++; continue; }
        double e, s;
        max_err(net_grad(m, i), r, p->numel, &e, &s);
        free(r);
        n_grads++;
        const double tf = torch_f32_err(io->ref, key);
        const double allowed = fmax(PROOF_RTOL_GRAD * s + PROOF_GRAD_FLOOR * gmax, proof_k_torch * tf);
        const double rel = e / allowed; /* in units of the tolerance */
        if (!(e <= allowed)) {
            n_bad++;
            if (n_bad <= 5)
                note("%s: gradient %s: max err %.3g, scale %.3g (rel %.3g), PyTorch's own float32 error %.3g", tag,
                     p->name, e, s, e / s, tf);
        }
        if (!(rel <= worst)) {
            worst = rel;
            worst_err = e;
            worst_scale = s;
            worst_torch = tf;
            snprintf(worst_name, sizeof worst_name, "%s", p->name);
        }
        if (tf > 0 && e / tf > worst_ratio) worst_ratio = e / tf;
        if (s > 1e-6 * gmax && e / s > worst_rel) worst_rel = e / s; /* not the ~0 ones: noise / noise */
    }
    ok &= check(n_missing == 0 && n_bad == 0 && n_grads > 0,
                "%s: all %d parameter gradients vs PyTorch (tol: rel %.0e of the tensor's max + %.0e x the largest "
                "gradient %.3g, or %g x PyTorch's own float32 error); closest to its tolerance: %s err %.3g, scale "
                "%.3g, PyTorch float32 err %.3g",
                tag, n_grads, PROOF_RTOL_GRAD, PROOF_GRAD_FLOOR, gmax, proof_k_torch, worst_name, worst_err,
                worst_scale, worst_torch);
    note("%s: gradients: worst relative error %.3g (tensors not ~0); worst ratio to PyTorch's own float32 error %.3g", tag, worst_rel,
         worst_ratio);

    /* running statistics after the train forward */
    int n_stats = 0, n_stat_bad = 0;
    double sworst = 0;
    char sworst_name[128] = "";
    for (int i = 0; i < m->n_params; i++) {
        const param *p = &m->params[i];
        if (!p->buffer) continue;
        char key[128];
        snprintf(key, sizeof key, "after.%s", p->name);
        float *r = fixture_f32(io->ref, key, NULL);
        if (!r) { n_stat_bad++; continue; }
        double e, s;
        max_err(net_param(m, i), r, p->numel, &e, &s);
        free(r);
        n_stats++;
        if (!(e <= fmax(PROOF_RTOL_STATS * s, proof_k_torch * torch_f32_err(io->ref, key)))) n_stat_bad++;
        if (!(e / s <= sworst)) {
            sworst = e / s;
            snprintf(sworst_name, sizeof sworst_name, "%s", p->name);
        }
    }
    ok &= check(n_stat_bad == 0 && n_stats > 0, "%s: all %d running statistics after the train step vs PyTorch "
                "(tol rel %.0e or %g x PyTorch's float32 error); worst %s rel %.3g", tag, n_stats, PROOF_RTOL_STATS, proof_k_torch, sworst_name, sworst);
    note("%s: train forward + backward %.2f s", tag, t1 - t0);
    return ok;
}

/* convolution layers of m that run on Winograd at batch n when asked to */
static inline int proof_winograd_layers(net *m, int n) {
    int k = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == OP_CONV) {
            conv_desc d = m->nodes[i].conv;
            d.algo = CONV_ALGO_WINOGRAD;
            k += conv2d_forward_is_winograd(&d, n);
        }
    return k;
}

/* runs `one` with direct convolutions (the proof), then with Winograd wherever possible */
static inline bool proof_both(net *m, const proof_io *io, const char *tag, const char *state,
                              bool (*one)(net *, const proof_io *, const char *, const char *)) {
    char t[200];
    float *snap = malloc(m->n_floats * sizeof(float)); /* a train step moves the running statistics */
    if (!check(snap != NULL, "%s: memory for a parameter snapshot", tag)) return false;
    memcpy(snap, m->data, m->n_floats * sizeof(float));
    net_set_conv_algo(m, CONV_ALGO_DIRECT);
    proof_k_torch = PROOF_K_TORCH;
    snprintf(t, sizeof t, "%s [direct conv]", tag);
    bool ok = one(m, io, t, state);
    net_set_conv_algo(m, CONV_ALGO_WINOGRAD);
    int wl = proof_winograd_layers(m, io->n);
    if (wl > 0) {
        memcpy(m->data, snap, m->n_floats * sizeof(float));
        proof_k_torch = PROOF_K_WINOGRAD;
        snprintf(t, sizeof t, "%s [%d conv layers on Winograd]", tag, wl);
        ok &= one(m, io, t, state);
        proof_k_torch = PROOF_K_TORCH;
    }
    net_set_conv_algo(m, CONV_ALGO_AUTO);
    free(snap);
    return ok;
}

static inline bool proof_eval_state(net *m, const proof_io *io, const char *tag, const char *state) {
    return proof_eval_one(m, io, tag, state);
}
static inline bool proof_train_state(net *m, const proof_io *io, const char *tag, const char *state) {
    (void)state;
    return proof_train_one(m, io, tag);
}
/* loads the state, checks eval-mode logits (direct, then Winograd convolutions), then with the
 * weights frozen as predict, eval and serve run them (net_freeze_weights: oneDNN's inference
 * primitives, Winograd F(2x2,3x3) on pre-transformed weights where possible) */
static inline bool proof_eval(net *m, const proof_io *io, const char *tag, const char *state) {
    bool ok = proof_both(m, io, tag, state, proof_eval_state);
    char t[200];
    snprintf(t, sizeof t, "%s [frozen weights, inference primitives]", tag);
    net_freeze_weights(m); /* proof_eval_one reloads the same values: the kept copies stay valid */
    proof_k_torch = PROOF_K_WINOGRAD;
    ok &= proof_eval_one(m, io, t, state);
    proof_k_torch = PROOF_K_TORCH;
    m->wkey = 0;
    return ok;
}
/* one train step (weights already loaded), direct then default convolutions */
static inline bool proof_train(net *m, const proof_io *io, const char *tag) {
    return proof_both(m, io, tag, NULL, proof_train_state);
}

/* the full proof of a torchvision model with its own classifier */
static inline void prove_torchvision(const char *arch, int classes) {
    char state[128];
    snprintf(state, sizeof state, "models_%s_state.safetensors", arch);
    proof_io io;
    if (!proof_open(&io, arch, classes)) return;
    const st_tensor *tx = st_find(io.ref, "x");
    model_opts o = model_default_opts();
    o.in_h = (int)tx->shape[1];
    o.in_w = (int)tx->shape[2];
    o.dropout = 0; /* the train comparison runs without dropout on both sides (PyTorch: p = 0) */
    net *m = model_build(arch, classes, &o);
    if (check(m != NULL, "%s: build %dx%d, %d classes%s", arch, o.in_h, o.in_w, classes, m ? "" : sn_last_error())) {
        st_file *sf = open_fixture(state);
        if (sf) {
            check_names(m, sf, arch);
            st_close(sf);
        }
        if (proof_eval(m, &io, arch, state)) proof_train(m, &io, arch);
    }
    net_free(m);
    proof_close(&io);
}
#endif
