/* loader.c - seeded epochs of batches, prepared by background pthreads into a bounded ring.
 * See loader.h.  Global batch number g counts from the start of the current run (the epoch
 * given by loader_set_epoch): epoch = e0 + g / nb, batch g % nb; slot g % Q holds batch g. */
#include "data/loader.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "data/background.h"
#include "data/matte.h"

typedef struct {
    float *x, *t;
    int *y;
    long g;       /* batch held (valid when ready) */
    int n;        /* images in it */
    bool ready, failed;
    char msg[512];
} slot;

struct loader {
    const dataset *ds;
    int *idx, n, nb;
    loader_opts o;
    bool shift;             /* shift augmentations on (aug_shift_enabled) */
    matte_cache *mattes;    /* with new backgrounds: each item's matte, built at first use */
    int size_cap;           /* slot buffers hold this size */
    /* per-epoch orders for the (at most two) epochs in flight */
    int *perm[2];
    int perm_epoch[2];
    /* pipeline */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_ready;
    pthread_t *th;
    int n_th;
    slot *slots;
    int Q;
    int e0;
    long claim_g, cons_g;   /* next batch to prepare / to deliver */
    bool pending_end;       /* the epoch's last batch was delivered: next call returns 0 */
    int busy;               /* workers preparing a batch */
    unsigned gen;           /* bumped by a restart: batches of older generations are dropped */
    bool stop, paused;      /* paused: a restart is in progress, claim nothing */
    int held;               /* slot lent out by loader_next_view (-1: none) */
    /* synchronous mode (no threads): one batch buffer */
    float *sync_x, *sync_t;
    int *sync_y, sync_cap;
};

loader_opts loader_defaults(void) {
    loader_opts o = {.size = 128, .batch = 64, .augment = true, .seed = 0, .shuffle = true, .drop_last = true,
                     .n_threads = 2, .prefetch = 0, .shard = 0, .n_shards = 1};
    aug_defaults(&o.aug);
    memcpy(o.mean, AUG_IMAGENET_MEAN, sizeof o.mean);
    memcpy(o.std, AUG_IMAGENET_STD, sizeof o.std);
    return o;
}

int loader_batches_per_epoch(const loader *l) { return l->nb; }

/* the order of epoch e (caller holds the lock, or runs synchronously) */
static const int *epoch_order(loader *l, int e) {
    int k = e & 1;
    if (l->perm_epoch[k] != e) {
        int *p = l->perm[k];
        memcpy(p, l->idx, sizeof(int) * (size_t)l->n);
        if (l->o.shuffle) {
            uint64_t stream = rng_mix((uint64_t)e ^ 0x5348u) ^ 0x73687566ull;
            for (int i = l->n - 1; i > 0; i--) {
                int j = (int)(rng_u64(l->o.seed, stream, (uint64_t)i) % (uint64_t)(i + 1));
                int t = p[i];
                p[i] = p[j];
                p[j] = t;
            }
        }
        l->perm_epoch[k] = e;
    }
    return l->perm[k];
}

/* item i's shift rendering: its matte from the cache when a new background was drawn */
static int render(const loader *l, int i, const image *im, const aug_params *p, const aug_shift *s, int S, float *out) {
    const matte_map *m = NULL;
    if (s->bg && l->mattes && !(m = matte_cache_get(l->mattes, i, im))) return -1;
    return aug_render(im, m, p, s, &l->o.aug, l->o.seed, S, l->o.mean, l->o.std, out);
}

/* CutMix: a rectangle of another training image (picked and augmented by item i's keys, never
 * itself mixed) pasted into out; *partner its index, *share the share of the pixels it covers */
static int cutmix(const loader *l, int epoch, int i, const aug_shift *s, int S, float *out, int *partner, float *share) {
    int pick = (int)(s->cutmix_pick * (float)l->n);
    int j = l->idx[pick < l->n ? pick : l->n - 1];
    const uint64_t key = (uint64_t)i | 1ull << 62; /* no item has this index: a view of its own */
    aug_params p;
    aug_shift ps = {0};
    aug_draw(&l->o.aug, l->o.seed, (uint64_t)epoch, key, &p);
    aug_draw_shift(&l->o.aug, l->o.seed, (uint64_t)epoch, key, &p, &ps);
    ps.cutmix = false;
    image im;
    bool owned;
    float *view = malloc(sizeof(float) * (size_t)S * S * 3);
    if (!view) return sn_error("out of memory for CutMix");
    if (ds_image(l->ds, j, &im, &owned) < 0) {
        free(view);
        return -1;
    }
    int r = 0;
    if (ps.active) r = render(l, j, &im, &p, &ps, S, view);
    else aug_warp(&im, &p, S, l->o.mean, l->o.std, view);
    if (owned) image_free(&im);
    const float *b = s->cutmix_box;
    int x0 = (int)lroundf(b[0] * S), y0 = (int)lroundf(b[1] * S);
    int x1 = (int)lroundf((b[0] + b[2]) * S), y1 = (int)lroundf((b[1] + b[3]) * S);
    x1 = x1 > S ? S : x1;
    y1 = y1 > S ? S : y1;
    for (int y = y0; r == 0 && y < y1; y++)
        memcpy(out + ((size_t)y * S + x0) * 3, view + ((size_t)y * S + x0) * 3, sizeof(float) * 3 * (size_t)(x1 - x0));
    free(view);
    *partner = j;
    *share = x1 > x0 && y1 > y0 ? (float)((x1 - x0) * (y1 - y0)) / (float)(S * S) : 0;
    return r;
}

/* prepares batch b of an epoch whose order is `order` at size S; returns the image count, or -1
 * with the message in msg */
static int prepare(const loader *l, const int *order, int epoch, int b, int S, float *x, int *y, float *t, char *msg,
                   size_t cap) {
    const dataset *ds = l->ds;
    int start = b * l->o.batch, n = l->n - start < l->o.batch ? l->n - start : l->o.batch;
    if (l->o.n_shards > 1) { /* this process's share of the batch */
        const int lo = (int)((long)n * l->o.shard / l->o.n_shards), hi = (int)((long)n * (l->o.shard + 1) / l->o.n_shards);
        start += lo;
        n = hi - lo;
    }
    const size_t px = (size_t)S * S * 3;
    for (int k = 0; k < n; k++) {
        int i = order[start + k];
        image im;
        bool owned;
        if (ds_image(ds, i, &im, &owned) < 0) {
            snprintf(msg, cap, "%s", sn_last_error());
            return -1;
        }
        int r = 0, partner = -1;
        float share = 0; /* of the partner's pixels (CutMix) */
        if (l->o.augment) {
            aug_params p;
            aug_shift s = {0};
            aug_draw(&l->o.aug, l->o.seed, (uint64_t)epoch, (uint64_t)i, &p);
            if (l->shift) aug_draw_shift(&l->o.aug, l->o.seed, (uint64_t)epoch, (uint64_t)i, &p, &s);
            if (s.active) r = render(l, i, &im, &p, &s, S, x + k * px);
            else aug_warp(&im, &p, S, l->o.mean, l->o.std, x + k * px);
            if (r == 0 && s.cutmix) r = cutmix(l, epoch, i, &s, S, x + k * px, &partner, &share);
        } else {
            r = aug_center(&im, S, l->o.mean, l->o.std, x + k * px);
        }
        if (owned) image_free(&im);
        if (r < 0) {
            snprintf(msg, cap, "%s: %s", ds->items[i].path, sn_last_error());
            return -1;
        }
        if (y) y[k] = partner >= 0 && share > 0.5f ? ds->items[partner].label : ds->items[i].label;
        if (t) {
            const int C = ds->n_classes;
            for (int c = 0; c < C; c++) t[(size_t)k * C + c] = ds_hot(ds, i)[c];
            if (partner >= 0)
                for (int c = 0; c < C; c++) t[(size_t)k * C + c] = (1 - share) * ds_hot(ds, i)[c] + share * ds_hot(ds, partner)[c];
        }
    }
    return n;
}

static void *worker(void *arg) {
    loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop &&
               (l->paused || l->claim_g >= l->cons_g + l->Q || (l->claim_g / l->nb) > (l->cons_g / l->nb) + 1))
            pthread_cond_wait(&l->cv_work, &l->mu);
        if (l->stop) break;
        long g = l->claim_g++;
        unsigned gen = l->gen;
        int epoch = l->e0 + (int)(g / l->nb), b = (int)(g % l->nb), S = l->o.size;
        const int *order = epoch_order(l, epoch);
        slot *s = &l->slots[g % l->Q];
        s->ready = false;
        l->busy++;
        pthread_mutex_unlock(&l->mu);
        char msg[512] = "";
        int n = prepare(l, order, epoch, b, S, s->x, s->y, s->t, msg, sizeof msg);
        pthread_mutex_lock(&l->mu);
        l->busy--;
        if (gen == l->gen) {
            s->g = g;
            s->n = n;
            s->failed = n < 0;
            if (n < 0) snprintf(s->msg, sizeof s->msg, "%s", msg);
            s->ready = true;
        }
        pthread_cond_broadcast(&l->cv_ready);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static int alloc_slots(loader *l, int S) {
    for (int q = 0; q < l->Q; q++) {
        slot *s = &l->slots[q];
        free(s->x);
        s->x = malloc(sizeof(float) * (size_t)l->o.batch * S * S * 3);
        if (!s->x) return sn_error("out of memory for %d prefetched batches of %d images of %dx%d", l->Q, l->o.batch, S, S);
    }
    l->size_cap = S;
    return 0;
}

/* the shift augmentations' state: the matte cache and the background photos */
static int setup_shift(loader *l) {
    l->shift = l->o.augment && aug_shift_enabled(&l->o.aug);
    if (!l->shift || l->o.aug.bg_p <= 0) return 0;
    if (!(l->mattes = matte_cache_create(l->ds->n_items, NULL))) return -1;
    const char *dirs = l->o.aug.bg_dirs;
    if (!l->o.aug.bg_lib && l->o.aug.bg_photo_p > 0 && !(dirs && !strcmp(dirs, "none"))) {
        if (!(l->o.aug.bg_lib = bg_library_shared(dirs ? dirs : BG_DEFAULT_DIRS, BG_MAX_SIDE, !dirs))) return -1;
    }
    return 0;
}

loader *loader_create(const dataset *ds, const int *indices, int n, const loader_opts *o) {
    if (!ds || !o || n < 0 || (n > 0 && !indices)) {
        sn_error("loader: no data set or indices");
        return NULL;
    }
    if (o->size < 8 || o->size > 4096 || o->batch < 1) {
        sn_error("loader: image size %d (8..4096) or batch %d (>= 1) out of range", o->size, o->batch);
        return NULL;
    }
    if (o->n_shards > 1 && (o->shard < 0 || o->shard >= o->n_shards || !o->drop_last || o->batch < o->n_shards)) {
        sn_error("loader: share %d of %d of each batch of %d%s", o->shard, o->n_shards, o->batch,
                 o->drop_last ? "" : " without drop_last");
        return NULL;
    }
    for (int k = 0; k < n; k++)
        if (indices[k] < 0 || indices[k] >= ds->n_items) {
            sn_error("loader: index %d out of range (data set of %d items)", indices[k], ds->n_items);
            return NULL;
        }
    int nb = o->drop_last ? n / o->batch : (n + o->batch - 1) / o->batch;
    if (nb == 0) {
        sn_error("loader: %d images make no batch of %d%s", n, o->batch, o->drop_last ? " (drop_last)" : "");
        return NULL;
    }
    loader *l = calloc(1, sizeof *l);
    if (!l) {
        sn_error("out of memory");
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_ready, NULL);
    l->ds = ds;
    l->held = -1;
    l->n = n;
    l->nb = nb;
    l->o = *o;
    if (l->o.n_threads < 0) l->o.n_threads = 0;
    if (l->o.n_threads > 64) l->o.n_threads = 64;
    l->idx = malloc(sizeof(int) * (size_t)n);
    l->perm[0] = malloc(sizeof(int) * (size_t)n);
    l->perm[1] = malloc(sizeof(int) * (size_t)n);
    l->perm_epoch[0] = l->perm_epoch[1] = -1;
    l->sync_y = malloc(sizeof(int) * (size_t)o->batch);
    l->sync_t = malloc(sizeof(float) * (size_t)o->batch * (size_t)(ds->n_classes ? ds->n_classes : 1));
    if (!l->idx || !l->perm[0] || !l->perm[1] || !l->sync_y || !l->sync_t) goto oom;
    memcpy(l->idx, indices, sizeof(int) * (size_t)n);
    if (setup_shift(l) < 0) {
        loader_free(l);
        return NULL;
    }
    if (l->o.n_threads > 0) {
        l->Q = l->o.prefetch > 0 ? l->o.prefetch : 2 * l->o.n_threads + 2;
        l->slots = calloc((size_t)l->Q, sizeof(slot));
        if (!l->slots) goto oom;
        for (int q = 0; q < l->Q; q++) {
            l->slots[q].y = malloc(sizeof(int) * (size_t)o->batch);
            l->slots[q].t = malloc(sizeof(float) * (size_t)o->batch * (size_t)(ds->n_classes ? ds->n_classes : 1));
            if (!l->slots[q].y || !l->slots[q].t) goto oom;
        }
        if (alloc_slots(l, o->size) < 0) {
            loader_free(l);
            return NULL;
        }
        l->th = calloc((size_t)l->o.n_threads, sizeof(pthread_t));
        if (!l->th) goto oom;
        for (int k = 0; k < l->o.n_threads; k++) {
            if (pthread_create(&l->th[k], NULL, worker, l) != 0) {
                sn_error("loader: cannot start thread %d", k);
                loader_free(l);
                return NULL;
            }
            l->n_th++;
        }
    }
    return l;
oom:
    sn_error("out of memory creating a loader");
    loader_free(l);
    return NULL;
}

/* stops preparing, drops what was prepared, restarts at the start of epoch e with size S */
static int restart(loader *l, int e, int S) {
    pthread_mutex_lock(&l->mu);
    l->gen++;
    l->paused = true; /* no new claims; wait for the batches in progress (then dropped) */
    l->held = -1;
    while (l->busy > 0) pthread_cond_wait(&l->cv_ready, &l->mu);
    l->claim_g = l->cons_g = 0;
    int r = 0;
    if (l->n_th > 0 && S > l->size_cap) r = alloc_slots(l, S);
    if (r == 0) {
        l->o.size = S;
        l->e0 = e;
        for (int q = 0; q < l->Q; q++) l->slots[q].ready = false;
    }
    l->pending_end = false;
    l->paused = false;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    return r;
}

int loader_epoch(const loader *l) {
    long g = l->cons_g;
    return l->e0 + (int)(g / l->nb);
}

static void release_held(loader *l);

/* at the very start of `epoch` already: nothing to restart (prefetched batches are kept) */
static bool at_start_of(loader *l, int epoch) {
    release_held(l);
    if (loader_epoch(l) != epoch || l->cons_g % l->nb != 0) return false;
    l->pending_end = false;
    return true;
}

int loader_set_epoch(loader *l, int epoch) {
    if (epoch < 0) return sn_error("loader: epoch %d < 0", epoch);
    if (at_start_of(l, epoch)) return 0;
    return restart(l, epoch, l->o.size);
}

int loader_set_size(loader *l, int size) {
    if (size < 8 || size > 4096) return sn_error("loader: image size %d out of range (8..4096)", size);
    if (size == l->o.size && at_start_of(l, loader_epoch(l))) return 0;
    return restart(l, loader_epoch(l), size);
}

/* gives the held slot back to the workers */
static void release_held(loader *l) {
    if (l->held < 0) return;
    pthread_mutex_lock(&l->mu);
    l->slots[l->held].ready = false;
    l->cons_g++;
    l->held = -1;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
}

int loader_next_view(loader *l, const float **x, const int **y, const float **t) {
    release_held(l);
    if (l->pending_end) {
        l->pending_end = false;
        return 0;
    }
    const int S = l->o.size;
    long g = l->cons_g;
    int epoch = l->e0 + (int)(g / l->nb), b = (int)(g % l->nb), n;
    if (l->n_th == 0) {
        if (S > l->sync_cap) {
            free(l->sync_x);
            l->sync_x = malloc(sizeof(float) * (size_t)l->o.batch * S * S * 3);
            l->sync_cap = l->sync_x ? S : 0;
            if (!l->sync_x) return sn_error("out of memory for a batch of %d images of %dx%d", l->o.batch, S, S);
        }
        char msg[512];
        n = prepare(l, epoch_order(l, epoch), epoch, b, S, l->sync_x, l->sync_y, l->sync_t, msg, sizeof msg);
        if (n < 0) return sn_error("%s", msg);
        l->cons_g++;
        *x = l->sync_x;
        if (y) *y = l->sync_y;
        if (t) *t = l->sync_t;
    } else {
        pthread_mutex_lock(&l->mu);
        slot *s = &l->slots[g % l->Q];
        while (!(s->ready && s->g == g)) pthread_cond_wait(&l->cv_ready, &l->mu);
        pthread_mutex_unlock(&l->mu);
        if (s->failed) return sn_error("%s", s->msg); /* the batch stays failed: the caller decides */
        n = s->n;
        l->held = (int)(g % l->Q);
        *x = s->x;
        if (y) *y = s->y;
        if (t) *t = s->t;
    }
    if (b == l->nb - 1) l->pending_end = true;
    return n;
}

int loader_next(loader *l, float *x, int *y, float *t) {
    const float *vx, *vt;
    const int *vy;
    int n = loader_next_view(l, &vx, &vy, &vt);
    if (n <= 0) return n;
    const int S = l->o.size;
    memcpy(x, vx, sizeof(float) * (size_t)n * S * S * 3);
    if (y) memcpy(y, vy, sizeof(int) * (size_t)n);
    if (t) memcpy(t, vt, sizeof(float) * (size_t)n * l->ds->n_classes);
    release_held(l);
    return n;
}

void loader_free(loader *l) {
    if (!l) return;
    if (l->n_th > 0) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
        for (int k = 0; k < l->n_th; k++) pthread_join(l->th[k], NULL);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_work);
    pthread_cond_destroy(&l->cv_ready);
    for (int q = 0; l->slots && q < l->Q; q++) {
        free(l->slots[q].x);
        free(l->slots[q].y);
        free(l->slots[q].t);
    }
    free(l->slots);
    free(l->th);
    free(l->sync_x);
    free(l->sync_y);
    free(l->sync_t);
    free(l->idx);
    free(l->perm[0]);
    free(l->perm[1]);
    matte_cache_free(l->mattes);
    free(l);
}
