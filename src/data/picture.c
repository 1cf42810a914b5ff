/* picture.c - RGB pictures for class activation maps and filter / feature-map grids
 * (picture.h). The jet map is the usual piecewise-linear one (MATLAB's): each channel is a
 * trapezoid, r = clamp(1.5 - |4v - 3|), g = clamp(1.5 - |4v - 2|), b = clamp(1.5 - |4v - 1|). */
#include "data/picture.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#include "core/fileio.h"

int picture_create(struct picture *p, int w, int h, uint8_t fill, cn_error *e)
{
    p->rgb = NULL;
    p->w = p->h = 0;
    if (w < 1 || h < 1 || w > PICTURE_MAX_SIDE || h > PICTURE_MAX_SIDE)
        return cn_fail(e, "a %dx%d picture: each side must be 1 to %d pixels", w, h,
                       PICTURE_MAX_SIDE);
    size_t n = (size_t)w * (size_t)h * 3; /* at most 3 * 2^30: no overflow in size_t */
    p->rgb = xmalloc(n);
    memset(p->rgb, fill, n);
    p->w = w;
    p->h = h;
    return 0;
}

void picture_free(struct picture *p)
{
    free(p->rgb);
    p->rgb = NULL;
}

void picture_normalise(float *v, size_t n)
{
    if (!n)
        return;
    float lo = v[0], hi = v[0];
    for (size_t i = 1; i < n; i++) {
        lo = fminf(lo, v[i]);
        hi = fmaxf(hi, v[i]);
    }
    float scale = hi > lo ? 1.f / (hi - lo) : 0.f;
    for (size_t i = 0; i < n; i++)
        v[i] = (v[i] - lo) * scale;
}

static uint8_t to_byte(float v)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return (uint8_t)lrintf(v * 255.f);
}

void picture_jet(float v, uint8_t rgb[3])
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    rgb[0] = to_byte(1.5f - fabsf(4.f * v - 3.f));
    rgb[1] = to_byte(1.5f - fabsf(4.f * v - 2.f));
    rgb[2] = to_byte(1.5f - fabsf(4.f * v - 1.f));
}

/* Sample position in a source of n cells for destination cell i of m: index i0, next i1, weight
 * t of i1. */
static void sample_at(int i, int m, int n, int *i0, int *i1, float *t)
{
    float x = ((float)i + .5f) * (float)n / (float)m - .5f;
    if (x < 0)
        x = 0;
    if (x > (float)(n - 1))
        x = (float)(n - 1);
    *i0 = (int)x;
    *i1 = *i0 + 1 < n ? *i0 + 1 : *i0;
    *t = x - (float)*i0;
}

void picture_resize_map(float *dst, int dw, int dh, const float *src, int sw, int sh)
{
    for (int y = 0; y < dh; y++) {
        int y0, y1;
        float ty;
        sample_at(y, dh, sh, &y0, &y1, &ty);
        for (int x = 0; x < dw; x++) {
            int x0, x1;
            float tx;
            sample_at(x, dw, sw, &x0, &x1, &tx);
            float top = src[y0 * sw + x0] * (1 - tx) + src[y0 * sw + x1] * tx;
            float bot = src[y1 * sw + x0] * (1 - tx) + src[y1 * sw + x1] * tx;
            dst[(size_t)y * (size_t)dw + (size_t)x] = top * (1 - ty) + bot * ty;
        }
    }
}

void picture_put_tile(struct picture *p, int x0, int y0, const float *planes, int w, int h, int c,
                      int zoom)
{
    size_t plane = (size_t)w * (size_t)h;
    for (int y = 0; y < h * zoom; y++) {
        int py = y0 + y;
        if (py < 0 || py >= p->h)
            continue;
        for (int x = 0; x < w * zoom; x++) {
            int px = x0 + x;
            if (px < 0 || px >= p->w)
                continue;
            size_t at = (size_t)(y / zoom) * (size_t)w + (size_t)(x / zoom);
            uint8_t *o = p->rgb + 3 * ((size_t)py * (size_t)p->w + (size_t)px);
            for (int k = 0; k < 3; k++)
                o[k] = to_byte(planes[(c == 3 ? (size_t)k * plane : 0) + at]);
        }
    }
}

void picture_grid(int count, int *cols, int *rows)
{
    int c = 1;
    while (c * c < count)
        c++;
    *cols = c;
    *rows = count > 0 ? (count + c - 1) / c : 1;
}

void picture_blend_jet(struct picture *p, const float *map, float alpha)
{
    size_t n = (size_t)p->w * (size_t)p->h;
    for (size_t i = 0; i < n; i++) {
        uint8_t c[3];
        picture_jet(map[i], c);
        for (int k = 0; k < 3; k++) {
            float v = (1 - alpha) * p->rgb[3 * i + (size_t)k] + alpha * c[k];
            p->rgb[3 * i + (size_t)k] = (uint8_t)lrintf(v);
        }
    }
}

struct png_mem {
    unsigned char *buf;
    size_t len, cap;
};

static void png_append(void *ctx, void *data, int size)
{
    struct png_mem *m = ctx;
    if (m->len + (size_t)size > m->cap) {
        m->cap = (m->len + (size_t)size) * 2;
        m->buf = xrealloc(m->buf, m->cap);
    }
    memcpy(m->buf + m->len, data, (size_t)size);
    m->len += (size_t)size;
}

int picture_write_png(const struct picture *p, const char *path, cn_error *e)
{
    struct png_mem m = {0};
    if (!stbi_write_png_to_func(png_append, &m, p->w, p->h, 3, p->rgb, p->w * 3)) {
        free(m.buf);
        return cn_fail(e, "%s: cannot encode a %dx%d PNG", path, p->w, p->h);
    }
    struct fileio_chunk chunk = {m.buf, m.len};
    int rc = fileio_write_atomic(path, &chunk, 1, e);
    free(m.buf);
    return rc;
}
