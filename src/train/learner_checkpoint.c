/* learner_checkpoint.c - checkpoints of a run and resuming from one, with the history file cut
 * back to the checkpoint (see learner.h).
 *
 * A checkpoint carries a digest of its own contents (metadata "checksum": every metadata entry
 * but itself and every tensor's name, dtype, shape and bytes, in file order), so that a file
 * damaged after it was written (flipped bytes the safetensors header check cannot see) is
 * refused at resume instead of training on from garbage. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "io/state.h"
#include "train/learner_internal.h"

/* ---------------------------------------------------------------- the digest */

/* n bytes of p mixed into h: 8-byte words, each through the splitmix64 finaliser (rng.h) */
static uint64_t digest_bytes(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = rng_mix(h ^ w);
    }
    uint64_t last = (uint64_t)n << 56; /* the tail and the length */
    for (size_t k = 0; i + k < n; k++) last ^= (uint64_t)b[i + k] << (8 * k);
    return rng_mix(h ^ last);
}

static uint64_t digest_str(uint64_t h, const char *s) { return digest_bytes(h, s, strlen(s) + 1); }

static const uint64_t digest_seed = 0x73746e636b707431ull;

/* a metadata entry mixed into *h (the "checksum" entry left out) */
static void digest_meta(void *h, const char *key, const char *value) {
    if (strcmp(key, "checksum") != 0) *(uint64_t *)h = digest_str(digest_str(*(uint64_t *)h, key), value);
}

/* a tensor's name, dtype, shape and bytes mixed into *h */
static void digest_tensor(void *h, const st_tensor *t) {
    const int64_t head[2] = {t->dtype, t->ndim};
    uint64_t d = digest_str(*(uint64_t *)h, t->name);
    d = digest_bytes(d, head, sizeof head);
    d = digest_bytes(d, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    *(uint64_t *)h = digest_bytes(d, t->data, t->nbytes);
}

/* the digest of f's contents, the "checksum" entry left out */
static uint64_t checkpoint_digest(const st_file *f) {
    uint64_t h = digest_seed;
    for (size_t i = 0; i < st_meta_count(f); i++) digest_meta(&h, st_meta_key(f, i), st_meta_value(f, i));
    for (size_t i = 0; i < st_count(f); i++) digest_tensor(&h, st_tensor_at(f, i));
    return h;
}

/* sets w's "checksum" to the digest of what w holds, in the order of the file it writes (no
 * copy of the contents is made) */
static int add_checksum(st_writer *w, const char *path) {
    uint64_t h = digest_seed;
    if (st_writer_walk(w, digest_meta, digest_tensor, &h) < 0) return sn_error_prefix("%s", path);
    char hex[24];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    return st_writer_meta(w, "checksum", hex) < 0 ? sn_error_prefix("%s", path) : 0;
}

/* ---------------------------------------------------------------- saving */

/* where the run is, as metadata of w */
static void add_position(const learner *l, st_writer *w, int phase_epochs_done) {
    char buf[64];
    st_writer_meta(w, "stylenet.checkpoint", "1");
    st_writer_meta(w, "optimizer", optim_name(l->o.opt));
    st_writer_meta(w, "arch", l->net->arch);
    snprintf(buf, sizeof buf, "%d", l->cur_phase);
    st_writer_meta(w, "phase", buf);
    snprintf(buf, sizeof buf, "%d", phase_epochs_done);
    st_writer_meta(w, "phase_epochs_done", buf);
    snprintf(buf, sizeof buf, "%d", l->epoch);
    st_writer_meta(w, "epoch", buf);
    snprintf(buf, sizeof buf, "%ld", l->iter);
    st_writer_meta(w, "iter", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)l->net->step);
    st_writer_meta(w, "net_step", buf);
    snprintf(buf, sizeof buf, "%.17g", l->seconds);
    st_writer_meta(w, "seconds", buf);
}

int learner_save_checkpoint(learner *l, int phase_epochs_done) {
    if (!l->o.run_dir) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", l->o.run_dir);
    st_writer *w = st_writer_new();
    if (!w || net_add_to_writer(l->net, w) < 0 || optim_add_to_writer(l->opt, l->net, w) < 0) {
        st_writer_free(w);
        return sn_error_prefix("%s", path);
    }
    add_position(l, w, phase_epochs_done);
    char *h = cJSON_PrintUnformatted(l->history), *nt = cJSON_PrintUnformatted(l->notes);
    int r = -1;
    if (!h || !nt) sn_error("%s: out of memory", path);
    else if (st_writer_meta(w, "history", h) < 0 || st_writer_meta(w, "notes", nt) < 0) sn_error_prefix("%s", path);
    else if (add_checksum(w, path) == 0) r = st_writer_save(w, path);
    free(h);
    free(nt);
    st_writer_free(w);
    return r;
}

/* a row of the history file kept in learner->history (an epoch or an LR-finder sweep), rather
 * than one of an optimiser step */
static bool is_history_row(const cJSON *row) {
    return cJSON_GetObjectItem(row, "epoch") || cJSON_GetObjectItem(row, "lr_find_lr");
}

/* the length of the history file's part up to the checkpoint: whole rows, no step after
 * iteration `iter`, no more than n_rows epoch and sweep rows; *rows gets how many of those it has */
static long history_up_to(FILE *f, long iter, int n_rows, int *rows) {
    long keep = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    *rows = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n') break; /* cut short */
        cJSON *row = cJSON_Parse(line);
        if (!row) break;
        const bool kept = is_history_row(row);
        const cJSON *it = cJSON_GetObjectItem(row, "iter");
        const bool after = kept ? *rows >= n_rows : cJSON_IsNumber(it) && it->valuedouble > (double)iter;
        cJSON_Delete(row);
        if (after) break;
        *rows += kept;
        keep += (long)len;
    }
    free(line);
    return keep;
}

/* the history file as it was at the checkpoint: its rows up to there, or, when it lacks some
 * of the checkpoint's (another file, or none), the checkpoint's epoch and sweep rows */
static int cut_history(learner *l) {
    if (!learner_writes(l)) return 0; /* rank 0 of a data-parallel run keeps the file */
    char path[4096];
    snprintf(path, sizeof path, "%s/history.jsonl", l->o.run_dir);
    const int n_rows = cJSON_GetArraySize(l->history);
    int rows = 0;
    long keep = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        keep = history_up_to(f, l->iter, n_rows, &rows);
        fclose(f);
    }
    if (rows == n_rows) return learner_history_cut(l, keep);
    if (learner_history_cut(l, 0) < 0) return -1;
    const cJSON *row;
    cJSON_ArrayForEach(row, l->history) {
        char *s = cJSON_PrintUnformatted(row);
        const int r = s ? learner_history_append(l, s) : sn_error("%s: out of memory", path);
        free(s);
        if (r < 0) return -1;
    }
    return 0;
}

static const char *meta_or(const st_file *f, const char *key, const char *dflt) {
    const char *v = st_meta(f, key);
    return v ? v : dflt;
}

/* where the run was, its history and notes, from the checkpoint's metadata */
static void read_position(learner *l, const st_file *f) {
    l->resume_phase = atoi(meta_or(f, "phase", "0"));
    l->resume_epoch = atoi(meta_or(f, "phase_epochs_done", "0"));
    l->epoch = atoi(meta_or(f, "epoch", "0"));
    l->iter = atol(meta_or(f, "iter", "0"));
    l->net->step = strtoull(meta_or(f, "net_step", "0"), NULL, 10);
    l->seconds = atof(meta_or(f, "seconds", "0"));
    cJSON *h = cJSON_Parse(meta_or(f, "history", "[]")), *nt = cJSON_Parse(meta_or(f, "notes", "{}"));
    if (h) {
        cJSON_Delete(l->history);
        l->history = h;
    }
    if (nt) {
        cJSON_Delete(l->notes);
        l->notes = nt;
    }
}

/* f is a whole checkpoint: its digest matches (when it has one) and it says where the run was */
static int check_checkpoint(const st_file *f) {
    const char *path = st_filename(f), *sum = st_meta(f, "checksum");
    if (!st_meta(f, "stylenet.checkpoint") || !st_meta(f, "optimizer"))
        return sn_error("%s: not a stylenet checkpoint (no stylenet.checkpoint and optimizer metadata)", path);
    if (sum) {
        char hex[24];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)checkpoint_digest(f));
        if (strcmp(hex, sum) != 0)
            return sn_error("%s: corrupted: its contents do not match its checksum (%s, the file gives %s); remove it "
                            "to train from the start", path, sum, hex);
    }
    static const char *const need[] = {"phase", "phase_epochs_done", "epoch", "iter", "net_step"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        const char *v = st_meta(f, need[i]);
        char *end;
        if (!v || strtoll(v, &end, 10) < 0 || *end || end == v)
            return sn_error("%s: corrupted: position '%s' is %s", path, need[i], v ? v : "missing");
    }
    return 0;
}

int learner_check_checkpoint(const char *path) {
    st_file *f = st_open(path);
    if (!f) return -1;
    int r = check_checkpoint(f);
    st_close(f);
    return r;
}

int learner_resume(learner *l) {
    if (!l->o.run_dir) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", l->o.run_dir);
    sn_remove_stale_temps(path); /* a write cut short by a kill */
    if (access(path, F_OK) != 0) /* nothing to resume: the history starts afresh */
        return l->hist && !l->hist_started ? learner_history_cut(l, 0) : 0;
    st_file *f = st_open(path);
    if (!f) return -1;
    int r = -1;
    if (check_checkpoint(f) < 0) goto done;
    const char *opt = st_meta(f, "optimizer"), *arch = st_meta(f, "arch");
    if (arch && strcmp(arch, l->net->arch) != 0) {
        sn_error("%s: a checkpoint of %s, this run trains %s", path, arch, l->net->arch);
        goto done;
    }
    if (strcmp(opt, optim_name(l->o.opt)) != 0) {
        sn_error("%s: not a checkpoint of this run (optimizer %s, this run uses %s)", path, opt, optim_name(l->o.opt));
        goto done;
    }
    net_load_opts lo = {.ignore_extra = "optim."};
    if (net_load_st(l->net, f, &lo) < 0 || optim_load_st(l->opt, l->net, f) < 0) goto done;
    read_position(l, f);
    if (l->hist && cut_history(l) < 0) goto done;
    r = 1;
done:
    st_close(f);
    return r;
}
