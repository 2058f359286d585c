/* test_disk_faults.c - training against a full disk, a read-only run folder and bad checkpoints.
 *
 * The run is test_kill_resume's tiny one (MobileNetV2 from random weights at 32 px, 32 Style
 * photos of 4 products; its checkpoints are 43 MB: weights and AdamW's two moments).  Cases:
 *   - full_disk_checkpoint: the run folder on a 64 MB tmpfs mounted by the test: the first
 *     checkpoint fits, the second cannot (the old file stays until the new one is renamed over
 *     it): exit 1, an error naming checkpoint.safetensors and "No space left on device", the
 *     first epoch's checkpoint intact and whole (its checksum), no temporary file left;
 *   - full_disk_history: the run folder on a 64 kB tmpfs filled to the last byte: the first row
 *     of history.jsonl cannot be written: exit 1 naming the file and "No space left on device",
 *     no checkpoint, no model;
 *   - full_disk_model: --out on a 20 MB tmpfs holding a previous 15 MB model file: exit 1, an
 *     error naming the model file and the full disk, the previous file byte for byte intact;
 *   - read_only_run_dir: the run folder on a tmpfs remounted read-only (as root; a chmod when
 *     not root): exit 1 naming the folder before any epoch;
 *   - other_arch_checkpoint: a MobileNetV2 checkpoint resumed as EfficientNet-Lite0: exit 1
 *     naming the checkpoint and both architectures;
 *   - corrupt_checkpoint: the checkpoint truncated, one byte of its weights flipped, one byte of
 *     its metadata changed: each is exit 1 naming the checkpoint, before any epoch (no row
 *     printed, the history and the checkpoint left as they were).
 *   - atomic_write_errors: sn_write_file_atomic itself with a failing writer, a folder in the
 *     way of the rename and a missing folder: -1 naming the file and the reason, nothing left;
 *   - stale_temps: the next atomic write of a file removes its "<file>.tmp.<pid>" of a process
 *     that is gone, and keeps a running process's, another file's and an odd name's;
 *   - unwritable_out: --out in a missing folder, and on a read-only tmpfs: exit 1 naming the file
 *     and the system's reason, before any epoch (before the data is read).
 * Where mounting is not permitted (a container without CAP_SYS_ADMIN), the tmpfs cases say SKIP
 * with the system's reason. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../common/check.h"
#include "../common/train_fixture.h"
#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "train/learner.h"

static const char *bin;
static char dir[64], data[256];
static char out[1 << 16];
static char mounts[8][256];
static int n_mounts;
static const char *const train_args =
    "train --arch mobilenet_v2 --size 32 --batch 8 --lr 1e-3 --head-epochs 1 --head-aug-epochs 1 --cycles 1 "
    "--tta 0 --seed 7 --threads 2";

#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

static void cleanup(void) {
    for (int i = 0; i < n_mounts; i++) umount2(mounts[i], MNT_DETACH);
    if (dir[0]) run("rm -rf %s", dir);
}

static bool setup(void) {
    static int state;
    if (state) return state > 0;
    state = -1;
    bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    snprintf(dir, sizeof dir, "/tmp/stylenet_disk_XXXXXX");
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return false;
    atexit(cleanup);
    snprintf(data, sizeof data, "%s/data", dir);
    int copied = style_product_folders(data, 4, 8);
    if (!check(copied == 32, "a 4-class set of %d Style photos", copied)) return false;
    state = 1;
    return true;
}

/* a tmpfs of size_kb at dir/name (made): its path, or NULL after a SKIP note naming why */
static const char *tmpfs(const char *name, int size_kb) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    mkdir(path, 0777);
    char opts[32];
    snprintf(opts, sizeof opts, "size=%dk", size_kb);
    if (n_mounts == 8 || mount("tmpfs", path, "tmpfs", 0, opts) != 0) {
        note("SKIP: cannot mount a tmpfs at %s: %s", path, n_mounts == 8 ? "too many" : strerror(errno));
        return NULL;
    }
    snprintf(mounts[n_mounts++], sizeof mounts[0], "%s", path);
    return path;
}

/* the run folder dir/base stopped after its first epoch (its checkpoint and history), made once */
static bool base_run(void) {
    static int state;
    if (state) return state > 0;
    state = -1;
    int rc = run("%s %s --data %s --out %s --run-dir %s --stop-after 1 --quiet", bin, train_args, data,
                 path_in(dir, "base.stn"), path_in(dir, "base"));
    const int whole = rc == 3 ? learner_check_checkpoint(path_in(dir, "base/checkpoint.safetensors")) : -1;
    if (!check(whole == 0, "a run stopped after its first epoch leaves a whole checkpoint (exit %d) %s", rc,
               rc != 3 ? flat_tail(out, 600) : whole ? sn_last_error() : ""))
        return false;
    state = 1;
    return true;
}

/* files of folder d whose names hold ".tmp." */
static int temp_files(const char *d) {
    int rc = run("ls -a %s | grep -c '\\.tmp\\.'", d);
    return rc <= 1 ? atoi(out) : -1;
}

static void full_disk_checkpoint(void) {
    if (!setup()) return;
    const char *mnt = tmpfs("full_ck", 64 << 10);
    if (!mnt) return;
    char run_dir[300];
    snprintf(run_dir, sizeof run_dir, "%s/run", mnt);
    int rc = run("%s %s --data %s --out %s --run-dir %s --quiet", bin, train_args, data, path_in(dir, "x.stn"), run_dir);
    const char *ck = path_in(run_dir, "checkpoint.safetensors");
    check(rc == 1 && strstr(out, ck) && strstr(out, "No space left on device"),
          "a full disk at the second checkpoint: exit 1 (%d) naming the file and the reason: %s", rc, flat_tail(out, 400));
    st_file *f = st_open(ck);
    const char *epoch = f ? st_meta(f, "epoch") : NULL;
    check(learner_check_checkpoint(ck) == 0 && epoch && !strcmp(epoch, "1"),
          "the first epoch's checkpoint is intact and whole (epoch %s)", epoch ? epoch : "?");
    st_close(f);
    check(temp_files(run_dir) == 0 && access(path_in(dir, "x.stn"), F_OK) != 0,
          "no temporary file is left and no model is written");
}

/* the run folder on a tmpfs filled to the last byte: the first history row cannot be written */
static void full_disk_history(void) {
    if (!setup()) return;
    const char *mnt = tmpfs("full_hist", 64);
    if (!mnt) return;
    char run_dir[300], fill[300], hist[400], ck[400];
    snprintf(run_dir, sizeof run_dir, "%s/run", mnt);
    snprintf(fill, sizeof fill, "%s/fill", mnt);
    snprintf(hist, sizeof hist, "%s/history.jsonl", run_dir);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", run_dir);
    mkdir(run_dir, 0777);
    FILE *f = fopen(fill, "wb");
    static const char block[4096];
    long filled = 0;
    while (f && fwrite(block, 1, sizeof block, f) == sizeof block && fflush(f) == 0) filled += (long)sizeof block;
    const bool full = f && errno == ENOSPC;
    if (f) fclose(f);
    if (!check(full, "the 64 kB tmpfs filled (%ld bytes)", filled)) return;
    int rc = run("%s %s --data %s --out %s --run-dir %s --quiet", bin, train_args, data, path_in(dir, "x.stn"), run_dir);
    check(rc == 1 && strstr(out, hist) && strstr(out, "No space left on device"),
          "a full disk at the training history: exit 1 (%d) naming the file and the reason: %s", rc,
          flat_tail(out, 400));
    check(access(ck, F_OK) != 0 && access(path_in(dir, "x.stn"), F_OK) != 0,
          "the run stops there: no checkpoint and no model written");
}

static void full_disk_model(void) {
    if (!setup()) return;
    const char *mnt = tmpfs("full_model", 20 << 10);
    if (!mnt) return;
    char model[300];
    snprintf(model, sizeof model, "%s/model.stn", mnt);
    const size_t old_n = 15u << 20;
    uint8_t *old = malloc(old_n);
    for (size_t i = 0; old && i < old_n; i++) old[i] = (uint8_t)(i * 2654435761u >> 13);
    FILE *f = fopen(model, "wb");
    bool wrote = old && f && fwrite(old, 1, old_n, f) == old_n;
    if (f) fclose(f);
    if (!check(wrote, "a previous 15 MB model file on the 20 MB tmpfs")) {
        free(old);
        return;
    }
    int rc = run("%s %s --data %s --out %s --quiet", bin, train_args, data, model);
    check(rc == 1 && strstr(out, model) && strstr(out, "No space left on device"),
          "a full disk at the model: exit 1 (%d) naming the file and the reason: %s", rc, flat_tail(out, 400));
    size_t n = 0;
    uint8_t *now = sn_read_file(model, &n, 0);
    check(now && n == old_n && !memcmp(now, old, n), "the previous model file is intact (%zu bytes)", n);
    check(temp_files(mnt) == 0, "no temporary file is left");
    free(now);
    free(old);
}

/* the output of a run that must stop before training: it names `what`, exits 1, prints no epoch */
static void refused(const char *why, int rc, const char *what) {
    check(rc == 1 && strstr(out, what) && !strstr(out, "train_loss") && !strstr(out, "epoch 1:"),
          "%s: exit 1 (%d) naming %s, before any epoch: %s", why, rc, what, flat_tail(out, 400));
}

static void read_only_run_dir(void) {
    if (!setup()) return;
    char run_dir[300];
    const bool root = geteuid() == 0;
    const char *mnt = root ? tmpfs("ro", 4 << 10) : dir;
    if (!mnt) return;
    snprintf(run_dir, sizeof run_dir, "%s/run", mnt);
    mkdir(run_dir, 0777);
    if (root ? mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, "size=4m") != 0 : chmod(run_dir, 0555) != 0) {
        note("SKIP: cannot make %s read-only: %s", run_dir, strerror(errno));
        return;
    }
    int rc = run("%s %s --data %s --out %s --run-dir %s", bin, train_args, data, path_in(dir, "x.stn"), run_dir);
    refused("a read-only run folder", rc, run_dir);
    check(strstr(out, "Read-only file system") || strstr(out, "Permission denied"), "the system's reason is given");
}

/* copies dir/base into dir/name: the run folder (its path) */
static const char *copy_base(const char *name) {
    static char run_dir[300];
    snprintf(run_dir, sizeof run_dir, "%s/%s", dir, name);
    run("rm -rf %s && cp -r %s %s", run_dir, path_in(dir, "base"), run_dir);
    return run_dir;
}

static void other_arch_checkpoint(void) {
    if (!setup() || !base_run()) return;
    const char *run_dir = copy_base("arch");
    int rc = run("%s %s --data %s --out %s --run-dir %s --resume --arch efficientnet_lite0", bin, train_args, data,
                 path_in(dir, "x.stn"), run_dir);
    refused("a MobileNetV2 checkpoint resumed as EfficientNet-Lite0", rc, "checkpoint.safetensors");
    check(strstr(out, "mobilenet_v2") && strstr(out, "efficientnet_lite0"), "the message names both architectures");
}

/* the run folder's checkpoint changed by edit, then resumed: refused before training, the
 * history and the checkpoint as they were */
static void corrupt_one(const char *why, const char *name, void (*edit)(uint8_t *b, size_t *n)) {
    const char *run_dir = copy_base(name);
    char ck[400], hist[400];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", run_dir);
    snprintf(hist, sizeof hist, "%s/history.jsonl", run_dir);
    size_t n = 0, hn = 0, n2 = 0, hn2 = 0;
    uint8_t *b = sn_read_file(ck, &n, 0), *h = sn_read_file(hist, &hn, 0);
    if (!check(b && h, "%s: the base run's files read", why)) {
        free(b);
        free(h);
        return;
    }
    edit(b, &n);
    FILE *f = fopen(ck, "wb");
    if (f) {
        fwrite(b, 1, n, f);
        fclose(f);
    }
    int rc = run("%s %s --data %s --out %s --run-dir %s --resume", bin, train_args, data, path_in(dir, "x.stn"), run_dir);
    refused(why, rc, ck);
    uint8_t *b2 = sn_read_file(ck, &n2, 0), *h2 = sn_read_file(hist, &hn2, 0);
    check(b2 && h2 && n2 == n && !memcmp(b, b2, n) && hn2 == hn && !memcmp(h, h2, hn),
          "%s: the checkpoint and the history are left as they were", why);
    free(b);
    free(h);
    free(b2);
    free(h2);
}

static void truncate_half(uint8_t *b, size_t *n) {
    (void)b;
    *n /= 2;
}

static void flip_weight_byte(uint8_t *b, size_t *n) { b[*n / 2] ^= 0x10; }

/* the metadata's first digit of "epoch":"1" becomes 2 (the header stays valid JSON) */
static void change_metadata(uint8_t *b, size_t *n) {
    uint8_t *p = memmem(b, *n, "\"epoch\":\"1\"", 11);
    if (p) p[9] = '2';
}

static void corrupt_checkpoint(void) {
    if (!setup() || !base_run()) return;
    corrupt_one("a checkpoint truncated to half", "trunc", truncate_half);
    corrupt_one("a checkpoint with one weight byte flipped", "flip", flip_weight_byte);
    check(strstr(out, "checksum") != NULL, "the flipped byte is found by the checksum: %s", flat_tail(out, 300));
    corrupt_one("a checkpoint whose metadata says another epoch", "meta", change_metadata);
    check(strstr(out, "checksum") != NULL, "the changed metadata is found by the checksum");
}

/* sn_write_file_atomic's writers for atomic_write_errors */
static int write_text(FILE *f, void *ctx) { return fputs(ctx, f) < 0 ? -1 : 0; }
static int write_refused(FILE *f, void *ctx) {
    (void)f;
    (void)ctx;
    return sn_error("the writer gave up");
}

/* the helper itself: a failing writer, a path that is a folder (rename fails), a missing folder:
 * each -1 naming the path, nothing left behind, the old contents kept */
static void atomic_write_errors(void) {
    if (!setup()) return;
    const char *path = path_in(dir, "atomic.txt");
    check(sn_write_file_atomic(path, write_text, "old\n") == 0, "a file written");
    int rc = sn_write_file_atomic(path, write_refused, NULL);
    size_t n = 0;
    uint8_t *b = sn_read_file(path, &n, 0);
    check(rc < 0 && strstr(sn_last_error(), path) && strstr(sn_last_error(), "the writer gave up") && b && n == 4 &&
          !memcmp(b, "old\n", 4), "a writer's error: -1 naming the file and the writer's reason, the old contents "
          "kept: %s", sn_last_error());
    free(b);
    const char *folder = path_in(dir, "a_folder");
    mkdir(folder, 0777);
    rc = sn_write_file_atomic(folder, write_text, "new\n");
    check(rc < 0 && strstr(sn_last_error(), "cannot rename") && strstr(sn_last_error(), "Is a directory"),
          "a folder in the way: the rename's error with the system's reason: %s", sn_last_error());
    rc = sn_write_file_atomic(path_in(dir, "nope/x.txt"), write_text, "new\n");
    check(rc < 0 && strstr(sn_last_error(), "nope/x.txt") && strstr(sn_last_error(), "No such file"),
          "a missing folder: -1 naming the file: %s", sn_last_error());
    check(temp_files(dir) == 0, "no temporary file is left behind");
}

/* a small file at path */
static bool make_file(const char *path) {
    FILE *f = fopen(path, "wb");
    return f && fputs("half", f) >= 0 && fclose(f) == 0;
}

/* the next atomic write of a file removes the temporary files of it whose writer is gone */
static void stale_temps(void) {
    if (!setup()) return;
    const pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0); /* its pid: no running process */
    const char *path = path_in(dir, "stale.txt");
    char dead[400], live[400], other[400], odd[400];
    snprintf(dead, sizeof dead, "%s.tmp.%ld", path, (long)child);
    snprintf(live, sizeof live, "%s.tmp.%ld", path, (long)getppid());
    snprintf(other, sizeof other, "%s.tmp.%ld", path_in(dir, "stale2.txt"), (long)child);
    snprintf(odd, sizeof odd, "%s.tmp.%ldx", path, (long)child);
    if (!check(make_file(dead) && make_file(live) && make_file(other) && make_file(odd), "four temporary files"))
        return;
    check(sn_write_file_atomic(path, write_text, "new\n") == 0 && access(dead, F_OK) != 0,
          "the write of stale.txt removes its temporary file of a process that is gone (pid %ld)", (long)child);
    check(access(live, F_OK) == 0 && access(other, F_OK) == 0 && access(odd, F_OK) == 0,
          "a running process's, another file's and an odd name's are kept");
    unlink(live);
    unlink(other);
    unlink(odd);
}

/* --out in a missing folder or on a read-only file system: refused before the data is read */
static void unwritable_out(void) {
    if (!setup()) return;
    const char *missing = path_in(dir, "no_such_folder/x.stn");
    int rc = run("%s %s --data %s --out %s", bin, train_args, data, missing);
    refused("--out in a missing folder", rc, missing);
    check(strstr(out, "No such file or directory") && !strstr(out, "stylenet train:"),
          "the system's reason, before the data is read");
    if (geteuid() != 0) {
        note("SKIP: a read-only --out folder needs a read-only mount (root)");
        return;
    }
    const char *mnt = tmpfs("ro_out", 1024);
    if (!mnt) return;
    char model[300];
    snprintf(model, sizeof model, "%s/x.stn", mnt);
    if (mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, "size=1m") != 0) {
        note("SKIP: cannot make %s read-only: %s", mnt, strerror(errno));
        return;
    }
    rc = run("%s %s --data %s --out %s", bin, train_args, data, model);
    refused("--out on a read-only file system", rc, model);
    check(strstr(out, "Read-only file system") != NULL, "the system's reason is given");
    check(temp_files(mnt) == 0, "no temporary file is left");
}

static const test_case cases[] = {
    {"stale_temps", stale_temps},
    {"unwritable_out", unwritable_out},
    {"atomic_write_errors", atomic_write_errors},
    {"full_disk_checkpoint", full_disk_checkpoint},
    {"full_disk_model", full_disk_model},
    {"full_disk_history", full_disk_history},
    {"read_only_run_dir", read_only_run_dir},
    {"other_arch_checkpoint", other_arch_checkpoint},
    {"corrupt_checkpoint", corrupt_checkpoint},
};
TEST_MAIN(cases)
