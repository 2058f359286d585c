/* bench_net.c - whole-network speed and memory of stylenet: a training step or an inference pass
 * of a zoo model on synthetic data, timed per iteration.  bench/bench_net_torch.py does the same
 * work in PyTorch; bench/run.py runs both and compares.
 *
 * Usage: bench_net MODE ARCH SIZE BATCH [--threads N] [--iters K] [--warmup W] [--seed S] [--no-mallopt]
 *                  [--unprepared]
 *   MODE  train  one training step of the trainer itself (learner_step, src/train/learner_step.c):
 *                net_forward in training mode (batch norm on batch statistics, dropout on),
 *                softmax cross-entropy on the 1000 logits, net_zero_grad, net_backward, and an
 *                AdamW update of every parameter (lr 1e-3, wd 1e-2, betas 0.9/0.99, eps 1e-8:
 *                the learner's optimiser and defaults)
 *         infer  net_forward in eval mode of the net prepared for inference (net_prepare_inference:
 *                batch norm folded, fused passes, weights frozen), as predict, eval, serve and the
 *                library run it; with --unprepared, of the net itself (running statistics, no
 *                dropout) with its weights frozen (net_freeze_weights)
 *         idle   nothing: the resident memory of a process with OpenMP's threads started
 *   ARCH  resnet18 | resnet34 | resnet50 | mobilenet_v2 (torchvision's graph, 1000 classes)
 *   --threads N  OpenMP threads (omp_set_num_threads; default 2)
 *   --iters K    timed iterations (default 10); --warmup W untimed ones before (default 3)
 * Input: one fixed batch of standard-normal pixels [BATCH, SIZE, SIZE, 3] and uniform random
 * labels in [0, 1000), from --seed (default 1).
 *
 * Guard (train): the warm-up steps (at least 3) train on that batch; their losses must be finite
 * and the last below the first, else nothing is timed and the exit status is 1 -- a broken
 * training path is never benchmarked.
 *
 * Output: progress and the guard's losses on stderr; one JSON object on stdout:
 *   {"side":"stylenet", "mode", "arch", "size", "batch", "threads", "warmup", "iters",
 *    "times": [seconds of each timed iteration], "cpu_times": [CPU seconds of each, all threads],
 *    "median_s", "median_cpu_s", "images_per_s" (from median_s),
 *    "fwd_flops_per_image" (2 x multiply-adds of the convolutions and linear layers, net_macs),
 *    "losses": [warm-up losses] (train), "peak_rss_kb" (getrusage ru_maxrss at the end)}
 * OpenMP and memory are set up as the stylenet CLI sets them up (sn_openmp_setup, and the same
 * mallopt as src/cli/main.c);
 * --no-mallopt leaves glibc's default thresholds (to see what that retention costs in peak RSS).
 */
#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "core/error.h"
#include "core/openmp.h"
#include "core/rng.h"
#include "kernels/loss.h"
#include "models/zoo.h"
#include "nn/net.h"
#include "nn/net_infer.h"
#include "train/learner.h"
#include "train/optim.h"

#define N_CLASSES 1000

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* seconds of CPU time used by all threads of the process: on a machine shared with other work
 * it counts the work done, where wall time also counts the waits for a core */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long peak_rss_kb(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_net train|infer|idle ARCH SIZE BATCH [--threads N] [--iters K] [--warmup W] "
                    "[--seed S] [--no-mallopt] [--unprepared]\n  ARCH: %s\n",
            model_known_archs());
    return 2;
}

/* a positive integer argument, or -1 */
static int parse_pos(const char *s, const char *what) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > 100000) {
        fprintf(stderr, "bench_net: %s must be a positive integer, got '%s'\n", what, s);
        return -1;
    }
    return (int)v;
}

/* the loss of the benchmark's step: softmax cross-entropy against the labels ctx */
static float ce_loss(void *ctx, int n, const float *logits, float *dl) {
    return loss_softmax_ce(n, N_CLASSES, logits, ctx, dl);
}

/* the guard: the warm-up losses are finite and the last is below the first */
static bool guard_ok(const float *losses, int warmup) {
    bool finite = true;
    for (int k = 0; k < warmup; k++) finite = finite && isfinite(losses[k]);
    if (finite && losses[warmup - 1] < losses[0]) return true;
    fprintf(stderr,
            "bench_net: guard failed: the training loss on the fixed batch must be finite and decrease "
            "over the %d warm-up steps (first %g, last %g); not benchmarking a broken path\n",
            warmup, losses[0], losses[warmup - 1]);
    return false;
}

static void print_times(const double *t, int n) {
    printf("[");
    for (int i = 0; i < n; i++) printf("%s%.6f", i ? ", " : "", t[i]);
    printf("]");
}

int main(int argc, char **argv) {
    sn_openmp_setup(argv); /* as the CLI runs (core/openmp.h) */
    if (argc < 5) return usage();
    const char *mode = argv[1], *arch = argv[2];
    bool train = !strcmp(mode, "train"), infer = !strcmp(mode, "infer"), idle = !strcmp(mode, "idle");
    if (!train && !infer && !idle) {
        fprintf(stderr, "bench_net: unknown mode '%s' (train, infer or idle)\n", mode);
        return usage();
    }
    int size = parse_pos(argv[3], "SIZE"), batch = parse_pos(argv[4], "BATCH");
    int threads = 2, iters = 10, warmup = 3, seed = 1;
    bool cli_malloc = true, unprepared = false;
    if (size < 0 || batch < 0) return 2;
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "--no-mallopt")) {
            cli_malloc = false;
            continue;
        }
        if (!strcmp(argv[i], "--unprepared")) {
            unprepared = true;
            continue;
        }
        int *dst = !strcmp(argv[i], "--threads") ? &threads
                   : !strcmp(argv[i], "--iters") ? &iters
                   : !strcmp(argv[i], "--warmup") ? &warmup
                   : !strcmp(argv[i], "--seed") ? &seed
                                                 : NULL;
        if (!dst || i + 1 >= argc) {
            fprintf(stderr, "bench_net: unknown option or missing value: '%s'\n", argv[i]);
            return usage();
        }
        if ((*dst = parse_pos(argv[i + 1], argv[i])) < 0) return 2;
        i++;
    }
    if (cli_malloc) { /* as src/cli/main.c: freed kernel workspaces stay in the process */
        mallopt(M_MMAP_THRESHOLD, 512 << 20);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
    }
    omp_set_num_threads(threads);

    if (idle) {
        int started = 0;
#pragma omp parallel reduction(+ : started)
        started += 1;
        printf("{\"side\": \"stylenet\", \"mode\": \"idle\", \"threads\": %d, \"peak_rss_kb\": %ld}\n", started,
               peak_rss_kb());
        return 0;
    }

    model_opts mo = model_default_opts();
    mo.in_h = mo.in_w = size;
    net *m = model_build(arch, N_CLASSES, &mo);
    if (m && infer && !unprepared) { /* as predict, eval, serve and the library do after loading a model */
        net *p = net_prepare_inference(m);
        net_free(m);
        m = p;
    }
    if (!m) {
        fprintf(stderr, "bench_net: %s\n", sn_last_error());
        return 1;
    }
    size_t X = (size_t)batch * size * size * 3;
    float *x = sn_alloc(X * sizeof(float), "input batch");
    float *dl = sn_alloc((size_t)batch * N_CLASSES * sizeof(float), "loss gradient");
    int *y = malloc(sizeof(int) * (size_t)batch);
    optim *opt = train ? optim_create(m, OPT_ADAMW, 1e-3f, 1e-2f) : NULL;
    if (!x || !dl || !y || (train && !opt) || net_set_batch(m, batch) < 0) {
        fprintf(stderr, "bench_net: %s x %d at %dx%d: %s\n", arch, batch, size, size, sn_last_error());
        return 1;
    }
    if (infer && unprepared) net_freeze_weights(m);
    for (size_t i = 0; i < X; i++) x[i] = rng_normal((uint64_t)seed, 0x78, i);
    for (int i = 0; i < batch; i++) y[i] = (int)(rng_u64((uint64_t)seed, 0x79, (uint64_t)i) % N_CLASSES);

    if (train && warmup < 3) warmup = 3;
    double *times = malloc(sizeof(double) * (size_t)iters), *sorted = malloc(sizeof(double) * (size_t)iters);
    double *cpu = malloc(sizeof(double) * (size_t)iters);
    float *losses = malloc(sizeof(float) * (size_t)(warmup + iters));
    if (!times || !sorted || !cpu || !losses) {
        fprintf(stderr, "bench_net: out of memory\n");
        return 1;
    }
    fprintf(stderr, "bench_net: %s %s %dx%d batch %d, %d threads, %d warm-up + %d timed\n", mode, arch, size, size,
            batch, threads, warmup, iters);
    for (int it = 0; it < warmup + iters; it++) {
        double t0 = now(), c0 = cpu_now();
        if (train) { /* the trainer's step */
            const learner_loss loss = {.fn = ce_loss, .ctx = y, .dl = dl};
            if (learner_step(m, opt, x, 0, batch, &loss, &losses[it]) < 0) {
                fprintf(stderr, "bench_net: training step: %s\n", sn_last_error());
                return 1;
            }
        } else {
            const float *logits = net_forward(m, x, false);
            if (!logits) {
                fprintf(stderr, "bench_net: forward: %s\n", sn_last_error());
                return 1;
            }
            if (!isfinite(logits[0])) {
                fprintf(stderr, "bench_net: %s inference gives a non-finite logit\n", arch);
                return 1;
            }
        }
        double t = now() - t0;
        if (it >= warmup) times[it - warmup] = t, cpu[it - warmup] = cpu_now() - c0;
        if (train && it < warmup) fprintf(stderr, "bench_net: warm-up step %d loss %.4f\n", it + 1, losses[it]);
        if (train && it == warmup - 1 && !guard_ok(losses, warmup)) return 1;
    }
    memcpy(sorted, times, sizeof(double) * (size_t)iters);
    qsort(sorted, (size_t)iters, sizeof(double), cmpd);
    double med = iters % 2 ? sorted[iters / 2] : 0.5 * (sorted[iters / 2 - 1] + sorted[iters / 2]);
    memcpy(sorted, cpu, sizeof(double) * (size_t)iters);
    qsort(sorted, (size_t)iters, sizeof(double), cmpd);
    double med_cpu = iters % 2 ? sorted[iters / 2] : 0.5 * (sorted[iters / 2 - 1] + sorted[iters / 2]);
    printf("{\"side\": \"stylenet\", \"mode\": \"%s\", \"arch\": \"%s\", \"size\": %d, \"batch\": %d, \"threads\": %d, "
           "\"warmup\": %d, \"iters\": %d, \"times\": ",
           mode, arch, size, batch, threads, warmup, iters);
    print_times(times, iters);
    printf(", \"cpu_times\": ");
    print_times(cpu, iters);
    printf(", \"median_s\": %.6f, \"median_cpu_s\": %.6f, \"images_per_s\": %.3f, \"fwd_flops_per_image\": %.0f", med,
           med_cpu, batch / med,
           2.0 * net_macs(m));
    if (train) {
        printf(", \"losses\": [");
        for (int k = 0; k < warmup; k++) printf("%s%.5f", k ? ", " : "", losses[k]);
        printf("]");
    }
    printf(", \"mallopt\": %s%s, \"peak_rss_kb\": %ld}\n", cli_malloc ? "true" : "false",
           infer ? (unprepared ? ", \"prepared\": false" : ", \"prepared\": true") : "", peak_rss_kb());
    free(times), free(sorted), free(cpu), free(losses), free(y);
    sn_free(x), sn_free(dl);
    optim_free(opt);
    net_free(m);
    return 0;
}
