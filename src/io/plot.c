/* plot.c - line plots with cairo (see plot.h). */
#include "io/plot.h"
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "core/error.h"

typedef struct {
    double lo, hi;
} range;

static range data_range(const plot_series *s, int n, bool x, bool right, bool logx) {
    range r = {INFINITY, -INFINITY};
    for (int k = 0; k < n; k++) {
        if (!x && s[k].right_axis != right) continue;
        for (int i = 0; i < s[k].n; i++) {
            double v = x ? s[k].x[i] : s[k].y[i];
            if (!isfinite(v) || (x && logx && v <= 0)) continue;
            if (x && logx) v = log10(v);
            if (v < r.lo) r.lo = v;
            if (v > r.hi) r.hi = v;
        }
    }
    if (!isfinite(r.lo)) r = (range){0, 1};
    if (r.hi - r.lo < 1e-12) {
        r.lo -= 0.5;
        r.hi += 0.5;
    }
    return r;
}

/* a 1-2-5 step giving about `want` ticks over r */
static double nice_step(range r, int want) {
    double raw = (r.hi - r.lo) / want, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void text(cairo_t *c, double x, double y, const char *s, double size, double ax, double ay, bool vertical) {
    cairo_text_extents_t e;
    cairo_set_font_size(c, size);
    cairo_text_extents(c, s, &e);
    cairo_save(c);
    cairo_move_to(c, x, y);
    if (vertical) cairo_rotate(c, -M_PI / 2);
    cairo_rel_move_to(c, -e.width * ax - e.x_bearing, e.height * ay);
    cairo_show_text(c, s);
    cairo_restore(c);
}

int plot_lines(const char *path, const plot_opts *o, const plot_series *s, int n_series) {
    const int W = o->width > 0 ? o->width : 800, H = o->height > 0 ? o->height : 500;
    bool has_right = false;
    for (int k = 0; k < n_series; k++) has_right |= s[k].right_axis;
    const double L = 80, R = has_right ? W - 80 : W - 30, T = 50, B = H - 60;
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    cairo_t *c = cairo_create(surf);
    cairo_select_font_face(c, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_source_rgb(c, 1, 1, 1);
    cairo_paint(c);

    range rx = data_range(s, n_series, true, false, o->logx);
    range ry = data_range(s, n_series, false, false, false), ry2 = data_range(s, n_series, false, true, false);
    double pad = (ry.hi - ry.lo) * 0.05, pad2 = (ry2.hi - ry2.lo) * 0.05;
    ry.lo -= pad; ry.hi += pad; ry2.lo -= pad2; ry2.hi += pad2;
#define PX(v) (L + ((o->logx ? log10(v) : (v)) - rx.lo) / (rx.hi - rx.lo) * (R - L))
#define PY(v, r) (B - ((v) - (r).lo) / ((r).hi - (r).lo) * (B - T))

    /* grid and ticks */
    char buf[64];
    cairo_set_line_width(c, 1);
    if (o->logx) {
        for (int e = (int)ceil(rx.lo); e <= (int)floor(rx.hi); e++) {
            double x = L + (e - rx.lo) / (rx.hi - rx.lo) * (R - L);
            cairo_set_source_rgb(c, 0.9, 0.9, 0.9);
            cairo_move_to(c, x, T); cairo_line_to(c, x, B); cairo_stroke(c);
            cairo_set_source_rgb(c, 0, 0, 0);
            snprintf(buf, sizeof buf, "1e%d", e);
            text(c, x, B + 8, buf, 12, 0.5, 1, false);
        }
    } else {
        double st = nice_step(rx, 8);
        for (double v = ceil(rx.lo / st) * st; v <= rx.hi + 1e-9 * st; v += st) {
            double x = L + (v - rx.lo) / (rx.hi - rx.lo) * (R - L);
            cairo_set_source_rgb(c, 0.9, 0.9, 0.9);
            cairo_move_to(c, x, T); cairo_line_to(c, x, B); cairo_stroke(c);
            cairo_set_source_rgb(c, 0, 0, 0);
            snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 * st ? 0.0 : v);
            text(c, x, B + 8, buf, 12, 0.5, 1, false);
        }
    }
    double st = nice_step(ry, 6);
    for (double v = ceil(ry.lo / st) * st; v <= ry.hi + 1e-9 * st; v += st) {
        double y = PY(v, ry);
        cairo_set_source_rgb(c, 0.9, 0.9, 0.9);
        cairo_move_to(c, L, y); cairo_line_to(c, R, y); cairo_stroke(c);
        cairo_set_source_rgb(c, 0, 0, 0);
        snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 * st ? 0.0 : v);
        text(c, L - 6, y, buf, 12, 1, 0.5, false);
    }
    if (has_right) {
        double st2 = nice_step(ry2, 6);
        for (double v = ceil(ry2.lo / st2) * st2; v <= ry2.hi + 1e-9 * st2; v += st2) {
            snprintf(buf, sizeof buf, "%.3g", fabs(v) < 1e-12 * st2 ? 0.0 : v);
            cairo_set_source_rgb(c, 0.3, 0.3, 0.3);
            text(c, R + 6, PY(v, ry2), buf, 12, 0, 0.5, false);
        }
    }
    cairo_set_source_rgb(c, 0, 0, 0);
    cairo_rectangle(c, L, T, R - L, B - T);
    cairo_stroke(c);

    /* series */
    cairo_save(c);
    cairo_rectangle(c, L, T, R - L, B - T);
    cairo_clip(c);
    for (int k = 0; k < n_series; k++) {
        const range *r = s[k].right_axis ? &ry2 : &ry;
        cairo_set_source_rgb(c, s[k].r, s[k].g, s[k].b);
        cairo_set_line_width(c, 2);
        double dash[1] = {6};
        cairo_set_dash(c, dash, s[k].dashed ? 1 : 0, 0);
        bool pen = false;
        for (int i = 0; i < s[k].n; i++) {
            double xv = s[k].x[i], yv = s[k].y[i];
            if (!isfinite(xv) || !isfinite(yv) || (o->logx && xv <= 0)) {
                pen = false;
                continue;
            }
            double px = PX(xv), py = PY(yv, *r);
            if (pen) cairo_line_to(c, px, py);
            else cairo_move_to(c, px, py);
            pen = true;
        }
        if (s[k].n == 1) cairo_arc(c, PX(s[k].x[0]), PY(s[k].y[0], *r), 3, 0, 2 * M_PI);
        cairo_stroke(c);
    }
    cairo_set_dash(c, NULL, 0, 0);
    if (o->has_marker && (!o->logx || o->marker_x > 0)) {
        double x = PX(o->marker_x);
        cairo_set_source_rgb(c, 0.8, 0.1, 0.1);
        cairo_set_line_width(c, 1.5);
        cairo_move_to(c, x, T); cairo_line_to(c, x, B); cairo_stroke(c);
        if (o->marker_label) text(c, x + 4, T + 14, o->marker_label, 12, 0, 0, false);
    }
    cairo_restore(c);

    /* labels and legend */
    cairo_set_source_rgb(c, 0, 0, 0);
    if (o->title) text(c, (L + R) / 2, 18, o->title, 16, 0.5, 0.5, false);
    if (o->xlabel) text(c, (L + R) / 2, H - 14, o->xlabel, 13, 0.5, 0, false);
    if (o->ylabel) text(c, 22, (T + B) / 2, o->ylabel, 13, 0.5, 0, true);
    if (o->y2label && has_right) text(c, W - 12, (T + B) / 2, o->y2label, 13, 0.5, 0, true);
    double ly = T + 16;
    for (int k = 0; k < n_series; k++) {
        if (!s[k].label) continue;
        cairo_set_source_rgb(c, s[k].r, s[k].g, s[k].b);
        cairo_set_line_width(c, 2);
        double dash[1] = {6};
        cairo_set_dash(c, dash, s[k].dashed ? 1 : 0, 0);
        cairo_move_to(c, R - 170, ly); cairo_line_to(c, R - 140, ly); cairo_stroke(c);
        cairo_set_dash(c, NULL, 0, 0);
        cairo_set_source_rgb(c, 0, 0, 0);
        text(c, R - 134, ly, s[k].label, 12, 0, 0.4, false);
        ly += 18;
    }
#undef PX
#undef PY
    cairo_destroy(c);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    cairo_status_t st_ = cairo_surface_write_to_png(surf, tmp);
    cairo_surface_destroy(surf);
    if (st_ != CAIRO_STATUS_SUCCESS) {
        unlink(tmp);
        return sn_error("%s: cannot write the plot: %s", path, cairo_status_to_string(st_));
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return sn_error("%s: cannot write the plot: %m", path);
    }
    return 0;
}
