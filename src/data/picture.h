/* picture.h - 8-bit RGB pictures for looking inside a network (class activation maps, filter and
 * feature-map grids): value maps normalised and coloured, resized, tiled, blended, and written as
 * PNG atomically.
 *
 * Conventions: a picture is w x h pixels, row-major, 3 bytes (R, G, B) per pixel. Value maps are
 * float planes, row-major, values in [0, 1] after picture_normalise. Multi-channel inputs are
 * planar CHW, as everywhere else in cfgnet. Left out: alpha, text, other colour maps than jet.
 */
#ifndef CN_DATA_PICTURE_H
#define CN_DATA_PICTURE_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

#define PICTURE_MAX_SIDE 32768

struct picture {
    int w, h;
    uint8_t *rgb; /* w * h * 3 bytes */
};

/* Allocates a w x h picture filled with gray level `fill`. Fails when a side is < 1 or larger
 * than PICTURE_MAX_SIDE. */
int picture_create(struct picture *p, int w, int h, uint8_t fill, cn_error *e);
void picture_free(struct picture *p);

/* v[0..n) mapped linearly onto [0, 1], min to 0 and max to 1 (all 0 when constant). */
void picture_normalise(float *v, size_t n);

/* The jet colour map (blue, cyan, yellow, red) at v in [0, 1] (clamped). */
void picture_jet(float v, uint8_t rgb[3]);

/* dst (dw x dh) = src (sw x sh) resized bilinearly with pixel centres aligned (the sample of dst
 * pixel x is at (x + 0.5) * sw / dw - 0.5 in src, clamped to its edges). */
void picture_resize_map(float *dst, int dw, int dh, const float *src, int sw, int sh);

/* Paints a tile with its top-left corner at (x0, y0), every value drawn as a zoom x zoom block:
 * planes holds c planes of w x h values in [0, 1]; c = 3 is drawn as RGB, c = 1 as gray. Pixels
 * outside the picture are skipped. */
void picture_put_tile(struct picture *p, int x0, int y0, const float *planes, int w, int h, int c,
                      int zoom);

/* Columns and rows of a near-square grid of count tiles (cols = ceil(sqrt(count))). */
void picture_grid(int count, int *cols, int *rows);

/* p = (1 - alpha) * p + alpha * jet(map), map holding p->w x p->h values in [0, 1]. */
void picture_blend_jet(struct picture *p, const float *map, float alpha);

/* Writes p as a PNG at path, atomically (stb_image_write to memory, then fileio_write_atomic). */
int picture_write_png(const struct picture *p, const char *path, cn_error *e);

#endif
