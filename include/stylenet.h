/* stylenet.h - the public C API of libstylenet: classify photos with a trained stylenet model
 * from another program.
 *
 *     stylenet_model *m = stylenet_open("style.stn", NULL);
 *     if (!m) { fprintf(stderr, "%s\n", stylenet_last_error()); return 1; }
 *     float *p = malloc(sizeof(float) * stylenet_num_classes(m));
 *     if (stylenet_predict_file(m, "bag.webp", p) == 0)
 *         for (int g = 0; g < stylenet_num_groups(m); g++) {
 *             int best = stylenet_group_best(m, g, p);
 *             printf("%s: %s %.3f\n", stylenet_group_name(m, g), stylenet_class_name(m, best), p[best]);
 *         }
 *     free(p);
 *     stylenet_close(m);
 *
 * Build: cc app.c $(pkg-config --cflags --libs stylenet).
 *
 * Models: every weights file `stylenet predict --model` reads (a stylenet model file; a
 * torchvision state dict; a TFLite MobileNetV2, with opts->labels for its class names).
 *
 * Predictions: probs[stylenet_num_classes(m)] receives one probability per class, as
 * `stylenet predict` computes them (centre crop, resize to the model's input side, the model's
 * normalisation; sigmoid per class for a multi-label model, softmax over all classes otherwise).
 * Classes are arranged in label groups (the Style model: "brand", then "product"): group g holds
 * classes [first, end) of stylenet_group_range, and its answer is its most probable class
 * (stylenet_group_best).  A model without groups has one group, named "class", of all classes.
 *
 * Photos: stylenet_predict_image takes the bytes of a PNG, JPEG or WebP file (the format is found
 * from the bytes); stylenet_predict_rgb takes 8-bit RGB pixels, row-major, 3 bytes per pixel,
 * `stride` bytes from one row to the next.
 *
 * Errors: a function that fails returns -1 (or NULL) and leaves a message naming the file or the
 * photo and what is wrong, read with stylenet_last_error() on the same thread (thread-local, kept
 * until the next failure on that thread).  Nothing prints or exits.
 *
 * Ownership: stylenet_open returns a handle the caller closes with stylenet_close; strings
 * returned by the name functions belong to the handle and live until it is closed.  The library
 * keeps no pointer to the caller's buffers (paths, bytes, pixels, probs) after a call returns.
 *
 * Threads: one handle may be used by any number of threads at once.  It holds opts->workers
 * inference workers (default 1) sharing one copy of the weights; a prediction takes a free worker
 * and waits while all are busy.  Each prediction computes with opts->threads OpenMP threads
 * (default 1), restoring the caller's OpenMP setting after.  stylenet_close must not run while
 * another call on the same handle does.  Different handles are independent: they may be opened,
 * used and closed from different threads at once.
 *
 * Versions: STYLENET_VERSION_* below is the version of this header; stylenet_version() the
 * version of the library the program runs with.  The soname is libstylenet.so.MAJOR: a minor or
 * patch version only adds functions or fixes them, so a program built against an older header of
 * the same major version runs with it; any change to the layout of stylenet_options or to a
 * function's signature comes with a new major version.
 */
#ifndef STYLENET_H
#define STYLENET_H
#include <stddef.h>
#include <stdint.h>

#define STYLENET_VERSION_MAJOR 1
#define STYLENET_VERSION_MINOR 0
#define STYLENET_VERSION_PATCH 0
#define STYLENET_VERSION_STRING "1.0.0"

#if defined(__GNUC__) || defined(__clang__)
#define STYLENET_API __attribute__((visibility("default")))
#else
#define STYLENET_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct stylenet_model stylenet_model; /* opaque */

typedef struct {
    int workers;        /* predictions that may run at once on this handle (0: 1) */
    int threads;        /* OpenMP threads per prediction (0: 1) */
    const char *labels; /* class names, one per line, for a file without them (NULL: none) */
    const char *arch;   /* architecture of a bare state dict (NULL: recognised from its parameter names) */
} stylenet_options;

/* "1.0.0": the library's version */
STYLENET_API const char *stylenet_version(void);
/* the message of the last failure on this thread ("" if none) */
STYLENET_API const char *stylenet_last_error(void);

/* opens a model file; opts may be NULL (the defaults above) */
STYLENET_API stylenet_model *stylenet_open(const char *path, const stylenet_options *opts);
/* frees the handle and everything it owns; NULL is ignored */
STYLENET_API void stylenet_close(stylenet_model *m);

STYLENET_API int stylenet_num_classes(const stylenet_model *m);
/* class k's name (0 <= k < stylenet_num_classes); NULL when k is out of range */
STYLENET_API const char *stylenet_class_name(const stylenet_model *m, int k);
/* "multi" (sigmoid per class) or "single" (softmax) */
STYLENET_API const char *stylenet_task(const stylenet_model *m);
/* the side in pixels of the square the photo is resized to */
STYLENET_API int stylenet_input_size(const stylenet_model *m);
/* label groups: at least 1 */
STYLENET_API int stylenet_num_groups(const stylenet_model *m);
/* group g's name; NULL when g is out of range */
STYLENET_API const char *stylenet_group_name(const stylenet_model *m, int g);
/* group g's classes are [*first, *end); -1 when g is out of range */
STYLENET_API int stylenet_group_range(const stylenet_model *m, int g, int *first, int *end);
/* the most probable class of group g in probs; -1 when g is out of range */
STYLENET_API int stylenet_group_best(const stylenet_model *m, int g, const float *probs);

/* probabilities of the photo whose encoded bytes (PNG, JPEG, WebP) are bytes[n]; name is used in
 * error messages (NULL: "image").  0, or -1 with an error */
STYLENET_API int stylenet_predict_image(stylenet_model *m, const void *bytes, size_t n, const char *name,
                                        float *probs);
/* the same for a photo file */
STYLENET_API int stylenet_predict_file(stylenet_model *m, const char *path, float *probs);
/* the same for width x height RGB pixels, rows `stride` bytes apart (>= 3 * width) */
STYLENET_API int stylenet_predict_rgb(stylenet_model *m, const uint8_t *rgb, int width, int height, size_t stride,
                                      float *probs);

#ifdef __cplusplus
}
#endif
#endif
