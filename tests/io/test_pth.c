/* test_pth: io/pth.h against checkpoints written by Debian's PyTorch (tools/fixtures_pth.py) in
 * the zip and legacy formats, compared with the same tensors converted by PyTorch; hostile files
 * (foreign globals, bad REDUCEs, tensors outside their storage, overflowing shapes, truncation)
 * refused with errors naming the file; the shared EfficientNet-Lite checkpoints parsed. */
#include "../common/check.h"
#include "core/error.h"
#include "core/file.h"
#include "io/model_file.h"
#include "io/pth.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void case_detect(void) {
    uint8_t zip[] = "PK\3\4rest", legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                               0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80};
    uint8_t plain[] = {0x80, 0x02, '}', 'q', 0, '.', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    check(pth_detect(zip, 8) == PTH_ZIP && pth_detect(legacy, 16) == PTH_LEGACY && pth_detect(plain, 16) == PTH_NOT &&
              pth_detect(legacy, 10) == PTH_NOT && pth_detect(zip, 3) == PTH_NOT,
          "format from content: zip magic, legacy magic pickle, neither, too short");
    pth_file *f = pth_open_mem(plain, sizeof plain, "plain.pkl");
    check(!f && strstr(sn_last_error(), "plain.pkl") && strstr(sn_last_error(), "not a PyTorch checkpoint"),
          "a bare pickle is no checkpoint: %s", sn_last_error());
    check(pth_detect_file(fixture_path("pth_small_zip.pth")) == PTH_ZIP &&
              pth_detect_file(fixture_path("pth_small_legacy.pth")) == PTH_LEGACY &&
              pth_detect_file(fixture_path("pth_small_ref.safetensors")) == PTH_NOT &&
              pth_detect_file("/nonexistent/x.pth") == PTH_NOT,
          "pth_detect_file on the fixtures (zip, legacy, safetensors) and a missing file");
}

static bool same_bits(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4) && !(isnan(a[i]) && isnan(b[i]))) return false;
    return true;
}

/* every tensor of the reference file, by name, shape and bits; the dtypes as saved */
static void compare_small(const char *file, pth_format format) {
    const char *path = fixture_path(file);
    pth_file *f = pth_open(path);
    if (!check(f != NULL, "%s opens: %s", file, f ? "ok" : sn_last_error())) return;
    st_file *ref = st_open(fixture_path("pth_small_ref.safetensors"));
    if (!check(ref != NULL, "reference opens: %s", ref ? "ok" : sn_last_error())) {
        pth_close(f);
        return;
    }
    check(f->format == format && f->n == st_count(ref), "%s: format %d, %zu tensors (reference %zu)", file, f->format,
          f->n, st_count(ref));
    int bad = 0;
    for (size_t i = 0; i < st_count(ref); i++) {
        const st_tensor *r = st_tensor_at(ref, i);
        const pth_tensor *t = pth_find(f, r->name);
        bool ok = t && t->ndim == r->ndim && !memcmp(t->shape, r->shape, sizeof r->shape[0] * (size_t)r->ndim) &&
                  t->numel == r->numel;
        if (ok && r->dtype == ST_F32) {
            float *v = malloc(r->numel * 4 + 4);
            ok = t->f32 && !t->i64 && st_read_f32(ref, r, v, r->numel) == 0 && same_bits(t->f32, v, r->numel);
            free(v);
        } else if (ok) {
            int64_t *v = malloc(r->numel * 8 + 8);
            ok = t->i64 && !t->f32 && st_read_i64(ref, r, v, r->numel) == 0 && !memcmp(t->i64, v, r->numel * 8);
            free(v);
        }
        if (!ok) {
            bad++;
            note("%s: tensor '%s' differs from PyTorch's", file, r->name);
        }
    }
    check(bad == 0, "%s: every tensor's shape and values equal PyTorch's conversion (%d differ)", file, bad);
    const pth_tensor *h = pth_find(f, "half"), *b = pth_find(f, "bf16"), *d = pth_find(f, "double"),
                     *n = pth_find(f, "bn.num_batches_tracked"), *m = pth_find(f, "mask"), *u = pth_find(f, "bytes");
    const pth_tensor *pm = pth_find(f, "permuted");
    check(pm && pm->ndim == 3 && pm->shape[0] == 2 && pm->shape[1] == 3 && pm->shape[2] == 4,
          "%s: a permuted tensor (strides 1, 8, 2) comes out [2,3,4] in row-major order", file);
    check(h && h->dtype == PTH_F16 && b && b->dtype == PTH_BF16 && d && d->dtype == PTH_F64 && n &&
              n->dtype == PTH_I64 && m && m->dtype == PTH_BOOL && u && u->dtype == PTH_U8 && f->converted == 3,
          "%s: stored dtypes kept (F16, BF16, F64, I64, BOOL, U8), 3 float tensors converted (%d)", file, f->converted);
    check(n && n->ndim == 0 && n->numel == 1 && n->i64[0] == 12345678901LL,
          "%s: 0-dim int64 num_batches_tracked = 12345678901", file);
    const pth_tensor *va = pth_find(f, "view_a"), *vc = pth_find(f, "view_c"), *e = pth_find(f, "empty");
    check(va && va->ndim == 2 && va->shape[1] == 5 && vc && vc->numel == 6 && e && e->numel == 0 && e->ndim == 2 &&
              e->shape[1] == 3 && !pth_find(f, "nope"),
          "%s: views at offsets of a shared storage, an empty [0,3] tensor, pth_find of an absent name", file);
    st_close(ref);
    pth_close(f);
}

static void case_zip(void) { compare_small("pth_small_zip.pth", PTH_ZIP); }
static void case_legacy(void) { compare_small("pth_small_legacy.pth", PTH_LEGACY); }

static void case_memory_and_checkpoint(void) {
    size_t n;
    uint8_t *b = sn_read_file(fixture_path("pth_small_zip.pth"), &n, 0);
    pth_file *f = b ? pth_open_mem(b, n, "mem.pth") : NULL;
    check(f && f->n > 10 && !strcmp(f->name, "mem.pth"), "pth_open_mem of the zip fixture");
    pth_close(f);
    free(b);
    const char *names[] = {"pth_ckpt_zip.pth", "pth_ckpt_legacy.pth", "pth_crafted_ok_zip.pth", "pth_crafted_ok_legacy.pth"};
    for (int k = 0; k < 4; k++) {
        f = pth_open(fixture_path(names[k]));
        bool ok = f != NULL;
        if (ok && k < 2) ok = pth_find(f, "conv.weight") && pth_find(f, "view_b") && !pth_find(f, "epoch");
        if (ok && k >= 2) {
            const pth_tensor *w = pth_find(f, "w");
            ok = f->n == 1 && w && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 4;
            for (int i = 0; ok && i < 8; i++) ok = w->f32[i] == (float)(i + 2);
        }
        check(ok, "%s: %s", names[k], k < 2 ? "a training checkpoint gives its \"state_dict\""
                                            : "hand-built file: tensor at offset 2 of its storage");
        pth_close(f);
    }
}

static void case_hostile(void) {
    static const struct { const char *file, *says; } ev[] = {
        {"global_os_system", "'os.system'"}, {"global_eval", "'builtins.eval'"},
        {"reduce_storage_type", "storage type"}, {"reduce_non_global", "not an allowed global"},
        {"offset_out", "outside its storage"}, {"shape_overflow", "overflows"}, {"stride_out", "outside its storage"},
        {"stride_negative", "negative"},
        {"not_tensor", "'w' is not a tensor"}, {"opcode_inst", "unsupported opcode"}, {"truncated_pickle", ""},
    };
    for (size_t k = 0; k < sizeof ev / sizeof ev[0]; k++)
        for (int z = 0; z < 2; z++) {
            char name[96];
            snprintf(name, sizeof name, "pth_evil_%s_%s.pth", ev[k].file, z ? "zip" : "legacy");
            const char *path = fixture_path(name);
            pth_file *f = pth_open(path);
            check(!f && strstr(sn_last_error(), path) && strstr(sn_last_error(), ev[k].says),
                  "%s refused: %s", name, sn_last_error());
            pth_close(f);
        }
    const char *more[][2] = {{"pth_evil_count_legacy.pth", "holds 11 elements"}, {"pth_evil_missing_zip.pth", "missing"}};
    for (int k = 0; k < 2; k++) {
        const char *path = fixture_path(more[k][0]);
        pth_file *f = pth_open(path);
        check(!f && strstr(sn_last_error(), path) && strstr(sn_last_error(), more[k][1]), "%s refused: %s", more[k][0],
              sn_last_error());
        pth_close(f);
    }
}

/* every proper prefix of the file fails cleanly with the name */
static void truncations(const char *file) {
    size_t n;
    uint8_t *b = sn_read_file(fixture_path(file), &n, 0);
    if (!check(b != NULL, "read %s", file)) return;
    int bad = 0;
    for (size_t len = 0; len < n; len++) {
        pth_file *f = pth_open_mem(b, len, "cut.pth");
        if (f || !strstr(sn_last_error(), "cut.pth")) bad++;
        pth_close(f);
    }
    pth_file *f = pth_open_mem(b, n, "whole.pth");
    check(bad == 0 && f, "%s: each of its %zu proper prefixes is refused naming the file, the whole opens", file, n);
    pth_close(f);
    free(b);
}

static void case_truncated(void) {
    truncations("pth_seed_zip.pth");
    truncations("pth_seed_legacy.pth");
    truncations("pth_small_legacy.pth");
}

/* the three published EfficientNet-Lite checkpoints (legacy format) */
static void case_efficientnet(void) {
    static const struct { const char *file; long params; } nets[] = {
        {"weights/efficientnet-lite/efficientnet-lite0-57934424.pth", 4652008},
        {"weights/efficientnet-lite/efficientnet-lite1-77cc7160.pth", 5416680},
        {"weights/efficientnet-lite/efficientnet-lite2-9656183e.pth", 6092072},
    };
    for (int k = 0; k < 3; k++) {
        const char *path = shared_path(nets[k].file);
        pth_file *f = pth_open(path);
        if (!check(f != NULL, "%s opens: %s", nets[k].file, f ? "ok" : sn_last_error())) continue;
        const pth_tensor *fc = pth_find(f, "_fc.weight");
        long all = 0, params = 0;
        int floats = 0, ints = 0;
        for (size_t i = 0; i < f->n; i++) {
            const pth_tensor *t = &f->t[i];
            if (!t->f32) { ints++; continue; }
            floats++;
            all += (long)t->numel;
            if (!strstr(t->name, "running_mean") && !strstr(t->name, "running_var")) params += (long)t->numel;
        }
        note("%s: %zu tensors (%d float, %d integer), %ld float elements, %ld without BN running stats", nets[k].file,
             f->n, floats, ints, all, params);
        check(f->format == PTH_LEGACY && f->converted == 0 && fc && fc->ndim == 2 && fc->shape[0] == 1000 &&
                  fc->shape[1] == 1280 && pth_find(f, "_fc.bias"),
              "%s: legacy float32 state dict with _fc.weight [1000,1280] and _fc.bias", nets[k].file);
        check(params == nets[k].params, "%s: %ld parameters (weights, biases, BN affine; SOURCE.txt says %ld)",
              nets[k].file, params, nets[k].params);
        pth_close(f);
    }
}

/* weights_open_st: a checkpoint behind the safetensors accessors, a safetensors file as is */
static void case_weights_st(void) {
    pth_file *p = pth_open(fixture_path("pth_small_legacy.pth"));
    st_file *s = weights_open_st(fixture_path("pth_small_legacy.pth"));
    bool ok = p && s && st_count(s) == p->n && st_meta(s, "pth.converted") && !strcmp(st_meta(s, "pth.converted"), "3");
    for (size_t i = 0; ok && i < p->n; i++) {
        const pth_tensor *t = &p->t[i];
        const st_tensor *u = st_find(s, t->name);
        ok = u && u->ndim == t->ndim && u->numel == t->numel && u->dtype == (t->f32 ? ST_F32 : ST_I64) &&
             (!t->numel || !memcmp(u->data, t->f32 ? (const void *)t->f32 : (const void *)t->i64, u->nbytes));
    }
    check(ok, "weights_open_st of a legacy checkpoint: every tensor as F32 / I64 with its values, pth.converted = 3");
    st_close(s);
    pth_close(p);
    s = weights_open_st(fixture_path("pth_small_ref.safetensors"));
    check(s && st_count(s) == 22, "weights_open_st of a safetensors file reads it as is");
    st_close(s);
    s = weights_open_st(fixture_path("pth_evil_global_os_system_zip.pth"));
    check(!s && strstr(sn_last_error(), "os.system"), "weights_open_st passes the checkpoint's error on: %s",
          sn_last_error());
}

/* model_file_guess_arch names the zoo architecture of a bare state dict from its parameter names */
static void case_guess_arch(void) {
    static const struct { const char *file; int shared; const char *arch; } f[] = {
        {"weights/efficientnet-lite/efficientnet-lite0-57934424.pth", 1, "efficientnet_lite0"},
        {"weights/efficientnet-lite/efficientnet-lite1-77cc7160.pth", 1, "efficientnet_lite1"},
        {"weights/efficientnet-lite/efficientnet-lite2-9656183e.pth", 1, "efficientnet_lite2"},
        {"pth_mnv2_zip.pth", 0, "mobilenet_v2"},
        {"models_resnet18_state.safetensors", 0, "resnet18"},
        {"models_resnet34_state.safetensors", 0, "resnet34"},
        {"models_resnet50_state.safetensors", 0, "resnet50"},
        {"pth_small_ref.safetensors", 0, NULL},
    };
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        st_file *s = weights_open_st(f[k].shared ? shared_path(f[k].file) : fixture_path(f[k].file));
        const char *a = s ? model_file_guess_arch(s) : "(unreadable)";
        check(s && (f[k].arch ? a && !strcmp(a, f[k].arch) : !a), "%s: recognised as %s (%s)", f[k].file,
              f[k].arch ? f[k].arch : "none", a ? a : "none");
        st_close(s);
    }
}

/* a torchvision MobileNetV2 state dict saved by torch.save (zip and legacy) is a weights file like its
 * safetensors twin wherever one is taken: predict gives the same probabilities for all three */
static void whole_network_predict(void) {
    const char *bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    static const char *files[] = {"pth_mnv2.safetensors", "pth_mnv2_zip.pth", "pth_mnv2_legacy.pth"};
    static char outs[3][8192];
    char photo[4096];
    snprintf(photo, sizeof photo, "%s", shared_path("weights/imagenet-check/bird.png"));
    for (int i = 0; i < 3; i++) {
        char model[4096];
        snprintf(model, sizeof model, "%s", fixture_path(files[i]));
        int rc = run_capture(outs[i], sizeof outs[i], "%s predict --model %s --arch mobilenet_v2 --top 10 --json %s", bin,
                             model, photo);
        check(rc == 0 && strstr(outs[i], "\"probability\""), "predict --model %s (mobilenet_v2 state dict) runs (%d: %s)",
              files[i], rc, flat_tail(outs[i], 200));
    }
    /* the JSON ends by naming the model file: compare the predictions before it */
    const char *a = strstr(outs[0], "\"top\""), *b = strstr(outs[1], "\"top\""), *c = strstr(outs[2], "\"top\"");
    const char *ae = a ? strstr(a, "\"model\"") : NULL;
    size_t n = ae ? (size_t)(ae - a) : 0;
    check(a && b && c && n > 0 && strncmp(a, b, n) == 0 && strncmp(a, c, n) == 0,
          "zip .pth, legacy .pth and safetensors give identical top-10 probabilities");
}

static const test_case cases[] = {
    {"whole_network_predict", whole_network_predict},
    {"detect", case_detect},
    {"zip", case_zip},
    {"legacy", case_legacy},
    {"memory_and_checkpoint", case_memory_and_checkpoint},
    {"hostile", case_hostile},
    {"truncated", case_truncated},
    {"efficientnet", case_efficientnet},
    {"weights_st", case_weights_st},
    {"guess_arch", case_guess_arch},
};
TEST_MAIN(cases)
