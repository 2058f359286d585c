/* schedule.c - SGDR, one-cycle, LR sweep (see schedule.h). */
#include "train/schedule.h"
#include <math.h>

static const double PI = 3.14159265358979323846;

int sched_sgdr_epochs(int cycles, int cycle_len, int cycle_mult) {
    int total = 0, len = cycle_len;
    for (int c = 0; c < cycles; c++, len *= cycle_mult) total += len;
    return total;
}

double sched_sgdr_factor(const sgdr_params *p, long it, long iters_per_epoch) {
    long len = (long)p->cycle_len * iters_per_epoch, start = 0;
    if (len <= 0) return 1.0;
    while (it >= start + len) {
        start += len;
        len *= p->cycle_mult > 0 ? p->cycle_mult : 1;
    }
    double t = (double)(it - start) / (double)len;
    return p->floor + (1.0 - p->floor) * (1.0 + cos(PI * t)) / 2.0;
}

onecycle_params sched_onecycle_defaults(void) {
    return (onecycle_params){.pct_start = 0.3f, .div = 25.0f, .final_div = 1e4f, .mom_max = 0.95f, .mom_min = 0.85f};
}

/* cosine from a to b as t goes 0 -> 1 */
static double cos_anneal(double a, double b, double t) { return b + (a - b) * (1.0 + cos(PI * t)) / 2.0; }

double sched_onecycle_factor(const onecycle_params *p, long it, long total) {
    long up = (long)(p->pct_start * total);
    if (up < 1) up = 1;
    if (it < up) return cos_anneal(1.0 / p->div, 1.0, (double)it / up);
    long down = total - up;
    double t = down > 0 ? (double)(it - up) / down : 1.0;
    return cos_anneal(1.0, 1.0 / (p->div * p->final_div), t > 1 ? 1 : t);
}

double sched_onecycle_momentum(const onecycle_params *p, long it, long total) {
    long up = (long)(p->pct_start * total);
    if (up < 1) up = 1;
    if (it < up) return cos_anneal(p->mom_max, p->mom_min, (double)it / up);
    long down = total - up;
    double t = down > 0 ? (double)(it - up) / down : 1.0;
    return cos_anneal(p->mom_min, p->mom_max, t > 1 ? 1 : t);
}

double sched_lr_sweep(double start, double end, long it, long n) {
    if (n <= 1) return start;
    return start * pow(end / start, (double)it / (double)(n - 1));
}

long sched_lr_find_analyse(const double *lrs, const double *losses, long n, double *smooth, long *steep, long *min_i) {
    const double beta = 0.98;
    double avg = 0, best = INFINITY;
    long stop = n;
    *steep = 0;
    *min_i = 0;
    for (long i = 0; i < n; i++) {
        avg = beta * avg + (1 - beta) * losses[i];
        smooth[i] = avg / (1 - pow(beta, (double)(i + 1)));
        if (!isfinite(smooth[i]) || (i > 0 && smooth[i] > 4 * best)) {
            stop = i;
            break;
        }
        if (smooth[i] < best) {
            best = smooth[i];
            *min_i = i;
        }
    }
    /* steepest descent: most negative d(smooth)/d(log lr), skipping the first and last 10% */
    double most = INFINITY;
    long lo = stop / 10, hi = stop - stop / 10;
    if (hi - lo < 2) {
        lo = 0;
        hi = stop;
    }
    for (long i = lo + 1; i < hi; i++) {
        double d = (smooth[i] - smooth[i - 1]) / (log(lrs[i]) - log(lrs[i - 1]));
        if (d < most) {
            most = d;
            *steep = i;
        }
    }
    return stop;
}
