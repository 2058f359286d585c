/* test_dist.c - data-parallel training under mpirun (src/dist/, train/learner_dist.c), on a
 * 4-class set of 48 Style photos with a random-init resnet18 at 32x32 (seconds per run):
 *   - same result: `mpirun -np 2` and `-np 4` with --sync-bn end with the weights of the
 *     single-process run within 2 * lr * steps (see ranks_result) and the same validation
 *     metrics to 3 decimals;
 *   - a run of 2 ranks stopped after its first epoch resumes on 1 process (--resume with another
 *     N) and ends where the single-process run does, within the same tolerance;
 *   - a rank killed with SIGKILL ends the whole job within seconds with a message naming the
 *     rank; the checkpoint written before is whole, and --resume continues from it;
 *   - two ranks in two network namespaces joined by a veth pair, TCP forced (btl tcp,self on the
 *     veth): the run completes and the traffic crossed the veth.
 * Without MPI in the build, or without mpirun, those cases print a SKIP note and check nothing;
 * one_process then checks the single-process side (rank 0 of 1, and a build without MPI refusing
 * to be one of several ranks).  netns_tcp prints SKIP when namespaces cannot be made. */
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "../common/check.h"
#include "dist/dist.h"
#include "io/safetensors.h"

static char out[1 << 16];
static const char *bin;
static char dir[64];
#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

/* lr 1e-3 over 2 epochs of 2 batches of 16 (38 training photos): 4 AdamW steps */
static const char *common = "--recipe scratch --arch resnet18 --size 32 --epochs 2 --batch 16 --seed 7 --threads 1 "
                            "--tta 0 --no-calibrate --lr 0.001 --quiet";
static const double LR = 1e-3;
static const int STEPS = 4;
#define MPIRUN "mpirun -np 2 --allow-run-as-root --oversubscribe"

static const char *at(const char *name) { return path_in(dir, name); }
static void remove_dir(void) { run("rm -rf %s", dir); }

/* the temporary folder with 12 photos of each of 4 products in class folders; false: skip */
static bool setup(void) {
    static int state; /* 0 not yet, 1 ready, -1 skip or failed */
    if (state) return state > 0;
    state = -1;
    if (!dist_built()) {
        note("SKIP: stylenet is built without MPI (install libopenmpi-dev, openmpi-bin and rebuild)");
        return false;
    }
    if (run("command -v mpirun") != 0) {
        note("SKIP: no mpirun (Debian's openmpi-bin)");
        return false;
    }
    bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    /* under ASan the ranks' leak report must see Open MPI's own allocations through its frames
     * (tests/lsan.supp names its libraries): the fast unwinder stops at their first frame */
    if (ASAN) setenv("ASAN_OPTIONS", "fast_unwind_on_malloc=0", 0);
    snprintf(dir, sizeof dir, "/tmp/stylenet_dist_XXXXXX");
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return false;
    atexit(remove_dir);
    char style[4096];
    if (!realpath(shared_path("data/style"), style)) { /* absolute: the copy runs in dir */
        check(false, "the Style set at %s", shared_path("data/style"));
        return false;
    }
    int rc = run("cd %s && for p in 0 1 2 3; do mkdir -p data/p$p; ls %s | grep \"^[0-9]*_${p}_\" | head -12 | "
                 "while read f; do cp %s/$f data/p$p/; done; done; find data -name '*.png' | wc -l",
                 dir, style, style);
    if (!check(rc == 0 && atoi(out) == 48, "a 4-class set of 48 Style photos (%s)", flat_tail(out, 200))) return false;
    state = 1;
    return true;
}

/* max |a - b| over every tensor of two model files, and max |b|; false if they cannot be read
 * or their tensors differ in names or sizes */
static bool weights_diff(const char *a, const char *b, double *err, double *scale) {
    st_file *fa = st_open(a), *fb = st_open(b);
    bool ok = fa && fb && st_count(fa) == st_count(fb);
    *err = *scale = 0;
    for (size_t i = 0; ok && i < st_count(fa); i++) {
        const st_tensor *t = st_tensor_at(fa, i), *u = st_find(fb, t->name);
        if (!u || u->nbytes != t->nbytes || t->dtype != u->dtype) {
            ok = false;
            break;
        }
        if (t->dtype != ST_F32) { /* counters (num_batches_tracked): equal */
            ok = memcmp(t->data, u->data, t->nbytes) == 0;
            continue;
        }
        const float *x = (const float *)t->data, *y = (const float *)u->data;
        for (size_t k = 0; k < t->nbytes / 4; k++) {
            double d = fabs((double)x[k] - y[k]);
            if (d > *err || isnan(d)) *err = isnan(d) ? INFINITY : d;
            if (fabs(y[k]) > *scale) *scale = fabs(y[k]);
        }
    }
    st_close(fa);
    st_close(fb);
    return ok;
}

/* the validation metrics of the epochs' rows of run_dir/history.jsonl: "loss acc; loss acc; ..."
 * with 4 decimals into s, the numbers into v (at most 16); their count */
static int epoch_metrics(const char *run_dir, char *s, size_t cap, double *v) {
    char path[256], line[8192];
    snprintf(path, sizeof path, "%s/history.jsonl", run_dir);
    s[0] = 0;
    int n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f) && n + 2 <= 16) {
        cJSON *row = cJSON_Parse(line);
        const cJSON *e = cJSON_GetObjectItem(row, "epoch"), *vl = cJSON_GetObjectItem(row, "valid_loss"),
                    *acc = cJSON_GetObjectItem(row, "accuracy");
        if (cJSON_IsNumber(e) && cJSON_IsNumber(vl) && cJSON_IsNumber(acc)) {
            v[n++] = vl->valuedouble;
            v[n++] = acc->valuedouble;
            snprintf(s + strlen(s), cap - strlen(s), "%.4f %.4f; ", vl->valuedouble, acc->valuedouble);
        }
        cJSON_Delete(row);
    }
    fclose(f);
    return n;
}

/* the metrics of two run folders agree to 3 decimals: as many, each within 1e-3 (one unit of the
 * 3rd decimal: the weights' differences, up to 2 * lr * steps, move the validation loss by up to
 * 5.8e-4 in the -O1 sanitizer build; a rounded-string comparison would fail 1.3594 / 1.3596) */
static void same_metrics(const char *dir_a, const char *dir_b, const char *what) {
    char sa[512], sb[512];
    double a[16], b[16];
    int na = epoch_metrics(dir_a, sa, sizeof sa, a), nb = epoch_metrics(dir_b, sb, sizeof sb, b);
    double worst = na == nb && na > 0 ? 0 : INFINITY;
    for (int i = 0; i < na && i < nb; i++) worst = fmax(worst, fabs(a[i] - b[i]));
    check(worst <= 1e-3, "%s: validation loss and accuracy agree to 3 decimals (max |diff| %.2g): [%s] vs [%s]", what,
          worst, sa, sb);
}

/* the single-process run: dir/one.stn, dir/r1; its exit status */
static int single_run(void) {
    static int rc = -2;
    if (rc == -2) rc = run("%s train --data %s %s --out %s --run-dir %s", bin, at("data"), common, at("one.stn"), at("r1"));
    return rc;
}

/* Tolerance of the weights: each step sums the gradient of the batch in another order (two
 * sums of 8 images added across the ranks instead of one of 16; batch-norm sums in double), so
 * the gradients differ by float32 rounding (~1e-7 relative); with 4 ranks, four sums of 4.
 * SGD would turn that into weight differences of lr * 1e-7 * |g|; AdamW divides by sqrt(v), so an element whose gradient is
 * near zero can step by up to lr in either direction: at most 2 * lr per step, 2 * lr * steps
 * in all (8e-3 here; 3.4e-5 measured).  The validation metrics agree to 3 decimals. */
static void ranks_result(int n) {
    if (!setup()) return;
    int rc1 = single_run();
    if (!check(rc1 == 0, "1 process trains (%s)", flat_tail(out, 300))) return;
    char model[32], run_dir[32];
    snprintf(model, sizeof model, "n%d.stn", n);
    snprintf(run_dir, sizeof run_dir, "rn%d", n);
    double t0 = omp_get_wtime();
    int rc2 = run("mpirun -np %d --allow-run-as-root --oversubscribe %s train --data %s %s --sync-bn --out %s --run-dir %s",
                  n, bin, at("data"), common, at(model), at(run_dir));
    note("mpirun -np %d: %.1f s", n, omp_get_wtime() - t0);
    if (!check(rc2 == 0, "mpirun -np %d --sync-bn trains (%s)", n, flat_tail(out, 400))) return;
    double err, scale;
    bool ok = weights_diff(at(model), at("one.stn"), &err, &scale);
    check(ok && err <= 2 * LR * STEPS, "%d ranks end with the weights of 1 process: max |diff| %.3g <= %.3g (max |w| %.3g)",
          n, err, 2 * LR * STEPS, scale);
    char what[64];
    snprintf(what, sizeof what, "1 process vs %d ranks", n);
    same_metrics(at("r1"), at(run_dir), what);
}

static void same_result(void) { ranks_result(2); }
static void same_result_4(void) { ranks_result(4); } /* 4 images per rank of each batch of 16 */

/* 2 ranks stopped after epoch 1 (exit status 3 on every rank), resumed on 1 process */
static void resume_other_n(void) {
    if (!setup()) return;
    if (!check(single_run() == 0, "1 process trains")) return;
    int rc = run(MPIRUN " %s train --data %s %s --sync-bn --out %s --run-dir %s --stop-after 1", bin, at("data"), common,
                 at("res.stn"), at("rr"));
    if (!check(rc == 3, "mpirun -np 2 stops after epoch 1 with status 3 (%d: %s)", rc, flat_tail(out, 300))) return;
    rc = run("%s train --data %s %s --out %s --run-dir %s --resume", bin, at("data"), common, at("res.stn"), at("rr"));
    if (!check(rc == 0, "1 process resumes the checkpoint of 2 ranks (%s)", flat_tail(out, 300))) return;
    double err, scale;
    bool ok = weights_diff(at("res.stn"), at("one.stn"), &err, &scale);
    check(ok && err <= 2 * LR * STEPS, "the resumed run ends with the weights of 1 process: max |diff| %.3g <= %.3g", err,
          2 * LR * STEPS);
    same_metrics(at("rr"), at("r1"), "the resumed run's history vs 1 process");
}

/* the process of rank `rank` among the children of pid (mpirun forks the local ranks); 0 if none */
static int rank_pid(int pid, int rank) {
    if (run("for c in $(pgrep -P %d); do tr '\\0' '\\n' < /proc/$c/environ | grep -qx OMPI_COMM_WORLD_RANK=%d && "
            "echo $c; done", pid, rank) != 0)
        return 0;
    return atoi(out);
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* a long run (20 epochs, per-rank batch norm) of 2 ranks; after its first checkpoint rank 1 gets
 * SIGKILL; then 2 ranks resume it for one more epoch */
static void rank_killed(void) {
    if (!setup()) return;
    char ck[256];
    snprintf(ck, sizeof ck, "%s/rk/checkpoint.safetensors", dir);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "(" MPIRUN " %s train --data %s --recipe scratch --arch resnet18 --size 32 --epochs 20 --batch 16 --seed 7 "
             "--threads 1 --tta 0 --no-calibrate --lr 0.001 --quiet --out %s --run-dir %s > %s 2>&1 & echo $! > %s; "
             "wait $!; echo $? > %s) > /dev/null 2>&1 &",
             bin, at("data"), at("k.stn"), at("rk"), at("k.log"), at("k.pid"), at("k.rc"));
    if (!check(system(cmd) == 0, "mpirun started in the background")) return;
    double t0 = omp_get_wtime();
    while (!file_exists(ck) && !file_exists(at("k.rc")) && omp_get_wtime() - t0 < 120) usleep(100000);
    if (!check(file_exists(ck), "the first checkpoint is written (%.0f s)", omp_get_wtime() - t0)) return;
    FILE *f = fopen(at("k.pid"), "r");
    int mpirun_pid = 0;
    if (f) {
        if (fscanf(f, "%d", &mpirun_pid) != 1) mpirun_pid = 0;
        fclose(f);
    }
    int victim = mpirun_pid > 0 ? rank_pid(mpirun_pid, 1) : 0;
    if (!check(victim > 0, "rank 1's process found (mpirun %d)", mpirun_pid)) return;
    kill(victim, SIGKILL);
    double t1 = omp_get_wtime();
    while (!file_exists(at("k.rc")) && omp_get_wtime() - t1 < 60) usleep(100000);
    const double took = omp_get_wtime() - t1;
    bool ended = file_exists(at("k.rc"));
    if (!ended && mpirun_pid > 0) kill(mpirun_pid, SIGKILL); /* a hang: end it, the check fails */
    check(ended && took < 15, "the job ends %.1f s after rank 1 is killed (< 15 s)", took);
    run("cat %s; echo; cat %s", at("k.rc"), at("k.log"));
    check(atoi(out) != 0 && strstr(out, "rank 1") != NULL, "a failed exit status and a message naming rank 1 (%s)",
          flat_tail(out, 400));
    st_file *c = st_open(ck);
    check(c != NULL && st_count(c) > 100, "the checkpoint is whole (%zu tensors)",
          c ? st_count(c) : 0);
    st_close(c);
    int rc = run(MPIRUN " %s train --data %s --recipe scratch --arch resnet18 --size 32 --epochs 20 --batch 16 "
                 "--seed 7 --threads 1 --tta 0 --no-calibrate --lr 0.001 --quiet --out %s --run-dir %s --resume "
                 "--stop-after 2", bin, at("data"), at("k.stn"), at("rk"));
    check(rc == 3, "--resume on 2 ranks continues from it to epoch 2 (status %d: %s)", rc, flat_tail(out, 300));
}

/* rank 0 in namespace sn_dist_a and rank 1 in sn_dist_b, joined by a veth pair (snv0 in both)
 * with 10.99.7.1 and .2; mpirun runs in a, and starts b's daemon through an rsh agent that
 * enters b.  Open MPI's TCP transport is forced onto the veth. */
static void netns_tcp(void) {
    if (!setup()) return;
    run("ip netns del sn_dist_a; ip netns del sn_dist_b");
    if (run("ip netns add sn_dist_a && ip netns add sn_dist_b") != 0) {
        note("SKIP: network namespaces cannot be made here (%s)", flat_tail(out, 200));
        return;
    }
    int rc = run("ip link add snvdista type veth peer name snvdistb && ip link set snvdista netns sn_dist_a && "
                 "ip link set snvdistb netns sn_dist_b && ip -n sn_dist_a link set snvdista name snv0 && "
                 "ip -n sn_dist_b link set snvdistb name snv0 && ip -n sn_dist_a addr add 10.99.7.1/24 dev snv0 && "
                 "ip -n sn_dist_b addr add 10.99.7.2/24 dev snv0 && ip -n sn_dist_a link set snv0 up && "
                 "ip -n sn_dist_b link set snv0 up && ip -n sn_dist_a link set lo up && ip -n sn_dist_b link set lo up");
    if (rc != 0) {
        note("SKIP: no veth pair between the namespaces (%s)", flat_tail(out, 200));
        run("ip netns del sn_dist_a; ip netns del sn_dist_b");
        return;
    }
    FILE *f = fopen(at("agent.sh"), "w");
    if (f) {
        fputs("#!/bin/sh\n# mpirun's rsh agent: AGENT HOST COMMAND... runs COMMAND in HOST's namespace\nh=$1; shift\n"
              "case \"$h\" in 10.99.7.1) ns=sn_dist_a;; 10.99.7.2) ns=sn_dist_b;; *) exit 1;; esac\n"
              "exec ip netns exec $ns sh -c \"$*\"\n", f);
        fclose(f);
        chmod(at("agent.sh"), 0755);
    }
    run("ip -n sn_dist_b -s link show snv0 | awk 'NR==4 {print $1}'");
    long rx0 = atol(out);
    rc = run("ip netns exec sn_dist_a mpirun -np 2 --host 10.99.7.1,10.99.7.2 --allow-run-as-root --oversubscribe "
             "--mca plm_rsh_agent %s --mca btl tcp,self --mca btl_tcp_if_include snv0 --mca oob_tcp_if_include snv0 "
             "%s train --data %s %s --sync-bn --out %s --run-dir %s",
             at("agent.sh"), bin, at("data"), common, at("ns.stn"), at("rn"));
    check(rc == 0, "2 ranks in 2 namespaces train over TCP on the veth (%s)", flat_tail(out, 400));
    run("ip -n sn_dist_b -s link show snv0 | awk 'NR==4 {print $1}'");
    long rx = atol(out) - rx0;
    /* at least the 4 steps' gradient sums of resnet18's 11 M parameters crossed into b */
    check(rx > 4L * 11000000 * 4, "%ld bytes reached namespace b over the veth", rx);
    double err, scale;
    bool ok = rc == 0 && single_run() == 0 && weights_diff(at("ns.stn"), at("one.stn"), &err, &scale);
    check(ok && err <= 2 * LR * STEPS, "the same weights as 1 process: max |diff| %.3g", ok ? err : -1.0);
    run("ip netns del sn_dist_a; ip netns del sn_dist_b");
}

/* without mpirun the program is one process: rank 0 of 1, which takes every item; a build
 * without MPI refuses to be one of several ranks, with a clear message */
static void one_process(void) {
    int argc = 1;
    char *args[] = {"test_dist", NULL}, **argv = args;
    int lo = -1, n = -1;
    bool ok = dist_init(&argc, &argv) == 0;
    dist_share(10, &lo, &n);
    check(ok && dist_size() == 1 && dist_rank() == 0 && !dist_active() && lo == 0 && n == 10,
          "outside mpirun: rank %d of %d, share [%d, %d) of 10", dist_rank(), dist_size(), lo, lo + n);
    dist_finalize();
    if (dist_built()) return;
    const char *b = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    int rc = run("OMPI_COMM_WORLD_SIZE=2 %s train --data /nonexistent --out /tmp/x.stn", b);
    check(rc == 1 && strstr(out, "built without MPI"), "a build without MPI refuses to run as one of 2 ranks (%s)",
          flat_tail(out, 200));
}

static const test_case cases[] = {
    {"one_process", one_process},
    {"same_result", same_result},
    {"same_result_4", same_result_4},
    {"resume_other_n", resume_other_n},
    {"rank_killed", rank_killed},
    {"netns_tcp", netns_tcp},
};
TEST_MAIN(cases)
