/* augment.h - what the [net] section says about feeding images to the network: loader workers,
 * sampling, and the random augmentation applied to each training image.
 *
 * Conventions: images are planar CHW floats, channels in file order (R, G, B[, A] or gray), values
 * in [0, 1] until mean/std normalisation. Every random choice is drawn from the cn_rng passed in,
 * in a fixed order, so a sample is a function of (its source image, the config, its stream).
 *
 * Per-sample pipeline, in this order (each step is skipped when its keys are at their defaults):
 *   1. geometry - one affine warp from the source image (native size) to w x h, bilinear with
 *      edges clamped; when the warp shrinks, the source is first resized with stb_image_resize's
 *      anti-aliasing filter so that the warp itself never minifies (Darknet's rotate_crop_image
 *      point-samples and aliases). Darknet's classifier semantics (image.c random_augment_image):
 *      aspect a = s or 1/s, s uniform in [1, aspect]; r uniform integer in [min_crop, max_crop];
 *      scale k = r / min(ih, iw * a): the image is scaled by k vertically, k / a horizontally, so
 *      its shorter side becomes about r pixels, and a w x h window is taken at a uniform offset
 *      within the scaled image (Darknet uses w for the vertical range too; we use h); rotation
 *      uniform in [-angle, angle] degrees about the window's centre; translate moves the window by
 *      up to translate * w (or h) pixels more. Without min_crop=/max_crop= the source is
 *      scaled by max(w/iw, h/ih), keeping its aspect ratio,
 *      so that it covers w x h with the window at its centre (the default view of evaluation,
 *      views.h: never a stretch), then rotated and translated.
 *      pad_crop=P (the CIFAR augmentation, torchvision's RandomCrop(padding=P)) then pads that
 *      w x h result by P pixels of value 0 (black, before mean/std) on each side and keeps the
 *      w x h window at integer offsets ox, oy uniform in 0..2P (ox drawn first, after the warp's
 *      draws): a shift by ox - P, oy - P, no resampling. Alone (no other geometry key) it pads
 *      the default view, the image `classifier valid -pad P` pads (views.h).
 *   2. flip - mirror left-right with probability 1/2.
 *   3. colour (Darknet's random_distort_image) - in HSV: hue += uniform [-hue, hue] (the hue circle
 *      is [0, 1), wrapping), saturation and value multiplied by factors drawn like aspect from
 *      saturation= and exposure=; then back to RGB and clamped to [0, 1]. 1- and 2-channel images
 *      only get the exposure factor (on the gray value).
 *   4. channel_shift - channel k += uniform [-shift_k, shift_k] / 255, clamped to [0, 1] (the course
 *      notes' "R+20, G-20, B+20").
 *   5. mixup / cutmix (batch level in spirit, per sample here): a second image is drawn from the
 *      training set with the same sample stream, goes through steps 1-4, and is blended (mixup:
 *      x = l x1 + (1-l) x2) or pasted into a random box (cutmix: the box covers a fraction 1-l of
 *      the image, l then corrected to the box actually pasted); l ~ Beta(mix_alpha, mix_alpha);
 *      the truth rows mix with the same l. With both keys on, each sample picks one at random.
 *   6. label smoothing - t = (1 - eps) t + eps / classes.
 *   7. mean/std - channel k becomes (v - mean_k) / std_k. Not random: validation applies it too.
 *
 * Left out: Darknet's center=, jitter= (detection), mosaic, random erasing, EXIF orientation.
 */
#ifndef CN_DATA_AUGMENT_H
#define CN_DATA_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "cfg/cfg.h"
#include "core/common.h"
#include "core/rng.h"

#define AUG_MAX_C 4 /* channels an image can have */

enum sampling {
    SAMPLING_EPOCH,    /* each epoch a fresh permutation of the list (default) */
    SAMPLING_RANDOM,   /* each sample uniform over the list, with replacement (Darknet) */
    SAMPLING_BALANCED, /* a class uniform over classes that have images, then an image of it */
    SAMPLING_COUNT
};

struct aug_config {
    int crop;               /* 1 when min_crop= or max_crop= is given */
    int min_crop, max_crop; /* pixels of the shorter side after scaling (Darknet's) */
    float aspect;           /* >= 1 */
    float angle;            /* degrees */
    float translate;        /* fraction of w and h */
    int pad_crop;           /* pixels of zero padding for the random integer-offset window */
    int flip;
    float hue, saturation, exposure;
    float shift[AUG_MAX_C]; /* channel_shift, in 0..255 units */
    int nmean;              /* 0 (no normalisation) or channels */
    float mean[AUG_MAX_C], std[AUG_MAX_C];
    int mixup, cutmix;
    float mix_alpha;
    float label_smooth;
};

/* The [net] keys about input: workers=, sampling= and augmentation. */
struct input_config {
    int workers; /* loader threads, 0 = load in the caller's thread */
    enum sampling sampling;
    struct aug_config aug;
};

/* Names of the sampling= values, in enum order. */
extern const char *const sampling_names[SAMPLING_COUNT];

/* Reads workers=, sampling= and the augmentation keys of [net] section s, for w x h x c input.
 * Errors name the key: "path:line: [net] mean=0.5,0.5: has 2 values but channels=3". */
int input_config_parse(struct input_config *ic, struct cfg_section *s, int w, int h, int c,
                       cn_error *e);

/* Everything at its default: no augmentation, no normalisation. */
void aug_config_default(struct aug_config *a);

/* 1 when step 1 (geometry) does anything: the sample then needs its source at native size. */
int aug_has_geometry(const struct aug_config *a);

/* 1 when step 1 warps (crop, angle or translate): it reads the source at native size, or, without
 * crop, the source aug_warp_source prepares. pad_crop alone only shifts the default view. */
int aug_has_warp(const struct aug_config *a);

/* 1 when steps 1-4 or 5 draw anything (the sample differs from the plain resized image). */
int aug_is_random(const struct aug_config *a);

/* Step 1: warps src (iw x ih x c bytes, CHW) into dst (w x h x c floats in [0, 1], CHW) with the
 * random geometry drawn from r. Without geometry keys, the default view (views_default_u8:
 * aspect kept, centre cut). scratch is grown as needed (realloc; *scratch may be NULL at first,
 * free it when done). Returns 0, or -1 when memory runs out. */
int aug_geometry(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int c,
                 const struct aug_config *a, cn_rng *r, uint8_t **scratch, size_t *cap);

/* What step 1's warp reads when its scale is not drawn (no min_crop=/max_crop=: the image is
 * scaled to cover w x h, whatever angle and translate draw): src itself when that scale is >= 1
 * on both axes (*out = NULL, *pw x *ph = iw x ih), otherwise src shrunk once with the
 * anti-aliased filter to *pw x *ph bytes per channel, CHW, malloc'd in *out. The loader's cache
 * keeps it in place of the decoded image, so no sample resizes again. Needs !a->crop. Returns 0,
 * or -1 without memory. */
int aug_warp_source(uint8_t **out, int *pw, int *ph, const uint8_t *src, int iw, int ih, int w,
                    int h, int c, const struct aug_config *a);

/* aug_geometry of an iw x ih image from its warp source (src, pw x ph, from aug_warp_source, or
 * the image itself): the same draws and the same bits as aug_geometry on the image. Needs
 * aug_has_warp(a) and !a->crop. Returns 0, or -1 without memory. */
int aug_geometry_from(float *dst, int w, int h, const uint8_t *src, int pw, int ph, int iw, int ih,
                      int c, const struct aug_config *a, cn_rng *r, uint8_t **scratch, size_t *cap);

/* pad_crop's part of step 1 alone, on x (w x h x c floats, CHW, the default view): draws ox, oy
 * and applies aug_pad_crop, as aug_geometry does after its view; a no-op without pad_crop. */
void aug_pad_crop_random(float *x, int w, int h, int c, const struct aug_config *a, cn_rng *r);

/* aug_geometry with aug_warp_ref for the warp (the same draws, the same pre-shrink): the
 * reference the tests compare aug_geometry with. Returns 0, or -1 without memory. */
int aug_geometry_ref(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int c,
                     const struct aug_config *a, cn_rng *r);

/* The geometry of one warp: output pixels per source pixel (sx, sy), the window's offset in
 * output pixels (ox, oy) and the rotation's cosine and sine. Output pixel centre (x+1/2, y+1/2)
 * reads the source at (cs u - sn v) / sx + iw/2 - 1/2, (sn u + cs v) / sy + ih/2 - 1/2, for
 * u = x + 1/2 - w/2 + ox, v = y + 1/2 - h/2 + oy; bilinear, edges clamped. */
struct aug_warp {
    double sx, sy, ox, oy, cs, sn;
};

/* The warp's kernel: dst (w x h x c floats, v/255) from src (iw x ih x c bytes, CHW). Each row
 * is a start plus a constant step (no per-pixel trigonometry or division); without rotation
 * (sn = 0, cs = 1) it is a separable resize of the window, equal bit for bit to aug_warp_ref.
 * scratch: aug_warp_scratch(w, h) bytes, aligned for floats. */
void aug_warp(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int c,
              const struct aug_warp *wp, void *scratch);
size_t aug_warp_scratch(int w, int h);

/* The naive reference of aug_warp: the formula above per pixel, in double. For tests. */
void aug_warp_ref(float *dst, int w, int h, const uint8_t *src, int iw, int ih, int c,
                  const struct aug_warp *wp);

/* Darknet's HSV jitter on x (plane pixels x c floats, CHW): hue += dhue (wrapping), saturation
 * *= dsat, value *= dexp, clamped to [0, 1]; 1- and 2-channel images get exposure only. One
 * pass over the pixels without branches or divisions by pixel; without a hue shift a closed
 * form (no HSV at all); identity factors skip the pass. Equal to aug_distort_ref within float
 * rounding (1e-5). */
void aug_distort(float *x, size_t plane, int c, float dhue, float dsat, float dexp);

/* The naive reference: aug_rgb_to_hsv, scale, shift, aug_hsv_to_rgb, clamp, per pixel. */
void aug_distort_ref(float *x, size_t plane, int c, float dhue, float dsat, float dexp);

/* The pad-and-crop of step 1 on x (w x h x c floats, CHW), in place: x becomes the w x h window
 * at (ox, oy) of x padded by pad zeros on each side, 0 <= ox, oy <= 2 pad; pad <= min(w, h) / 2. */
void aug_pad_crop(float *x, int w, int h, int c, int pad, int ox, int oy);

/* Steps 2-4 on x (w x h x c floats, CHW). */
void aug_photometric(float *x, int w, int h, int c, const struct aug_config *a, cn_rng *r);

/* The mixing weight for step 5: l ~ Beta(mix_alpha, mix_alpha), and whether to cut (1) or blend
 * (0); returns 0 (no mixing) when neither mixup nor cutmix is on. */
int aug_mix_draw(const struct aug_config *a, cn_rng *r, float *lambda, int *cut);

/* Step 5 on x1 (kept) and x2 (the partner): blends or pastes x2 into x1 and returns the weight of
 * x1's truth (lambda for mixup; the uncovered fraction for cutmix). */
float aug_mix_apply(float *x1, const float *x2, int w, int h, int c, float lambda, int cut,
                    cn_rng *r);

/* Step 7 on n images of w x h x c floats (a no-op without mean=). */
void aug_normalize(float *x, size_t n, int w, int h, int c, const struct aug_config *a);

/* Darknet's rgb_to_hsv / hsv_to_rgb on one pixel, all values in [0, 1] (h wraps). */
void aug_rgb_to_hsv(float rgb[3], float hsv[3]);
void aug_hsv_to_rgb(float hsv[3], float rgb[3]);

#endif
