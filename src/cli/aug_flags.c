/* aug_flags.c - the augmentation flags `train` and `data --grid` share (see cli.h). */
#include "cli/cli.h"
#include "data/background.h"

const char CLI_AUG_HELP[] =
    "augmentation for photos unlike the catalogue's (on by default as --shift-aug; a flag overrides\n"
    "what comes before it):\n"
    "  --shift-aug          the default combination: --bg-p 0.5 --shadow-p 0.5 --rotate-full-p 0.1\n"
    "                       --rrc-p 0.3 --persp-p 0.2 --color-p 0.5 --blur-p 0.1 --jpeg-p 0.2 --erase-p 0.1\n"
    "                       --cutmix-p 0.1\n"
    "  --no-shift-aug       every part below off (the catalogue-only augmentation)\n"
    "  --bg-p P             put the product on a new background with probability P: its matte (the\n"
    "                       near-white or light grey background connected to the border, feathered)\n"
    "                       over a procedural texture or a crop of a background photo\n"
    "  --backgrounds DIRS   folders (comma-separated, recursive) of background photos (PNG, JPEG, WebP) and\n"
    "                       GIMP patterns (.pat); 'none': procedural only (default: " BG_DEFAULT_DIRS "\n"
    "                       where installed)\n"
    "  --bg-photo-p P       share of new backgrounds that are photos (0.5; the rest procedural)\n"
    "  --bg-min-scale S     product scale on a new background uniform in [S, 1] (0.5)\n"
    "  --shadow-p P         soft drop shadow under the product on a new background\n"
    "  --rotate-full-p P    rotation uniform over the full circle\n"
    "  --rrc-p P            random resized crop: area share uniform in [--rrc-min-scale (0.35), 1],\n"
    "                       aspect log-uniform in [1/R, R] (--rrc-ratio 1.333)\n"
    "  --persp-p P          perspective warp moving each corner by up to --persp (0.2) of the half side\n"
    "  --color-p P          colour jitter: hue +-H turns (--hue 0.05), saturation and contrast x [1-S, 1+S]\n"
    "                       (--saturation 0.4, --contrast 0.3)\n"
    "  --blur-p P           Gaussian blur, sigma uniform in [0.3, --blur-sigma (1.5)] pixels\n"
    "  --jpeg-p P           JPEG re-compression at quality uniform in [--jpeg-min-q (30), 95]\n"
    "  --erase-p P          random erasing of a rectangle of up to --erase-max (0.25) of the image\n"
    "  --cutmix-p P         paste a rectangle (10-50% of the image) of another training image; the\n"
    "                       targets mix as the areas do\n";

int cli_aug_flag(int c, const char *arg, aug_opts *o) {
    const char *name = NULL;
    float *dst = NULL, hi = 1;
    switch (c) {
    case CLI_O_SHIFT: aug_shift_preset(o); return 1;
    case CLI_O_NO_SHIFT: aug_shift_off(o); return 1;
    case CLI_O_BG_DIRS: o->bg_dirs = arg; return 1;
    case CLI_O_JPEG_MIN_Q: return cli_int("--jpeg-min-q", arg, 1, 95, &o->jpeg_min_q) < 0 ? -1 : 1;
    case CLI_O_BG_P: name = "--bg-p", dst = &o->bg_p; break;
    case CLI_O_BG_PHOTO_P: name = "--bg-photo-p", dst = &o->bg_photo_p; break;
    case CLI_O_BG_MIN_SCALE: name = "--bg-min-scale", dst = &o->bg_min_scale; break;
    case CLI_O_SHADOW_P: name = "--shadow-p", dst = &o->shadow_p; break;
    case CLI_O_ROT_FULL_P: name = "--rotate-full-p", dst = &o->rotate_full_p; break;
    case CLI_O_RRC_P: name = "--rrc-p", dst = &o->rrc_p; break;
    case CLI_O_RRC_MIN: name = "--rrc-min-scale", dst = &o->rrc_min_scale; break;
    case CLI_O_RRC_RATIO: return cli_float("--rrc-ratio", arg, 1, 4, &o->rrc_ratio) < 0 ? -1 : 1;
    case CLI_O_PERSP_P: name = "--persp-p", dst = &o->persp_p; break;
    case CLI_O_PERSP: name = "--persp", dst = &o->persp, hi = 0.5f; break;
    case CLI_O_COLOR_P: name = "--color-p", dst = &o->color_p; break;
    case CLI_O_HUE: name = "--hue", dst = &o->hue, hi = 0.5f; break;
    case CLI_O_SAT: name = "--saturation", dst = &o->saturation; break;
    case CLI_O_CONTRAST: name = "--contrast", dst = &o->contrast, hi = 0.9f; break;
    case CLI_O_BLUR_P: name = "--blur-p", dst = &o->blur_p; break;
    case CLI_O_BLUR_SIGMA: name = "--blur-sigma", dst = &o->blur_sigma, hi = 6; break;
    case CLI_O_JPEG_P: name = "--jpeg-p", dst = &o->jpeg_p; break;
    case CLI_O_ERASE_P: name = "--erase-p", dst = &o->erase_p; break;
    case CLI_O_ERASE_MAX: name = "--erase-max", dst = &o->erase_max, hi = 0.9f; break;
    case CLI_O_CUTMIX_P: name = "--cutmix-p", dst = &o->cutmix_p; break;
    default: return 0;
    }
    return cli_float(name, arg, 0, hi, dst) < 0 ? -1 : 1;
}
