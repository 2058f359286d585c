/* test_plot.c - the cairo charts (io/plot.h), read back as pixels:
 *   - PNGs have the asked size, are written atomically (no temp file left), and a path that
 *     cannot be written or a canvas of a silly size fails with a message naming it;
 *   - bars are as long as their values (pixel count of a bar of 0.75 is 3x that of 0.25);
 *   - heatmap cells are shaded by their value (an identity 2x2 has half the dark area of all ones);
 *   - an image drawn into a tile is scaled to fit with its aspect kept (a 10x10 red square in a
 *     100-wide tile covers ~100x100 pixels); a missing image draws no picture but a grey box;
 *   - line series: non-finite points and (on log axes) points <= 0 are skipped, and a series
 *     made only of them draws nothing. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../common/check.h"
#include "core/error.h"
#include "io/image.h"
#include "io/plot.h"

static char dir[64]; /* the running case's temp folder */

/* a fresh temp folder for one case */
static bool dir_begin(void) {
    snprintf(dir, sizeof dir, "/tmp/stylenet_plot_XXXXXX");
    return check(mkdtemp(dir) != NULL, "temp dir");
}

static void dir_end(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) note("could not remove %s", dir);
}

/* pixels of im within tol of rgb (0..255 each) */
static long count_colour(const image *im, int r, int g, int b, int tol) {
    long n = 0;
    for (long i = 0; i < (long)im->w * im->h; i++) {
        const uint8_t *p = im->rgb + 3 * i;
        if (abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol) n++;
    }
    return n;
}

/* draws with fn into a fresh canvas, saves it as name, loads it back */
static bool render(const char *name, int w, int h, void (*fn)(plot_canvas *, const void *), const void *arg, image *out) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    plot_canvas *c = plot_canvas_new(w, h);
    if (!c) return false;
    fn(c, arg);
    int r = plot_canvas_save(c, path);
    plot_canvas_free(c);
    return r == 0 && image_load(path, out) == 0;
}

static void draw_bar(plot_canvas *c, const void *arg) {
    const double *v = arg;
    const double *vals[1] = {v};
    const double col[1][3] = {{1, 0, 0}};
    const char *labels[1] = {"a class"};
    plot_bars b = {.n = 1, .labels = labels, .n_series = 1, .values = vals, .colours = col, .lo = 0, .hi = 1};
    plot_draw_bars(c, (plot_rect){0, 0, 600, 200}, &b);
}

static void draw_heat(plot_canvas *c, const void *arg) {
    const double *shade = arg;
    const int counts[4] = {5, 0, 0, 5};
    const char *rl[2] = {"cat", "dog"};
    plot_heatmap h = {.rows = 2, .cols = 2, .shade = shade, .counts = counts, .row_labels = rl, .col_labels = rl,
                      .title = "t", .xlabel = "predicted", .ylabel = "true"};
    plot_draw_heatmap(c, (plot_rect){0, 0, 500, 500}, &h);
}

static void draw_tile(plot_canvas *c, const void *arg) {
    const image *im = arg;
    const char *lines[1] = {"caption"};
    plot_draw_image(c, (plot_rect){10, 10, 100, 130}, im && im->rgb ? im : NULL, 1, lines, NULL);
}

typedef struct {
    const double *x, *y;
    int n;
    bool logx, logy;
} line_arg;

static void draw_line(plot_canvas *c, const void *arg) {
    const line_arg *a = arg;
    plot_series s = {.label = "s", .x = a->x, .y = a->y, .n = a->n, .r = 1, .g = 0, .b = 0, .dots = true};
    plot_opts o = {.title = "t", .xlabel = "x", .ylabel = "y", .logx = a->logx, .logy = a->logy};
    plot_draw_lines(c, (plot_rect){0, 0, 600, 400}, &o, &s, 1);
}

static int temp_files(void) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

/* plot_lines: size, atomic write, errors naming the path or the size */
static void case_lines_file(void) {
    if (!dir_begin()) return;
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {0.5, 0.4, NAN, 0.2, 0.1};
    plot_series s = {.label = "loss", .x = x, .y = y, .n = 5, .r = 0, .g = 0, .b = 1};
    plot_opts o = {.title = "t", .xlabel = "x", .ylabel = "y", .width = 640, .height = 360};
    char path[256];
    snprintf(path, sizeof path, "%s/lines.png", dir);
    image im = {0};
    bool ok = plot_lines(path, &o, &s, 1) == 0 && image_load(path, &im) == 0;
    check(ok && im.w == 640 && im.h == 360, "plot_lines writes a PNG of the asked size (%dx%d)", im.w, im.h);
    image_free(&im);
    check(temp_files() == 0, "no temp file left beside it");
    int r = plot_lines("/nonexistent-dir/x.png", &o, &s, 1);
    check(r < 0 && strstr(sn_last_error(), "/nonexistent-dir/x.png"), "an unwritable path fails naming it: %s",
          sn_last_error());
    plot_canvas *bad = plot_canvas_new(0, 100);
    check(bad == NULL && strstr(sn_last_error(), "0 x 100"), "a 0 x 100 canvas is refused: %s", sn_last_error());
    plot_canvas_free(bad);
    dir_end();
}

/* bars: length proportional to the value */
static void case_bars(void) {
    if (!dir_begin()) return;
    image b1 = {0}, b3 = {0};
    double v1 = 0.25, v3 = 0.75;
    if (check(render("bar1.png", 600, 200, draw_bar, &v1, &b1) && render("bar3.png", 600, 200, draw_bar, &v3, &b3),
              "bar charts render")) {
        long n1 = count_colour(&b1, 255, 0, 0, 10), n3 = count_colour(&b3, 255, 0, 0, 10);
        double ratio = n1 ? (double)n3 / n1 : 0;
        check(n1 > 500 && fabs(ratio - 3) < 0.15, "a bar of 0.75 is 3x a bar of 0.25 (%ld and %ld red pixels, ratio %.3f)",
              n1, n3, ratio);
    }
    image_free(&b1);
    image_free(&b3);
    dir_end();
}

/* heatmap: cell colour from the shade */
static void case_heatmap(void) {
    if (!dir_begin()) return;
    image h1 = {0}, h2 = {0};
    double eye[4] = {1, 0, 0, 1}, ones[4] = {1, 1, 1, 1};
    if (check(render("heat1.png", 500, 500, draw_heat, eye, &h1) && render("heat2.png", 500, 500, draw_heat, ones, &h2),
              "heatmaps render")) {
        /* the darkest shade is (0.06, 0.23, 0.55) * 255 */
        long n1 = count_colour(&h1, 15, 59, 140, 6), n2 = count_colour(&h2, 15, 59, 140, 6);
        double ratio = n1 ? (double)n2 / n1 : 0;
        check(n1 > 5000 && fabs(ratio - 2) < 0.1, "all-ones cells cover twice the dark area of the identity (%ld, %ld: %.3f)",
              n1, n2, ratio);
    }
    image_free(&h1);
    image_free(&h2);
    dir_end();
}

/* image tiles: scaled to fit, aspect kept */
static void case_tiles(void) {
    if (!dir_begin()) return;
    image red = {.w = 10, .h = 10, .rgb = malloc(300)};
    if (!check(red.rgb != NULL, "memory for a 10x10 picture")) {
        dir_end();
        return;
    }
    for (int i = 0; i < 100; i++) red.rgb[3 * i] = 255, red.rgb[3 * i + 1] = 0, red.rgb[3 * i + 2] = 0;
    image t1 = {0}, t2 = {0};
    if (check(render("tile1.png", 120, 160, draw_tile, &red, &t1) && render("tile2.png", 120, 160, draw_tile, NULL, &t2),
              "image tiles render")) {
        long n = count_colour(&t1, 255, 0, 0, 40);
        check(n > 9000 && n <= 10000, "a 10x10 picture fills a 100x100 square of a 100x130 tile with a caption (%ld px)", n);
        check(count_colour(&t2, 255, 0, 0, 40) == 0 && count_colour(&t2, 224, 224, 224, 3) > 5000,
              "a missing picture draws a grey box instead");
    }
    image_free(&t1);
    image_free(&t2);
    free(red.rgb);
    dir_end();
}

/* line series: skipped points */
static void case_line_series(void) {
    if (!dir_begin()) return;
    double lx[4] = {1e-3, 1e-2, 1e-1, 1}, ly[4] = {1, 2, 3, 4}, nan4[4] = {NAN, NAN, INFINITY, NAN};
    double neg[4] = {-1, 0, -2, -3};
    line_arg a1 = {lx, ly, 4, true, false}, a2 = {lx, nan4, 4, false, false}, a3 = {lx, neg, 4, false, true};
    image l1 = {0}, l2 = {0}, l3 = {0};
    if (check(render("l1.png", 600, 400, draw_line, &a1, &l1) && render("l2.png", 600, 400, draw_line, &a2, &l2) &&
                  render("l3.png", 600, 400, draw_line, &a3, &l3),
              "line plots render (log x; all NaN; log y of values <= 0)")) {
        long n1 = count_colour(&l1, 255, 0, 0, 30), n2 = count_colour(&l2, 255, 0, 0, 30), n3 = count_colour(&l3, 255, 0, 0, 30);
        /* the legend shows the series' colour in all three: about 26 x 2 pixels plus a dot */
        check(n1 > 400, "a series on a log x axis is drawn (%ld red pixels)", n1);
        check(n2 < 150 && n3 < 150, "a series of only NaN / (log y) non-positive values draws only its legend (%ld, %ld)",
              n2, n3);
    }
    image_free(&l1);
    image_free(&l2);
    image_free(&l3);
    dir_end();
}

static const test_case cases[] = {
    {"lines_file", case_lines_file},
    {"bars", case_bars},
    {"heatmap", case_heatmap},
    {"tiles", case_tiles},
    {"line_series", case_line_series},
};
TEST_MAIN(cases)
