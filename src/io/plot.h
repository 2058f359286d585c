/* plot.h - charts to PNG with cairo: what the LR finder, training and `stylenet report` draw.
 *
 * Two ways to use it
 * - plot_lines(path, opts, series, n): one line plot written as one PNG.
 * - A canvas for figures of several panels: plot_canvas_new(w, h) (white), then plot_draw_*()
 *   into rectangles of it, then plot_canvas_save(canvas, path) and plot_canvas_free(canvas).
 *
 * What each draws (every panel fits inside its rectangle; text that would not fit is shrunk,
 * then cut with "..."):
 * - plot_draw_lines: series as lines and/or dots (optionally faint: alpha; dashed; against a
 *   second y axis on the right), title, axis labels, "nice" ticks (1-2-5 steps, or powers of
 *   ten on a log axis), a legend in the corner holding fewest points, an optional red vertical
 *   marker with a label (e.g. the suggested learning rate), and optional grey dashed verticals
 *   with labels (e.g. phase boundaries; labels that would overlap move down a row).  Axis ranges
 *   come from the data unless fixed.  Non-finite points (and x <= 0 on a log axis) are skipped.
 * - plot_draw_heatmap: a grid of cells shaded white..blue by `shade` (0..1), with an integer in
 *   each cell, row labels on the left, column labels (slanted) below, axis labels; e.g. a
 *   confusion matrix (rows true, columns predicted).
 * - plot_draw_bars: horizontal grouped bars, one row per category (label on the left), up to 4
 *   series with a legend, the value printed at each bar's end; e.g. per-class precision/recall.
 * - plot_draw_image: a picture scaled to fit (aspect kept) above caption lines, each line in its
 *   own colour; a NULL image draws a grey "image missing" box.  For grids of thumbnails.
 * - plot_draw_text: one line of text anchored at (x, y) by (ax, ay) in 0..1 of its box.
 * Colours are RGB in 0..1.
 *
 * Errors: plot_canvas_new (a size outside 1..16384) and plot_canvas_save / plot_lines (cairo
 * or file-system failure) return NULL / -1 with an error naming the file.  The PNG is written
 * atomically (a temp file beside it, then rename).  Drawing calls cannot fail; bad numbers
 * (NaN, n <= 0) draw nothing for that item.
 */
#ifndef STYLENET_PLOT_H
#define STYLENET_PLOT_H
#include <stdbool.h>
#include "io/image.h"

typedef struct plot_canvas plot_canvas;

typedef struct {
    double x, y, w, h;  /* pixels, from the top left */
} plot_rect;

typedef struct {
    const char *label;  /* legend entry; NULL = not in the legend */
    const double *x, *y;
    int n;
    double r, g, b;     /* colour, 0..1 */
    bool dashed;
    bool right_axis;    /* plot against the second y axis */
    bool dots;          /* a dot at each point */
    bool no_line;       /* dots only */
    double alpha;       /* opacity; 0 = 1 (opaque) */
    double width;       /* line width in pixels; 0 = 2 */
} plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel, *y2label;
    bool logx, logy;    /* log10 axes (logy: the left axis; points <= 0 are skipped) */
    double xstep;       /* x tick step on a linear axis; 0 = automatic */
    int width, height;  /* plot_lines only: pixels; 0 = 800 x 500 */
    bool has_marker;    /* red vertical line at marker_x with marker_label */
    double marker_x;
    const char *marker_label;
    int n_vlines;       /* grey dashed verticals at vlines[i], labelled vline_labels[i] (may be NULL) */
    const double *vlines;
    const char *const *vline_labels;
    bool fix_x, fix_y;  /* use [xlo, xhi] / [ylo, yhi] instead of the data's range */
    double xlo, xhi, ylo, yhi;
} plot_opts;

typedef struct {
    const char *title, *subtitle, *xlabel, *ylabel;
    int rows, cols;
    const double *shade;               /* rows * cols, 0..1 */
    const int *counts;                 /* rows * cols numbers shown in the cells, or NULL */
    const char *const *row_labels;     /* rows */
    const char *const *col_labels;     /* cols */
} plot_heatmap;

typedef struct {
    const char *title, *xlabel;
    int n;                             /* categories, drawn top to bottom */
    const char *const *labels;
    int n_series;                      /* bars per category, 1..4 */
    const double *const *values;       /* values[s][i] */
    const char *const *series_labels;  /* legend (NULL entries: none) */
    const double (*colours)[3];        /* n_series colours */
    double lo, hi;                     /* value axis */
    double label_width;                /* pixels for the labels (to align panels); 0 = the longest's */
} plot_bars;

plot_canvas *plot_canvas_new(int width, int height);
int plot_canvas_save(plot_canvas *c, const char *path);
void plot_canvas_free(plot_canvas *c);

void plot_draw_lines(plot_canvas *c, plot_rect r, const plot_opts *o, const plot_series *s, int n_series);
void plot_draw_heatmap(plot_canvas *c, plot_rect r, const plot_heatmap *h);
void plot_draw_bars(plot_canvas *c, plot_rect r, const plot_bars *b);
void plot_draw_image(plot_canvas *c, plot_rect r, const image *im, int n_lines, const char *const *lines,
                     const double (*colours)[3]);
void plot_draw_text(plot_canvas *c, double x, double y, const char *text, double size, bool bold, double ax,
                    double ay, const double rgb[3]);

/* one line plot as one PNG (a canvas of opts->width x opts->height with plot_draw_lines) */
int plot_lines(const char *path, const plot_opts *o, const plot_series *s, int n_series);
#endif
