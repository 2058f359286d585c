/* predictor.c - a pool of inference workers sharing one model's weights (see predictor.h). */
#include "serve/predictor.h"
#include <errno.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/error.h"
#include "io/image.h"

struct predictor {
    pred_pool *pool;
    net *net;      /* shares pool->model's parameters; owns its node list and activations */
    float *x;      /* one input image, S*S*3 */
    float *prob;   /* one view's probabilities */
    predictor *next_free;
};

struct pred_pool {
    const classifier *model;
    pred_opts o;
    int n;
    predictor *workers;
    predictor *free_list;
    int busy, waiting;
    bool stopping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

pred_opts pred_defaults(void) {
    return (pred_opts){.max_pixels = 25000000, .max_views = 4, .max_waiting = 16, .wait_ms = 30000,
                       .compute_threads = 1, .seed = 42};
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* A worker's net shares the model's parameters (net_share) and has activation buffers of its
 * own, sized for one image. */
static net *share_net(const net *src) {
    net *c = net_share(src);
    if (c && net_set_batch(c, 1) < 0) {
        net_free(c);
        return NULL;
    }
    return c;
}

static void free_shared_net(net *c) { net_free(c); }

pred_pool *pred_pool_create(const classifier *m, int n_workers, const pred_opts *o) {
    if (n_workers < 1 || n_workers > 1024) {
        sn_error("inference workers: %d (1 to 1024)", n_workers);
        return NULL;
    }
    pred_pool *p = calloc(1, sizeof *p);
    if (!p) {
        sn_error("out of memory");
        return NULL;
    }
    p->model = m;
    p->o = o ? *o : pred_defaults();
    if (p->o.max_views < 0) p->o.max_views = 0;
    if (p->o.max_views > PRED_MAX_VIEWS) p->o.max_views = PRED_MAX_VIEWS;
    if (p->o.compute_threads < 1) p->o.compute_threads = 1;
    if (p->o.max_waiting < 0) p->o.max_waiting = 0;
    p->n = n_workers;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->workers = calloc((size_t)n_workers, sizeof(predictor));
    if (!p->workers) {
        sn_error("out of memory");
        pred_pool_free(p);
        return NULL;
    }
    const size_t S = (size_t)m->size;
    for (int i = 0; i < n_workers; i++) {
        predictor *w = &p->workers[i];
        w->pool = p;
        w->net = share_net(m->net);
        w->x = sn_alloc(sizeof(float) * S * S * 3, "an input image");
        w->prob = sn_alloc(sizeof(float) * (size_t)m->n_classes, "probabilities");
        if (!w->net || !w->x || !w->prob) {
            pred_pool_free(p);
            return NULL;
        }
        if (net_out_size(w->net) != (size_t)m->n_classes) {
            sn_error("the network has %zu outputs but the model %d classes", net_out_size(w->net), m->n_classes);
            pred_pool_free(p);
            return NULL;
        }
        w->next_free = p->free_list;
        p->free_list = w;
    }
    return p;
}

void pred_pool_free(pred_pool *p) {
    if (!p) return;
    for (int i = 0; p->workers && i < p->n; i++) {
        free_shared_net(p->workers[i].net);
        sn_free(p->workers[i].x);
        sn_free(p->workers[i].prob);
    }
    free(p->workers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

void pred_pool_shutdown(pred_pool *p) {
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

predictor *pred_acquire(pred_pool *p) {
    pthread_mutex_lock(&p->mu);
    predictor *w = NULL;
    if (!p->free_list && !p->stopping && p->waiting < p->o.max_waiting) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += p->o.wait_ms / 1000;
        until.tv_nsec += (long)(p->o.wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        p->waiting++;
        int r = 0;
        while (!p->free_list && !p->stopping && r != ETIMEDOUT) r = pthread_cond_timedwait(&p->cv, &p->mu, &until);
        p->waiting--;
    }
    if (p->free_list && !p->stopping) {
        w = p->free_list;
        p->free_list = w->next_free;
        p->busy++;
    }
    pthread_mutex_unlock(&p->mu);
    return w;
}

void pred_release(pred_pool *p, predictor *w) {
    if (!w) return;
    pthread_mutex_lock(&p->mu);
    w->next_free = p->free_list;
    p->free_list = w;
    p->busy--;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void pred_pool_load(pred_pool *p, int *busy, int *waiting, int *workers) {
    pthread_mutex_lock(&p->mu);
    if (busy) *busy = p->busy;
    if (waiting) *waiting = p->waiting;
    if (workers) *workers = p->n;
    pthread_mutex_unlock(&p->mu);
}

int pred_run_image(predictor *w, image *im, int views, float *probs, double ms[2]) {
    pred_pool *p = w->pool;
    if (views < 0 || views > p->o.max_views) {
        image_free(im);
        sn_error("%d test-time augmentation views asked for, at most %d", views, p->o.max_views);
        return PRED_INTERNAL;
    }
    int old_threads = omp_get_max_threads();
    omp_set_num_threads(p->o.compute_threads);
    int rc = classifier_image_probs(p->model, w->net, im, views, p->o.seed, w->x, w->prob, probs, ms);
    omp_set_num_threads(old_threads);
    return rc < 0 ? PRED_INTERNAL : PRED_OK;
}

int pred_run(predictor *w, const void *bytes, size_t n, const char *name, int views, float *probs, pred_info *info) {
    pred_pool *p = w->pool;
    pred_info inf = {0};
    double t0 = now_ms();
    int iw, ih;
    if (image_peek_size(bytes, n, &iw, &ih) == 0 && (long long)iw * ih > p->o.max_pixels) {
        sn_error("%s: image of %dx%d pixels is larger than this server accepts (%ld pixels)", name, iw, ih,
                 p->o.max_pixels);
        return PRED_TOO_LARGE;
    }
    image im;
    if (image_decode(bytes, n, name, &im) < 0) return PRED_BAD_IMAGE;
    inf.width = im.w;
    inf.height = im.h;
    inf.decode_ms = now_ms() - t0; /* decoding, and below each view's crop, resize, normalisation */
    double ms[2];
    int rc = pred_run_image(w, &im, views, probs, ms);
    if (rc != PRED_OK) return rc;
    inf.decode_ms += ms[0];
    inf.compute_ms = ms[1];
    if (info) *info = inf;
    return PRED_OK;
}
