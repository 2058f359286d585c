/* plot_lines.c - line plots with cairo: plot_draw_lines and plot_lines (see plot.h). */
#include "io/plot.h"
#include "io/plot_internal.h"
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include "core/error.h"

/* the range of x, or of y on the left (right = false) or right axis, over the points that can be
 * drawn (log10 on a log axis); [0, 1] without any, widened when (nearly) flat */
static plot_range data_range(const plot_series *s, int n, bool x, bool right, bool logx, bool logy) {
    plot_range r = {INFINITY, -INFINITY};
    for (int k = 0; k < n; k++) {
        if (!x && s[k].right_axis != right) continue;
        for (int i = 0; i < s[k].n; i++) {
            double xv = s[k].x[i], v = x ? xv : s[k].y[i];
            if (!isfinite(v) || !isfinite(xv) || (logx && xv <= 0)) continue;
            if (!x && logy && v <= 0) continue;
            if ((x && logx) || (!x && logy)) v = log10(v);
            if (v < r.lo) r.lo = v;
            if (v > r.hi) r.hi = v;
        }
    }
    if (!isfinite(r.lo)) r = (plot_range){0, 1};
    if (r.hi - r.lo < 1e-12 * (fabs(r.hi) + 1e-300) || r.hi - r.lo < 1e-300) {
        double d = fabs(r.lo) > 0 ? fabs(r.lo) * 0.1 : 0.5;
        r.lo -= d;
        r.hi += d;
    }
    return r;
}

typedef struct {
    double x0, y0, x1, y1;
} box;

static bool overlaps(box a, box b) { return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1; }

static void white_box(cairo_t *cr, box b, double alpha) {
    cairo_set_source_rgba(cr, 1, 1, 1, alpha);
    cairo_rectangle(cr, b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
}

static void series_style(cairo_t *cr, const plot_series *s) {
    cairo_set_source_rgba(cr, s->r, s->g, s->b, s->alpha > 0 ? s->alpha : 1);
    cairo_set_line_width(cr, s->width > 0 ? s->width : 2);
    double dash[1] = {6};
    cairo_set_dash(cr, dash, s->dashed ? 1 : 0, 0);
}

static void dot(cairo_t *cr, double x, double y, const plot_series *s) {
    cairo_set_dash(cr, NULL, 0, 0);
    cairo_new_sub_path(cr);
    cairo_arc(cr, x, y, 4, 0, 2 * M_PI);
    cairo_set_source_rgba(cr, s->r, s->g, s->b, s->alpha > 0 ? s->alpha : 1);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
}

/* the plot area of plot_draw_lines and its mapping from data to pixels */
typedef struct {
    cairo_t *c;
    double L, R, T, B;     /* plot area: left, right, top, bottom pixels */
    plot_range rx, ry, ry2;     /* x, left y and right y ranges (log10 of the values on a log axis) */
    bool logx, logy;       /* logy: the left axis */
    bool has_right;        /* some series is on the right axis */
} lines_frame;

static double frame_x(const lines_frame *f, double v) {
    return f->L + ((f->logx ? log10(v) : (v)) - f->rx.lo) / (f->rx.hi - f->rx.lo) * (f->R - f->L);
}

/* v in axis units (already log10 on a log axis) against range r */
static double frame_y_axis(const lines_frame *f, double v, plot_range r) {
    return f->B - ((v) - (r).lo) / ((r).hi - (r).lo) * (f->B - f->T);
}

/* a y value of series s in pixels, against its axis */
static double frame_y(const lines_frame *f, const plot_series *s, double v) {
    if (s->right_axis) return frame_y_axis(f, v, f->ry2);
    return f->logy ? frame_y_axis(f, log10(v), f->ry) : frame_y_axis(f, v, f->ry);
}

/* point i of series s can be drawn: finite, and positive on a log axis */
static bool frame_point_ok(const lines_frame *f, const plot_series *s, int i) {
    double xv = s->x[i], yv = s->y[i];
    bool bad_y = !isfinite(yv) || (f->logy && !s->right_axis && yv <= 0);
    return !(!isfinite(xv) || bad_y || (f->logx && xv <= 0));
}

/* the plot area inside rc and the axis ranges (from the data, padded, or fixed by o); false if
 * the area is too small to draw */
static bool lines_frame_init(lines_frame *f, cairo_t *c, plot_rect rc, const plot_opts *o, const plot_series *s,
                             int n_series) {
    bool has_right = false;
    for (int k = 0; k < n_series; k++) has_right |= s[k].right_axis;
    *f = (lines_frame){.c = c, .logx = o->logx, .logy = o->logy, .has_right = has_right};
    f->L = rc.x + 82;
    f->R = rc.x + rc.w - (has_right ? 82 : 24);
    f->T = rc.y + (o->title ? 38 : 14);
    f->B = rc.y + rc.h - (o->xlabel ? 52 : 30);
    if (f->R - f->L < 20 || f->B - f->T < 20) return false;
    plot_range rx = data_range(s, n_series, true, false, o->logx, false);
    if (o->fix_x && o->xhi > o->xlo && (!o->logx || o->xlo > 0))
        rx = o->logx ? (plot_range){log10(o->xlo), log10(o->xhi)} : (plot_range){o->xlo, o->xhi};
    plot_range ry = data_range(s, n_series, false, false, o->logx, o->logy),
          ry2 = data_range(s, n_series, false, true, o->logx, false);
    double pad = (ry.hi - ry.lo) * 0.06, pad2 = (ry2.hi - ry2.lo) * 0.06;
    ry.lo -= pad; ry.hi += pad; ry2.lo -= pad2; ry2.hi += pad2;
    if (o->fix_y && o->yhi > o->ylo && (!o->logy || o->ylo > 0))
        ry = o->logy ? (plot_range){log10(o->ylo), log10(o->yhi)} : (plot_range){o->ylo, o->yhi};
    f->rx = rx;
    f->ry = ry;
    f->ry2 = ry2;
    return true;
}

/* vertical grid lines and x tick labels: powers of ten on a log axis, else steps of o->xstep
 * (when it gives under 60 ticks) or a 1-2-5 step */
static void lines_x_ticks(const lines_frame *f, const plot_opts *o) {
    cairo_t *c = f->c;
    const double L = f->L, R = f->R, T = f->T, B = f->B;
    const plot_range rx = f->rx;
    char buf[64];
    if (o->logx) {
        for (int e = (int)ceil(rx.lo - 1e-9); e <= (int)floor(rx.hi + 1e-9); e++) {
            double x = L + (e - rx.lo) / (rx.hi - rx.lo) * (R - L);
            cairo_set_source_rgb(c, 0.9, 0.9, 0.9);
            cairo_move_to(c, x, T); cairo_line_to(c, x, B); cairo_stroke(c);
            snprintf(buf, sizeof buf, "1e%d", e);
            plot_text_at(c, x, B + 6, buf, 12, false, 0.5, 0, 0, BLACK);
        }
    } else {
        double st = o->xstep > 0 && (rx.hi - rx.lo) / o->xstep < 60 ? o->xstep : plot_nice_step(rx, 8);
        for (double v = ceil(rx.lo / st - 1e-9) * st; v <= rx.hi + 1e-9 * st; v += st) {
            double x = L + (v - rx.lo) / (rx.hi - rx.lo) * (R - L);
            cairo_set_source_rgb(c, 0.9, 0.9, 0.9);
            cairo_move_to(c, x, T); cairo_line_to(c, x, B); cairo_stroke(c);
            plot_fmt_tick(buf, sizeof buf, v, st);
            plot_text_at(c, x, B + 6, buf, 12, false, 0.5, 0, 0, BLACK);
        }
    }
}

/* horizontal grid lines and tick labels of the left y axis (log: powers of ten, and 2 and 5
 * times them when the range is under two decades), and the right axis' labels */
static void lines_y_ticks(const lines_frame *f) {
    cairo_t *c = f->c;
    const double L = f->L, R = f->R;
    const plot_range ry = f->ry, ry2 = f->ry2;
    char buf[64];
    if (f->logy) {
        bool fine = ry.hi - ry.lo < 2;
        for (int e = (int)floor(ry.lo) - 1; e <= (int)ceil(ry.hi); e++)
            for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
                if (m > 1 && !fine) continue;
                double lv = e + log10(m);
                if (lv < ry.lo - 1e-9 || lv > ry.hi + 1e-9) continue;
                double y = frame_y_axis(f, lv, ry);
                cairo_set_source_rgb(c, 0.9, 0.9, 0.9);
                cairo_move_to(c, L, y); cairo_line_to(c, R, y); cairo_stroke(c);
                if (m == 1) snprintf(buf, sizeof buf, "1e%d", e);
                else snprintf(buf, sizeof buf, "%de%d", m, e);
                plot_text_at(c, L - 6, y, buf, 12, false, 1, 0.5, 0, BLACK);
            }
    } else {
        double st = plot_nice_step(ry, 6);
        for (double v = ceil(ry.lo / st - 1e-9) * st; v <= ry.hi + 1e-9 * st; v += st) {
            double y = frame_y_axis(f, v, ry);
            cairo_set_source_rgb(c, 0.9, 0.9, 0.9);
            cairo_move_to(c, L, y); cairo_line_to(c, R, y); cairo_stroke(c);
            plot_fmt_tick(buf, sizeof buf, v, st);
            plot_text_at(c, L - 6, y, buf, 12, false, 1, 0.5, 0, BLACK);
        }
    }
    if (f->has_right) {
        double st2 = plot_nice_step(ry2, 6);
        for (double v = ceil(ry2.lo / st2 - 1e-9) * st2; v <= ry2.hi + 1e-9 * st2; v += st2) {
            plot_fmt_tick(buf, sizeof buf, v, st2);
            plot_text_at(c, R + 6, frame_y_axis(f, v, ry2), buf, 12, false, 0, 0.5, 0, GREY);
        }
    }
}

/* grey dashed verticals at o->vlines with their labels (a label that would collide goes down a
 * row); the labels' boxes into boxes[cap], returns their count */
static int lines_vlines(const lines_frame *f, const plot_opts *o, box *boxes, int cap) {
    cairo_t *c = f->c;
    const double L = f->L, R = f->R, T = f->T, B = f->B;
    double row_end[4] = {-1e9, -1e9, -1e9, -1e9};
    int n_boxes = 0;
    for (int i = 0; i < o->n_vlines; i++) {
        double v = o->vlines[i];
        if (!isfinite(v) || (o->logx && v <= 0)) continue;
        double x = frame_x(f, v);
        if (x > L + 1 && x < R - 1) {
            cairo_set_source_rgb(c, 0.45, 0.45, 0.45);
            cairo_set_line_width(c, 1);
            double dash[1] = {4};
            cairo_set_dash(c, dash, 1, 0);
            cairo_move_to(c, x, T); cairo_line_to(c, x, B); cairo_stroke(c);
            cairo_set_dash(c, NULL, 0, 0);
        }
        const char *lab = o->vline_labels ? o->vline_labels[i] : NULL;
        if (lab && *lab) {
            double w = plot_text_width(c, lab, 10.5, false);
            int row = 0;
            while (row < 3 && x + 3 < row_end[row] + 10) row++;
            row_end[row] = x + 3 + w;
            plot_text_at(c, x + 3, T + 3 + row * 14, lab, 10.5, false, 0, 0, 0, GREY);
            if (n_boxes < cap) boxes[n_boxes++] = (box){x + 3, T + 3 + row * 14, x + 3 + w, T + 17 + row * 14};
        }
    }
    return n_boxes;
}

/* each series as a line (broken at points that cannot be drawn) and/or dots */
static void lines_series(const lines_frame *f, const plot_series *s, int n_series) {
    cairo_t *c = f->c;
    for (int k = 0; k < n_series; k++) {
        if (!s[k].no_line) {
            series_style(c, &s[k]);
            bool pen = false;
            for (int i = 0; i < s[k].n; i++) {
                if (!frame_point_ok(f, &s[k], i)) {
                    pen = false;
                    continue;
                }
                double px = frame_x(f, s[k].x[i]), py = frame_y(f, &s[k], s[k].y[i]);
                if (pen) cairo_line_to(c, px, py);
                else cairo_move_to(c, px, py);
                pen = true;
            }
            cairo_stroke(c);
        }
        if (s[k].dots || s[k].no_line || s[k].n == 1)
            for (int i = 0; i < s[k].n; i++)
                if (frame_point_ok(f, &s[k], i)) dot(c, frame_x(f, s[k].x[i]), frame_y(f, &s[k], s[k].y[i]), &s[k]);
    }
}

/* the red vertical marker at o->marker_x with its label in a white box; returns the label's box
 * (all zero when there is none) */
static box lines_marker(const lines_frame *f, const plot_opts *o) {
    cairo_t *c = f->c;
    const double R = f->R, T = f->T, B = f->B;
    box mbox = {0, 0, 0, 0};
    if (o->has_marker && isfinite(o->marker_x) && (!o->logx || o->marker_x > 0)) {
        double x = frame_x(f, o->marker_x);
        cairo_set_source_rgb(c, 0.8, 0.1, 0.1);
        cairo_set_line_width(c, 1.5);
        cairo_move_to(c, x, T); cairo_line_to(c, x, B); cairo_stroke(c);
        if (o->marker_label) {
            double w = plot_text_width(c, o->marker_label, 12, true) + 8;
            double x0 = x + 5 + w < R ? x + 5 : x - 5 - w;
            mbox = (box){x0, T + 6, x0 + w, T + 24};
            white_box(c, mbox, 0.9);
            const double red[3] = {0.8, 0.1, 0.1};
            plot_text_at(c, x0 + 4, T + 15, o->marker_label, 12, true, 0, 0.5, 0, red);
        }
    }
    return mbox;
}

/* how much a legend at cand would hide: the marker label (1000000), vline labels (40 each), and
 * data points under it (sampling at most about 2000 per series, each sample counting its stride) */
static long legend_score(const lines_frame *f, box cand, const plot_series *s, int n_series, box mbox,
                         const box *vboxes, int n_vboxes) {
    long score = overlaps(cand, mbox) ? 1000000 : 0;
    for (int v = 0; v < n_vboxes; v++) score += overlaps(cand, vboxes[v]) ? 40 : 0;
    for (int k = 0; k < n_series; k++) {
        int stride = s[k].n > 2000 ? s[k].n / 2000 : 1;
        for (int i = 0; i < s[k].n; i += stride) {
            if (!frame_point_ok(f, &s[k], i)) continue;
            double px = frame_x(f, s[k].x[i]), py = frame_y(f, &s[k], s[k].y[i]);
            if (px >= cand.x0 - 4 && px <= cand.x1 + 4 && py >= cand.y0 - 4 && py <= cand.y1 + 4) score += stride;
        }
    }
    return score;
}

/* the legend of the labelled series, in the corner of the plot area that hides least */
static void lines_legend(const lines_frame *f, const plot_series *s, int n_series, box mbox, const box *vboxes,
                         int n_vboxes) {
    cairo_t *c = f->c;
    const double L = f->L, R = f->R, T = f->T, B = f->B;
    int n_leg = 0;
    double leg_w = 0;
    for (int k = 0; k < n_series; k++)
        if (s[k].label) {
            n_leg++;
            double w = plot_text_width(c, s[k].label, 12, false);
            if (w > leg_w) leg_w = w;
        }
    if (!n_leg) return;
    double bw = leg_w + 48, bh = n_leg * 18 + 10;
    box cand[4] = {{R - 8 - bw, T + 8, R - 8, T + 8 + bh}, {L + 8, T + 8, L + 8 + bw, T + 8 + bh},
                   {R - 8 - bw, B - 8 - bh, R - 8, B - 8}, {L + 8, B - 8 - bh, L + 8 + bw, B - 8}};
    int best = 0;
    long best_score = -1;
    for (int q = 0; q < 4; q++) {
        long score = legend_score(f, cand[q], s, n_series, mbox, vboxes, n_vboxes);
        if (best_score < 0 || score < best_score) {
            best_score = score;
            best = q;
        }
    }
    box lb = cand[best];
    white_box(c, lb, 0.92);
    double ly = lb.y0 + 14;
    for (int k = 0; k < n_series; k++) {
        if (!s[k].label) continue;
        plot_series solid = s[k];
        if (solid.alpha > 0 && solid.alpha < 0.6) solid.alpha = 0.6;
        if (!s[k].no_line) {
            series_style(c, &solid);
            cairo_move_to(c, lb.x0 + 8, ly); cairo_line_to(c, lb.x0 + 34, ly); cairo_stroke(c);
        }
        if (s[k].dots || s[k].no_line) dot(c, lb.x0 + 21, ly, &solid);
        cairo_set_dash(c, NULL, 0, 0);
        plot_text_at(c, lb.x0 + 40, ly, s[k].label, 12, false, 0, 0.5, 0, BLACK);
        ly += 18;
    }
}

void plot_draw_lines(plot_canvas *cv, plot_rect rc, const plot_opts *o, const plot_series *s, int n_series) {
    cairo_t *c = cv->cr;
    lines_frame f;
    if (!lines_frame_init(&f, c, rc, o, s, n_series)) return;
    const double L = f.L, R = f.R, T = f.T, B = f.B;
    cairo_save(c);

    cairo_set_line_width(c, 1);
    lines_x_ticks(&f, o);
    lines_y_ticks(&f);
    cairo_set_source_rgb(c, 0, 0, 0);
    cairo_rectangle(c, L, T, R - L, B - T);
    cairo_stroke(c);

    cairo_save(c);
    cairo_rectangle(c, L, T, R - L, B - T);
    cairo_clip(c);
    box vboxes[64];
    int n_vboxes = lines_vlines(&f, o, vboxes, 64);
    cairo_restore(c);

    cairo_save(c);
    cairo_rectangle(c, L, T, R - L, B - T);
    cairo_clip(c);
    lines_series(&f, s, n_series);
    cairo_set_dash(c, NULL, 0, 0);
    box mbox = lines_marker(&f, o);
    cairo_restore(c);

    lines_legend(&f, s, n_series, mbox, vboxes, n_vboxes);

    if (o->title) plot_text_at(c, (L + R) / 2, rc.y + 10, o->title, 15, true, 0.5, 0, 0, BLACK);
    if (o->xlabel) plot_text_at(c, (L + R) / 2, rc.y + rc.h - 8, o->xlabel, 13, false, 0.5, 1, 0, BLACK);
    if (o->ylabel) plot_text_at(c, rc.x + 8, (T + B) / 2, o->ylabel, 13, false, 0.5, 0, M_PI / 2, BLACK);
    if (o->y2label && f.has_right)
        plot_text_at(c, rc.x + rc.w - 8, (T + B) / 2, o->y2label, 13, false, 0.5, 1, M_PI / 2, GREY);
    cairo_restore(c);
}

int plot_lines(const char *path, const plot_opts *o, const plot_series *s, int n_series) {
    const int W = o->width > 0 ? o->width : 800, H = o->height > 0 ? o->height : 500;
    plot_canvas *c = plot_canvas_new(W, H);
    if (!c) return sn_error_prefix("%s", path);
    plot_draw_lines(c, (plot_rect){0, 0, W, H}, o, s, n_series);
    int r = plot_canvas_save(c, path);
    plot_canvas_free(c);
    return r;
}
