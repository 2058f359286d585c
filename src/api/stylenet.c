/* stylenet.c - the public API of include/stylenet.h: a loaded classifier (classifier/) and a pool
 * of inference workers sharing its weights (serve/predictor.h), behind an opaque handle.  Only
 * the functions marked STYLENET_API are exported from libstylenet.so. */
#include "stylenet.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "classifier/classifier.h"
#include "core/error.h"
#include "core/file.h"
#include "io/image.h"
#include "serve/predictor.h"

struct stylenet_model {
    classifier *c;
    pred_pool *pool;
};

STYLENET_API const char *stylenet_version(void) { return STYLENET_VERSION_STRING; }

STYLENET_API const char *stylenet_last_error(void) { return sn_last_error(); }

STYLENET_API stylenet_model *stylenet_open(const char *path, const stylenet_options *opts) {
    stylenet_options o = opts ? *opts : (stylenet_options){0};
    if (!path) {
        sn_error("stylenet_open: no model path");
        return NULL;
    }
    if (o.workers < 0 || o.workers > 1024 || o.threads < 0 || o.threads > 1024) {
        sn_error("%s: %d workers and %d threads asked for (each 0 to 1024)", path, o.workers, o.threads);
        return NULL;
    }
    stylenet_model *m = calloc(1, sizeof *m);
    if (!m) {
        sn_error("%s: out of memory", path);
        return NULL;
    }
    classifier_load_opts lo = {.arch = o.arch, .labels = o.labels, .infer_only = true};
    m->c = classifier_load(path, &lo);
    pred_opts po = pred_defaults();
    po.max_pixels = 100000000; /* what the decoders accept */
    po.max_views = 0;
    po.max_waiting = INT_MAX; /* a prediction waits for a free worker as long as it takes */
    po.wait_ms = INT_MAX;
    po.compute_threads = o.threads ? o.threads : 1;
    if (m->c) m->pool = pred_pool_create(m->c, o.workers ? o.workers : 1, &po);
    if (!m->pool) {
        stylenet_close(m);
        return NULL;
    }
    return m;
}

STYLENET_API void stylenet_close(stylenet_model *m) {
    if (!m) return;
    pred_pool_free(m->pool); /* before the classifier whose weights its workers share */
    classifier_free(m->c);
    free(m);
}

STYLENET_API int stylenet_num_classes(const stylenet_model *m) { return m->c->n_classes; }

STYLENET_API const char *stylenet_class_name(const stylenet_model *m, int k) {
    return k >= 0 && k < m->c->n_classes ? m->c->classes[k] : NULL;
}

STYLENET_API const char *stylenet_task(const stylenet_model *m) { return classifier_is_multi(m->c) ? "multi" : "single"; }

STYLENET_API int stylenet_input_size(const stylenet_model *m) { return m->c->size; }

STYLENET_API int stylenet_num_groups(const stylenet_model *m) { return m->c->n_groups > 0 ? m->c->n_groups : 1; }

STYLENET_API const char *stylenet_group_name(const stylenet_model *m, int g) {
    if (g < 0 || g >= stylenet_num_groups(m)) return NULL;
    return m->c->n_groups > 0 ? m->c->group_names[g] : "class";
}

STYLENET_API int stylenet_group_range(const stylenet_model *m, int g, int *first, int *end) {
    if (g < 0 || g >= stylenet_num_groups(m)) return sn_error("label group %d: the model has %d", g, stylenet_num_groups(m));
    *first = m->c->n_groups > 0 ? m->c->group_lo[g] : 0;
    *end = m->c->n_groups > 0 ? m->c->group_hi[g] : m->c->n_classes;
    return 0;
}

STYLENET_API int stylenet_group_best(const stylenet_model *m, int g, const float *probs) {
    if (g < 0 || g >= stylenet_num_groups(m)) return sn_error("label group %d: the model has %d", g, stylenet_num_groups(m));
    return classifier_group_best(m->c, g, probs);
}

/* a worker of m, or NULL with an error */
static predictor *worker(stylenet_model *m) {
    predictor *w = pred_acquire(m->pool);
    if (!w) sn_error("no inference worker became free");
    return w;
}

STYLENET_API int stylenet_predict_image(stylenet_model *m, const void *bytes, size_t n, const char *name, float *probs) {
    if (!name) name = "image";
    if (!bytes && n > 0) return sn_error("%s: no bytes", name);
    predictor *w = worker(m);
    if (!w) return -1;
    int rc = pred_run(w, bytes, n, name, 0, probs, NULL);
    pred_release(m->pool, w);
    return rc == PRED_OK ? 0 : -1;
}

STYLENET_API int stylenet_predict_file(stylenet_model *m, const char *path, float *probs) {
    size_t n;
    uint8_t *b = sn_read_file(path, &n, (size_t)1 << 30);
    if (!b) return -1;
    int rc = stylenet_predict_image(m, b, n, path, probs);
    free(b);
    return rc;
}

STYLENET_API int stylenet_predict_rgb(stylenet_model *m, const uint8_t *rgb, int width, int height, size_t stride,
                                      float *probs) {
    if (!rgb || width < 1 || height < 1 || stride < (size_t)width * 3 || (long long)width * height > 100000000)
        return sn_error("RGB pixels: %dx%d with rows %zu bytes apart is not an image stylenet takes "
                        "(1 to 100 Mpixel, rows at least 3 * width bytes apart)",
                        width, height, stride);
    image im = {.w = width, .h = height, .rgb = malloc((size_t)width * height * 3)};
    if (!im.rgb) return sn_error("out of memory for a %dx%d image", width, height);
    for (int y = 0; y < height; y++) memcpy(im.rgb + (size_t)y * width * 3, rgb + (size_t)y * stride, (size_t)width * 3);
    predictor *w = worker(m);
    if (!w) {
        image_free(&im);
        return -1;
    }
    int rc = pred_run_image(w, &im, 0, probs, NULL);
    pred_release(m->pool, w);
    return rc == PRED_OK ? 0 : -1;
}
