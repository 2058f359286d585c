/* test_onnx_export.c - io/onnx_export.h on graphs the zoo does not build: every node kind in one
 * small network (TensorFlow SAME padding that is asymmetric, depthwise conv with bias, ReLU6,
 * residual add, padded max pool, average pool with asymmetric padding that excludes the pad, a
 * flatten of a 2x3 map, which stylenet flattens channels last, batch norm on a flat vector,
 * linear), run by ONNX Runtime ($STYLENET_PY) against net_forward; and a node ONNX cannot express
 * here is refused by name, leaving no file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../common/check.h"
#include "core/error.h"
#include "io/onnx_export.h"
#include "kernels/loss.h"
#include "nn/net.h"

enum { N = 2, H = 8, W = 10, C = 3, K = 5 };

static const char *python(void) {
    const char *p = getenv("STYLENET_PY");
    return p && p[0] ? p : "build/venv/bin/python";
}

/* the small network; batch norms given random statistics */
static net *small_net(void) {
    net *m = net_create(H, W, C);
    int x = net_conv_same(m, 0, "c1", 8, 3, 2, 1, false); /* 8x10 -> 4x5: pads 0 top, 1 bottom, 0 left, 1 right */
    x = net_relu6(m, net_bn(m, x, "b1", 1e-3f, 0.1f));
    int y = net_relu(m, net_conv(m, x, "d1", 8, 3, 1, 1, 8, true));
    x = net_maxpool(m, net_add(m, y, x), 3, 2, 1); /* -> 2x3 */
    pool_desc ap = {.kh = 2, .kw = 2, .sh = 1, .sw = 1, .pb = 1, .pr = 1, .count_include_pad = 0};
    x = net_flatten(m, net_avgpool(m, x, ap));
    x = net_linear(m, net_bn(m, x, "b2", 1e-5f, 0.1f), "fc", K, true);
    if (x < 0) {
        net_free(m);
        return NULL;
    }
    net_init_params(m, 3);
    for (int p = 0; p < m->n_params; p++) {
        const param *pa = &m->params[p];
        if (m->nodes[pa->node].op != OP_BN) continue;
        float *v = net_param(m, p);
        fill_uniform(v, pa->numel, 100 + (unsigned long long)p);
        bool pos = strstr(pa->name, "running_var") || strstr(pa->name, "weight");
        for (size_t i = 0; i < pa->numel; i++) v[i] = pos ? 1.0f + 0.5f * v[i] : 0.3f * v[i];
    }
    return m;
}

static bool write_floats(const char *path, const float *x, size_t n) {
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(x, sizeof(float), n, f) == n;
    if (f) fclose(f);
    return ok;
}

static bool read_floats(const char *path, float *x, size_t n) {
    FILE *f = fopen(path, "rb");
    bool ok = f && fread(x, sizeof(float), n, f) == n;
    if (f) fclose(f);
    return ok;
}

static void every_node(void) {
    char dir[] = "/tmp/stylenet_onnx_XXXXXX", onx[200], xin[200], yout[200];
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return;
    net *m = small_net();
    if (!check(m != NULL, "build the network: %s", m ? "ok" : sn_last_error())) return;
    float x[N * H * W * C], xt[N * C * H * W], probs[N * K], got[2 * N * K];
    fill_uniform(x, sizeof x / sizeof *x, 7);
    const float *logits = net_set_batch(m, N) == 0 ? net_forward(m, x, false) : NULL;
    if (!check(logits != NULL, "forward: %s", logits ? "ok" : sn_last_error())) goto done;
    loss_softmax(N, K, logits, probs);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < H * W; i++) xt[(n * C + c) * H * W + i] = x[(n * H * W + i) * C + c];
    snprintf(onx, sizeof onx, "%s/small.onnx", dir);
    snprintf(xin, sizeof xin, "%s/x.f32", dir);
    snprintf(yout, sizeof yout, "%s/y.f32", dir);
    const char *meta[] = {"note", "test"};
    onnx_export_opts o = {.final = ONNX_FINAL_SOFTMAX, .meta = meta, .n_meta = 1, .doc = "test"};
    int r = onnx_export_net(m, &o, onx);
    if (!check(r == 0, "export: %s", r == 0 ? "ok" : sn_last_error())) goto done;
    if (!check(write_floats(xin, xt, sizeof xt / sizeof *xt), "write the input")) goto done;
    char out[4096];
    int rc = run_capture(out, sizeof out,
                         "%s -c \"import numpy as np, onnx, onnxruntime as ort; m = onnx.load('%s'); "
                         "onnx.checker.check_model(m, full_check=True); "
                         "s = ort.InferenceSession('%s', providers=['CPUExecutionProvider']); "
                         "l, p = s.run(None, {'input': np.fromfile('%s', np.float32).reshape(%d, %d, %d, %d)}); "
                         "np.concatenate([l.ravel(), p.ravel()]).astype(np.float32).tofile('%s'); "
                         "print('ops', sorted({n.op_type for n in m.graph.node}))\"",
                         python(), onx, onx, xin, N, C, H, W, yout);
    check(rc == 0, "onnx.checker and onnxruntime run it: %s", flat_tail(out, 300));
    if (rc != 0 || !check(read_floats(yout, got, 2 * N * K), "read onnxruntime's outputs")) goto done;
    note("%s", flat_tail(out, 300));
    check_close("onnxruntime logits = net_forward", got, logits, N * K, 1e-5f, 1e-6f);
    check_close("onnxruntime probabilities = softmax", got + N * K, probs, N * K, 1e-5f, 1e-6f);
done:
    net_free(m);
    snprintf(out, sizeof out, "rm -rf %s", dir);
    if (system(out) != 0) note("could not remove %s", dir);
}

/* a convolution of a linear's output: the value is [batch, n] in the graph, which Conv cannot take */
static void refused(void) {
    char dir[] = "/tmp/stylenet_onnx_XXXXXX", onx[200], cmd[200];
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return;
    net *m = net_create(4, 4, 3);
    int x = net_conv(m, net_linear(m, net_gap(m, 0), "fc", 6, true), "after", 2, 1, 1, 0, 1, true);
    if (check(x >= 0, "build the network")) {
        snprintf(onx, sizeof onx, "%s/bad.onnx", dir);
        onnx_export_opts o = {.final = ONNX_FINAL_NONE};
        int r = onnx_export_net(m, &o, onx);
        const char *e = sn_last_error();
        check(r < 0 && strstr(e, "bad.onnx") && strstr(e, "cannot express"), "refused, naming the file: %s", e);
        struct stat s;
        check(stat(onx, &s) != 0, "no file written");
    }
    net_free(m);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) note("could not remove %s", dir);
}

static const test_case cases[] = {
    {"every_node", every_node},
    {"refused", refused},
};
TEST_MAIN(cases)
