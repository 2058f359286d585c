/* background.h - backgrounds to put products on: procedural textures generated on the fly from
 * a key, and crops of real texture photos from folders.
 *
 * Contract
 * - bg_procedural(family, seed, key, w, h, rgb): fills rgb[h*w*3] with a texture of the family
 *   (BG_GRADIENT linear/radial colour gradients, BG_NOISE value noise over several octaves,
 *   BG_STRIPES, BG_CHECKS, BG_WEAVE fabric-like warp and weft, BG_MARBLE veins, BG_SPECKLE
 *   glitter on a flat colour, BG_DARK dark scenes with a soft light), with colours, scales and
 *   angles drawn from core/rng.h keyed by (seed, key): the same on every machine and thread.
 * - bg_library_load(dirs, max_side): every PNG or JPEG photo (project's image reader) and GIMP
 *   pattern (.pat) under the folders, recursively, in sorted path order; comma-separated dirs.
 *   Photos are shrunk so the short side is at most max_side; patterns are kept as they are and
 *   tiled when drawn.  A file that cannot be read is skipped and counted (lib->n_failed, the
 *   first message in lib->first_failure).  A folder that does not exist is an error unless
 *   `optional` (then skipped); NULL + sn_error also when out of memory.  A library with no image
 *   is valid (bg_draw then uses procedural textures only).  Read-only after loading: threads
 *   may share it.
 * - bg_photo(lib, seed, key, w, h, rgb): a random crop of a random library image (square
 *   window of 35-100% of the short side, random position, flip and quarter turn; patterns
 *   tiled at a random scale), sampled bilinearly to w x h.  lib must hold an image.
 * - bg_draw(lib, photo_p, seed, key, w, h, rgb): a library crop with probability photo_p (when
 *   the library has images), else a procedural family drawn uniformly.
 */
#ifndef STYLENET_BACKGROUND_H
#define STYLENET_BACKGROUND_H
#include <stdbool.h>
#include <stdint.h>
#include "io/image.h"

enum { BG_GRADIENT, BG_NOISE, BG_STRIPES, BG_CHECKS, BG_WEAVE, BG_MARBLE, BG_SPECKLE, BG_DARK, BG_FAMILIES };

/* Debian's gimp-data patterns and gnome-backgrounds */
#define BG_DEFAULT_DIRS "/usr/share/gimp/2.0/patterns,/usr/share/backgrounds"

typedef struct bg_library {
    int n;             /* images */
    image *im;         /* [n] */
    bool *tile;        /* [n] a repeating pattern (GIMP .pat) */
    int n_failed;      /* files that could not be read */
    char first_failure[512];
} bg_library;

extern const char *const BG_FAMILY_NAMES[BG_FAMILIES];

void bg_procedural(int family, uint64_t seed, uint64_t key, int w, int h, uint8_t *rgb);
bg_library *bg_library_load(const char *dirs, int max_side, bool optional);
void bg_library_free(bg_library *lib);
void bg_photo(const bg_library *lib, uint64_t seed, uint64_t key, int w, int h, uint8_t *rgb);
void bg_draw(const bg_library *lib, float photo_p, uint64_t seed, uint64_t key, int w, int h, uint8_t *rgb);
#endif
