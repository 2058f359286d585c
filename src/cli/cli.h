/* cli.h - the stylenet command line: one file per verb, each `int cmd_VERB(int argc, char **argv)`
 * returning the process exit status (0 ok, 1 failure, 2 usage, 3 stopped by train --stop-after).
 *
 * What the verbs share (main.c, args.c):
 * - cli_fail: a runtime failure ("stylenet: <message>", exit 1).
 * - Number flags: cli_int / cli_num / cli_seed accept the whole argument as a number in [lo, hi]
 *   (no trailing junk, no NaN, no overflow); otherwise they set an error naming the flag, the
 *   range and the argument, and return -1; the verb then answers with cli_usage_error (exit 2).
 * - The data-set flags --data --task --csv --pattern --names (CLI_DATA_FLAGS, cli_data_flag).
 * - The photos a verb is given (cli_photos, photos.c): a file stands for itself; a folder for its
 *   photos (.png, .jpg, .jpeg, .webp, any case; hidden names skipped), sorted by path, with recursive
 *   those of its subfolders too.  A folder that cannot be read or holds no photo is reported on
 *   stderr ("stylenet: <folder>: ...") and counted in *failed; the others are still listed.
 */
#ifndef STYLENET_CLI_H
#define STYLENET_CLI_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "data/augment.h"
#include "data/dataset.h"
#include "classifier/classifier.h"
#include "train/recipe.h"

int cmd_predict(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_lr_find(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_cv(int argc, char **argv);

/* prints "stylenet: <message>" to stderr and returns 1 */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* prints "stylenet VERB: <sn_last_error()>" and the verb's usage to stderr; returns 2 */
int cli_usage_error(const char *verb, void (*usage)(FILE *));

/* the whole of s as a number in [lo, hi]; -1 with an error naming flag otherwise */
int cli_int(const char *flag, const char *s, long lo, long hi, int *v);
int cli_num(const char *flag, const char *s, double lo, double hi, double *v);
int cli_float(const char *flag, const char *s, double lo, double hi, float *v);
/* a seed: a whole decimal number >= 0 that fits 63 bits */
int cli_seed(const char *flag, const char *s, uint64_t *v);
/* --threads N (0: all cores, at most 1024): sets OpenMP's thread count; -1 with an error if bad */
int cli_threads(const char *s);

/* getopt_long codes of the data-set flags; a verb's own codes start at CLI_O_VERB */
enum { CLI_O_TASK = 0x1000, CLI_O_CSV, CLI_O_PATTERN, CLI_O_NAMES, CLI_O_VERB };
/* the photo formats every verb that reads photos takes (io/image.c decodes them), for each --help */
#define CLI_PHOTO_FORMATS                                                                                              \
    "photos: PNG (every colour type and bit depth, interlaced too), JPEG (baseline and progressive;\n"                  \
    "        grey, RGB, CMYK) and WebP (lossy and lossless; of an animation, the first frame), recognised\n"            \
    "        by their bytes, not their names; alpha is composited on white\n"

#define CLI_DATA_FLAGS                                                                                                 \
    {"data", required_argument, 0, 'd'}, {"task", required_argument, 0, CLI_O_TASK},                                   \
        {"csv", required_argument, 0, CLI_O_CSV}, {"pattern", required_argument, 0, CLI_O_PATTERN},                    \
        {"names", required_argument, 0, CLI_O_NAMES}
/* stores data-set flag c ('d' or a CLI_O_ code) with its argument in o; false if c is not one */
bool cli_data_flag(int c, const char *arg, ds_options *o);

/* the flags train and cv share (train.c): data, model, recipe and run */
typedef struct {
    ds_options dso;
    recipe_opts ro;     /* preset by the caller (recipe_defaults) */
    float vpct;
    bool vpct_given;
    const char *out;
    int json, resume;
} cli_train_args;
/* argv into a; errors name `verb` and print `usage`: -1 to go on, else the exit status (0 after
 * --help, 2 on a usage error) */
int cli_train_parse(int argc, char **argv, cli_train_args *a, const char *verb, void (*usage)(FILE *));
/* the option lines of train's --help */
void cli_train_help(FILE *f);

/* the augmentation flags of `train` and `data --grid` (aug_flags.c): their getopt_long entries,
 * their --help text, and cli_aug_flag, which stores flag c's argument into o: 1 when it was
 * one, 0 when not, -1 with an error naming the flag when its argument is out of range */
enum { CLI_O_SHIFT = 0x1800, CLI_O_BG_P, CLI_O_BG_DIRS, CLI_O_BG_PHOTO_P, CLI_O_BG_MIN_SCALE, CLI_O_SHADOW_P,
       CLI_O_ROT_FULL_P, CLI_O_RRC_P, CLI_O_RRC_MIN, CLI_O_PERSP_P, CLI_O_PERSP, CLI_O_COLOR_P, CLI_O_HUE,
       CLI_O_SAT, CLI_O_CONTRAST, CLI_O_BLUR_P, CLI_O_BLUR_SIGMA, CLI_O_JPEG_P, CLI_O_JPEG_MIN_Q, CLI_O_ERASE_P,
       CLI_O_ERASE_MAX, CLI_O_CUTMIX_P, CLI_O_RRC_RATIO, CLI_O_NO_SHIFT };
#define CLI_AUG_FLAGS                                                                                                  \
    {"shift-aug", no_argument, 0, CLI_O_SHIFT}, {"no-shift-aug", no_argument, 0, CLI_O_NO_SHIFT},                      \
        {"bg-p", required_argument, 0, CLI_O_BG_P},                                                                    \
        {"backgrounds", required_argument, 0, CLI_O_BG_DIRS}, {"bg-photo-p", required_argument, 0, CLI_O_BG_PHOTO_P}, \
        {"bg-min-scale", required_argument, 0, CLI_O_BG_MIN_SCALE}, {"shadow-p", required_argument, 0, CLI_O_SHADOW_P}, \
        {"rotate-full-p", required_argument, 0, CLI_O_ROT_FULL_P}, {"rrc-p", required_argument, 0, CLI_O_RRC_P},      \
        {"rrc-min-scale", required_argument, 0, CLI_O_RRC_MIN}, {"persp-p", required_argument, 0, CLI_O_PERSP_P},     \
        {"persp", required_argument, 0, CLI_O_PERSP}, {"color-p", required_argument, 0, CLI_O_COLOR_P},               \
        {"hue", required_argument, 0, CLI_O_HUE}, {"saturation", required_argument, 0, CLI_O_SAT},                    \
        {"contrast", required_argument, 0, CLI_O_CONTRAST}, {"blur-p", required_argument, 0, CLI_O_BLUR_P},           \
        {"blur-sigma", required_argument, 0, CLI_O_BLUR_SIGMA}, {"jpeg-p", required_argument, 0, CLI_O_JPEG_P},       \
        {"jpeg-min-q", required_argument, 0, CLI_O_JPEG_MIN_Q}, {"erase-p", required_argument, 0, CLI_O_ERASE_P},     \
        {"erase-max", required_argument, 0, CLI_O_ERASE_MAX}, {"cutmix-p", required_argument, 0, CLI_O_CUTMIX_P},    \
        {"rrc-ratio", required_argument, 0, CLI_O_RRC_RATIO}
extern const char CLI_AUG_HELP[];
int cli_aug_flag(int c, const char *arg, aug_opts *o);

typedef struct {
    char **v;
    int n, cap;
} cli_paths;
/* the photos named by args[0..n); -1 when out of memory */
int cli_photos(char *const *args, int n, bool recursive, cli_paths *out, int *failed);
void cli_paths_free(cli_paths *p);
#endif
