/* loader.h - batches of augmented, normalised images, prepared ahead by background threads.
 *
 * Contract (for the trainer)
 * --------------------------
 *   loader_opts lo = loader_defaults();           // then set what differs:
 *   lo.size = 128; lo.batch = 64; lo.augment = true; lo.shuffle = true; lo.drop_last = true;
 *   lo.seed = 42; lo.n_threads = 2; memcpy(lo.mean, AUG_IMAGENET_MEAN, ...);
 *   loader *L = loader_create(ds, sp.train, sp.n_train, &lo);   // NULL + sn_error on failure
 *   float *x = malloc(sizeof(float) * lo.batch * S * S * 3);   // [B, S, S, 3] NHWC
 *   float *t = malloc(sizeof(float) * lo.batch * ds->n_classes); int y[B];
 *   for (epoch = 0; epoch < E; epoch++) {
 *       if (epoch == 3) loader_set_size(L, 128);    // progressive resizing: from this epoch on
 *       int n;
 *       while ((n = loader_next(L, x, y, t)) > 0) train_step(x, y, t, n);
 *       if (n < 0) fail(sn_last_error());
 *   }                                               // after the 0, the next call starts epoch+1
 *   loader_free(L);
 *
 * - loader_next fills x with n images (loader_next_view lends the batch instead of copying it) (n = batch, or fewer for the last batch when !drop_last),
 *   y[n] with class indices (single-label; -1 for multi-label sets) and t[n * n_classes] with the
 *   0/1 targets (one-hot or multi-hot); y and t may be NULL.  It returns n, 0 at the end of an
 *   epoch (the following call delivers the first batch of the next epoch), -1 on error (an image
 *   that could not be read; the message names it).
 * - Epoch e: the order is a seeded shuffle of the indices (or the given order without shuffle);
 *   image i's augmentation comes from aug_draw(seed, e, dataset index i).  So every batch is
 *   bit-identical for a given (seed, epoch, size) whatever n_threads is, on every run.
 * - loader_set_epoch(L, e) / loader_set_size(L, S): restart the current epoch's pipeline at the
 *   beginning of epoch e / with images of S x S (batches prefetched so far are dropped); call
 *   them between epochs.  Both are free when nothing changes (at the start of that epoch, same
 *   size): the prefetched batches are kept.  x must hold batch * S * S * 3 floats for the largest S used.
 * - Prefetching: n_threads > 0 background pthreads fill a bounded ring of `prefetch` batches
 *   (default 2 * n_threads + 2), across epoch boundaries, so the consumer waits only when it
 *   is faster than the data preparation.  n_threads = 0 prepares each batch inside loader_next.
 * - Augmentation on: aug_warp with aug_opts; off: aug_center (resize short side, centre crop).
 *   With aug_opts' shift augmentations (data/augment.h) an image whose aug_draw_shift draws any
 *   is made by aug_render instead; the loader keeps each item's matte (data/matte.h,
 *   matte_cache: built at the item's first new background, thread safe) and, unless
 *   aug.bg_dirs is "none" or bg_photo_p is 0, the process's background library of aug.bg_dirs
 *   (BG_DEFAULT_DIRS, where installed, when NULL; bg_library_shared).  CutMix: the image gets a
 *   rectangle of another image of the loader's list (picked and augmented with keys of its own
 *   (seed, epoch, item)); t becomes (1 - a) t_self + a t_other with a the share of the pixels the
 *   rectangle covers, and y the label of the larger share.  All of it is keyed as above, so
 *   batches stay identical for any thread count.
 * - The dataset must stay alive and unchanged (ds_decode done) while the loader exists.
 */
#ifndef STYLENET_LOADER_H
#define STYLENET_LOADER_H
#include <stdbool.h>
#include <stdint.h>
#include "data/augment.h"
#include "data/dataset.h"

typedef struct {
    int size, batch;        /* output side in pixels; images per batch */
    bool augment;           /* training augmentation (aug) or validation transform */
    aug_opts aug;
    float mean[3], std[3];  /* normalisation: (v/255 - mean) / std */
    uint64_t seed;
    bool shuffle, drop_last;
    int n_threads;          /* background workers; 0 = synchronous */
    int prefetch;           /* batches kept ready (0 = 2 * n_threads + 2) */
    int shard, n_shards;    /* deliver only part `shard` of n_shards of every batch (n_shards 0 or 1: all):
                               positions [B*shard/n_shards, B*(shard+1)/n_shards) of each batch of B,
                               decoded alone (data parallelism: each process its share).  n_shards > 1
                               needs drop_last and batch >= n_shards */
} loader_opts;

typedef struct loader loader;

loader_opts loader_defaults(void); /* 128 px, batch 64, augment with fastai defaults, ImageNet
                                      normalisation, seed 0, shuffle, drop_last, 2 threads */
loader *loader_create(const dataset *ds, const int *indices, int n, const loader_opts *o);
int loader_next(loader *l, float *x, int *y, float *t);
/* the same without copying: *x (and *y, *t when not NULL) point at the loader's batch, valid until
 * the next call on the loader (the workers keep filling the other slots meanwhile) */
int loader_next_view(loader *l, const float **x, const int **y, const float **t);
int loader_set_epoch(loader *l, int epoch);
int loader_set_size(loader *l, int size);
int loader_epoch(const loader *l);         /* the epoch the next batch belongs to */
int loader_batches_per_epoch(const loader *l);
void loader_free(loader *l);
#endif
