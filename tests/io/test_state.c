/* test_state: io/state.h loads a PyTorch state dict (tools/fixtures_io.py, class Small) into the
 * same network built with nn/net.h, saves it back byte-identically, PyTorch loads our file with
 * load_state_dict(strict=True), and every missing / extra / wrong-shaped / wrong-dtype tensor is
 * an error naming the file and the tensor, with the options relaxing it by prefix. */
#include "../common/check.h"
#include "core/file.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "io/state.h"
#include "nn/net.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static net *small_net(void) {
    net *m = net_create(8, 8, 3);
    if (!m) return NULL;
    snprintf(m->arch, sizeof m->arch, "small");
    int x = net_conv(m, 0, "conv1", 4, 3, 1, 1, 1, false);
    x = net_bn(m, x, "bn1", 1e-5f, 0.1f);
    x = net_relu(m, x);
    x = net_conv(m, x, "conv2", 8, 3, 1, 1, 4, true);
    x = net_gap(m, x);
    x = net_linear(m, x, "fc", 5, true);
    if (x < 0) {
        net_free(m);
        return NULL;
    }
    net_init_params(m, 1);
    return m;
}

static int bn_node(const net *m) {
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == OP_BN) return i;
    return -1;
}

/* every param equals io_state_ref.safetensors (conv weights there are OHWI) */
static bool equals_ref(net *m, int *n_cmp) {
    st_file *r = st_open(fixture_path("io_state_ref.safetensors"));
    if (!r) return false;
    bool ok = true;
    *n_cmp = 0;
    for (int i = 0; i < m->n_params; i++) {
        const st_tensor *t = st_find(r, m->params[i].name);
        float *v = malloc(m->params[i].numel * 4 + 4);
        ok = ok && t && t->numel == m->params[i].numel && st_read_f32(r, t, v, t->numel) == 0 &&
             memcmp(v, net_param(m, i), t->numel * 4) == 0;
        free(v);
        (*n_cmp)++;
    }
    st_close(r);
    return ok;
}

static char tmpdir[64]; /* the running case's temp folder */

/* a fresh temp folder for one case */
static bool tmp_begin(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/stylenet_state_XXXXXX");
    return check(mkdtemp(tmpdir) != NULL, "temp dir");
}

static void tmp_end(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) note("could not remove %s", tmpdir);
}

static const char *tmp_path(const char *name) { return path_in(tmpdir, name); }

/* writes a copy of the torch fixture, without `drop` (prefix list) and with extra tensors */
typedef struct { const char *name; st_dtype dt; int ndim; int64_t shape[4]; } extra_t;
static const char *variant(const char *name, const char *drop, const extra_t *extra, int n_extra) {
    st_file *f = st_open(fixture_path("io_state_torch.safetensors"));
    st_writer *w = st_writer_new();
    for (size_t i = 0; f && i < st_count(f); i++) {
        const st_tensor *t = st_tensor_at(f, i);
        bool skip = false;
        for (int k = 0; k < n_extra; k++) skip = skip || strcmp(extra[k].name, t->name) == 0;
        if (drop && strncmp(t->name, drop, strlen(drop)) == 0) skip = true;
        if (!skip) st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    static uint8_t zeros[4096];
    for (int k = 0; k < n_extra; k++) st_writer_add(w, extra[k].name, extra[k].dt, extra[k].ndim, extra[k].shape, zeros);
    const char *p = tmp_path(name);
    if (st_writer_save(w, p) < 0) p = NULL;
    st_writer_free(w);
    st_close(f);
    return p;
}

static const char *python(void) {
    const char *p = getenv("STYLENET_PY");
    return p && p[0] ? p : "build/venv/bin/python";
}

/* the test network with PyTorch's state dict loaded; NULL after a failed check */
static net *torch_net(void) {
    net *m = small_net();
    int n = m ? net_load_safetensors(m, fixture_path("io_state_torch.safetensors"), NULL) : -1;
    if (!check(n == 9, "the test network with PyTorch's state dict: %s", n == 9 ? "ok" : sn_last_error())) {
        net_free(m);
        return NULL;
    }
    return m;
}

static void case_load_torch(void) {
    net *m = small_net();
    if (!check(m != NULL, "build the test network: %s", m ? "ok" : sn_last_error())) return;
    int n = net_load_safetensors(m, fixture_path("io_state_torch.safetensors"), NULL);
    int n_cmp = 0;
    check(n == m->n_params && n == 9, "strict load of a PyTorch state dict: %d params loaded (%s)", n, n < 0 ? sn_last_error() : "ok");
    bool same = equals_ref(m, &n_cmp);
    check(same && n_cmp == 9, "every param equals PyTorch's, conv weights permuted OIHW -> OHWI (%d compared)", n_cmp);
    check(m->nodes[bn_node(m)].tracked == 5, "num_batches_tracked -> node.tracked = 5 (got %lld)", (long long)m->nodes[bn_node(m)].tracked);
    net_free(m);
}

static void case_load_f64(void) {
    net *m2 = small_net();
    int n_cmp = 0, n = m2 ? net_load_safetensors(m2, fixture_path("io_state_torch_f64.safetensors"), NULL) : -1;
    check(n == 9 && equals_ref(m2, &n_cmp), "an F64 state dict loads and converts exactly (%s)", n < 0 ? sn_last_error() : "ok");
    net_free(m2);
}

/* save: byte-identical to PyTorch's save_file(model.state_dict()) */
static void case_save_identical(void) {
    net *m = torch_net();
    if (!m || !tmp_begin()) {
        net_free(m);
        return;
    }
    const char *ours = tmp_path("ours.safetensors");
    size_t n1 = 0, n2 = 0;
    int rc_save = net_save_safetensors(m, ours, NULL, 0);
    check(rc_save == 0, "save: %s", rc_save ? sn_last_error() : "ok");
    uint8_t *a = sn_read_file(ours, &n1, 0), *b = sn_read_file(fixture_path("io_state_torch.safetensors"), &n2, 0);
    check(a && b && n1 == n2 && memcmp(a, b, n1) == 0, "saved file is byte-identical to PyTorch's state dict file (%zu vs %zu bytes)", n1, n2);
    free(a);
    free(b);
    tmp_end();
    net_free(m);
}

/* PyTorch loads `ours` strictly into the same module and finds the tensors of `torch_path` */
static void check_pytorch_loads(const char *ours, const char *torch_path) {
    char cmd[3000];
    snprintf(cmd, sizeof cmd,
             "%s -c '\n"
             "import sys, torch\n"
             "from safetensors import safe_open\n"
             "from safetensors.torch import load_file\n"
             "class Small(torch.nn.Module):\n"
             "    def __init__(self):\n"
             "        super().__init__()\n"
             "        self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)\n"
             "        self.bn1 = torch.nn.BatchNorm2d(4)\n"
             "        self.conv2 = torch.nn.Conv2d(4, 8, 3, padding=1, groups=4, bias=True)\n"
             "        self.fc = torch.nn.Linear(8, 5)\n"
             "m = Small()\n"
             "m.load_state_dict(load_file(sys.argv[1]), strict=True)\n"
             "ref = load_file(sys.argv[2])\n"
             "for k, v in m.state_dict().items(): assert torch.equal(v, ref[k]), k\n"
             "with safe_open(sys.argv[1], \"pt\") as f: assert f.metadata()[\"classes\"] == \"cat,dog,\\\"x\\\"\"\n"
             "print(\"PYOK\")' %s %s 2>&1",
             python(), ours, torch_path);
    FILE *p = popen(cmd, "r");
    char out[4096] = {0};
    size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
    int rc = p ? pclose(p) : -1;
    out[got] = 0;
    check(rc == 0 && strstr(out, "PYOK"), "PyTorch: load_state_dict(load_file(ours), strict=True) gives the same tensors%s%s",
          rc ? ": " : "", rc ? out : "");
}

/* with metadata; our file loads back, and PyTorch loads it strictly */
static void case_metadata(void) {
    net *m = torch_net(), *m2 = small_net();
    if (!m || !m2 || !tmp_begin()) {
        net_free(m);
        net_free(m2);
        return;
    }
    const char *meta[] = {"arch", "small", "classes", "cat,dog,\"x\"", "image_size", "8"};
    const char *withmeta = tmp_path("meta.safetensors");
    int rc_save = net_save_safetensors(m, withmeta, meta, 3);
    check(rc_save == 0, "save with metadata: %s", rc_save ? sn_last_error() : "ok");
    st_file *f = st_open(withmeta);
    check(f && st_meta_count(f) == 3 && strcmp(st_meta(f, "classes"), "cat,dog,\"x\"") == 0 && st_find(f, "bn1.num_batches_tracked") &&
              st_find(f, "bn1.num_batches_tracked")->dtype == ST_I64 && st_find(f, "bn1.num_batches_tracked")->ndim == 0,
          "metadata round trip; num_batches_tracked is a 0-dim I64");
    int n_cmp = 0, n = f ? net_load_st(m2, f, NULL) : -1;
    check(n == 9 && equals_ref(m2, &n_cmp) && m2->nodes[bn_node(m2)].tracked == 5, "our file loads back into a fresh net");
    st_close(f);
    check_pytorch_loads(withmeta, fixture_path("io_state_torch.safetensors"));
    tmp_end();
    net_free(m);
    net_free(m2);
}

/* errors, each naming the file and the tensor; a failed load changes nothing */
static void case_errors(void) {
    net *m = torch_net();
    if (!m || !tmp_begin()) {
        net_free(m);
        return;
    }
    float before = net_param(m, 0)[0];
    const char *miss = variant("missing.safetensors", "bn1.running_var", NULL, 0);
    int n = miss ? net_load_safetensors(m, miss, NULL) : 0;
    check(n < 0 && strstr(sn_last_error(), miss) && strstr(sn_last_error(), "missing tensor 'bn1.running_var'") &&
              strstr(sn_last_error(), "[4]"),
          "missing tensor: %s", sn_last_error());
    extra_t ex[] = {{"head.weight", ST_F32, 2, {2, 2}}};
    const char *extra = variant("extra.safetensors", NULL, ex, 1);
    n = extra ? net_load_safetensors(m, extra, NULL) : 0;
    check(n < 0 && strstr(sn_last_error(), extra) && strstr(sn_last_error(), "'head.weight'") && strstr(sn_last_error(), "[2,2]"),
          "extra tensor: %s", sn_last_error());
    n = extra ? net_load_safetensors(m, extra, &(net_load_opts){.ignore_extra = "aux.,head."}) : -1;
    check(n == 9, "extra tensor ignored under ignore_extra \"aux.,head.\" (%d loaded)", n);
    extra_t bad_shape[] = {{"fc.weight", ST_F32, 2, {5, 3}}};
    const char *shp = variant("shape.safetensors", NULL, bad_shape, 1);
    net_param(m, 0)[0] = before + 1;
    n = shp ? net_load_safetensors(m, shp, NULL) : 0;
    check(n < 0 && strstr(sn_last_error(), shp) && strstr(sn_last_error(), "'fc.weight' has shape [5,3], expected [5,8]"),
          "wrong shape names both shapes: %s", sn_last_error());
    check(net_param(m, 0)[0] == before + 1, "a failed load leaves the net unchanged");
    extra_t bad_dt[] = {{"fc.bias", ST_I32, 1, {5}}};
    const char *dt = variant("dtype.safetensors", NULL, bad_dt, 1);
    n = dt ? net_load_safetensors(m, dt, NULL) : 0;
    check(n < 0 && strstr(sn_last_error(), "'fc.bias'") && strstr(sn_last_error(), "I32"), "integer dtype for a weight: %s",
          sn_last_error());
    extra_t bad_nbt[] = {{"bn1.num_batches_tracked", ST_F32, 0, {0}}};
    const char *nbt = variant("nbt.safetensors", NULL, bad_nbt, 1);
    n = nbt ? net_load_safetensors(m, nbt, NULL) : 0;
    check(n < 0 && strstr(sn_last_error(), "'bn1.num_batches_tracked'"), "float num_batches_tracked: %s", sn_last_error());
    extra_t several[] = {{"x.a", ST_F32, 1, {1}}, {"x.b", ST_F32, 1, {1}}};
    const char *sev = variant("several.safetensors", "conv2.", several, 2);
    n = sev ? net_load_safetensors(m, sev, NULL) : 0;
    check(n < 0 && strstr(sn_last_error(), "(and 3 more problems)"), "several problems are counted: %s", sn_last_error());
    tmp_end();
    net_free(m);
}

/* partial loads: a body without its head (fc.* keeps its values under allow_missing), options
 * relaxing everything, missing files */
static void case_partial(void) {
    net *m = torch_net();
    if (!m || !tmp_begin()) {
        net_free(m);
        return;
    }
    float before = net_param(m, 0)[0];
    const char *body = variant("body.safetensors", "fc.", NULL, 0);
    int fcw = net_find_param(m, "fc.weight");
    net_param(m, fcw)[0] = 42.0f;
    int n = body ? net_load_safetensors(m, body, NULL) : 0;
    check(n < 0 && strstr(sn_last_error(), "missing tensor 'fc."), "body without head, strict: %s", sn_last_error());
    n = body ? net_load_safetensors(m, body, &(net_load_opts){.allow_missing = "fc."}) : -1;
    check(n == 7 && net_param(m, fcw)[0] == 42.0f && net_param(m, 0)[0] == before,
          "body without head under allow_missing \"fc.\": 7 loaded (%d), head keeps its values", n);
    /* loading torchvision-style: file has fc.* but the net's head is different -> ignore + allow */
    n = net_load_safetensors(m, fixture_path("io_state_torch.safetensors"), &(net_load_opts){.allow_missing = "", .ignore_extra = ""});
    check(n == 9, "allow_missing and ignore_extra \"\" (everything) still load what matches (%d)", n);
    n = net_load_safetensors(m, "/nonexistent/w.safetensors", NULL);
    check(n < 0 && strstr(sn_last_error(), "/nonexistent/w.safetensors"), "missing file: %s", sn_last_error());
    check(net_save_safetensors(m, "/nonexistent/dir/w.safetensors", NULL, 0) < 0 &&
              strstr(sn_last_error(), "/nonexistent/dir/w.safetensors"),
          "save into a missing directory: %s", sn_last_error());
    tmp_end();
    net_free(m);
}

static const test_case cases[] = {
    {"load_torch", case_load_torch},
    {"load_f64", case_load_f64},
    {"save_identical", case_save_identical},
    {"metadata", case_metadata},
    {"errors", case_errors},
    {"partial", case_partial},
};
TEST_MAIN(cases)
