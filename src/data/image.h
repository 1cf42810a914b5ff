/* image.h - image files to network input: decode (stb_image), convert channels, resize, CHW.
 *
 * Formats are stb_image's: PNG (8 and 16 bit, paletted), JPEG (baseline and progressive), BMP,
 * GIF (first frame), TGA, PSD (composite), PNM. The common PNG (8-bit, not paletted, not
 * interlaced) is decoded by png.h instead, to the same pixels, faster. Channel conversion is stb_image's: gray from
 * colour is (77 R + 150 G + 29 B) >> 8, alpha is dropped (not composited), gray becomes R=G=B;
 * 16-bit images are converted at 16 bits, then keep the high byte of each sample. Resizing is
 * bilinear (a triangle filter on pixel centres, edges clamped, no gamma, each channel plane on
 * its own, rounded to bytes); when shrinking the filter widens with the scale, so it averages
 * rather than aliases (as stb_image_resize's triangle filter). Output is planar CHW (all
 * of channel 0, then channel 1...), rows top to bottom, values v/255 in [0, 1].
 *
 * Darknet's own resize (no anti-aliasing) and letterbox are kept for Darknet-parity predictions.
 *
 * Left out: EXIF orientation, colour profiles, gamma, HDR and Softimage PIC (stb_impl.c builds
 * stb_image without them: .hdr is not 8-bit data), animation.
 */
#ifndef CN_DATA_IMAGE_H
#define CN_DATA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "data/png.h"

/* Largest accepted image: checked from the header, before anything is allocated (stb would
 * otherwise try to allocate w*h*c bytes for whatever a header claims). */
#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS ((size_t)1 << 26)

/* Reads only the header of path: the file opens, stb_image recognises it and its size is within
 * the limits above. Writes the size to *w and *h when they are non-NULL. Returns 0, or -1 with
 * "path: problem" (e.g. "path: not an image stb_image can read (unknown image type)"). Thread
 * safe. A file with a valid header may still fail to decode (truncated data): see image_load. */
int image_info(const char *path, int *w, int *h, cn_error *e);

/* image_info without the size. */
int image_check(const char *path, cn_error *e);

/* Decodes path into dst as w*h*c bytes, planar CHW, converted to c channels (1..4) and resized to
 * w x h when its size differs. Checks the header (image_info) before decoding. Returns 0, or -1
 * with "path: problem" and dst unspecified. Thread safe (stb_image keeps its error per thread). */
int image_load_u8(uint8_t *dst, const char *path, int w, int h, int c, cn_error *e);

/* image_load_u8, then each byte v becomes v/255.0f in dst (w*h*c floats, CHW). */
int image_load(float *dst, const char *path, int w, int h, int c, cn_error *e);

/* dst[i] = src[i] / 255.0f for i < n: how cached bytes become network input. */
void image_u8_to_float(float *dst, const uint8_t *src, size_t n);

/* Resizes each of the c planes of src (iw x ih bytes each, CHW) to w x h into dst: bilinear,
 * widened when shrinking (anti-aliased), as image_load_u8. Returns 0, or -1 without memory. */
int image_resize_u8(uint8_t *dst, int w, int h, const uint8_t *src, int iw, int ih, int c);

/* Decodes path at its own size into *out: (*w) x (*h) x c bytes, planar CHW, malloc'd (free it).
 * Same checks and conversions as image_load_u8, without the resize. Returns 0, or -1 with
 * "path: problem" and *out NULL. Thread safe. */
int image_decode(uint8_t **out, int *w, int *h, const char *path, int c, cn_error *e);

/* Scratch one thread keeps from decode to decode: the buffer a file is read into, the decoded
 * pixels and the PNG decoder's state (png.h), each grown as needed, and the directory of the
 * last file, kept open (files are opened relative to it: a chdir while a scratch is in use
 * would go unnoticed for files of that directory). Zero-initialise it; image_scratch_free
 * releases it. */
struct image_scratch {
    uint8_t *file;
    size_t cap;
    uint8_t *px;
    size_t px_cap;
    struct png_scratch png;
    char *dir; /* the directory's path with its '/', dir_len bytes, or NULL */
    size_t dir_len;
    int dir_fd;
};
void image_scratch_free(struct image_scratch *s);

/* image_decode with the pixels left in s: *out points into s until the next call with s (no
 * allocation per image once s is large enough). The common PNG (png.h) is decoded without
 * stb_image, to the same pixels; anything else as image_decode. */
int image_decode_into(const uint8_t **out, int *w, int *h, const char *path, int c,
                      struct image_scratch *s, cn_error *e);

/* image_decode reading the file into s; *out is the caller's (free it). */
int image_decode_with(uint8_t **out, int *w, int *h, const char *path, int c,
                      struct image_scratch *s, cn_error *e);

/* Darknet's resize_image (pjreddie image.c), exactly: two passes of bilinear interpolation
 * (columns, then rows) on the grid x * (iw-1)/(w-1), with no anti-aliasing, so shrinking by more
 * than 2x skips pixels. src is iw x ih x c floats, dst w x h x c floats, both CHW. For
 * Darknet-parity predictions; training and validation use the anti-aliased resize. Where
 * Darknet divides by zero (w or h of 1) the scale is taken as 0 (the first column or row).
 * Returns 0, or -1 when memory for the intermediate image runs out. */
int image_resize_darknet(float *dst, int w, int h, const float *src, int iw, int ih, int c);

/* Darknet's letterbox_image: resize src (iw x ih x c floats, CHW) with image_resize_darknet to
 * fit inside w x h keeping its aspect ratio (new side = old * w / iw in integer arithmetic, as
 * Darknet), centre it at ((w - nw) / 2, (h - nh) / 2) and fill the rest with 0.5. dst holds
 * w x h x c floats. Returns 0, or -1 when memory for the intermediate image runs out. */
int image_letterbox_darknet(float *dst, int w, int h, const float *src, int iw, int ih, int c);

#endif
