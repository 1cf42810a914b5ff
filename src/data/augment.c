/* augment.c - [net] input keys and the per-sample augmentation pipeline. See augment.h for the
 * order of the steps and their semantics.
 *
 * The geometric warp maps each output pixel centre (x + 1/2, y + 1/2) back into the source:
 * u = x + 1/2 - w/2 + ox, v = y + 1/2 - h/2 + oy (ox, oy: the window offset), rotated by the
 * angle, divided by the scales, plus the source centre, minus 1/2. With scale 1, no offset and
 * no rotation this lands exactly on source pixel (x, y), so identity settings copy bytes.
 */
#include "data/augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "data/views.h"

const char *const sampling_names[SAMPLING_COUNT] = {
    [SAMPLING_EPOCH] = "epoch", [SAMPLING_RANDOM] = "random", [SAMPLING_BALANCED] = "balanced"};

void aug_config_default(struct aug_config *a)
{
    memset(a, 0, sizeof *a);
    a->aspect = a->saturation = a->exposure = 1.f;
    a->mix_alpha = 1.f;
    for (int k = 0; k < AUG_MAX_C; k++)
        a->std[k] = 1.f;
}

static int parse_geometry(struct aug_config *a, struct cfg_section *s, int w, int h, cn_error *e)
{
    a->crop = cfg_find(s, "min_crop") || cfg_find(s, "max_crop");
    if (cfg_get_int(s, "min_crop", w, 1, 1 << 16, &a->min_crop, e) ||
        cfg_get_int(s, "max_crop", 2 * w, 1, 1 << 16, &a->max_crop, e) ||
        cfg_get_float(s, "aspect", 1.f, 1e-2f, 1e2f, &a->aspect, e) ||
        cfg_get_float(s, "angle", 0.f, 0.f, 180.f, &a->angle, e) ||
        cfg_get_float(s, "translate", 0.f, 0.f, 1.f, &a->translate, e) ||
        cfg_get_int(s, "pad_crop", 0, 0, VIEWS_MAX_PAD(w, h), &a->pad_crop, e) ||
        cfg_get_bool(s, "flip", 0, &a->flip, e))
        return -1;
    if (a->min_crop > a->max_crop)
        return cfg_fail_kv(s, cfg_find(s, cfg_find(s, "max_crop") ? "max_crop" : "min_crop"), e,
                           "min_crop=%d (default: width) is larger than max_crop=%d", a->min_crop,
                           a->max_crop);
    return 0;
}

/* A list key with exactly want values (or 1 value for all channels when one_ok); *n gets the
 * count read (0 when absent). */
static int parse_channels(struct cfg_section *s, const char *key, float lo, float hi, int want,
                          int one_ok, float *out, int *n, cn_error *e)
{
    float *v;
    int cnt;
    *n = 0;
    if (cfg_get_float_list(s, key, lo, hi, &v, &cnt, e))
        return -1;
    if (!v)
        return 0;
    int ok = cnt == want || (one_ok && cnt == 1);
    if (!ok || want > AUG_MAX_C) {
        free(v);
        if (want > AUG_MAX_C)
            return cfg_fail_kv(s, cfg_find(s, key), e, "images have at most %d channels, not %d",
                               AUG_MAX_C, want);
        return cfg_fail_kv(s, cfg_find(s, key), e, "has %d value%s but channels=%d%s", cnt,
                           cnt == 1 ? "" : "s", want, one_ok ? " (give 1 or channels values)" : "");
    }
    for (int k = 0; k < want; k++)
        out[k] = v[cnt == 1 ? 0 : k];
    *n = want;
    free(v);
    return 0;
}

static int parse_colour(struct aug_config *a, struct cfg_section *s, int c, cn_error *e)
{
    int nshift, nstd;
    if (cfg_get_float(s, "hue", 0.f, 0.f, 1.f, &a->hue, e) ||
        cfg_get_float(s, "saturation", 1.f, 1e-2f, 1e2f, &a->saturation, e) ||
        cfg_get_float(s, "exposure", 1.f, 1e-2f, 1e2f, &a->exposure, e) ||
        parse_channels(s, "channel_shift", 0.f, 255.f, c, 1, a->shift, &nshift, e) ||
        parse_channels(s, "mean", -1e3f, 1e3f, c, 0, a->mean, &a->nmean, e) ||
        parse_channels(s, "std", 1e-6f, 1e6f, c, 0, a->std, &nstd, e))
        return -1;
    if (nstd && !a->nmean)
        a->nmean = nstd; /* std= alone: mean 0 */
    return 0;
}

static int parse_mix(struct aug_config *a, struct cfg_section *s, cn_error *e)
{
    return -(cfg_get_bool(s, "mixup", 0, &a->mixup, e) ||
           cfg_get_bool(s, "cutmix", 0, &a->cutmix, e) ||
           cfg_get_float(s, "mix_alpha", 1.f, 1e-2f, 1e2f, &a->mix_alpha, e) ||
           cfg_get_float(s, "label_smooth_eps", 0.f, 0.f, .999f, &a->label_smooth, e));
}

int input_config_parse(struct input_config *ic, struct cfg_section *s, int w, int h, int c,
                       cn_error *e)
{
    memset(ic, 0, sizeof *ic);
    aug_config_default(&ic->aug);
    int sampling;
    if (cfg_get_int(s, "workers", 2, 0, 64, &ic->workers, e) ||
        cfg_get_choice(s, "sampling", sampling_names, SAMPLING_COUNT, SAMPLING_EPOCH, &sampling,
                       e))
        return -1;
    ic->sampling = (enum sampling)sampling;
    if (parse_geometry(&ic->aug, s, w, h, e) || parse_colour(&ic->aug, s, c, e) ||
        parse_mix(&ic->aug, s, e))
        return -1;
    return 0;
}

int aug_has_geometry(const struct aug_config *a)
{
    return a->crop || a->angle > 0.f || a->translate > 0.f || a->pad_crop > 0;
}

int aug_has_warp(const struct aug_config *a)
{
    return a->crop || a->angle > 0.f || a->translate > 0.f;
}

static int has_colour(const struct aug_config *a)
{
    return a->hue > 0.f || a->saturation != 1.f || a->exposure != 1.f;
}

static int has_shift(const struct aug_config *a)
{
    for (int k = 0; k < AUG_MAX_C; k++)
        if (a->shift[k] > 0.f)
            return 1;
    return 0;
}

int aug_is_random(const struct aug_config *a)
{
    return aug_has_geometry(a) || a->flip || has_colour(a) || has_shift(a) || a->mixup ||
           a->cutmix;
}

static double uniform(cn_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * cn_rng_uniform(r);
}

/* Darknet's rand_scale: a factor between 1 and s, inverted half of the time. */
static double rand_scale(cn_rng *r, double s)
{
    double f = uniform(r, 1.0, s);
    return cn_rng_next(r) & 1 ? f : 1.0 / f;
}

static int grow(uint8_t **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    uint8_t *q = realloc(*p, n);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* ---- the warp: reference and fast kernels ---- */

/* Where output pixel reads the source: the top-left neighbour and the bilinear fractions, with
 * coordinates clamped to the image (edges extended, Darknet's get_pixel_extend). */
struct tap {
    size_t i00, i01, i10, i11;
    float fx, fy;
};

static void tap_at(struct tap *t, int w, int h, double x, double y)
{
    x = x < 0 ? 0 : x > w - 1 ? w - 1 : x;
    y = y < 0 ? 0 : y > h - 1 ? h - 1 : y;
    int x0 = (int)x, y0 = (int)y;
    int x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
    t->fx = (float)(x - x0);
    t->fy = (float)(y - y0);
    t->i00 = (size_t)y0 * (size_t)w + (size_t)x0;
    t->i01 = (size_t)y0 * (size_t)w + (size_t)x1;
    t->i10 = (size_t)y1 * (size_t)w + (size_t)x0;
    t->i11 = (size_t)y1 * (size_t)w + (size_t)x1;
}

static float tap_read(const struct tap *t, const uint8_t *p)
{
    float top = p[t->i00] + t->fx * (p[t->i01] - p[t->i00]);
    float bot = p[t->i10] + t->fx * (p[t->i11] - p[t->i10]);
    return top + t->fy * (bot - top);
}

void aug_warp_ref(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int c,
                  const struct aug_warp *wp)
{
    size_t plane = (size_t)w * (size_t)h, iplane = (size_t)iw * (size_t)ih;
    for (int y = 0; y < h; y++) {
        double v = y + .5 - h / 2.0 + wp->oy;
        for (int x = 0; x < w; x++) {
            double u = x + .5 - w / 2.0 + wp->ox;
            double px = (wp->cs * u - wp->sn * v) / wp->sx + iw / 2.0 - .5;
            double py = (wp->sn * u + wp->cs * v) / wp->sy + ih / 2.0 - .5;
            struct tap t;
            tap_at(&t, iw, ih, px, py);
            size_t o = (size_t)y * (size_t)w + (size_t)x;
            for (int k = 0; k < c; k++)
                dst[(size_t)k * plane + o] = tap_read(&t, src + (size_t)k * iplane) / 255.0f;
        }
    }
}

/* One axis of an unrotated warp: output i reads source i0[i] and i1[i] with weight f[i] on the
 * second, computed in double exactly as tap_at does (so the fast path matches bit for bit). */
static void axis_taps(int *i0, int *i1, float *f, int n, int nin, double scale, double off)
{
    for (int i = 0; i < n; i++) {
        double p = (i + .5 - n / 2.0 + off) / scale + nin / 2.0 - .5;
        p = p < 0 ? 0 : p > nin - 1 ? nin - 1 : p;
        int a = (int)p;
        i0[i] = a;
        i1[i] = a + 1 < nin ? a + 1 : a;
        f[i] = (float)(p - a);
    }
}

/* Source row r of a plane interpolated at the output columns (the horizontal half). */
static void row_lerp(float *out, const uint8_t *row, const int *x0, const int *x1, const float *fx,
                     int w)
{
    for (int x = 0; x < w; x++)
        out[x] = row[x0[x]] + fx[x] * (row[x1[x]] - row[x0[x]]);
}

/* No rotation: the warp is separable, a bilinear resize of the window. Per plane and output row,
 * the two source rows are interpolated horizontally once (kept while the next output row reads
 * the same ones), then blended vertically in a loop the compiler vectorises. Scratch: 4 w + 3 h
 * ints/floats, carved from buf. */
static void warp_separable(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int c,
                           const struct aug_warp *wp, float *buf)
{
    float *fx = buf, *top = buf + w, *bot = buf + 2 * (size_t)w, *fy = buf + 3 * (size_t)w;
    int *x0 = (int *)(fy + h), *x1 = x0 + w, *y0 = x1 + w, *y1 = y0 + h;
    axis_taps(x0, x1, fx, w, iw, wp->sx, wp->ox);
    axis_taps(y0, y1, fy, h, ih, wp->sy, wp->oy);
    for (int k = 0; k < c; k++) {
        const uint8_t *p = src + (size_t)k * (size_t)iw * (size_t)ih;
        float *d = dst + (size_t)k * (size_t)w * (size_t)h;
        int have_top = -1, have_bot = -1;
        for (int y = 0; y < h; y++, d += w) {
            if (y0[y] == have_bot && y0[y] != have_top) { /* moving down: reuse the old bottom */
                float *t = top;
                top = bot;
                bot = t;
                have_top = have_bot;
                have_bot = -1;
            }
            if (have_top != y0[y])
                row_lerp(top, p + (size_t)y0[y] * (size_t)iw, x0, x1, fx, w);
            if (have_bot != y1[y])
                row_lerp(bot, p + (size_t)y1[y] * (size_t)iw, x0, x1, fx, w);
            have_top = y0[y];
            have_bot = y1[y];
            float f = fy[y];
            for (int x = 0; x < w; x++)
                d[x] = (top[x] + f * (bot[x] - top[x])) / 255.0f;
        }
    }
}

/* With rotation: along output row y the source point moves by a constant step, so each row is
 * its start plus x times the step (no per-pixel trigonometry or division). The row's taps are
 * computed once in plain arrays (a vectorisable loop), then each plane gathers through them. */
static void warp_rotated(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int c,
                         const struct aug_warp *wp, float *buf)
{
    float *fx = buf, *fy = buf + w;
    int *i00 = (int *)(fy + w), *dx1 = i00 + w, *dy1 = dx1 + w;
    double u0 = .5 - w / 2.0 + wp->ox;
    float stepx = (float)(wp->cs / wp->sx), stepy = (float)(wp->sn / wp->sy);
    float xmax = (float)(iw - 1), ymax = (float)(ih - 1);
    size_t plane = (size_t)w * (size_t)h, iplane = (size_t)iw * (size_t)ih;
    for (int y = 0; y < h; y++) {
        double v = y + .5 - h / 2.0 + wp->oy;
        float px0 = (float)((wp->cs * u0 - wp->sn * v) / wp->sx + iw / 2.0 - .5);
        float py0 = (float)((wp->sn * u0 + wp->cs * v) / wp->sy + ih / 2.0 - .5);
        for (int x = 0; x < w; x++) {
            float px = px0 + (float)x * stepx, py = py0 + (float)x * stepy;
            px = px < 0 ? 0 : px > xmax ? xmax : px;
            py = py < 0 ? 0 : py > ymax ? ymax : py;
            int a = (int)px, b = (int)py;
            fx[x] = px - (float)a;
            fy[x] = py - (float)b;
            i00[x] = b * iw + a;
            dx1[x] = a < iw - 1;
            dy1[x] = b < ih - 1 ? iw : 0;
        }
        for (int k = 0; k < c; k++) {
            const uint8_t *p = src + (size_t)k * iplane;
            float *d = dst + (size_t)k * plane + (size_t)y * (size_t)w;
            for (int x = 0; x < w; x++) {
                const uint8_t *q = p + i00[x];
                float t = q[0] + fx[x] * (q[dx1[x]] - q[0]);
                float s = q[dy1[x]] + fx[x] * (q[dy1[x] + dx1[x]] - q[dy1[x]]);
                d[x] = (t + fy[x] * (s - t)) / 255.0f;
            }
        }
    }
}

size_t aug_warp_scratch(int w, int h)
{
    return sizeof(float) * (5 * (size_t)w + 3 * (size_t)h);
}

void aug_warp(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int c,
              const struct aug_warp *wp, void *scratch)
{
    if (wp->sn == 0 && wp->cs == 1)
        warp_separable(dst, w, h, src, iw, ih, c, wp, scratch);
    else
        warp_rotated(dst, w, h, src, iw, ih, c, wp, scratch);
}

static void warp_draw(struct aug_warp *wp, int w, int h, int iw, int ih,
                      const struct aug_config *a, cn_rng *r)
{
    wp->sx = wp->sy = fmax((double)w / iw, (double)h / ih); /* cover w x h, aspect kept */
    wp->ox = wp->oy = 0;
    if (a->crop) {
        double asp = rand_scale(r, a->aspect);
        int px = a->min_crop + (int)cn_rng_below(r, (uint64_t)(a->max_crop - a->min_crop) + 1);
        double k = px / fmin((double)ih, iw * asp);
        wp->sy = k;
        wp->sx = k / asp;
        double dx = (iw * wp->sx - w) / 2, dy = (ih * wp->sy - h) / 2;
        wp->ox = uniform(r, -dx, dx);
        wp->oy = uniform(r, -dy, dy);
    }
    double rad = a->angle > 0.f ? uniform(r, -a->angle, a->angle) * M_PI / 180.0 : 0.0;
    wp->cs = cos(rad);
    wp->sn = sin(rad);
    if (a->translate > 0.f) {
        wp->ox += uniform(r, -a->translate, a->translate) * w;
        wp->oy += uniform(r, -a->translate, a->translate) * h;
    }
}

/* The default view (views_default_u8) as floats v/255. */
static int default_view(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int c,
                        uint8_t **scratch, size_t *cap)
{
    size_t n = (size_t)w * (size_t)h * (size_t)c;
    const uint8_t *px = src;
    if (iw != w || ih != h) {
        if (grow(scratch, cap, n) || views_default_u8(*scratch, w, h, src, iw, ih, c))
            return -1;
        px = *scratch;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = px[i] / 255.0f;
    return 0;
}

/* One row of aug_pad_crop: d (w floats) = s shifted left by dx (s[x + dx]), zeros outside; s
 * may be d itself. */
static void shift_row(float *d, const float *s, int w, int dx)
{
    int n = w - abs(dx);
    memmove(d + (dx < 0 ? -dx : 0), s + (dx > 0 ? dx : 0), sizeof *d * (size_t)n);
    memset(d + (dx > 0 ? n : 0), 0, sizeof *d * (size_t)abs(dx));
}

void aug_pad_crop(float *x, int w, int h, int c, int pad, int ox, int oy)
{
    CN_ASSERT(pad >= 0 && 2 * pad <= CN_MIN(w, h) && ox >= 0 && oy >= 0 && ox <= 2 * pad &&
              oy <= 2 * pad);
    int dx = ox - pad, dy = oy - pad;
    for (int k = 0; k < c; k++) {
        float *p = x + (size_t)k * (size_t)w * (size_t)h;
        /* row y reads row y + dy: walk away from the rows still to be read */
        for (int i = 0; i < h; i++) {
            int y = dy > 0 ? i : h - 1 - i, sy = y + dy;
            float *d = p + (size_t)y * (size_t)w;
            if (sy < 0 || sy >= h)
                memset(d, 0, sizeof *d * (size_t)w);
            else
                shift_row(d, p + (size_t)sy * (size_t)w, w, dx);
        }
    }
}

/* The size the warp's source is first shrunk to when the warp would minify (scale sx, sy < 1 on
 * either axis): iw x ih scaled by min(scale, 1), rounded; returns 0 when no shrink is needed. */
static int shrink_size(int *pw, int *ph, int iw, int ih, double sx, double sy)
{
    *pw = iw;
    *ph = ih;
    if (sx >= 1 && sy >= 1)
        return 0;
    *pw = CN_MAX((int)lround(iw * fmin(sx, 1.0)), 1);
    *ph = CN_MAX((int)lround(ih * fmin(sy, 1.0)), 1);
    return 1;
}

/* Step 1's warp (aug_has_warp) of an iw x ih image, with the fast kernel or (ref) the reference.
 * src is the image itself (pw = ph = 0), or its pre-shrunk source from aug_warp_source (pw x ph,
 * only without crop, where the scale is not drawn). */
static int warp_view(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int pw, int ph,
                     int c, const struct aug_config *a, cn_rng *r, uint8_t **scratch, size_t *cap,
                     int ref)
{
    struct aug_warp wp;
    warp_draw(&wp, w, h, iw, ih, a, r);
    int given = pw > 0, shrink = given ? 0 : shrink_size(&pw, &ph, iw, ih, wp.sx, wp.sy);
    size_t shrunk = shrink ? ((size_t)pw * (size_t)ph * (size_t)c + 63) & ~(size_t)63 : 0;
    if (grow(scratch, cap, shrunk + aug_warp_scratch(w, h) + 64))
        return -1;
    uint8_t *taps = *scratch + shrunk;
    taps += (64 - (uintptr_t)taps % 64) % 64; /* float and int arrays: aligned */
    if (shrink && image_resize_u8(*scratch, pw, ph, src, iw, ih, c))
        return -1;
    if (shrink || (given && (pw != iw || ph != ih))) {
        wp.sx *= (double)iw / pw;
        wp.sy *= (double)ih / ph;
    }
    if (shrink)
        src = *scratch;
    if (ref)
        aug_warp_ref(dst, w, h, src, pw, ph, c, &wp);
    else
        aug_warp(dst, w, h, src, pw, ph, c, &wp, taps);
    return 0;
}

void aug_pad_crop_random(float *x, int w, int h, int c, const struct aug_config *a, cn_rng *r)
{
    if (!a->pad_crop)
        return;
    int ox = (int)cn_rng_below(r, 2 * (uint64_t)a->pad_crop + 1);
    int oy = (int)cn_rng_below(r, 2 * (uint64_t)a->pad_crop + 1);
    aug_pad_crop(x, w, h, c, a->pad_crop, ox, oy);
}

/* aug_geometry with the fast warp, or (ref) with the reference warp; pw, ph as warp_view. */
static int geometry(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int pw, int ph,
                    int c, const struct aug_config *a, cn_rng *r, uint8_t **scratch, size_t *cap,
                    int ref)
{
    int rc = aug_has_warp(a) ? warp_view(dst, w, h, src, iw, ih, pw, ph, c, a, r, scratch, cap, ref)
                             : default_view(dst, w, h, src, iw, ih, c, scratch, cap);
    if (!rc)
        aug_pad_crop_random(dst, w, h, c, a, r);
    return rc;
}

int aug_warp_source(uint8_t **out, int *pw, int *ph, const uint8_t *src, int iw, int ih, int w,
                    int h, int c, const struct aug_config *a)
{
    CN_ASSERT(!a->crop);
    *out = NULL;
    double s = fmax((double)w / iw, (double)h / ih); /* warp_draw's scale without crop */
    if (!shrink_size(pw, ph, iw, ih, s, s))
        return 0;
    *out = malloc((size_t)*pw * (size_t)*ph * (size_t)c);
    if (!*out || image_resize_u8(*out, *pw, *ph, src, iw, ih, c)) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int aug_geometry_from(float *dst, int w, int h, const uint8_t *src, int pw, int ph, int iw, int ih,
                      int c, const struct aug_config *a, cn_rng *r, uint8_t **scratch, size_t *cap)
{
    CN_ASSERT(aug_has_warp(a) && !a->crop && pw >= 1 && ph >= 1);
    return geometry(dst, w, h, src, iw, ih, pw, ph, c, a, r, scratch, cap, 0);
}

int aug_geometry(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int c,
                 const struct aug_config *a, cn_rng *r, uint8_t **scratch, size_t *cap)
{
    return geometry(dst, w, h, src, iw, ih, 0, 0, c, a, r, scratch, cap, 0);
}

int aug_geometry_ref(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int c,
                     const struct aug_config *a, cn_rng *r)
{
    uint8_t *scratch = NULL;
    size_t cap = 0;
    int rc = geometry(dst, w, h, src, iw, ih, 0, 0, c, a, r, &scratch, &cap, 1);
    free(scratch);
    return rc;
}

static void flip_rows(float *x, int w, int h, int c)
{
    for (size_t row = 0; row < (size_t)h * (size_t)c; row++) {
        float *p = x + row * (size_t)w;
        for (int i = 0, j = w - 1; i < j; i++, j--) {
            float t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
    }
}

void aug_rgb_to_hsv(float rgb[3], float hsv[3])
{
    float r = rgb[0], g = rgb[1], b = rgb[2];
    float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn, h = 0;
    if (mx > 0 && d > 0) {
        if (r == mx)
            h = (g - b) / d;
        else if (g == mx)
            h = 2 + (b - r) / d;
        else
            h = 4 + (r - g) / d;
        if (h < 0)
            h += 6;
        h /= 6;
    }
    hsv[0] = h;
    hsv[1] = mx > 0 ? d / mx : 0;
    hsv[2] = mx;
}

void aug_hsv_to_rgb(float hsv[3], float rgb[3])
{
    float h = 6 * hsv[0], s = hsv[1], v = hsv[2];
    if (s == 0) {
        rgb[0] = rgb[1] = rgb[2] = v;
        return;
    }
    int i = (int)floorf(h);
    float f = h - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    float r, g, b;
    switch (i < 0 ? 0 : i) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
    }
    rgb[0] = r;
    rgb[1] = g;
    rgb[2] = b;
}

static float clamp01(float v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

void aug_distort_ref(float *x, size_t plane, int c, float dhue, float dsat, float dexp)
{
    if (c < 3) {
        for (size_t i = 0; i < plane * (size_t)c; i++)
            x[i] = clamp01(x[i] * dexp);
        return;
    }
    for (size_t i = 0; i < plane; i++) {
        float rgb[3] = {x[i], x[plane + i], x[2 * plane + i]}, hsv[3];
        aug_rgb_to_hsv(rgb, hsv);
        hsv[1] *= dsat;
        hsv[2] *= dexp;
        hsv[0] += dhue;
        hsv[0] = hsv[0] > 1 ? hsv[0] - 1 : hsv[0] < 0 ? hsv[0] + 1 : hsv[0];
        aug_hsv_to_rgb(hsv, rgb);
        for (int k = 0; k < 3; k++)
            x[(size_t)k * plane + i] = clamp01(rgb[k]);
    }
}

/* Saturation and exposure without a hue shift, in closed form: with v = max(r, g, b) and
 * d = v - min, a channel is x = v (1 - s m) for s = d / v and m = (v - x) / d, so scaling s by
 * dsat and v by dexp gives x' = dexp (v - dsat (v - x)): no hue, no division, no branch. */
static void distort_sv(float *r, float *g, float *b, size_t n, float dsat, float dexp)
{
    for (size_t i = 0; i < n; i++) {
        float v = r[i] > g[i] ? r[i] : g[i];
        v = v > b[i] ? v : b[i];
        float base = dexp * v, k = dexp * dsat;
        r[i] = clamp01(base - k * (v - r[i]));
        g[i] = clamp01(base - k * (v - g[i]));
        b[i] = clamp01(base - k * (v - b[i]));
    }
}

/* The amount 0..1 by which channel n (R 5, G 3, B 1) sits below the value at hue h6 in [0, 6):
 * the branch-free form of hsv_to_rgb's six sectors, m = clamp(min(k, 4 - k), 0, 1) with
 * k = (n + h6) mod 6 (the channel is v - v s m). */
static float hue_dip(float n, float h6)
{
    float k = n + h6;
    k -= k >= 6 ? 6 : 0;
    float m = k < 4 - k ? k : 4 - k;
    return m < 0 ? 0 : m > 1 ? 1 : m;
}

/* The full HSV jitter in one pass: hue from the max channel with selects instead of branches,
 * shifted and wrapped in sixths, then x' = dexp (v - dsat d m) for each channel's dip m. */
static void distort_hsv(float *r, float *g, float *b, size_t n, float dhue, float dsat,
                        float dexp)
{
    float shift = 6 * dhue, k = dexp * dsat;
    for (size_t i = 0; i < n; i++) {
        float R = r[i], G = g[i], B = b[i];
        float v = R > G ? R : G, mn = R < G ? R : G;
        v = v > B ? v : B;
        mn = mn < B ? mn : B;
        float d = v - mn, inv = 1 / (d > 0 ? d : 1);
        float hr = (G - B) * inv, hg = 2 + (B - R) * inv, hb = 4 + (R - G) * inv;
        float h = R == v ? hr : G == v ? hg : hb; /* all three computed: selects, no branch */
        h = d > 0 ? h : 0;
        h += h < 0 ? 6 : 0;
        h += shift;
        h += h < 0 ? 6 : 0;
        h -= h >= 6 ? 6 : 0;
        float base = dexp * v, kd = k * d;
        r[i] = clamp01(base - kd * hue_dip(5, h));
        g[i] = clamp01(base - kd * hue_dip(3, h));
        b[i] = clamp01(base - kd * hue_dip(1, h));
    }
}

void aug_distort(float *x, size_t plane, int c, float dhue, float dsat, float dexp)
{
    if (c < 3) {
        if (dexp != 1)
            for (size_t i = 0; i < plane * (size_t)c; i++)
                x[i] = clamp01(x[i] * dexp);
        return;
    }
    float *r = x, *g = x + plane, *b = x + 2 * plane;
    if (dhue != 0)
        distort_hsv(r, g, b, plane, dhue, dsat, dexp);
    else if (dsat != 1 || dexp != 1)
        distort_sv(r, g, b, plane, dsat, dexp);
}

void aug_photometric(float *x, int w, int h, int c, const struct aug_config *a, cn_rng *r)
{
    size_t plane = (size_t)w * (size_t)h;
    if (a->flip && (cn_rng_next(r) & 1))
        flip_rows(x, w, h, c);
    if (has_colour(a)) {
        float dhue = (float)uniform(r, -a->hue, a->hue);
        float dsat = (float)rand_scale(r, a->saturation), dexp = (float)rand_scale(r, a->exposure);
        aug_distort(x, plane, c, dhue, dsat, dexp);
    }
    for (int k = 0; k < c && k < AUG_MAX_C; k++) {
        if (a->shift[k] <= 0.f)
            continue;
        float d = (float)uniform(r, -a->shift[k], a->shift[k]) / 255.0f;
        float *p = x + (size_t)k * plane;
        for (size_t i = 0; i < plane; i++)
            p[i] = clamp01(p[i] + d);
    }
}

/* Gamma(alpha, 1) by Marsaglia and Tsang (2000); alpha < 1 through Gamma(alpha + 1) U^(1/alpha). */
static double gamma_draw(cn_rng *r, double alpha)
{
    double boost = 1;
    if (alpha < 1) {
        boost = pow(1.0 - cn_rng_uniform(r), 1.0 / alpha);
        alpha += 1;
    }
    double d = alpha - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double z = cn_rng_normal(r), v = 1 + c * z;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = 1.0 - cn_rng_uniform(r);
        if (log(u) < .5 * z * z + d - d * v + d * log(v))
            return boost * d * v;
    }
}

int aug_mix_draw(const struct aug_config *a, cn_rng *r, float *lambda, int *cut)
{
    if (!a->mixup && !a->cutmix)
        return 0;
    *cut = a->mixup && a->cutmix ? (int)(cn_rng_next(r) & 1) : a->cutmix;
    double g1 = gamma_draw(r, a->mix_alpha), g2 = gamma_draw(r, a->mix_alpha);
    *lambda = g1 + g2 > 0 ? (float)(g1 / (g1 + g2)) : .5f;
    return 1;
}

float aug_mix_apply(float *x1, const float *x2, int w, int h, int c, float lambda, int cut,
                    cn_rng *r)
{
    size_t plane = (size_t)w * (size_t)h;
    if (!cut) {
        for (size_t i = 0; i < plane * (size_t)c; i++)
            x1[i] = lambda * x1[i] + (1 - lambda) * x2[i];
        return lambda;
    }
    double side = sqrt(1.0 - lambda);
    int bw = (int)(w * side), bh = (int)(h * side);
    int cx = (int)cn_rng_below(r, (uint64_t)w), cy = (int)cn_rng_below(r, (uint64_t)h);
    int x0 = CN_MAX(cx - bw / 2, 0), x1e = CN_MIN(cx + (bw + 1) / 2, w);
    int y0 = CN_MAX(cy - bh / 2, 0), y1e = CN_MIN(cy + (bh + 1) / 2, h);
    for (int k = 0; k < c; k++)
        for (int y = y0; y < y1e; y++)
            for (int x = x0; x < x1e; x++) {
                size_t i = (size_t)k * plane + (size_t)y * (size_t)w + (size_t)x;
                x1[i] = x2[i];
            }
    size_t area = (size_t)CN_MAX(x1e - x0, 0) * (size_t)CN_MAX(y1e - y0, 0);
    return 1.0f - (float)area / (float)plane;
}

void aug_normalize(float *x, size_t n, int w, int h, int c, const struct aug_config *a)
{
    if (!a->nmean)
        return;
    size_t plane = (size_t)w * (size_t)h;
    for (size_t b = 0; b < n; b++)
        for (int k = 0; k < c && k < AUG_MAX_C; k++) {
            float *p = x + (b * (size_t)c + (size_t)k) * plane, m = a->mean[k];
            float inv = 1.0f / a->std[k];
            for (size_t i = 0; i < plane; i++)
                p[i] = (p[i] - m) * inv;
        }
}
