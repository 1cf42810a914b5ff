/* plot.c - the SVG chart of a training log (trainlog_svg in trainlog.h), written by hand.
 *
 * 900x600 user units: a title, then two panels sharing the iteration axis. Upper panel: the
 * loss of each logged iteration (light) and its moving average (dark), y from 0. Lower panel:
 * validation top-1 and top-k in percent, dots joined by lines, y from a round number below the
 * lowest value up to 100. Each panel has its own y axis with ticks at 1, 2 or 5 times a power of
 * ten, grid lines, a label and a legend in the band above it. Lines are clipped to their panel, so
 * a loss spike at the start runs off the top instead of squashing the rest (the y range is the
 * larger of the moving average's maximum and the raw loss's 95th percentile). At most MAX_POINTS
 * points per line: longer logs are thinned evenly.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/strbuf.h"
#include "net/trainlog.h"

#define W 900
#define H 600
#define LEFT 80.0
#define RIGHT 870.0
#define MAX_POINTS 2000

struct panel {
    double top, bottom; /* pixel rows */
    double y0, y1;      /* value range */
    double x0, x1;      /* iteration range */
    const char *ylabel;
    int clip; /* id of its clipPath */
};

static double nice_step(double range, int want)
{
    double raw = range / want, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static double px(const struct panel *p, double x)
{
    return LEFT + (RIGHT - LEFT) * (x - p->x0) / (p->x1 - p->x0);
}

static double py(const struct panel *p, double y)
{
    return p->bottom - (p->bottom - p->top) * (y - p->y0) / (p->y1 - p->y0);
}

static void tick_label(struct strbuf *b, double v, double step)
{
    if (fabs(v) < step * 1e-6)
        v = 0; /* not "-0" from accumulated rounding */
    if (step >= 1)
        strbuf_printf(b, "%.0f", v);
    else
        strbuf_printf(b, "%.*f", (int)ceil(-log10(step) - 1e-9), v);
}

/* Frame, grid, ticks and labels of one panel; x tick labels only when labels_x. */
static void draw_axes(struct strbuf *b, const struct panel *p, int labels_x)
{
    strbuf_printf(b,
                  "<clipPath id=\"c%d\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                  "height=\"%.1f\"/></clipPath>\n",
                  p->clip, LEFT - 4, p->top - 4, RIGHT - LEFT + 8, p->bottom - p->top + 8);
    double ys = nice_step(p->y1 - p->y0, 5), xs = nice_step(p->x1 - p->x0, 8);
    for (double y = ceil(p->y0 / ys - 1e-9) * ys; y <= p->y1 + ys * 1e-9; y += ys) {
        strbuf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>",
                      LEFT, py(p, y), RIGHT, py(p, y));
        strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", LEFT - 6,
                      py(p, y) + 4);
        tick_label(b, y, ys);
        strbuf_printf(b, "</text>\n");
    }
    for (double x = ceil(p->x0 / xs - 1e-9) * xs; x <= p->x1 + xs * 1e-9; x += xs) {
        strbuf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>",
                      px(p, x), p->top, px(p, x), p->bottom + 4);
        if (labels_x) {
            strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", px(p, x),
                          p->bottom + 18);
            tick_label(b, x, xs);
            strbuf_printf(b, "</text>\n");
        }
    }
    strbuf_printf(b,
                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"frame\"/>\n",
                  LEFT, p->top, RIGHT - LEFT, p->bottom - p->top);
    double mid = (p->top + p->bottom) / 2;
    strbuf_printf(b,
                  "<text x=\"22\" y=\"%.1f\" text-anchor=\"middle\" "
                  "transform=\"rotate(-90 22 %.1f)\">%s</text>\n",
                  mid, mid, p->ylabel);
}

/* One line through the rows' values (NaN values are skipped), optionally with dots. */
static void draw_series(struct strbuf *b, const struct panel *p, const struct trainlog *t,
                        size_t offset, const char *color, double width, int dots, double mul)
{
    int stride = t->n > MAX_POINTS ? (t->n + MAX_POINTS - 1) / MAX_POINTS : 1;
    strbuf_printf(b,
                  "<g clip-path=\"url(#c%d)\"><polyline fill=\"none\" stroke=\"%s\" "
                  "stroke-width=\"%.1f\" points=\"",
                  p->clip, color, width);
    int count = 0;
    for (int i = 0; i < t->n; i++) {
        double v = *(const double *)((const char *)&t->rows[i] + offset);
        if (isnan(v) || (!dots && i % stride && i != t->n - 1))
            continue;
        strbuf_printf(b, "%.1f,%.1f ", px(p, (double)t->rows[i].iter), py(p, v * mul));
        count++;
    }
    strbuf_printf(b, "\"/>");
    for (int i = 0; dots && count <= 200 && i < t->n; i++) {
        double v = *(const double *)((const char *)&t->rows[i] + offset);
        if (!isnan(v))
            strbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>",
                          px(p, (double)t->rows[i].iter), py(p, v * mul), color);
    }
    strbuf_printf(b, "</g>\n");
}

static void legend(struct strbuf *b, const struct panel *p, int slot, const char *color,
                   const char *label)
{
    double x = RIGHT - 300 + 150 * slot, y = p->top - 8;
    strbuf_printf(b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                  "stroke-width=\"3\"/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                  x, y - 4, x + 24, y - 4, color, x + 30, y, label);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Top of the loss axis: the larger of the average's maximum and the loss's 95th percentile. */
static double loss_top(const struct trainlog *t)
{
    double *v = xmalloc(sizeof *v * (size_t)CN_MAX(t->n, 1)), top = 0;
    for (int i = 0; i < t->n; i++) {
        v[i] = t->rows[i].loss;
        top = fmax(top, t->rows[i].avg);
    }
    qsort(v, (size_t)t->n, sizeof *v, cmp_double);
    if (t->n)
        top = fmax(top, v[(int)(0.95 * (t->n - 1))]);
    free(v);
    if (!(top > 0) || !isfinite(top))
        return 1;
    double s = nice_step(top, 5);
    return ceil(top / s - 1e-9) * s;
}

/* The lower end of the accuracy axis, in percent: 0 without measurements. */
static double acc_bottom(const struct trainlog *t, int *measured)
{
    double lo = 100;
    *measured = 0;
    for (int i = 0; i < t->n; i++)
        if (!isnan(t->rows[i].top1)) {
            lo = fmin(lo, 100 * fmin(t->rows[i].top1, t->rows[i].topk));
            ++*measured;
        }
    if (!*measured)
        return 0;
    lo = floor((lo - 2) / 10) * 10;
    return CN_MIN(CN_MAX(lo, 0), 90);
}

static void draw_loss(struct strbuf *b, const struct trainlog *t, double x1)
{
    struct panel p = {70, 300, 0, loss_top(t), 0, x1, "loss", 1};
    draw_axes(b, &p, 0);
    draw_series(b, &p, t, offsetof(struct trainlog_row, loss), "#9ecae1", 1.2, 0, 1);
    draw_series(b, &p, t, offsetof(struct trainlog_row, avg), "#08519c", 2.2, 0, 1);
    legend(b, &p, 0, "#9ecae1", "loss");
    legend(b, &p, 1, "#08519c", "moving average");
    if (!t->n)
        strbuf_printf(b,
                      "<text x=\"%.1f\" y=\"180\" text-anchor=\"middle\">no iterations "
                      "logged yet</text>\n",
                      (LEFT + RIGHT) / 2);
}

static void draw_accuracy(struct strbuf *b, const struct trainlog *t, double x1)
{
    int measured;
    double lo = acc_bottom(t, &measured);
    struct panel p = {345, 540, lo, 100, 0, x1, "validation accuracy (%)", 2};
    draw_axes(b, &p, 1);
    char topk[32];
    snprintf(topk, sizeof topk, "top-%d", t->k);
    draw_series(b, &p, t, offsetof(struct trainlog_row, topk), "#31a354", 2, 1, 100);
    draw_series(b, &p, t, offsetof(struct trainlog_row, top1), "#e6550d", 2, 1, 100);
    legend(b, &p, 0, "#e6550d", "top-1");
    legend(b, &p, 1, "#31a354", topk);
    if (!measured)
        strbuf_printf(b,
                      "<text x=\"%.1f\" y=\"445\" text-anchor=\"middle\">no validation yet "
                      "(valid_every= in [net], or -valid_every N)</text>\n",
                      (LEFT + RIGHT) / 2);
    strbuf_printf(b, "<text x=\"%.1f\" y=\"580\" text-anchor=\"middle\">iteration</text>\n",
                  (LEFT + RIGHT) / 2);
}

char *trainlog_svg(const struct trainlog *t, const char *title)
{
    struct strbuf b = {0};
    strbuf_printf(&b,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "
                  "xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
                  W, H, W, H);
    strbuf_printf(&b,
                  "<style>.grid{stroke:#e0e0e0;stroke-width:1}.frame{fill:none;"
                  "stroke:#444;stroke-width:1}</style>\n<rect width=\"%d\" height=\"%d\" "
                  "fill=\"white\"/>\n<text x=\"%d\" y=\"30\" text-anchor=\"middle\" "
                  "font-size=\"16\">",
                  W, H, W / 2);
    strbuf_xml(&b, title);
    strbuf_printf(&b, "</text>\n");
    double x1 = t->n ? (double)t->rows[t->n - 1].iter : 1;
    x1 = x1 > 0 ? x1 : 1;
    draw_loss(&b, t, x1);
    draw_accuracy(&b, t, x1);
    strbuf_printf(&b, "</svg>\n");
    return strbuf_take(&b);
}

int trainlog_write_svg(const struct trainlog *t, const char *title, const char *path, cn_error *e)
{
    char *s = trainlog_svg(t, title);
    struct fileio_chunk c = {s, strlen(s)};
    int rc = fileio_write_atomic(path, &c, 1, e);
    free(s);
    return rc;
}
