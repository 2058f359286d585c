/* plot.h - line plots to PNG with cairo: what the LR finder and training reports draw.
 *
 * plot_lines() draws each series as a line (optionally dashed, optionally against a second y
 * axis on the right), with a title, axis labels, "nice" ticks (1-2-5 steps, or powers of ten on
 * a log x axis), a legend, and an optional vertical marker (e.g. the suggested learning rate).
 * Non-finite points are skipped.  The PNG is written atomically (temp file, then rename).
 * Returns 0, or -1 with an error naming the file.
 */
#ifndef STYLENET_PLOT_H
#define STYLENET_PLOT_H
#include <stdbool.h>

typedef struct {
    const char *label;
    const double *x, *y;
    int n;
    double r, g, b;     /* colour, 0..1 */
    bool dashed;
    bool right_axis;    /* plot against the second y axis */
} plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel, *y2label;
    bool logx;
    int width, height;  /* pixels; 0 = 800 x 500 */
    bool has_marker;
    double marker_x;
    const char *marker_label;
} plot_opts;

int plot_lines(const char *path, const plot_opts *o, const plot_series *s, int n_series);
#endif
