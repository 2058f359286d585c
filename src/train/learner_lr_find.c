/* learner_lr_find.c - the LR finder: an exponential sweep of the rate over mini-batches, with
 * the weights and optimiser state restored afterwards (see learner.h, learner_lr_find). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "io/plot.h"
#include "train/learner_internal.h"
#include "train/schedule.h"

double learner_lr_find(learner *l, int size, double start, double end, int n, const char *png) {
    return learner_lr_find_info(l, size, start, end, n, png, NULL);
}

/* the recorded sweep */
typedef struct {
    double start, end;
    int n;                   /* iterations asked */
    double *lrs, *losses, *sm; /* [n]: rate, loss, smoothed loss */
    long count;              /* iterations run */
    bool diverged;
} sweep;

/* runs the sweep: up to s->n steps, epoch after epoch of the training images, until the loss
 * diverges; 0, or -1 */
static int run_sweep(learner *l, sweep *s, int size, bool cached, int *perm, double t0) {
    const int B = l->o.batch, nt = l->split.n_train;
    long per_epoch = learner_batches(l);
    if (per_epoch < 0) return -1;
    for (int ep = 0; s->count < s->n && !s->diverged; ep++) {
        const long before = s->count;
        loader *ld = NULL;
        if (cached) learner_epoch_perm(l->o.seed ^ 0x1f1d, ep, perm, nt);
        else if (!(ld = learner_loader(l, &l->train_plain, l->split.train, nt, false, true, size, 500000 + ep)))
            return -1;
        for (int b = 0; b < per_epoch && s->count < s->n; b++) {
            double lr = sched_lr_sweep(s->start, s->end, s->count, s->n);
            optim_set_lr(l->opt, (float)lr);
            int got = B, lo;
            if (cached) { /* this process's share of the batch */
                learner_dist_share(l, B, &lo, &got);
                learner_cached_batch(l, perm, (long)b * B + lo, got);
            } else if ((got = loader_next(ld, l->x, l->y, l->t)) <= 0) {
                if (got < 0) return -1;
                break;
            }
            float loss;
            if (learner_train_step(l, got, cached, &loss) < 0) return -1;
            s->lrs[s->count] = lr;
            s->losses[s->count] = isfinite(loss) ? loss : INFINITY;
            s->count++;
            learner_report_progress(l, "lr_find", (int)s->count, s->n, t0, (int)s->count * B);
            if (!isfinite(loss)) s->diverged = true;
            if (s->count > 10) { /* stop early once the smoothed loss has clearly diverged */
                long st, mi, stop = sched_lr_find_analyse(s->lrs, s->losses, s->count, s->sm, &st, &mi);
                if (stop < s->count) s->diverged = true;
            }
            if (s->diverged) break;
        }
        if (ld)
            while (loader_next(ld, l->x, NULL, NULL) > 0) {}
        if (s->count == before) break; /* no batch in a whole epoch */
    }
    return 0;
}

/* the suggestion from the sweep, its row in the history and the plot; the suggestion or -1 */
static double conclude(learner *l, const sweep *s, const char *png, lr_find_info *info) {
    long steep, mi, stop = sched_lr_find_analyse(s->lrs, s->losses, s->count, s->sm, &steep, &mi);
    if (stop < 2) {
        sn_error("LR finder: the loss diverged at once (rate %g, loss %g): lower the start of the sweep", s->start,
                 s->count ? s->losses[0] : NAN);
        return -1;
    }
    double sug = s->lrs[mi] / 10;
    if (s->lrs[steep] < sug) sug = s->lrs[steep];
    if (info) {
        info->suggestion = sug;
        info->min_lr = s->lrs[mi];
        info->steepest_lr = s->lrs[steep];
        info->min_loss = s->sm[mi];
        info->last_lr = s->lrs[s->count - 1];
        info->iters = (int)s->count;
        info->kept = (int)stop;
        info->diverged = s->diverged;
    }
    cJSON *row = cJSON_CreateObject();
    cJSON_AddItemToObject(row, "lr_find_lr", cJSON_CreateDoubleArray(s->lrs, (int)stop));
    cJSON_AddItemToObject(row, "lr_find_loss", cJSON_CreateDoubleArray(s->sm, (int)stop));
    cJSON_AddNumberToObject(row, "lr_find_suggestion", sug);
    cJSON_AddNumberToObject(row, "lr_find_min", s->lrs[mi]);
    cJSON_AddNumberToObject(row, "lr_find_steepest", s->lrs[steep]);
    if (learner_log(l, row, true) < 0) return -1;
    if (png && learner_writes(l)) {
        plot_series ps = {.label = "smoothed loss", .x = s->lrs, .y = s->sm, .n = (int)stop, .r = 0.1, .g = 0.3, .b = 0.8};
        char lab[64];
        snprintf(lab, sizeof lab, "suggested %.2g", sug);
        plot_opts po = {.title = "Learning-rate finder", .xlabel = "learning rate (log scale)",
                        .ylabel = "training loss (smoothed)", .logx = true, .has_marker = true, .marker_x = sug,
                        .marker_label = lab};
        if (plot_lines(png, &po, &ps, 1) < 0) return -1;
    }
    return sug;
}

double learner_lr_find_info(learner *l, int size, double start, double end, int n, const char *png, lr_find_info *info) {
    double t0 = learner_now();
    if (info) memset(info, 0, sizeof *info);
    if (!(start > 0) || !(end > start) || n < 2) {
        sn_error("LR finder: the sweep needs 0 < start < end and at least 2 iterations (%g .. %g, %d)", start, end, n);
        return -1;
    }
    net *m = l->net;
    bool frozen = m->n_params > 0 && m->params[0].frozen;
    const bool cached = frozen && l->cache_node >= 0;
    if (learner_ensure_buffers(l, size) < 0) return -1;
    if (cached && learner_ensure_features(l, size) < 0) return -1;
    /* save what the sweep will change */
    float *w = malloc(sizeof(float) * m->n_floats);
    optim *saved = optim_clone(l->opt);
    sweep s = {.start = start, .end = end, .n = n, .lrs = malloc(sizeof(double) * n),
               .losses = malloc(sizeof(double) * n), .sm = malloc(sizeof(double) * n)};
    int *perm = malloc(sizeof(int) * ((size_t)l->split.n_train + 1));
    uint64_t step = m->step;
    double result = -1;
    if (!w || !saved || !s.lrs || !s.losses || !s.sm || !perm) {
        sn_error("out of memory");
        goto done;
    }
    memcpy(w, m->data, sizeof(float) * m->n_floats);
    if (run_sweep(l, &s, size, cached, perm, t0) < 0) goto done;
    if (l->o.progress && l->o.events && l->o.events->progress) {
        learner_progress_event pe = {.what = "lr_find", .done = (int)s.count, .total = n, .images = (int)s.count * l->o.batch,
                                     .seconds = learner_now() - t0, .end = true};
        l->o.events->progress(l->o.events->ctx, &pe);
    }
    result = conclude(l, &s, png, info);
done:
    if (w) memcpy(m->data, w, sizeof(float) * m->n_floats);
    if (saved) optim_copy_state(l->opt, saved);
    m->step = step;
    free(w); free(s.lrs); free(s.losses); free(s.sm); free(perm);
    optim_free(saved);
    l->seconds += learner_now() - t0;
    return result;
}
