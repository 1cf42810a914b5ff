/* views.c - test-time crops and mirrors of an image. See views.h for the rule.
 *
 * In-memory gray images (views_from_gray) are resized with the same stb_image_resize call as
 * image.c makes (triangle filter, edges clamped, linear colour space), so a file and its pixels
 * give the same views. Each scale decodes the file again (image_load_u8 decodes and resizes in one
 * call); for the few scales a test run uses, that costs less than keeping a full-size decoded copy
 * around.
 *
 * Padded views (pad > 0) are cut by the same cut_all from a (w+2P) x (h+2P) byte image: the
 * default view, zero-padded, so the corner and centre positions of views_origin are the P-pixel
 * shifts and the original image.
 */
#include "data/views.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_resize.h>

#include "data/image.h"

int views_count(const struct view_spec *s)
{
    return s->crops * s->nscales;
}

float views_ratio(const struct view_spec *s, int i, int w, int h)
{
    return s->pixels ? s->scale[i] / (float)CN_MIN(w, h) : s->scale[i];
}

int views_check(const struct view_spec *s, int w, int h, cn_error *e)
{
    if (s->crops != 1 && s->crops != 2 && s->crops != 5 && s->crops != 10)
        return cn_fail(e, "crops %d: must be 1, 2, 5 or 10", s->crops);
    if (s->nscales < 1 || s->nscales > VIEWS_MAX_SCALES)
        return cn_fail(e, "%d scales: must be 1 to %d", s->nscales, VIEWS_MAX_SCALES);
    if (s->letterbox && (s->crops != 1 || s->nscales != 1 || s->pixels || s->scale[0] != 1.0f))
        return cn_fail(e, "letterbox: one view only (no -crops, -scale or -scales)");
    if (s->pad < 0 || s->pad > VIEWS_MAX_PAD(w, h))
        return cn_fail(e,
                       "-pad %d: must be at least 1 and at most %d (half the shorter side of "
                       "the %dx%d net input)",
                       s->pad, VIEWS_MAX_PAD(w, h), w, h);
    if (s->pad && s->letterbox)
        return cn_fail(e, "-pad %d: not with -letterbox", s->pad);
    if (s->pad && (s->nscales != 1 || s->pixels || s->scale[0] != 1.0f))
        return cn_fail(e, "-pad %d: crops of the image at the net input's size: no -scale or "
                          "-scales with it", s->pad);
    for (int i = 0; i < s->nscales; i++) {
        float r = views_ratio(s, i, w, h);
        if (!(r >= 1.0f && r <= VIEWS_MAX_RATIO)) {
            if (s->pixels)
                return cn_fail(e,
                               "scale %g pixels: must be from %d to %d for a %dx%d net input "
                               "(the shorter side, at least the input's, at most %g times it)",
                               (double)s->scale[i], CN_MIN(w, h),
                               (int)(VIEWS_MAX_RATIO * (float)CN_MIN(w, h)), w, h,
                               (double)VIEWS_MAX_RATIO);
            return cn_fail(e, "scale %g: must be from 1 to %g (times the net input)",
                           (double)s->scale[i], (double)VIEWS_MAX_RATIO);
        }
    }
    return 0;
}

void views_resized_size(int *rw, int *rh, int iw, int ih, int w, int h, float s)
{
    double f = fmax((double)s * w / iw, (double)s * h / ih);
    *rw = (int)CN_MAX(lround(iw * f), lround((double)s * w));
    *rh = (int)CN_MAX(lround(ih * f), lround((double)s * h));
    *rw = CN_MAX(*rw, w);
    *rh = CN_MAX(*rh, h);
}

void views_origin(int *x, int *y, int which, int rw, int rh, int w, int h)
{
    CN_ASSERT(which >= 0 && which < 5 && rw >= w && rh >= h);
    *x = which == 0 ? (rw - w) / 2 : (which == 2 || which == 4) ? rw - w : 0;
    *y = which == 0 ? (rh - h) / 2 : which >= 3 ? rh - h : 0;
}

void views_cut(float *dst, const uint8_t *src, int rw, int rh, int c, int x0, int y0, int w, int h,
               int mirror)
{
    CN_ASSERT(x0 >= 0 && y0 >= 0 && x0 + w <= rw && y0 + h <= rh);
    for (int k = 0; k < c; k++) {
        for (int y = 0; y < h; y++) {
            const uint8_t *row = src + ((size_t)k * (size_t)rh + (size_t)(y0 + y)) * (size_t)rw;
            float *out = dst + ((size_t)k * (size_t)h + (size_t)y) * (size_t)w;
            for (int x = 0; x < w; x++)
                out[x] = row[x0 + (mirror ? w - 1 - x : x)] / 255.0f;
        }
    }
}

void views_pad_u8(uint8_t *dst, const uint8_t *src, int w, int h, int c, int pad)
{
    CN_ASSERT(pad >= 0);
    size_t pw = (size_t)w + 2 * (size_t)pad, ph = (size_t)h + 2 * (size_t)pad;
    memset(dst, 0, pw * ph * (size_t)c);
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            memcpy(dst + ((size_t)k * ph + (size_t)(y + pad)) * pw + (size_t)pad,
                   src + ((size_t)k * (size_t)h + (size_t)y) * (size_t)w, (size_t)w);
}

/* dst (w x h x c bytes) = the centre w x h window of px (rw x rh x c bytes), as views_origin 0. */
static void centre_window(uint8_t *dst, const uint8_t *px, int rw, int rh, int w, int h, int c)
{
    int x0, y0;
    views_origin(&x0, &y0, 0, rw, rh, w, h);
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            memcpy(dst + ((size_t)k * (size_t)h + (size_t)y) * (size_t)w,
                   px + ((size_t)k * (size_t)rh + (size_t)(y0 + y)) * (size_t)rw + (size_t)x0,
                   (size_t)w);
}

int views_default_u8(uint8_t *dst, int w, int h, const uint8_t *src, int iw, int ih, int c)
{
    int rw, rh;
    views_resized_size(&rw, &rh, iw, ih, w, h, 1.0f);
    if (rw == w && rh == h) {
        if (iw == w && ih == h) {
            memcpy(dst, src, (size_t)w * (size_t)h * (size_t)c);
            return 0;
        }
        return image_resize_u8(dst, w, h, src, iw, ih, c);
    }
    uint8_t *px = malloc((size_t)rw * (size_t)rh * (size_t)c);
    if (!px || image_resize_u8(px, rw, rh, src, iw, ih, c)) {
        free(px);
        return -1;
    }
    centre_window(dst, px, rw, rh, w, h, c);
    free(px);
    return 0;
}

/* The crops of one resized image: positions 0..4 (as many as crops asks), then the mirrors. */
static void cut_all(float *dst, const uint8_t *px, int rw, int rh, int w, int h, int c, int crops)
{
    size_t per = (size_t)w * (size_t)h * (size_t)c;
    int positions = crops >= 5 ? 5 : 1, mirrored = crops == 2 || crops == 10;
    for (int m = 0; m <= mirrored; m++) {
        for (int which = 0; which < positions; which++) {
            int x, y;
            views_origin(&x, &y, which, rw, rh, w, h);
            views_cut(dst, px, rw, rh, c, x, y, w, h, m);
            dst += per;
        }
    }
}

/* The views of one resized image (rw x rh x c bytes): cut_all from it, or with s->pad from its
 * centre w x h window zero-padded. Returns 0, or -1 without memory. */
static int cut_views(float *dst, const uint8_t *px, int rw, int rh, int w, int h, int c,
                     const struct view_spec *s)
{
    if (!s->pad) {
        cut_all(dst, px, rw, rh, w, h, c, s->crops);
        return 0;
    }
    int pw = w + 2 * s->pad, ph = h + 2 * s->pad;
    uint8_t *win = NULL, *padded = malloc((size_t)pw * (size_t)ph * (size_t)c);
    if (rw != w || rh != h) {
        win = malloc((size_t)w * (size_t)h * (size_t)c);
        if (win)
            centre_window(win, px, rw, rh, w, h, c);
    }
    int bad = !padded || ((rw != w || rh != h) && !win);
    if (!bad) {
        views_pad_u8(padded, win ? win : px, w, h, c, s->pad);
        cut_all(dst, padded, pw, ph, w, h, c, s->crops);
    }
    free(win);
    free(padded);
    return -bad;
}

/* Darknet's letterbox of c planes of iw x ih bytes (v/255 first, as Darknet's load_image). */
static int letterbox_u8(float *dst, const uint8_t *px, int iw, int ih, int w, int h, int c)
{
    size_t n = (size_t)iw * (size_t)ih * (size_t)c;
    float *v = malloc(sizeof *v * n);
    if (!v)
        return -1;
    image_u8_to_float(v, px, n);
    int rc = image_letterbox_darknet(dst, w, h, v, iw, ih, c);
    free(v);
    return rc;
}

static int letterbox_file(float *dst, const char *path, int w, int h, int c, cn_error *e)
{
    uint8_t *px;
    int iw, ih;
    if (image_decode(&px, &iw, &ih, path, c, e))
        return -1;
    int rc = letterbox_u8(dst, px, iw, ih, w, h, c);
    free(px);
    return rc ? cn_fail(e, "%s: out of memory letterboxing %dx%d", path, iw, ih) : 0;
}

int views_load(float *dst, const char *path, int w, int h, int c, const struct view_spec *s,
               cn_error *e)
{
    if (s->letterbox)
        return letterbox_file(dst, path, w, h, c, e);
    int iw, ih;
    if (image_info(path, &iw, &ih, e))
        return -1;
    size_t per = (size_t)w * (size_t)h * (size_t)c;
    for (int i = 0; i < s->nscales; i++) {
        int rw, rh;
        views_resized_size(&rw, &rh, iw, ih, w, h, views_ratio(s, i, w, h));
        if ((size_t)rw * (size_t)rh > IMAGE_MAX_PIXELS)
            return cn_fail(e, "%s: %dx%d resized to %dx%d for its views: more than %zu pixels",
                           path, iw, ih, rw, rh, IMAGE_MAX_PIXELS);
        uint8_t *px = malloc((size_t)rw * (size_t)rh * (size_t)c);
        if (!px)
            return cn_fail(e, "%s: out of memory for a %dx%d resized copy", path, rw, rh);
        int rc = image_load_u8(px, path, rw, rh, c, e);
        if (!rc && cut_views(dst + (size_t)i * (size_t)s->crops * per, px, rw, rh, w, h, c, s))
            rc = cn_fail(e, "%s: out of memory padding its views", path);
        free(px);
        if (rc)
            return -1;
    }
    return 0;
}

/* c planes from one gray plane of n pixels: stb_image's gray -> gray+alpha / RGB / RGBA. */
static void gray_to_planes(uint8_t *dst, const uint8_t *g, size_t n, int c)
{
    for (int k = 0; k < c; k++) {
        int alpha = (c == 2 && k == 1) || (c == 4 && k == 3);
        for (size_t i = 0; i < n; i++)
            dst[(size_t)k * n + i] = alpha ? 255 : g[i];
    }
}

int views_from_gray(float *dst, const uint8_t *px, int iw, int ih, int w, int h, int c,
                    const struct view_spec *s, const char *where, cn_error *e)
{
    if (s->letterbox) {
        size_t n = (size_t)iw * (size_t)ih;
        uint8_t *planes = malloc(n * (size_t)c);
        int bad = !planes;
        if (!bad) {
            gray_to_planes(planes, px, n, c);
            bad = letterbox_u8(dst, planes, iw, ih, w, h, c);
        }
        free(planes);
        return bad ? cn_fail(e, "%s: out of memory letterboxing %dx%d", where, iw, ih) : 0;
    }
    size_t per = (size_t)w * (size_t)h * (size_t)c;
    for (int i = 0; i < s->nscales; i++) {
        int rw, rh;
        views_resized_size(&rw, &rh, iw, ih, w, h, views_ratio(s, i, w, h));
        size_t n = (size_t)rw * (size_t)rh;
        uint8_t *g = malloc(n), *planes = malloc(n * (size_t)c);
        int bad = !g || !planes;
        if (!bad && (rw != iw || rh != ih))
            bad = !stbir_resize_uint8_generic(px, iw, ih, 0, g, rw, rh, 0, 1,
                                              STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
                                              STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, NULL);
        else if (!bad)
            memcpy(g, px, n);
        if (!bad) {
            gray_to_planes(planes, g, n, c);
            bad = cut_views(dst + (size_t)i * (size_t)s->crops * per, planes, rw, rh, w, h, c, s);
        }
        free(g);
        free(planes);
        if (bad)
            return cn_fail(e, "%s: out of memory resizing %dx%d to %dx%d", where, iw, ih, rw, rh);
    }
    return 0;
}
