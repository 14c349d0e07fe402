/* SVG line plots for the example programs: minrnn-train's DIR/loss.svg and
   minrnn-compare's loss.svg. Panels side by side, each with labelled axes,
   ticks at 1-2-5 steps and a grid; one colour per series (series i has the
   same colour in every panel) and one legend under the panels. Only
   finite points are drawn; a line is broken where a point is missing (NaN).
   The file is written to PATH.tmp and renamed, so a reader never sees half
   of it. Plain C99 and stdio; no library needed to view the result. */
#ifndef MINRNN_EXAMPLES_PLOT_H
#define MINRNN_EXAMPLES_PLOT_H
#include <stdio.h>
#include <math.h>
#include <string.h>
#include <stdlib.h>
#include <ctype.h>

#if defined(__GNUC__)
#define PL_UNUSED __attribute__((unused))   /* a program may use only some of these */
#else
#define PL_UNUSED
#endif

typedef struct pl_series {
    const char *name;          /* legend text (taken from the first panel) */
    const double *x, *y;       /* n points; NaN y: no point (the line breaks) */
    int n;
    int dashed;                /* drawn dashed (a second quantity of the same run) */
} pl_series;

typedef struct pl_panel {
    const char *xlabel, *ylabel;
    const pl_series *s;
    int ns;
    double y_cap;              /* > 0: the y range ends at most this far above the lowest point */
} pl_panel;

#define PL_W 560.0   /* one panel's width and height in SVG units */
#define PL_H 380.0

static const char *const pl_colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

/* A tick step of 1, 2 or 5 times a power of ten giving about 5 ticks over span. */
static double pl_step(double span) {
    double raw = span / 5.0, p, f;
    if (!(raw > 0)) return 1;
    p = pow(10.0, floor(log10(raw)));
    f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* A tick label: no trailing zeros; large values with k or M. */
static void pl_label(char *b, size_t n, double v, double step) {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) < step * 1e-6) v = 0;
    if (step >= 1e6 && fabs(v) >= 1e6) snprintf(b, n, "%gM", v / 1e6);
    else if (step >= 1e3 && fabs(v) >= 1e3) snprintf(b, n, "%gk", v / 1e3);
    else snprintf(b, n, "%.*f", dec > 6 ? 6 : dec, v);
}

/* XML-escaped text */
static void pl_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

static void pl_panel_svg(FILE *f, const pl_panel *p, double ox, double oy, int id) {
    const double L = 70, R = 16, T = 14, B = 52, w = PL_W - L - R, h = PL_H - T - B;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY, xs, ys, v;
    int i, k, any = 0;
    char lab[64];
    for (i = 0; i < p->ns; i++)
        for (k = 0; k < p->s[i].n; k++) {
            double x = p->s[i].x[k], y = p->s[i].y[k];
            if (!isfinite(x) || !isfinite(y)) continue;
            any = 1;
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (y < y0) y0 = y;
            if (y > y1) y1 = y;
        }
    if (!any) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
    if (p->y_cap > 0 && y1 > y0 + p->y_cap) y1 = y0 + p->y_cap;
    if (x0 > 0 && x0 < 0.2 * (x1 - x0)) x0 = 0;   /* start the x axis at 0 when the data nearly does */
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 <= y0) { y0 -= 0.05; y1 += 0.05; }
    xs = pl_step(x1 - x0); ys = pl_step(y1 - y0);
    x0 = floor(x0 / xs) * xs; x1 = ceil(x1 / xs) * xs;
    y0 = floor(y0 / ys) * ys; y1 = ceil(y1 / ys) * ys;
    if (y1 <= y0) y1 = y0 + ys;
#define PL_X(x) (ox + L + ((x) - x0) / (x1 - x0) * w)
#define PL_Y(y) (oy + T + (1 - ((y) - y0) / (y1 - y0)) * h)
    fprintf(f, "<clipPath id=\"c%d\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath>\n", id, ox + L, oy + T, w, h);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fff\" stroke=\"#444\"/>\n", ox + L, oy + T, w, h);
    for (v = x0; v <= x1 + xs * 1e-6; v += xs) {   /* x ticks and grid */
        pl_label(lab, sizeof lab, v, xs);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>", PL_X(v), oy + T, PL_X(v), oy + T + h);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", PL_X(v), oy + T + h + 18, lab);
    }
    for (v = y0; v <= y1 + ys * 1e-6; v += ys) {   /* y ticks and grid */
        pl_label(lab, sizeof lab, v, ys);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>", ox + L, PL_Y(v), ox + L + w, PL_Y(v));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", ox + L - 6, PL_Y(v) + 4, lab);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n", ox + L, oy + T, w, h);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\">", ox + L + w / 2, oy + PL_H - 12);
    pl_text(f, p->xlabel);
    fprintf(f, "</text>\n<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\" font-size=\"14\">", ox + 18, oy + T + h / 2);
    pl_text(f, p->ylabel);
    fputs("</text>\n", f);
    for (i = 0; i < p->ns; i++) {   /* the lines, broken at missing points; single points as dots */
        const pl_series *s = &p->s[i];
        const char *col = pl_colors[i % (int)(sizeof pl_colors / sizeof pl_colors[0])];
        int open = 0, run = 0;
        double lx = 0, ly = 0;
        fprintf(f, "<g clip-path=\"url(#c%d)\">", id);
        for (k = 0; k <= s->n; k++) {
            int ok = k < s->n && isfinite(s->x[k]) && isfinite(s->y[k]);
            if (ok) {
                double px = PL_X(s->x[k]), py = PL_Y(s->y[k]);
                if (!open) { fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", col, s->dashed ? " stroke-dasharray=\"6,4\"" : ""); open = 1; run = 0; }
                fprintf(f, "%.1f,%.1f ", px, py);
                lx = px; ly = py; run++;
            } else if (open) {
                fputs("\"/>", f);
                if (run == 1) fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", lx, ly, col);
                open = 0;
            }
        }
        if (s->n > 0 && isfinite(lx + ly) && run > 0)   /* the last point marked */
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", lx, ly, col);
        fputs("</g>\n", f);
    }
#undef PL_X
#undef PL_Y
}

/* Writes np panels side by side with a title and a legend of panel 0's
   series; returns 0, or -1 when the file cannot be written. */
static int pl_write_svg(const char *path, const char *title, const pl_panel *p, int np) {
    char tmp[4200];
    FILE *f;
    int i, ns = np > 0 ? p[0].ns : 0, per_row, rows;
    double W = PL_W * (np > 0 ? np : 1), top = title && *title ? 34 : 8, H, lx, ly, slot = 190;
    for (i = 0; i < ns; i++) {   /* a legend slot wide enough for the longest name (about 7 units a character) */
        double w = 44 + 7.0 * (double)strlen(p[0].s[i].name ? p[0].s[i].name : "");
        slot = w > slot ? w : slot;
    }
    per_row = (int)((W - 70) / slot) > 0 ? (int)((W - 70) / slot) : 1;
    rows = (ns + per_row - 1) / per_row;
    H = top + PL_H + 12 + rows * 22 + 8;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -1;
    f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n", W, H, W, H);
    if (title && *title) {
        fprintf(f, "<text x=\"%.1f\" y=\"22\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">", W / 2);
        pl_text(f, title);
        fputs("</text>\n", f);
    }
    for (i = 0; i < np; i++) pl_panel_svg(f, &p[i], PL_W * i, top, i);
    for (i = 0; i < ns; i++) {   /* the legend */
        const char *col = pl_colors[i % (int)(sizeof pl_colors / sizeof pl_colors[0])];
        lx = 70 + (i % per_row) * slot; ly = top + PL_H + 12 + (i / per_row) * 22 + 10;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"%s/>", lx, ly, lx + 28, ly, col,
                p[0].s[i].dashed ? " stroke-dasharray=\"6,4\"" : "");
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", lx + 34, ly + 4);
        pl_text(f, p[0].s[i].name ? p[0].s[i].name : "");
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
    if (ferror(f) | fclose(f)) { remove(tmp); return -1; }
    if (rename(tmp, path) != 0) { remove(tmp); return -1; }
    return 0;
}

/* minrnn-train's history.csv (step,tokens,elapsed_s,lr,train_loss,grad_norm,
   val_loss,val_bpc,val_stateful_loss[,moe...]): one row per log line (train
   loss), per evaluation (validation loss) and a final row (both; its train
   loss, a moving average, goes to final_train and its train field is NaN,
   so that train[] holds one kind of value). Empty fields are NaN. */
typedef struct pl_hist {
    int n, cap;
    double final_train;
    double *step, *tokens, *wall, *train, *val, *val_bpc, *val_stateful;
} pl_hist;

static void pl_hist_free(pl_hist *h) {
    free(h->step); free(h->tokens); free(h->wall); free(h->train); free(h->val); free(h->val_bpc); free(h->val_stateful);
    memset(h, 0, sizeof *h);
}
static double pl_field(const char **p) {
    const char *s = *p, *e = s;
    double v = NAN;
    while (*e && *e != ',' && *e != '\n' && *e != '\r') e++;
    if (e > s) { char *end; v = strtod(s, &end); if (end != e) v = NAN; }
    *p = *e == ',' ? e + 1 : e;
    return v;
}
/* Reads PATH into h (zeroed first); returns 0, or -1 when it cannot be read or memory runs out. */
PL_UNUSED static int pl_hist_read(const char *path, pl_hist *h) {
    FILE *f = fopen(path, "r");
    char line[4096];
    memset(h, 0, sizeof *h);
    h->final_train = NAN;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        const char *p = line;
        double v[9];
        int k;
        if (line[0] < '0' || line[0] > '9') continue;   /* the header */
        for (k = 0; k < 9; k++) v[k] = pl_field(&p);
        if (h->n == h->cap) {
            int c = h->cap ? 2 * h->cap : 256;
            double **a[7];
            a[0] = &h->step; a[1] = &h->tokens; a[2] = &h->wall; a[3] = &h->train; a[4] = &h->val; a[5] = &h->val_bpc; a[6] = &h->val_stateful;
            for (k = 0; k < 7; k++) {
                double *q = (double *)realloc(*a[k], sizeof(double) * (size_t)c);
                if (!q) { fclose(f); pl_hist_free(h); return -1; }
                *a[k] = q;
            }
            h->cap = c;
        }
        if (isfinite(v[4]) && isfinite(v[6])) { h->final_train = v[4]; v[4] = NAN; }
        h->step[h->n] = v[0]; h->tokens[h->n] = v[1]; h->wall[h->n] = v[2]; h->train[h->n] = v[4];
        h->val[h->n] = v[6]; h->val_bpc[h->n] = v[7]; h->val_stateful[h->n] = v[8];
        h->n++;
    }
    fclose(f);
    return 0;
}
/* The points of h whose y is finite, as a series (x and y point into xs, ys, of h->n each). */
PL_UNUSED static pl_series pl_hist_series(const pl_hist *h, const double *x, const double *y, double *xs, double *ys, const char *name, int dashed) {
    pl_series s;
    int k, n = 0;
    for (k = 0; k < h->n; k++) if (isfinite(y[k]) && isfinite(x[k])) { xs[n] = x[k]; ys[n] = y[k]; n++; }
    s.name = name; s.x = xs; s.y = ys; s.n = n; s.dashed = dashed;
    return s;
}
#endif
