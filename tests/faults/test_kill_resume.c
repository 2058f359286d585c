/* test_kill_resume.c - `kill -9` of a training run at 20 moments, then --resume.
 *
 * A tiny run (MobileNetV2 from random weights at 32 then 40 px, 32 Style photos of 4 products,
 * batches of 8, the seed recipe: precomputed head, head with augmentation, two SGDR cycles over
 * all layers at two sizes, so 4 epochs and 4 checkpoints) is first trained without interruption.
 * Then each of 20 trials starts it afresh with STYLENET_FAULT_KILL (core/fault.h) set so that the
 * process sends itself SIGKILL at a moment drawn from a seed (core/rng.h): in turn during a
 * training step, during a validation batch, and during an atomic file write (a checkpoint, or
 * the model once the epochs are done), at an occurrence drawn uniformly from those the
 * uninterrupted run passes.  After each kill:
 *   - the process died of SIGKILL (the drawn moment was reached; a kill in a write left the
 *     write's temporary file);
 *   - the checkpoint left, if any, is whole (learner_check_checkpoint: it opens, says where the
 *     run was and matches its checksum), and no model file is left half written;
 *   - `--resume` exits 0 with bitwise the uninterrupted run's weights and its history.jsonl rows
 *     (but timings), and leaves no temporary file of the killed write behind.
 * Trials run two at a time (one thread each) in a folder on /dev/shm when there is one (so the
 * fsyncs of the checkpoints cost little).  `build/tests/faults/test_kill_resume kills` runs it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../common/check.h"
#include "../common/train_fixture.h"
#include "core/error.h"
#include "core/rng.h"
#include "train/learner.h"

#define TRIALS 20
#define SEED 20261205ull

static const char *bin;
static char dir[64], data[256];
static char out[1 << 16];
static const char *const train_args =
    "train --arch mobilenet_v2 --sizes 32,40 --batch 8 --lr 1e-3 --head-epochs 1 --head-aug-epochs 1 --cycles 2 --cycle-mult 1 "
    "--resize-after 1 --tta 1 --seed 7 --threads 1 --quiet";

static void remove_dir(void) {
    if (dir[0]) run_capture(out, sizeof out, "rm -rf %s", dir);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* starts `bin train ... --out model --run-dir run [extra]` with its output in log and, when
 * fault is not NULL, STYLENET_FAULT_KILL=fault; the child's pid, -1 */
static pid_t spawn(const char *run, const char *model, const char *extra, const char *fault, const char *log) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s --data %s --out %s --run-dir %s %s", train_args, data, model, run, extra);
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)bin;
    for (char *tok = strtok(cmd, " "); tok && n < 63; tok = strtok(NULL, " ")) argv[n++] = tok;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid != 0) return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    if (fault) setenv("STYLENET_FAULT_KILL", fault, 1);
    else unsetenv("STYLENET_FAULT_KILL");
    execv(bin, argv);
    _exit(127);
}

/* waits for pid: its exit status, 128 + the signal that killed it, or -1 */
static int wait_for(pid_t pid) {
    int st;
    if (pid < 0) return -1;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* the log's tail on one line */
static const char *log_tail(const char *log) {
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    if (f) fclose(f);
    return flat_tail(out, 600);
}

/* how many files of run start with "checkpoint.safetensors.tmp." */
static int temp_files(const char *run) {
    int rc = run_capture(out, sizeof out, "ls %s | grep -c '^checkpoint.safetensors.tmp\\.'", run);
    return rc <= 1 ? atoi(out) : -1;
}

/* the uninterrupted run (dir/ref.stn, dir/ref/): its epochs and optimiser steps */
static bool reference(int *epochs, long *iters) {
    double t0 = now();
    if (!check(mkdtemp(dir) != NULL, "temp dir %s", dir)) return false;
    atexit(remove_dir);
    snprintf(data, sizeof data, "%s/data", dir);
    int copied = style_product_folders(data, 4, 8);
    if (!check(copied == 32, "a 4-class set of %d Style photos", copied)) return false;
    int rc = wait_for(spawn(path_in(dir, "ref"), path_in(dir, "ref.stn"), "", NULL, path_in(dir, "ref.log")));
    if (!check(rc == 0, "the uninterrupted run (exit %d) in %.1f s %s", rc, now() - t0,
               rc ? log_tail(path_in(dir, "ref.log")) : ""))
        return false;
    int lines;
    cJSON *rows = history_rows(path_in(dir, "ref/history.jsonl"), &lines), *row;
    *epochs = 0;
    *iters = 0;
    cJSON_ArrayForEach(row, rows) {
        *epochs += cJSON_GetObjectItem(row, "epoch") != NULL;
        const cJSON *it = cJSON_GetObjectItem(row, "iter");
        if (cJSON_IsNumber(it) && it->valuedouble > *iters) *iters = (long)it->valuedouble;
    }
    cJSON_Delete(rows);
    note("uninterrupted run: %d epochs, %ld steps, %.1f s", *epochs, *iters, now() - t0);
    return check(*epochs == 4 && *iters >= 8, "its history: %d epochs, %ld steps", *epochs, *iters);
}

/* trial k's fault ("step:N", "valid:N" or "write:N") drawn from the seed: steps anywhere in
 * the run; validation batches of the epochs and of the scoring after them (calibration, the
 * final figures: at least two more passes); writes of the checkpoints and of the model */
static void draw_fault(int k, int epochs, long iters, char *fault, size_t cap) {
    static const char *const kinds[3] = {"step", "valid", "write"};
    const long range[3] = {iters, epochs + 2, epochs + 1};
    const int kind = k % 3;
    const long n = 1 + (long)(rng_u64(SEED, 0x6b696c6cull, (uint64_t)k) % (uint64_t)range[kind]);
    snprintf(fault, cap, "%s:%ld", kinds[kind], n);
}

/* trial k after its kill: the run folder holds no half checkpoint, the model is absent or whole */
static void check_killed(int k, const char *fault, pid_t pid, const char *run, const char *model, const char *log) {
    const int rc = wait_for(pid);
    check(rc == 128 + SIGKILL, "trial %d (%s): killed by SIGKILL (status %d) %s", k, fault, rc,
          rc != 128 + SIGKILL ? log_tail(log) : "");
    if (!strncmp(fault, "write:", 6)) { /* the kill came between the temporary file and its rename */
        char ck_tmp[512], model_tmp[512];
        snprintf(ck_tmp, sizeof ck_tmp, "%s/checkpoint.safetensors.tmp.%d", run, (int)pid);
        snprintf(model_tmp, sizeof model_tmp, "%s.tmp.%d", model, (int)pid);
        check(access(ck_tmp, F_OK) == 0 || access(model_tmp, F_OK) == 0,
              "trial %d: the kill left the write's temporary file (the write was cut short)", k);
    }
    const char *ck = path_in(run, "checkpoint.safetensors");
    if (access(ck, F_OK) == 0)
        check(learner_check_checkpoint(ck) == 0, "trial %d: the checkpoint left is whole %s", k,
              learner_check_checkpoint(ck) ? sn_last_error() : "");
    if (access(model, F_OK) == 0) {
        char why[256];
        check(same_tensors(path_in(dir, "ref.stn"), model, why, sizeof why),
              "trial %d: the model left by the killed run is the whole model %s", k, why);
    }
}

/* trial k after --resume: the uninterrupted run's weights and history, no temporary file */
static void check_resumed(int k, const char *fault, int rc, const char *run, const char *model, const char *log,
                          const cJSON *ref_rows) {
    char why[256] = "";
    bool same = rc == 0 && same_tensors(path_in(dir, "ref.stn"), model, why, sizeof why);
    check(same, "trial %d (%s): --resume ends with bitwise the uninterrupted run's weights (exit %d) %s %s", k, fault,
          rc, why, rc ? log_tail(log) : "");
    int lines = 0;
    cJSON *rows = history_rows(path_in(run, "history.jsonl"), &lines);
    check(rows && ref_rows && cJSON_Compare(rows, ref_rows, true),
          "trial %d: its history.jsonl has the uninterrupted run's rows but timings (%d lines)", k, lines);
    cJSON_Delete(rows);
    check(temp_files(run) == 0, "trial %d: no temporary checkpoint file is left behind", k);
}

static void kills(void) {
    bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    snprintf(dir, sizeof dir, "%s/stylenet_kill_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    int epochs;
    long iters;
    if (!reference(&epochs, &iters)) return;
    int ref_lines;
    cJSON *ref_rows = history_rows(path_in(dir, "ref/history.jsonl"), &ref_lines);
    double t0 = now();
    int hits[3] = {0};
    for (int k = 0; k < TRIALS; k += 2) { /* two trials at a time */
        char fault[2][32], run[2][256], model[2][256], log[2][256];
        pid_t pid[2];
        for (int j = 0; j < 2; j++) {
            draw_fault(k + j, epochs, iters, fault[j], sizeof fault[j]);
            hits[(k + j) % 3]++;
            snprintf(run[j], sizeof run[j], "%s/run%d", dir, k + j);
            snprintf(model[j], sizeof model[j], "%s/m%d.stn", dir, k + j);
            snprintf(log[j], sizeof log[j], "%s/kill%d.log", dir, k + j);
            pid[j] = spawn(run[j], model[j], "", fault[j], log[j]);
        }
        for (int j = 0; j < 2; j++) check_killed(k + j, fault[j], pid[j], run[j], model[j], log[j]);
        for (int j = 0; j < 2; j++) {
            snprintf(log[j], sizeof log[j], "%s/resume%d.log", dir, k + j);
            pid[j] = spawn(run[j], model[j], "--resume", NULL, log[j]);
        }
        for (int j = 0; j < 2; j++)
            check_resumed(k + j, fault[j], wait_for(pid[j]), run[j], model[j], log[j], ref_rows);
    }
    cJSON_Delete(ref_rows);
    note("%d kills (%d in a step, %d in validation, %d in a file write) and resumes in %.1f s", TRIALS, hits[0],
         hits[1], hits[2], now() - t0);
}

static const test_case cases[] = {
    {"kills", kills},
};
TEST_MAIN(cases)
