/* background.h - backgrounds to put products on: procedural textures generated on the fly from
 * a key, and crops of real texture photos from folders.
 *
 * Contract
 * - bg_procedural(family, seed, key, w, h, rgb): fills rgb[h*w*3] with a texture of the family
 *   (BG_GRADIENT linear/radial colour gradients, BG_NOISE value noise over several octaves,
 *   BG_STRIPES, BG_CHECKS, BG_WEAVE fabric-like warp and weft, BG_MARBLE veins, BG_SPECKLE
 *   glitter on a flat colour, BG_DARK dark scenes with a soft light), with colours, scales and
 *   angles drawn from core/rng.h keyed by (seed, key): the same on every machine and thread.
 * - bg_library_load(dirs, max_side, optional): the PNG and JPEG photos (the project's image
 *   reader), WebP photos (libwebp) and GIMP patterns (.pat) under the folders (comma-separated),
 *   recursively, in sorted path order; other files are not backgrounds.  Nothing is decoded
 *   yet: bg_library_image(lib, i) decodes image i at its first use (thread safe, lock free; a
 *   race decodes twice and keeps one), photos shrunk so the short side is at most max_side,
 *   patterns as they are (tiled when drawn).  An image that cannot be decoded gives NULL and is
 *   counted (bg_library_failed: the count and the first message).  A folder that does not exist
 *   is an error unless `optional` (then skipped); NULL + sn_error also when out of memory.  A
 *   library without images is valid (bg_draw then uses procedural textures only).
 * - bg_library_shared(dirs, max_side, optional): the process's library for those folders,
 *   loaded by the first caller and kept until the process ends (every loader of a
 *   cross-validation shares the decoded images); never bg_library_free it.
 * - bg_photo(lib, seed, key, w, h, rgb): a random crop of a random library image (square
 *   window of 35-100% of the short side, random position, flip and quarter turn; patterns
 *   tiled at a random scale), sampled bilinearly to w x h; -1 (rgb untouched) when the library
 *   is empty or the image drawn cannot be decoded.
 * - bg_pool_texture(seed, t): texture t (0 <= t < BG_POOL) of the seed's procedural pool:
 *   bg_procedural(t % BG_FAMILIES, seed, ...) at BG_POOL_SIDE x BG_POOL_SIDE, generated at its
 *   first use (thread safe) and kept for the process; NULL when out of memory.
 * - bg_draw(lib, photo_p, seed, key, w, h, rgb): a library crop with probability photo_p (when
 *   the library has images), else (or when that image cannot be decoded) a crop of a pool
 *   texture drawn uniformly (as bg_photo crops photos): a texture costs one generation, then
 *   each background a resampling.
 */
#ifndef STYLENET_BACKGROUND_H
#define STYLENET_BACKGROUND_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "io/image.h"

enum { BG_GRADIENT, BG_NOISE, BG_STRIPES, BG_CHECKS, BG_WEAVE, BG_MARBLE, BG_SPECKLE, BG_DARK, BG_FAMILIES };

/* Debian's gimp-data patterns and gnome-backgrounds */
#define BG_DEFAULT_DIRS "/usr/share/gimp/2.0/patterns,/usr/share/backgrounds"
/* short side photos are shrunk to for the loaders (crops are sampled from them at training sizes) */
enum { BG_MAX_SIDE = 512 };
/* the procedural pool: textures per seed, and their side */
enum { BG_POOL = 256, BG_POOL_SIDE = 192 };

typedef struct bg_library bg_library;

extern const char *const BG_FAMILY_NAMES[BG_FAMILIES];

void bg_procedural(int family, uint64_t seed, uint64_t key, int w, int h, uint8_t *rgb);
bg_library *bg_library_load(const char *dirs, int max_side, bool optional);
bg_library *bg_library_shared(const char *dirs, int max_side, bool optional);
int bg_library_size(const bg_library *lib);
bool bg_library_tile(const bg_library *lib, int i);
const image *bg_library_image(bg_library *lib, int i);
int bg_library_failed(bg_library *lib, char *first, size_t cap);
void bg_library_free(bg_library *lib);
int bg_photo(bg_library *lib, uint64_t seed, uint64_t key, int w, int h, uint8_t *rgb);
const image *bg_pool_texture(uint64_t seed, int t);
void bg_draw(bg_library *lib, float photo_p, uint64_t seed, uint64_t key, int w, int h, uint8_t *rgb);
#endif
