/* predictor.h - classifying image bytes with one loaded model from many threads at once.
 *
 * Contract
 * - pred_pool_create(model, n, opts) makes n workers.  Each worker is a copy of the model's net
 *   that SHARES the parameter arena (weights are read-only in inference) and owns its activation
 *   buffers, so n requests run in parallel with one copy of the weights.  The model must outlive
 *   the pool and must not be trained or resized while the pool exists.
 * - pred_acquire() hands out a free worker, waiting for one while fewer than opts.max_waiting
 *   callers already wait; beyond that, or after opts.wait_ms, or once pred_pool_shutdown() was
 *   called, it returns NULL at once (the server answers 503).  pred_release() gives it back.
 * - pred_run(worker, bytes, n, name, views, probs, info): sniffs the format and the pixel size
 *   from the header (more than opts.max_pixels: PRED_TOO_LARGE, nothing decoded), decodes PNG,
 *   JPEG or WebP (io/image.h) and scores it as `stylenet predict` does, with `views` test-time
 *   augmentation views averaged in (classifier_image_probs, seeded by opts.seed: the same bytes
 *   give the same answer).  probs[n_classes] receives sigmoid (multi-label) or softmax
 *   probabilities.
 *   Errors: PRED_BAD_IMAGE (not PNG/JPEG/WebP, truncated, corrupt: sn_last_error() names `name` and
 *   the problem), PRED_TOO_LARGE, PRED_INTERNAL (out of memory).
 * - Compute inside pred_run uses opts.compute_threads OpenMP threads (default 1: one core per
 *   request, so n workers use n cores); the caller's own OpenMP setting is restored after.
 */
#ifndef STYLENET_PREDICTOR_H
#define STYLENET_PREDICTOR_H
#include <stdbool.h>
#include <stddef.h>
#include "classifier/classifier.h"
#include "io/image.h"

enum { PRED_OK = 0, PRED_BAD_IMAGE = -1, PRED_TOO_LARGE = -2, PRED_INTERNAL = -3 };
enum { PRED_MAX_VIEWS = 16 };

typedef struct {
    long max_pixels;     /* width * height accepted (default 25,000,000) */
    int max_views;       /* largest `views` pred_run will be asked for (default 4) */
    int max_waiting;     /* callers that may wait for a worker (default 16) */
    int wait_ms;         /* longest wait for a worker (default 30000) */
    int compute_threads; /* OpenMP threads per request (default 1) */
    unsigned long long seed; /* TTA views (default 42, as training) */
} pred_opts;

typedef struct {
    int width, height;   /* decoded image */
    double decode_ms, compute_ms;
} pred_info;

typedef struct predictor predictor;
typedef struct pred_pool pred_pool;

pred_opts pred_defaults(void);
pred_pool *pred_pool_create(const classifier *m, int n_workers, const pred_opts *o);
void pred_pool_free(pred_pool *p);
/* wakes every waiter (they get NULL) and refuses new acquisitions */
void pred_pool_shutdown(pred_pool *p);
predictor *pred_acquire(pred_pool *p);
void pred_release(pred_pool *p, predictor *w);
/* workers in use and callers waiting, right now */
void pred_pool_load(pred_pool *p, int *busy, int *waiting, int *workers);
int pred_run(predictor *w, const void *bytes, size_t n, const char *name, int views, float *probs, pred_info *info);
/* pred_run's scoring of an image already decoded; the image is consumed (freed); ms as
 * classifier_image_probs's */
int pred_run_image(predictor *w, image *im, int views, float *probs, double ms[2]);
#endif
