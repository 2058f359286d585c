/* conv_onednn.c - dense convolution on oneDNN's convolution primitives, on our NHWC tensors.
 *
 * Why: on this machine (bench/bench_kernels, batch 32, one core) oneDNN's direct convolutions
 * (brgconv / jit, AVX-512) run the resnet 3x3 layers at ~175 GFLOPS, the core's FMA peak, where
 * im2col + sgemm reached 100-150; its Winograd F(4x4, 3x3) kernels do the same layers in about
 * half that time (4x fewer multiplies, more transforms).  Two algorithms, chosen per call:
 *   - Winograd for 3x3 stride-1 layers when conv_desc.algo is CONV_ALGO_AUTO, the call has enough
 *     output tiles to pay for transforming the weights, and oneDNN has the kernel (channels a
 *     multiple of 16); always where possible with CONV_ALGO_WINOGRAD (tests).  Its activations are blocked (nChw16c): our NHWC
 *     tensors are reordered in and out around the convolution (memory-bound, a few percent).
 *     Rounding differs from a direct sum: measured errors are in tests/kernels/test_conv.c.
 *   - direct otherwise (or with CONV_ALGO_DIRECT): activations stay NHWC, no reorder.
 * conv2d_onednn_forward_add adds the convolution onto y in the same pass (oneDNN's "sum" post-op,
 * before the fused activation): a residual block's add + ReLU without a pass of its own; where
 * the primitive's dst is blocked (Winograd), y is reordered into the blocked copy first.
 * Weights move: our OHWI weights are reordered into the primitive's blocked layout on every call
 * (but see conv2d_forward_keyed: frozen weights are reordered once), and the weight gradient back, added into ours by the reorder's "sum" post-op; a
 * backward-data pass that accumulates does the same for the input gradient.  Groups other than
 * 1, calls from inside an OpenMP parallel region, and shapes for which oneDNN offers only its
 * reference implementation are declined (return 0, nothing written: conv_backend.h) and conv.c
 * offers them to the next backend.
 *
 * Primitives are cached per (shape, algorithm, batch, pass, thread count) behind a mutex:
 * creating one costs ~0.1-1 ms, running one costs the convolution.  A primitive runs with the
 * thread count it was created for (oneDNN's OpenMP runtime), hence the thread count in the key.
 * Scratchpads and blocked copies are ours, allocated per call, so concurrent callers (serve
 * workers) never share one and nothing stays resident between calls.  oneDNN's CPU convolutions
 * are deterministic for a given thread count.
 */
#include "kernels/conv_backend.h"
#include "core/error.h"
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>

/* PASS_INFER*: forward of frozen weights (conv2d_forward_keyed): oneDNN's inference primitives,
 * whose Winograd takes its weights pre-transformed, so the transform happens once, in the kept
 * copy, and Winograd pays on small calls too */
enum { PASS_FWD, PASS_FWD_BIAS, PASS_BWD_DATA, PASS_BWD_WEIGHTS, PASS_INFER, PASS_INFER_BIAS };

typedef struct {
    conv_desc d;
    int n, pass, threads;
    int sum; /* forward: dst = act(conv + bias + dst), oneDNN's "sum" post-op (conv2d_onednn_forward_add) */
} cache_key;

typedef struct {
    dnnl_primitive_t p; /* NULL: not needed (same layout) */
    size_t scratch;
} reorder;

/* one activation tensor of the pass: x side (src / diff_src) or y side (dst / diff_dst) */
typedef struct {
    dnnl_memory_desc_t user, prim; /* NHWC, and the primitive's layout */
    size_t prim_bytes;
    int same;                      /* layouts equal: the primitive reads / writes ours directly */
    reorder in;                    /* user -> prim (an input of the pass) */
    reorder out, out_sum;          /* prim -> user, overwriting / adding (an output) */
} tensor;

#define WCACHE_MAX 32
#ifndef WINO_TILES_INFER
#define WINO_TILES_INFER 1
#endif
typedef struct {
    cache_key key;
    int usable;         /* 0: oneDNN offers only a reference kernel here: decline */
    int winograd;
    int act_after;      /* the fused activation could not be a post-op of this algorithm: applied after */
    dnnl_primitive_t conv;
    size_t scratch;
    tensor x, y;
    dnnl_memory_desc_t user_w, prim_w, bias;
    size_t prim_w_bytes;
    reorder w;          /* OHWI -> prim (forward, backward data); prim -> OHWI adding (backward weights) */
    reorder w2;         /* when oneDNN cannot reorder OHWI straight to prim (Winograd's pre-transformed
                           weights): w goes OHWI -> OIHW, then w2 OIHW -> prim */
    dnnl_memory_desc_t mid_w;
    size_t mid_w_bytes;
    unsigned long used; /* for least-recently-used eviction */
    int busy;           /* callers running it now: never evicted while > 0 */
    /* forward: frozen weights already in prim_w's layout, one per (key, weights) -- layers of the
     * same shape share the entry -- replaced oldest first when WCACHE_MAX are kept */
    struct {
        unsigned long key;
        const float *src;
        float *buf;
    } wc[WCACHE_MAX];
    int wc_n, wc_next;
} entry;

#define CACHE_MAX 384
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static int engine_state; /* 0 not tried, 1 ok, -1 unavailable */
static entry *cache[CACHE_MAX];
static int cache_n;
static unsigned long tick;

static void reorder_free(reorder *r) {
    if (r->p) dnnl_primitive_destroy(r->p);
    r->p = NULL;
}

static void entry_release_prims(entry *e) {
    for (int i = 0; i < e->wc_n; i++) sn_free(e->wc[i].buf);
    e->wc_n = e->wc_next = 0;
    if (e->conv) dnnl_primitive_destroy(e->conv);
    e->conv = NULL;
    tensor *a[2] = {&e->x, &e->y};
    for (int i = 0; i < 2; i++) reorder_free(&a[i]->in), reorder_free(&a[i]->out), reorder_free(&a[i]->out_sum);
    reorder_free(&e->w);
    reorder_free(&e->w2);
}

static size_t scratch_size(const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

/* attributes with a user scratchpad, and optionally the "sum" post-op (dst = op(src) + dst) or
 * the fused activation (conv_desc.act: ReLU, or ReLU6 as a clip to [0, 6]) */
static dnnl_primitive_attr_t make_attr(int sum, sn_act act) {
    dnnl_primitive_attr_t a = NULL;
    dnnl_post_ops_t po = NULL;
    if (dnnl_primitive_attr_create(&a) != dnnl_success) return NULL;
    int ok = dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user) == dnnl_success;
    if (ok && (sum || act)) {
        ok = !dnnl_post_ops_create(&po);
        if (ok && sum) ok = !dnnl_post_ops_append_sum(po, 1.0f);
        if (ok && act == ACT_RELU) ok = !dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
        if (ok && act == ACT_RELU6) ok = !dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, 0.0f, 6.0f);
        ok = ok && !dnnl_primitive_attr_set_post_ops(a, po);
    }
    if (po) dnnl_post_ops_destroy(po);
    if (!ok) {
        dnnl_primitive_attr_destroy(a);
        return NULL;
    }
    return a;
}

static int make_reorder(reorder *r, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, int sum) {
    dnnl_primitive_attr_t a = make_attr(sum, ACT_NONE);
    dnnl_primitive_desc_t pd = NULL;
    int rc = -1;
    if (a && !dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, a)) {
        r->scratch = scratch_size(pd);
        rc = dnnl_primitive_create(&r->p, pd) == dnnl_success ? 0 : -1;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (a) dnnl_primitive_attr_destroy(a);
    return rc;
}

/* the pass's primitive for one algorithm, activations in layout `tag` (nhwc, or any); NULL if none */
static dnnl_primitive_desc_t make_pd(const entry *e, dnnl_alg_kind_t alg, dnnl_format_tag_t tag,
                                     dnnl_primitive_attr_t attr) {
    const conv_desc *d = &e->key.d;
    const int pass = e->key.pass;
    dnnl_dims_t sdims = {e->key.n, d->cin, d->h, d->w}, ddims = {e->key.n, d->cout, d->oh, d->ow};
    dnnl_dims_t wdims = {d->cout, d->cin, d->kh, d->kw};
    dnnl_dims_t strides = {d->sh, d->sw}, pad_l = {d->pt, d->pl}, pad_r = {d->pb, d->pr};
    dnnl_memory_desc_t src, dst, wany;
    dnnl_primitive_desc_t fwd_pd = NULL, pd = NULL;
    dnnl_convolution_desc_t cd;
    if (dnnl_memory_desc_init_by_tag(&src, 4, sdims, dnnl_f32, tag) ||
        dnnl_memory_desc_init_by_tag(&dst, 4, ddims, dnnl_f32, tag) ||
        dnnl_memory_desc_init_by_tag(&wany, 4, wdims, dnnl_f32, dnnl_format_tag_any))
        return NULL;
    int infer = pass == PASS_INFER || pass == PASS_INFER_BIAS;
    if (dnnl_convolution_forward_desc_init(&cd, infer ? dnnl_forward_inference : dnnl_forward_training, alg, &src,
                                           &wany, pass == PASS_FWD_BIAS || pass == PASS_INFER_BIAS ? &e->bias : NULL,
                                           &dst, strides, pad_l, pad_r) ||
        dnnl_primitive_desc_create(&fwd_pd, &cd, attr, engine, NULL))
        return NULL;
    if (pass == PASS_FWD || pass == PASS_FWD_BIAS || infer) return fwd_pd;
    /* backward: oneDNN wants the forward primitive as a hint, with the layouts it chose */
    const dnnl_memory_desc_t *fs = dnnl_primitive_desc_query_md(fwd_pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *fd = dnnl_primitive_desc_query_md(fwd_pd, dnnl_query_dst_md, 0);
    int bad = !fs || !fd;
    if (!bad) src = *fs, dst = *fd;
    if (!bad && pass == PASS_BWD_DATA)
        bad = dnnl_convolution_backward_data_desc_init(&cd, alg, &src, &wany, &dst, strides, pad_l, pad_r) ||
              dnnl_primitive_desc_create(&pd, &cd, attr, engine, fwd_pd);
    else if (!bad)
        bad = dnnl_convolution_backward_weights_desc_init(&cd, alg, &src, &wany, NULL, &dst, strides, pad_l, pad_r) ||
              dnnl_primitive_desc_create(&pd, &cd, attr, engine, fwd_pd);
    dnnl_primitive_desc_destroy(fwd_pd);
    return bad ? NULL : pd;
}

/* sets up one activation: its layouts, and the reorders the pass needs (input / output) */
static int tensor_init(tensor *a, const dnnl_memory_desc_t *prim, int dims_c, int n, int h, int w, int input) {
    dnnl_dims_t dims = {n, dims_c, h, w};
    if (!prim || dnnl_memory_desc_init_by_tag(&a->user, 4, dims, dnnl_f32, dnnl_nhwc)) return -1;
    a->prim = *prim;
    a->prim_bytes = dnnl_memory_desc_get_size(prim);
    a->same = dnnl_memory_desc_equal(&a->user, prim);
    if (input) return a->same ? 0 : make_reorder(&a->in, &a->user, &a->prim, 0);
    if (!a->same && make_reorder(&a->out, &a->prim, &a->user, 0)) return -1;
    return make_reorder(&a->out_sum, &a->prim, &a->user, 1);
}

static int impl_is_fast(const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    return !dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) && impl && strncmp(impl, "ref", 3);
}

/* the primitives of one cache entry on algorithm alg (activations in layout tag); 0 when usable */
static int entry_build_alg(entry *e, dnnl_alg_kind_t alg, dnnl_format_tag_t tag, dnnl_primitive_attr_t attr) {
    const conv_desc *d = &e->key.d;
    const int pass = e->key.pass, n = e->key.n;
    int ok = 0;
    dnnl_primitive_desc_t pd = make_pd(e, alg, tag, attr);
    if (!pd || !impl_is_fast(pd)) goto out; /* the reference kernel is far slower than our im2col */
    int bw = pass == PASS_BWD_WEIGHTS, bd = pass == PASS_BWD_DATA;
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, bw ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *x_md = dnnl_primitive_desc_query_md(pd, bd ? dnnl_query_diff_src_md : dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *y_md = dnnl_primitive_desc_query_md(pd, bw || bd ? dnnl_query_diff_dst_md : dnnl_query_dst_md, 0);
    if (!w_md) goto out;
    e->prim_w = *w_md;
    e->prim_w_bytes = dnnl_memory_desc_get_size(w_md);
    e->scratch = scratch_size(pd);
    if (tensor_init(&e->x, x_md, d->cin, n, d->h, d->w, !bd) || tensor_init(&e->y, y_md, d->cout, n, d->oh, d->ow, bw || bd))
        goto out;
    /* the sum post-op reads dst in the primitive's layout: ours is reordered in first */
    if (e->key.sum && !e->y.same && make_reorder(&e->y.in, &e->y.user, &e->y.prim, 0)) goto out;
    if (bw) {
        if (make_reorder(&e->w, &e->prim_w, &e->user_w, 1)) goto out;
    } else if (make_reorder(&e->w, &e->user_w, &e->prim_w, 0)) {
        dnnl_dims_t wdims = {d->cout, d->cin, d->kh, d->kw};
        if (dnnl_memory_desc_init_by_tag(&e->mid_w, 4, wdims, dnnl_f32, dnnl_oihw) ||
            make_reorder(&e->w, &e->user_w, &e->mid_w, 0) || make_reorder(&e->w2, &e->mid_w, &e->prim_w, 0))
            goto out;
        e->mid_w_bytes = dnnl_memory_desc_get_size(&e->mid_w);
    }
    if (dnnl_primitive_create(&e->conv, pd)) goto out;
    ok = 1;
out:
    if (!ok) entry_release_prims(e);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return ok ? 0 : -1;
}

/* builds the primitives of one cache entry: Winograd where chosen and complete, else direct;
 * e->usable = 0 when oneDNN cannot do it well */
static void entry_build(entry *e) {
    const conv_desc *d = &e->key.d;
    dnnl_dims_t wdims = {d->cout, d->cin, d->kh, d->kw}, bdims = {d->cout};
    /* the fused activation as a post-op (backward keys carry act 0, see lookup); where an algorithm
     * does not take it (Winograd inference takes ReLU but not a clip), the same algorithm runs
     * without it and the activation follows on each chunk: the algorithm, and so the rounding,
     * never depends on the activation */
    const int sum = e->key.sum;
    dnnl_primitive_attr_t attr = make_attr(sum, d->act), plain = d->act ? make_attr(sum, ACT_NONE) : NULL;
    e->usable = e->winograd = e->act_after = 0;
    if (!attr || (d->act && !plain) || dnnl_memory_desc_init_by_tag(&e->bias, 1, bdims, dnnl_f32, dnnl_a) ||
        dnnl_memory_desc_init_by_tag(&e->user_w, 4, wdims, dnnl_f32, dnnl_acdb)) { /* acdb = OHWI */
        if (attr) dnnl_primitive_attr_destroy(attr);
        if (plain) dnnl_primitive_attr_destroy(plain);
        return;
    }
    /* Winograd transforms the weights on every call (cost ~ cin * cout) and wins on the tiles
     * (cost ~ tiles * cin * cout): measured on this machine it is faster from ~128 4x4 output tiles
     * per call (64@56 batch 1: 1.7x; 256@8 batch 32: 2x) and slower below (256@14 batch 1: 0.5x) */
    long tiles = (long)e->key.n * ((d->oh + 3) / 4) * ((d->ow + 3) / 4);
    if (d->algo != CONV_ALGO_DIRECT && d->kh == 3 && d->kw == 3 && d->sh == 1 && d->sw == 1 &&
        (tiles >= (e->key.pass >= PASS_INFER ? WINO_TILES_INFER : 128) || d->algo == CONV_ALGO_WINOGRAD))
        e->winograd = entry_build_alg(e, dnnl_convolution_winograd, dnnl_format_tag_any, attr) == 0 ||
                      (plain && (e->act_after = entry_build_alg(e, dnnl_convolution_winograd, dnnl_format_tag_any,
                                                                plain) == 0));
    if (!e->winograd) {
        e->usable = entry_build_alg(e, dnnl_convolution_direct, dnnl_nhwc, attr) == 0 ||
                    (plain && (e->act_after = entry_build_alg(e, dnnl_convolution_direct, dnnl_nhwc, plain) == 0));
    }
    e->usable |= e->winograd;
    dnnl_primitive_attr_destroy(attr);
    if (plain) dnnl_primitive_attr_destroy(plain);
}

/* the cache entry for this call, built on first use, marked busy; NULL when oneDNN declines */
static entry *lookup(const conv_desc *d, int n, int pass, int sum) {
    if (d->groups != 1 || n <= 0 || omp_in_parallel()) return NULL;
    cache_key k;
    memset(&k, 0, sizeof k); /* padding bytes too: keys are compared with memcmp */
    k.d = *d;
    if (pass == PASS_BWD_DATA || pass == PASS_BWD_WEIGHTS) k.d.act = ACT_NONE; /* forward only: one entry for both */
    k.n = n;
    k.pass = pass;
    k.sum = sum;
    k.threads = omp_get_max_threads();
    entry *found = NULL;
    pthread_mutex_lock(&lock);
    if (engine_state == 0) engine_state = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success ? 1 : -1;
    if (engine_state < 0) goto done;
    for (int i = 0; i < cache_n; i++)
        if (!memcmp(&cache[i]->key, &k, sizeof k)) {
            found = cache[i];
            break;
        }
    if (!found) {
        found = sn_calloc(sizeof *found, "oneDNN convolution cache entry");
        if (!found) goto done;
        found->key = k;
        entry_build(found);
        if (cache_n == CACHE_MAX) { /* evict the least recently used that no one is running */
            int v = -1;
            for (int i = 0; i < cache_n; i++)
                if (!cache[i]->busy && (v < 0 || cache[i]->used < cache[v]->used)) v = i;
            if (v < 0) { /* all busy (only with hundreds of concurrent callers): run uncached */
                entry_release_prims(found);
                sn_free(found);
                found = NULL;
                goto done;
            }
            entry_release_prims(cache[v]);
            sn_free(cache[v]);
            cache[v] = cache[--cache_n];
        }
        cache[cache_n++] = found;
    }
    found->used = ++tick;
    if (found->usable) found->busy++;
done:
    pthread_mutex_unlock(&lock);
    return found && found->usable ? found : NULL;
}

static void release(entry *e) {
    pthread_mutex_lock(&lock);
    e->busy--;
    pthread_mutex_unlock(&lock);
}

typedef struct {
    int arg;
    const dnnl_memory_desc_t *md;
    const void *ptr;
} arg_t;

/* runs primitive p on (arg, memory descriptor, pointer) triples plus a scratchpad of `scratch`
 * bytes; 0 on success (nothing is written when allocation fails) */
static int run(dnnl_primitive_t p, const arg_t *a, int na, size_t scratch) {
    dnnl_exec_arg_t args[6];
    dnnl_memory_t mems[6] = {0};
    dnnl_stream_t s = NULL;
    void *sp = scratch ? sn_alloc(scratch, "oneDNN scratchpad") : NULL;
    int rc = -1, k = 0;
    if (scratch && !sp) return -1;
    for (; k < na; k++) {
        if (dnnl_memory_create(&mems[k], a[k].md, engine, (void *)a[k].ptr) != dnnl_success) goto out;
        args[k] = (dnnl_exec_arg_t){a[k].arg, mems[k]};
    }
    if (scratch) {
        dnnl_memory_desc_t smd;
        dnnl_dims_t sd = {(dnnl_dim_t)scratch};
        if (dnnl_memory_desc_init_by_tag(&smd, 1, sd, dnnl_u8, dnnl_a) ||
            dnnl_memory_create(&mems[k], &smd, engine, sp) != dnnl_success)
            goto out;
        args[k] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, mems[k]};
        k++;
    }
    if (dnnl_stream_create(&s, engine, dnnl_stream_default_flags)) goto out;
    if (dnnl_primitive_execute(p, s, k, args) == dnnl_success && dnnl_stream_wait(s) == dnnl_success) rc = 0;
out:
    if (s) dnnl_stream_destroy(s);
    for (int i = 0; i < 6; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    sn_free(sp);
    return rc;
}

static int run_reorder(const reorder *r, const dnnl_memory_desc_t *from_md, const void *from,
                       const dnnl_memory_desc_t *to_md, void *to) {
    arg_t a[2] = {{DNNL_ARG_FROM, from_md, from}, {DNNL_ARG_TO, to_md, to}};
    return run(r->p, a, 2, r->scratch);
}

/* an input activation in the primitive's layout: ours itself, or a reordered copy in *tmp */
static const float *tensor_in(const tensor *a, const float *user, float **tmp) {
    *tmp = NULL;
    if (a->same) return user;
    if (!(*tmp = sn_alloc(a->prim_bytes, "oneDNN convolution activations"))) return NULL;
    if (run_reorder(&a->in, &a->user, user, &a->prim, *tmp)) {
        sn_free(*tmp);
        return *tmp = NULL;
    }
    return *tmp;
}

/* where the primitive writes an output activation: ours directly when that is possible, else a
 * buffer that tensor_out() then moves (or adds) into ours */
static float *tensor_dst(const tensor *a, float *user, int accumulate) {
    if (a->same && !accumulate) return user;
    return sn_alloc(a->prim_bytes, "oneDNN convolution output");
}
static int tensor_out(const tensor *a, float *buf, float *user, int accumulate) {
    if (buf == user) return 0;
    return run_reorder(accumulate ? &a->out_sum : &a->out, &a->prim, buf, &a->user, user);
}

/* Images per call: a batch is run in chunks whose input or output activations stay under
 * CHUNK_BYTES, which bounds the transient memory of a call (Winograd's transformed tiles are
 * ~2.25x the activations, blocked copies 1x each) without costing speed (measured: resnet34
 * train step 128 px, batch 64).  Every chunk of a call has the same size except the last. */
#define CHUNK_BYTES (4L << 20)
static int chunk_images(const conv_desc *d, int n) {
    long per = 4L * (d->h * d->w * d->cin > d->oh * d->ow * d->cout ? d->h * d->w * d->cin : d->oh * d->ow * d->cout);
    long ch = CHUNK_BYTES / per;
    if (ch < 1) ch = 1;
    if (ch >= n) return n;
    long chunks = (n + ch - 1) / ch;
    return (int)((n + chunks - 1) / chunks);
}

/* our OHWI weights in the primitive's layout (a new buffer), or NULL */
static float *weights_to_prim(const entry *e, const float *w) {
    float *wp = sn_alloc(e->prim_w_bytes, "oneDNN convolution weights"), *mid = NULL;
    int bad = !wp;
    if (!bad && e->w2.p) { /* two hops, through OIHW */
        mid = sn_alloc(e->mid_w_bytes, "oneDNN convolution weights");
        bad = !mid || run_reorder(&e->w, &e->user_w, w, &e->mid_w, mid) ||
              run_reorder(&e->w2, &e->mid_w, mid, &e->prim_w, wp);
    } else if (!bad) {
        bad = run_reorder(&e->w, &e->user_w, w, &e->prim_w, wp);
    }
    sn_free(mid);
    if (bad) {
        sn_free(wp);
        return NULL;
    }
    return wp;
}

/* the forward weights in the primitive's layout: the entry's kept copy for (wkey, w) if there is
 * one, else a new reordered copy, which the entry keeps when wkey != 0 and no other caller is
 * running it (*owned = 1: the caller frees it) */
static float *forward_weights(entry *e, const float *w, unsigned long wkey, int *owned) {
    *owned = 0;
    if (wkey) {
        float *c = NULL;
        pthread_mutex_lock(&lock);
        for (int i = 0; i < e->wc_n && !c; i++)
            if (e->wc[i].key == wkey && e->wc[i].src == w) c = e->wc[i].buf;
        pthread_mutex_unlock(&lock);
        if (c) return c; /* safe: copies are replaced only while no one else runs the entry */
    }
    float *wp = weights_to_prim(e, w);
    if (!wp) return NULL;
    *owned = 1;
    if (wkey) {
        pthread_mutex_lock(&lock);
        if (e->busy == 1) {
            int k;
            if (e->wc_n < WCACHE_MAX) {
                k = e->wc_n++;
            } else { /* full: the oldest goes */
                k = e->wc_next;
                e->wc_next = (e->wc_next + 1) % WCACHE_MAX;
                sn_free(e->wc[k].buf);
            }
            e->wc[k].key = wkey;
            e->wc[k].src = w;
            e->wc[k].buf = wp;
            *owned = 0;
        }
        pthread_mutex_unlock(&lock);
    }
    return wp;
}

/* y = act(conv(x) + b), or with sum y = act(conv(x) + b + y) */
static int forward_chunk(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y,
                         unsigned long wkey, int sum) {
    entry *e = lookup(d, n, wkey ? (b ? PASS_INFER_BIAS : PASS_INFER) : b ? PASS_FWD_BIAS : PASS_FWD, sum);
    if (!e) return 1;
    int rc = -1, owned = 0;
    float *wp = forward_weights(e, w, wkey, &owned), *xt = NULL, *yp = NULL;
    const float *xp = NULL;
    if (wp && (xp = tensor_in(&e->x, x, &xt)) && (yp = tensor_dst(&e->y, y, 0)) &&
        (!sum || yp == y || !run_reorder(&e->y.in, &e->y.user, y, &e->y.prim, yp))) {
        arg_t a[4] = {{DNNL_ARG_SRC, &e->x.prim, xp}, {DNNL_ARG_WEIGHTS, &e->prim_w, wp},
                      {DNNL_ARG_DST, &e->y.prim, yp}, {DNNL_ARG_BIAS, &e->bias, b}};
        rc = run(e->conv, a, b ? 4 : 3, e->scratch);
        if (!rc) rc = tensor_out(&e->y, yp, y, 0);
        if (!rc && e->act_after) act_apply(d->act, (long)n * d->oh * d->ow * d->cout, y);
    }
    if (yp != y) sn_free(yp);
    sn_free(xt);
    if (owned) sn_free(wp);
    release(e);
    return rc ? 1 : 0;
}

static int backward_data_chunk(const conv_desc *d, int n, const float *dy, const float *w, float *dx, int accumulate) {
    entry *e = lookup(d, n, PASS_BWD_DATA, 0);
    if (!e) return 1;
    int rc = -1;
    float *wp = weights_to_prim(e, w), *yt = NULL, *xp = NULL;
    const float *yp = NULL;
    if (wp && (yp = tensor_in(&e->y, dy, &yt)) &&
        (xp = tensor_dst(&e->x, dx, accumulate))) {
        arg_t a[3] = {{DNNL_ARG_DIFF_DST, &e->y.prim, yp}, {DNNL_ARG_WEIGHTS, &e->prim_w, wp},
                      {DNNL_ARG_DIFF_SRC, &e->x.prim, xp}};
        rc = run(e->conv, a, 3, e->scratch);
        if (!rc) rc = tensor_out(&e->x, xp, dx, accumulate);
    }
    if (xp != dx) sn_free(xp);
    sn_free(yt);
    sn_free(wp);
    release(e);
    return rc ? 1 : 0;
}

static int backward_weights_chunk(const conv_desc *d, int n, const float *x, const float *dy, float *dw) {
    entry *e = lookup(d, n, PASS_BWD_WEIGHTS, 0);
    if (!e) return 1;
    int rc = -1;
    float *gw = sn_alloc(e->prim_w_bytes, "oneDNN convolution weight gradient"), *xt = NULL, *yt = NULL;
    const float *xp = NULL, *yp = NULL;
    if (gw && (xp = tensor_in(&e->x, x, &xt)) && (yp = tensor_in(&e->y, dy, &yt))) {
        arg_t a[3] = {{DNNL_ARG_SRC, &e->x.prim, xp}, {DNNL_ARG_DIFF_DST, &e->y.prim, yp},
                      {DNNL_ARG_DIFF_WEIGHTS, &e->prim_w, gw}};
        rc = run(e->conv, a, 3, e->scratch);
        if (!rc) rc = run_reorder(&e->w, &e->prim_w, gw, &e->user_w, dw); /* dw += */
    }
    sn_free(yt);
    sn_free(xt);
    sn_free(gw);
    release(e);
    return rc ? 1 : 0;
}

/* The passes run chunk by chunk and return the number of images done: 0 when oneDNN declines the
 * first chunk (nothing written), fewer than n when a later chunk fails (out of memory): the
 * dispatcher runs images [done, n) on the next backend. */
static int forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y,
                   unsigned long wkey, int sum) {
    int ch = chunk_images(d, n);
    long xs = (long)d->h * d->w * d->cin, ys = (long)d->oh * d->ow * d->cout;
    for (int i = 0; i < n; i += ch) {
        int cn = n - i < ch ? n - i : ch;
        if (forward_chunk(d, cn, x + i * xs, w, b, y + i * ys, wkey, sum)) return i;
    }
    return n > 0 ? n : 0;
}

int conv2d_onednn_forward_keyed(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y,
                                unsigned long wkey) {
    return forward(d, n, x, w, b, y, wkey, 0);
}

int conv2d_onednn_forward_add(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y,
                              unsigned long wkey) {
    return forward(d, n, x, w, b, y, wkey, 1);
}

int conv2d_onednn_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y) {
    return conv2d_onednn_forward_keyed(d, n, x, w, b, y, 0);
}

static int backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx, int accumulate) {
    int ch = chunk_images(d, n);
    long xs = (long)d->h * d->w * d->cin, ys = (long)d->oh * d->ow * d->cout;
    for (int i = 0; i < n; i += ch) {
        int cn = n - i < ch ? n - i : ch;
        if (backward_data_chunk(d, cn, dy + i * ys, w, dx + i * xs, accumulate)) return i;
    }
    return n > 0 ? n : 0;
}

int conv2d_onednn_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx) {
    return backward_data(d, n, dy, w, dx, 1);
}

int conv2d_onednn_backward_data_set(const conv_desc *d, int n, const float *dy, const float *w, float *dx) {
    return backward_data(d, n, dy, w, dx, 0);
}

int conv2d_onednn_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw) {
    int ch = chunk_images(d, n);
    long xs = (long)d->h * d->w * d->cin, ys = (long)d->oh * d->ow * d->cout;
    for (int i = 0; i < n; i += ch) {
        int cn = n - i < ch ? n - i : ch;
        if (backward_weights_chunk(d, cn, x + i * xs, dy + i * ys, dw)) return i;
    }
    return n > 0 ? n : 0;
}

int conv2d_onednn_algorithm(const conv_desc *d, int n) {
    entry *e = lookup(d, n, PASS_FWD, 0);
    if (!e) return 0;
    int r = e->winograd ? 2 : 1;
    release(e);
    return r;
}
