/* plot.c - canvas, text, heatmaps, bars and image tiles with cairo (see plot.h; line plots are
 * plot_lines.c). */
#include "io/plot.h"
#include "io/plot_internal.h"
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/file.h"

/* ---------------------------------------------------------------- canvas */

plot_canvas *plot_canvas_new(int width, int height) {
    if (width < 1 || height < 1 || width > 16384 || height > 16384) {
        sn_error("plot: canvas of %d x %d pixels (each side must be 1..16384)", width, height);
        return NULL;
    }
    plot_canvas *c = calloc(1, sizeof *c);
    if (!c) {
        sn_error("plot: out of memory");
        return NULL;
    }
    c->w = width;
    c->h = height;
    c->surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    c->cr = cairo_create(c->surf);
    if (cairo_status(c->cr) != CAIRO_STATUS_SUCCESS) {
        sn_error("plot: cannot make a %d x %d canvas: %s", width, height, cairo_status_to_string(cairo_status(c->cr)));
        plot_canvas_free(c);
        return NULL;
    }
    cairo_select_font_face(c->cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_source_rgb(c->cr, 1, 1, 1);
    cairo_paint(c->cr);
    return c;
}

void plot_canvas_free(plot_canvas *c) {
    if (!c) return;
    if (c->cr) cairo_destroy(c->cr);
    if (c->surf) cairo_surface_destroy(c->surf);
    free(c);
}

/* cairo's PNG bytes into the FILE in closure */
static cairo_status_t png_bytes(void *closure, const unsigned char *data, unsigned int len) {
    return fwrite(data, 1, len, closure) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* the canvas as PNG into f (sn_write_file_atomic's writer) */
static int png_write(FILE *f, void *ctx) {
    cairo_status_t st = cairo_surface_write_to_png_stream(ctx, png_bytes, f);
    if (st == CAIRO_STATUS_WRITE_ERROR && ferror(f)) return 0; /* the caller reports the system's reason */
    if (st != CAIRO_STATUS_SUCCESS) return sn_error("cannot write the plot: %s", cairo_status_to_string(st));
    return 0;
}

int plot_canvas_save(plot_canvas *c, const char *path) {
    cairo_status_t st = cairo_status(c->cr);
    if (st != CAIRO_STATUS_SUCCESS) return sn_error("%s: cannot draw the plot: %s", path, cairo_status_to_string(st));
    cairo_surface_flush(c->surf);
    return sn_write_file_atomic(path, png_write, c->surf);
}

/* ---------------------------------------------------------------- text */

static void set_font(cairo_t *cr, double size, bool bold) {
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double plot_text_width(cairo_t *cr, const char *s, double size, bool bold) {
    cairo_text_extents_t e;
    set_font(cr, size, bold);
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* text anchored at (x, y): ax = 0 left .. 1 right, ay = 0 top .. 1 bottom of the line box
 * (ascent + descent of the font, so labels share baselines); angle in radians, counter-clockwise */
void plot_text_at(cairo_t *cr, double x, double y, const char *s, double size, bool bold, double ax, double ay,
                  double angle, const double rgb[3]) {
    if (!s || !*s) return;
    set_font(cr, size, bold);
    cairo_font_extents_t fe;
    cairo_text_extents_t te;
    cairo_font_extents(cr, &fe);
    cairo_text_extents(cr, s, &te);
    cairo_save(cr);
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
    cairo_translate(cr, x, y);
    if (angle != 0) cairo_rotate(cr, -angle);
    cairo_move_to(cr, -te.x_advance * ax, fe.ascent - (fe.ascent + fe.descent) * ay);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

/* s fitted into max_w pixels: the font shrinks down to min_size, then the text is cut with "..."
 * (into buf); returns the text to draw and sets *size */
static const char *fit_text(cairo_t *cr, const char *s, double max_w, double *size, double min_size, bool bold,
                            char *buf, size_t cap) {
    while (*size > min_size && plot_text_width(cr, s, *size, bold) > max_w) *size -= 0.5;
    if (plot_text_width(cr, s, *size, bold) <= max_w) return s;
    size_t n = strlen(s);
    if (n >= cap) n = cap - 1;
    while (n > 0) {
        snprintf(buf, cap, "%.*s...", (int)n, s);
        if (plot_text_width(cr, buf, *size, bold) <= max_w) return buf;
        n--;
    }
    snprintf(buf, cap, "...");
    return buf;
}

void plot_draw_text(plot_canvas *c, double x, double y, const char *text, double size, bool bold, double ax,
                    double ay, const double rgb[3]) {
    plot_text_at(c->cr, x, y, text, size, bold, ax, ay, 0, rgb ? rgb : BLACK);
}

/* ---------------------------------------------------------------- axes */

/* a 1-2-5 step giving about `want` ticks over r */
double plot_nice_step(plot_range r, int want) {
    double raw = (r.hi - r.lo) / want, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

void plot_fmt_tick(char *buf, size_t cap, double v, double step) {
    if (fabs(v) < 1e-9 * step) v = 0;
    snprintf(buf, cap, "%.4g", v);
}

/* ---------------------------------------------------------------- heatmap */

static void shade_rgb(double s, double rgb[3]) {
    if (!isfinite(s)) s = 0;
    s = s < 0 ? 0 : s > 1 ? 1 : s;
    const double lo[3] = {1, 1, 1}, hi[3] = {0.06, 0.23, 0.55};
    for (int k = 0; k < 3; k++) rgb[k] = lo[k] + (hi[k] - lo[k]) * s;
}

void plot_draw_heatmap(plot_canvas *cv, plot_rect rc, const plot_heatmap *h) {
    cairo_t *c = cv->cr;
    if (h->rows <= 0 || h->cols <= 0) return;
    cairo_save(c);
    const double lab_size = 12, slant = M_PI / 4;
    double row_w = 0, col_w = 0;
    for (int i = 0; i < h->rows; i++)
        if (h->row_labels) row_w = fmax(row_w, plot_text_width(c, h->row_labels[i], lab_size, false));
    for (int j = 0; j < h->cols; j++)
        if (h->col_labels) col_w = fmax(col_w, plot_text_width(c, h->col_labels[j], lab_size, false));
    row_w = fmin(row_w, rc.w * 0.3);
    col_w = fmin(col_w, rc.h * 0.4);
    double top = rc.y + (h->title ? 34 : 8) + (h->subtitle ? 18 : 0);
    double left = rc.x + (h->ylabel ? 28 : 6) + row_w + 8;
    double bottom_space = col_w * sin(slant) + 16 + (h->xlabel ? 26 : 4);
    double avail_w = rc.x + rc.w - 12 - left, avail_h = rc.y + rc.h - bottom_space - top;
    double cell = fmin(avail_w / h->cols, avail_h / h->rows);
    if (cell < 4) {
        cairo_restore(c);
        return;
    }
    /* centre the grid horizontally in what is left */
    double gw = cell * h->cols, gh = cell * h->rows;
    left += (avail_w - gw) / 2 > 0 ? (avail_w - gw) / 2 : 0;
    double num_size = fmin(13, cell * 0.38);
    char buf[32];
    for (int i = 0; i < h->rows; i++)
        for (int j = 0; j < h->cols; j++) {
            double s = h->shade ? h->shade[i * h->cols + j] : 0, rgb[3];
            shade_rgb(s, rgb);
            double x = left + j * cell, y = top + i * cell;
            cairo_set_source_rgb(c, rgb[0], rgb[1], rgb[2]);
            cairo_rectangle(c, x, y, cell, cell);
            cairo_fill(c);
            if (h->counts) {
                int v = h->counts[i * h->cols + j];
                snprintf(buf, sizeof buf, "%d", v);
                const double light[3] = {0.72, 0.72, 0.72}, white[3] = {1, 1, 1};
                const double *tc = (isfinite(s) && s > 0.5) ? white : v == 0 ? light : BLACK;
                plot_text_at(c, x + cell / 2, y + cell / 2, buf, num_size, i == j, 0.5, 0.5, 0, tc);
            }
        }
    /* grid lines, the diagonal outlined */
    cairo_set_source_rgb(c, 0.85, 0.85, 0.85);
    cairo_set_line_width(c, 1);
    for (int i = 0; i <= h->rows; i++) {
        cairo_move_to(c, left, top + i * cell);
        cairo_line_to(c, left + gw, top + i * cell);
    }
    for (int j = 0; j <= h->cols; j++) {
        cairo_move_to(c, left + j * cell, top);
        cairo_line_to(c, left + j * cell, top + gh);
    }
    cairo_stroke(c);
    if (h->rows == h->cols) {
        cairo_set_source_rgb(c, 0.1, 0.1, 0.1);
        cairo_set_line_width(c, 1.5);
        for (int i = 0; i < h->rows; i++) cairo_rectangle(c, left + i * cell + 0.75, top + i * cell + 0.75, cell - 1.5, cell - 1.5);
        cairo_stroke(c);
    }
    cairo_set_source_rgb(c, 0, 0, 0);
    cairo_set_line_width(c, 1);
    cairo_rectangle(c, left, top, gw, gh);
    cairo_stroke(c);
    char fit[256];
    for (int i = 0; h->row_labels && i < h->rows; i++) {
        double sz = lab_size;
        const char *t = fit_text(c, h->row_labels[i], row_w + 1, &sz, 9, false, fit, sizeof fit);
        plot_text_at(c, left - 6, top + (i + 0.5) * cell, t, sz, false, 1, 0.5, 0, BLACK);
    }
    for (int j = 0; h->col_labels && j < h->cols; j++) {
        double sz = lab_size;
        const char *t = fit_text(c, h->col_labels[j], col_w + 1, &sz, 9, false, fit, sizeof fit);
        /* slanted, ending under the middle of the column */
        plot_text_at(c, left + (j + 0.5) * cell + 4, top + gh + 6, t, sz, false, 1, 0, slant, BLACK);
    }
    if (h->title) plot_text_at(c, rc.x + rc.w / 2, rc.y + 10, h->title, 15, true, 0.5, 0, 0, BLACK);
    if (h->subtitle) plot_text_at(c, rc.x + rc.w / 2, rc.y + 32, h->subtitle, 11.5, false, 0.5, 0, 0, GREY);
    if (h->xlabel) plot_text_at(c, left + gw / 2, rc.y + rc.h - 8, h->xlabel, 13, true, 0.5, 1, 0, BLACK);
    if (h->ylabel) plot_text_at(c, rc.x + 6, top + gh / 2, h->ylabel, 13, true, 0.5, 0, M_PI / 2, BLACK);
    cairo_restore(c);
}

/* ---------------------------------------------------------------- bars */

void plot_draw_bars(plot_canvas *cv, plot_rect rc, const plot_bars *b) {
    cairo_t *c = cv->cr;
    int ns = b->n_series < 1 ? 1 : b->n_series > 4 ? 4 : b->n_series;
    if (b->n <= 0 || !b->values || !(b->hi > b->lo)) return;
    cairo_save(c);
    double lab_w = 0;
    for (int i = 0; b->labels && i < b->n; i++) lab_w = fmax(lab_w, plot_text_width(c, b->labels[i], 12, false));
    lab_w = fmin(b->label_width > 0 ? b->label_width : lab_w, rc.w * 0.4);
    bool legend = false;
    for (int s = 0; b->series_labels && s < ns; s++) legend |= b->series_labels[s] != NULL;
    const double L = rc.x + lab_w + 14, R = rc.x + rc.w - 16, T = rc.y + (b->title ? 36 : 10) + (legend ? 22 : 0),
                 B = rc.y + rc.h - (b->xlabel ? 48 : 26);
    if (R - L < 20 || B - T < 10) {
        cairo_restore(c);
        return;
    }
    const double band = (B - T) / b->n, bar = fmin(22, band * 0.8 / ns);
    char buf[64];
    /* value grid */
    plot_range vr = {b->lo, b->hi};
    double st = plot_nice_step(vr, 5);
    cairo_set_line_width(c, 1);
    for (double v = ceil(vr.lo / st) * st; v <= vr.hi + 1e-9 * st; v += st) {
        double x = L + (v - vr.lo) / (vr.hi - vr.lo) * (R - L);
        cairo_set_source_rgb(c, 0.88, 0.88, 0.88);
        cairo_move_to(c, x, T); cairo_line_to(c, x, B); cairo_stroke(c);
        plot_fmt_tick(buf, sizeof buf, v, st);
        plot_text_at(c, x, B + 6, buf, 12, false, 0.5, 0, 0, BLACK);
    }
    char fit[256];
    for (int i = 0; i < b->n; i++) {
        double y0 = T + i * band + (band - bar * ns) / 2;
        if (i % 2) { /* zebra rows help the eye across */
            cairo_set_source_rgba(c, 0.5, 0.5, 0.5, 0.06);
            cairo_rectangle(c, L, T + i * band, R - L, band);
            cairo_fill(c);
        }
        if (b->labels) {
            double sz = 12;
            const char *t = fit_text(c, b->labels[i], lab_w + 1, &sz, 9, false, fit, sizeof fit);
            plot_text_at(c, L - 6, T + (i + 0.5) * band, t, sz, false, 1, 0.5, 0, BLACK);
        }
        for (int s = 0; s < ns; s++) {
            double v = b->values[s] ? b->values[s][i] : NAN;
            double y = y0 + s * bar;
            const double *col = b->colours ? b->colours[s] : GREY;
            if (!isfinite(v)) {
                plot_text_at(c, L + 4, y + bar / 2, "n/a", fmin(11, bar * 0.9), false, 0, 0.5, 0, GREY);
                continue;
            }
            double vv = v < vr.lo ? vr.lo : v > vr.hi ? vr.hi : v;
            double x1 = L + (vv - vr.lo) / (vr.hi - vr.lo) * (R - L);
            cairo_set_source_rgb(c, col[0], col[1], col[2]);
            cairo_rectangle(c, L, y + 0.5, x1 - L, bar - 1);
            cairo_fill(c);
            snprintf(buf, sizeof buf, "%.2f", v);
            double fs = fmin(11, bar * 0.85), tw = plot_text_width(c, buf, fs, false);
            const double white[3] = {1, 1, 1};
            if (x1 + 4 + tw < R) plot_text_at(c, x1 + 3, y + bar / 2, buf, fs, false, 0, 0.5, 0, BLACK);
            else plot_text_at(c, x1 - 3, y + bar / 2, buf, fs, false, 1, 0.5, 0, white);
        }
    }
    cairo_set_source_rgb(c, 0, 0, 0);
    cairo_set_line_width(c, 1);
    cairo_rectangle(c, L, T, R - L, B - T);
    cairo_stroke(c);
    if (legend) { /* one row under the title */
        double x = L, y = T - 13;
        for (int s = 0; s < ns; s++) {
            if (!b->series_labels[s]) continue;
            const double *col = b->colours ? b->colours[s] : GREY;
            cairo_set_source_rgb(c, col[0], col[1], col[2]);
            cairo_rectangle(c, x, y - 6, 14, 12);
            cairo_fill(c);
            plot_text_at(c, x + 19, y, b->series_labels[s], 12, false, 0, 0.5, 0, BLACK);
            x += 19 + plot_text_width(c, b->series_labels[s], 12, false) + 18;
        }
    }
    if (b->title) plot_text_at(c, rc.x + rc.w / 2, rc.y + 10, b->title, 15, true, 0.5, 0, 0, BLACK);
    if (b->xlabel) plot_text_at(c, (L + R) / 2, rc.y + rc.h - 8, b->xlabel, 13, false, 0.5, 1, 0, BLACK);
    cairo_restore(c);
}

/* ---------------------------------------------------------------- images */

void plot_draw_image(plot_canvas *cv, plot_rect rc, const image *im, int n_lines, const char *const *lines,
                     const double (*colours)[3]) {
    cairo_t *c = cv->cr;
    const double line_h = 15;
    double cap_h = n_lines > 0 ? n_lines * line_h + 4 : 0;
    double aw = rc.w, ah = rc.h - cap_h;
    if (aw < 4 || ah < 4) return;
    cairo_save(c);
    double iw = aw, ih = ah, ix = rc.x, iy = rc.y;
    if (im && im->rgb && im->w > 0 && im->h > 0) {
        cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, im->w, im->h);
        if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
            cairo_surface_flush(s);
            unsigned char *d = cairo_image_surface_get_data(s);
            int stride = cairo_image_surface_get_stride(s);
            for (int y = 0; y < im->h; y++) {
                uint32_t *row = (uint32_t *)(void *)(d + (size_t)y * stride);
                const uint8_t *p = im->rgb + (size_t)y * im->w * 3;
                for (int x = 0; x < im->w; x++)
                    row[x] = (uint32_t)p[3 * x] << 16 | (uint32_t)p[3 * x + 1] << 8 | p[3 * x + 2];
            }
            cairo_surface_mark_dirty(s);
            double sc = fmin(aw / im->w, ah / im->h);
            iw = im->w * sc;
            ih = im->h * sc;
            ix = rc.x + (aw - iw) / 2;
            iy = rc.y + (ah - ih) / 2;
            cairo_save(c);
            cairo_translate(c, ix, iy);
            cairo_scale(c, sc, sc);
            cairo_set_source_surface(c, s, 0, 0);
            cairo_pattern_set_filter(cairo_get_source(c), CAIRO_FILTER_GOOD);
            cairo_pattern_set_extend(cairo_get_source(c), CAIRO_EXTEND_PAD); /* no faded border */
            cairo_rectangle(c, 0, 0, im->w, im->h);
            cairo_fill(c);
            cairo_restore(c);
        }
        cairo_surface_destroy(s);
        cairo_set_source_rgb(c, 0.6, 0.6, 0.6);
        cairo_set_line_width(c, 1);
        cairo_rectangle(c, ix, iy, iw, ih);
        cairo_stroke(c);
    } else {
        cairo_set_source_rgb(c, 0.88, 0.88, 0.88);
        cairo_rectangle(c, ix, iy, iw, ih);
        cairo_fill(c);
        plot_text_at(c, ix + iw / 2, iy + ih / 2, "image missing", 13, true, 0.5, 0.5, 0, GREY);
    }
    char fit[256];
    for (int i = 0; i < n_lines; i++) {
        if (!lines[i]) continue;
        double sz = 11.5;
        const char *t = fit_text(c, lines[i], rc.w - 2, &sz, 8.5, false, fit, sizeof fit);
        plot_text_at(c, rc.x + rc.w / 2, rc.y + ah + 3 + i * line_h, t, sz, false, 0.5, 0, 0, colours ? colours[i] : BLACK);
    }
    cairo_restore(c);
}
