/* plot_internal.h - what the plot sources share: plot.c (canvas, text, heatmap, bars, images) and
 * plot_lines.c (line plots).  Not part of the public API (include io/plot.h).
 *
 * - struct plot_canvas: the cairo surface and context of a canvas, and its size in pixels.
 * - plot_text_width: the advance in pixels of s in DejaVu Sans of that size.
 * - plot_text_at: s anchored at (x, y): ax = 0 left .. 1 right, ay = 0 top .. 1 bottom of the
 *   line box (ascent + descent of the font, so labels share baselines); angle in radians,
 *   counter-clockwise.  NULL or "" draws nothing.
 * - plot_nice_step: a 1-2-5 step giving about `want` ticks over r.
 * - plot_fmt_tick: a tick label into buf ("%.4g"; |v| under 1e-9 steps prints as 0).
 */
#ifndef STYLENET_PLOT_INTERNAL_H
#define STYLENET_PLOT_INTERNAL_H
#include <cairo.h>
#include <stdbool.h>
#include <stddef.h>
#include "io/plot.h"

struct plot_canvas {
    cairo_surface_t *surf;
    cairo_t *cr;
    int w, h;
};

static const double BLACK[3] = {0, 0, 0}, GREY[3] = {0.35, 0.35, 0.35};

typedef struct {
    double lo, hi;
} plot_range;

double plot_text_width(cairo_t *cr, const char *s, double size, bool bold);
void plot_text_at(cairo_t *cr, double x, double y, const char *s, double size, bool bold, double ax, double ay,
                  double angle, const double rgb[3]);
double plot_nice_step(plot_range r, int want);
void plot_fmt_tick(char *buf, size_t cap, double v, double step);
#endif
