/* views.h - test-time views of an image: the one preprocessing shared by `classifier valid` and
 * `classifier predict` (Darknet's valid and predict resize differently, so the same image could
 * get different answers; here both call views_load).
 *
 * For a net input of W x H x C and a scale s >= 1, the image is decoded and resized by image.h
 * (image_load_u8: stb_image, bilinear, anti-aliased when shrinking, aspect ratio kept) to the
 * smallest size covering s*W x s*H:
 *     f = max(s*W / iw, s*H / ih),  rw = max(round(iw*f), round(s*W)),  rh likewise,
 * i.e. for a square net of side N, the shorter side becomes s*N. W x H crops are then cut from it:
 *     crops=1   the centre, at ((rw-W)/2, (rh-H)/2) rounded down
 *     crops=2   the centre and its horizontal mirror
 *     crops=5   the centre and the four corners
 *     crops=10  those five and their horizontal mirrors (the ten-crop test of Krizhevsky et al.
 *               2012; the mirror of a crop is the crop flipped left to right)
 * Several scales give crops x scales views, scale-major; within one scale the order is centre,
 * top-left, top-right, bottom-left, bottom-right, then the mirrors in the same order.
 * With s = 1 (the default) the one view is what the loader feeds training without geometric
 * augmentation and what validation during training sees (views_default_u8): an image whose aspect
 * is W:H (every Fashion-MNIST image at 28x28) is resized to W x H; one of another aspect loses
 * the ends of its longer side instead of being stretched.
 * Values are v/255 in [0, 1], planar CHW, like the loader's.
 *
 * pad (`-pad P`, P >= 1): the CIFAR protocol for small images instead of a resize. The image is
 * brought to the net input by the default view (scale 1), padded by P pixels of value 0 on each
 * side (0 in the pixel domain, before mean/std: black, as torchvision's RandomCrop(padding=P)
 * pads, and as the pad_crop= training augmentation pads, augment.h), and the W x H windows are
 * cut from that (W+2P) x (H+2P) image by the rule above: the centre is the image itself, the
 * corners are it shifted by P pixels both ways. Integer shifts, no resampling. One scale of 1;
 * P at most half the shorter side of the input.
 *
 * letterbox (`-letterbox`): instead, Darknet's `classifier predict` preprocessing exactly, for
 * parity with it: the whole image resized by Darknet's two-pass bilinear resize (no
 * anti-aliasing) to fit W x H with its aspect ratio kept, centred on a 0.5-grey canvas
 * (image_letterbox_darknet). One view: crops 1, one scale of 1.
 *
 * Left out: mean/std normalisation (the caller's), vertical flips.
 */
#ifndef CN_DATA_VIEWS_H
#define CN_DATA_VIEWS_H

#include <stdint.h>

#include "core/common.h"

#define VIEWS_MAX_SCALES 16

/* How to view each image. scale[] holds ratios s (>= 1, <= VIEWS_MAX_RATIO) unless pixels is
 * set, in which case it holds shorter-side sizes in pixels, each converted per net to
 * s = size / min(W, H) (so `-scales 224,256` means the same resized images whatever the model). */
struct view_spec {
    int crops;   /* 1, 2, 5 or 10 */
    int nscales; /* 1..VIEWS_MAX_SCALES */
    int pixels;
    float scale[VIEWS_MAX_SCALES];
    int letterbox; /* Darknet's letterbox instead of resize-and-crop (one view) */
    int pad;       /* > 0: crops of the input-size image zero-padded by pad pixels */
};
#define VIEWS_MAX_RATIO 8.0f

/* The largest pad for a w x h input: half its shorter side (a corner window then still holds a
 * quarter of the image). The pad_crop= augmentation has the same bound. */
#define VIEWS_MAX_PAD(w, h) (CN_MIN((w), (h)) / 2)

/* Checks crops, nscales, each scale (for pixels: against a net input of w x h) and pad. Returns
 * 0, or -1 with a message naming the flag the value came from ("-pad 15: must be ..."). */
int views_check(const struct view_spec *s, int w, int h, cn_error *e);

/* Views per image: crops * nscales. */
int views_count(const struct view_spec *s);

/* The ratio of scale i for a net input of w x h. */
float views_ratio(const struct view_spec *s, int i, int w, int h);

/* The resized size, by the rule above, for an iw x ih image, a w x h input and ratio s. */
void views_resized_size(int *rw, int *rh, int iw, int ih, int w, int h, float s);

/* Top-left corner of crop `which` (0 centre, 1 top-left, 2 top-right, 3 bottom-left,
 * 4 bottom-right) of a w x h window in an rw x rh image. */
void views_origin(int *x, int *y, int which, int rw, int rh, int w, int h);

/* dst (c*h*w floats, CHW, v/255) = the w x h window at (x0, y0) of src (c*rh*rw bytes, CHW),
 * flipped left to right when mirror. */
void views_cut(float *dst, const uint8_t *src, int rw, int rh, int c, int x0, int y0, int w, int h,
               int mirror);

/* dst ((w+2 pad) x (h+2 pad) x c bytes, CHW) = src (w x h x c bytes, CHW) with pad zeros on each
 * side. */
void views_pad_u8(uint8_t *dst, const uint8_t *src, int w, int h, int c, int pad);

/* The default view (crops 1, scale 1) as bytes: src (iw x ih x c bytes, CHW) resized by the rule
 * above (aspect kept, covering w x h) and its centre w x h window copied to dst. The loader makes
 * training images without geometric augmentation and validation slices this way, so training,
 * `classifier valid` and `predict` see the same pixels. Returns 0, or -1 without memory. */
int views_default_u8(uint8_t *dst, int w, int h, const uint8_t *src, int iw, int ih, int c);

/* Writes views_count(s) views of the image at path, each w*h*c floats, one after another, in
 * the order above. Decodes the file once per scale. Returns 0, or -1 with "path: problem".
 * Thread safe. */
int views_load(float *dst, const char *path, int w, int h, int c, const struct view_spec *s,
               cn_error *e);

/* views_load for a gray image in memory (an IDX set): px holds iw x ih bytes. It is resized as
 * image.h resizes (the same stb_image_resize filter) and converted to c channels as stb_image
 * converts gray (R = G = B; alpha 255). Returns 0, or -1 with "where: problem". */
int views_from_gray(float *dst, const uint8_t *px, int iw, int ih, int w, int h, int c,
                    const struct view_spec *s, const char *where, cn_error *e);

#endif
