/* schedule.h - learning-rate (and momentum) schedules as pure functions of the iteration.
 *
 * All take the position in the run as (iteration, total iterations) and return a multiplier or
 * a rate, so resuming a run at iteration i gives exactly the schedule of an uninterrupted run.
 *
 * - SGDR (cosine annealing with warm restarts, Loshchilov & Hutter; fastai's cycle_len and
 *   cycle_mult): cycles of cycle_len * mult^k epochs; inside a cycle the rate falls from the
 *   peak to the floor along half a cosine: lr = floor + (peak - floor) * (1 + cos(pi * t/T)) / 2.
 *   sched_sgdr_epochs(cycles, len, mult) gives the total epochs (3 cycles of 1, 2, 4 = 7).
 * - One-cycle (fastai v1 fit_one_cycle): rate rises from peak/div to peak over pct_start of the
 *   run, then falls to peak/(div*final_div), both on cosines; momentum (beta1) moves the other
 *   way, from mom_max to mom_min and back.
 * - LR finder sweep: exponential from start to end over n iterations (fastai: 1e-7 .. 10, 100).
 */
#ifndef STYLENET_SCHEDULE_H
#define STYLENET_SCHEDULE_H

typedef struct {
    int cycle_len;   /* epochs in the first cycle */
    int cycle_mult;  /* each next cycle is this many times longer */
    float floor;     /* lowest multiplier of the peak (0 as fastai 0.7) */
} sgdr_params;

/* multiplier in [floor, 1] at iteration it of an SGDR run with iters_per_epoch */
double sched_sgdr_factor(const sgdr_params *p, long it, long iters_per_epoch);
int sched_sgdr_epochs(int cycles, int cycle_len, int cycle_mult);

typedef struct {
    float pct_start;  /* 0.3 */
    float div;        /* 25 */
    float final_div;  /* 1e4 */
    float mom_max, mom_min; /* 0.95, 0.85 */
} onecycle_params;

onecycle_params sched_onecycle_defaults(void);
/* multiplier of the peak rate, and the momentum, at iteration it of total */
double sched_onecycle_factor(const onecycle_params *p, long it, long total);
double sched_onecycle_momentum(const onecycle_params *p, long it, long total);

/* exponential sweep: start * (end/start)^(it/(n-1)) */
double sched_lr_sweep(double start, double end, long it, long n);

/* LR-finder analysis of a recorded sweep (lrs[i], losses[i], i < n): exponentially smoothed
 * losses (beta 0.98, debiased, as fastai) into smooth[]; returns the index where the sweep
 * should stop (first i with smooth > 4 * min so far, or n); *steep = index of the steepest
 * descent of the smoothed loss (fastai v1's suggestion) and *min_i = index of its minimum;
 * the usual pick is lrs[min_i] / 10 or lrs[steep]. */
long sched_lr_find_analyse(const double *lrs, const double *losses, long n, double *smooth, long *steep, long *min_i);
#endif
