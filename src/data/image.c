/* image.c - decode, convert, resize, HWC -> CHW. See image.h for the conventions.
 *
 * stb_image and stb_image_resize come from Debian's libstb (linked with -lstb); only their
 * declarations are included here. stb_image reads through our FILE so that a missing file is
 * reported with errno, and its failure reason is thread-local, so decoding in parallel is safe.
 *
 * 16-bit PNM (P5/P6 with maxval > 255) is read here instead: stb_image 2.27, Debian's, takes its
 * big-endian samples in host byte order and converts their channels as if they were 8-bit,
 * reading past its buffer (fixed upstream in 2.28). Here samples are big-endian, keep their high
 * byte and convert like 16-bit PNG; maxval is not rescaled, as stb_image does not rescale it.
 * Pixel buffers from either source are released with free(), which is stbi_image_free in a
 * default build of stb_image such as Debian's.
 */
#include "data/image.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image.h>
#include <stb_image_resize.h>

/* Opens path and reads its header; on success *fp is open at the start of the file. */
static int open_checked(FILE **fp, const char *path, int *w, int *h, cn_error *e)
{
    *fp = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cn_fail(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cn_fail(e, "%s: not a regular file", path);
    }
    int iw, ih, ic;
    if (!stbi_info_from_file(f, &iw, &ih, &ic)) {
        fclose(f);
        return cn_fail(e, "%s: not an image stb_image can read (%s)", path, stbi_failure_reason());
    }
    if (iw < 1 || ih < 1 || iw > IMAGE_MAX_SIDE || ih > IMAGE_MAX_SIDE ||
        (size_t)iw * (size_t)ih > IMAGE_MAX_PIXELS) {
        fclose(f);
        return cn_fail(e,
                       "%s: the header claims %dx%d pixels, more than the limit (%d per side, "
                       "%zu in all)",
                       path, iw, ih, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
    }
    *fp = f;
    *w = iw;
    *h = ih;
    return 0;
}

int image_info(const char *path, int *w, int *h, cn_error *e)
{
    FILE *f;
    int iw = 0, ih = 0;
    if (open_checked(&f, path, &iw, &ih, e))
        return -1;
    fclose(f);
    if (w)
        *w = iw;
    if (h)
        *h = ih;
    return 0;
}

int image_check(const char *path, cn_error *e)
{
    return image_info(path, NULL, NULL, e);
}

/* Interleaved HWC bytes to planar CHW. */
static void hwc_to_chw(uint8_t *dst, const uint8_t *src, size_t pixels, int c)
{
    for (int k = 0; k < c; k++) {
        uint8_t *d = dst + (size_t)k * pixels;
        const uint8_t *s = src + k;
        for (size_t i = 0; i < pixels; i++)
            d[i] = s[i * (size_t)c];
    }
}

/* Bilinear resize of interleaved pixels; *out is malloc'd (NULL on failure). */
static int resize(uint8_t **out, const uint8_t *in, int iw, int ih, int w, int h, int c)
{
    *out = malloc((size_t)w * (size_t)h * (size_t)c);
    if (!*out)
        return -1;
    if (!stbir_resize_uint8_generic(in, iw, ih, 0, *out, w, h, 0, c, STBIR_ALPHA_CHANNEL_NONE, 0,
                                    STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE,
                                    STBIR_COLORSPACE_LINEAR, NULL)) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* Skips blanks and '#' comments, reads a decimal number and the one blank after it. */
static int pnm_number(FILE *f, long *v)
{
    int ch = getc(f);
    while (ch == '#' || isspace(ch)) {
        if (ch == '#')
            while ((ch = getc(f)) != EOF && ch != '\n')
                ;
        ch = getc(f);
    }
    if (!isdigit(ch))
        return -1;
    long x = 0;
    for (; isdigit(ch) && x < 100000000; ch = getc(f))
        x = 10 * x + (ch - '0');
    *v = x;
    return isspace(ch) ? 0 : -1;
}

/* One pixel of n (1 or 3) 16-bit samples as c bytes, by stb_image's 16-bit rules. */
static void pixel16(uint8_t *out, const uint16_t *v, int n, int c)
{
    int y = n == 1 ? v[0] >> 8 : ((77 * v[0] + 150 * v[1] + 29 * v[2]) >> 8) >> 8;
    for (int k = 0; k < c; k++) {
        if (k == (c == 2 ? 1 : 3))
            out[k] = 255; /* alpha */
        else
            out[k] = (uint8_t)(c <= 2 || n == 1 ? y : v[k] >> 8);
    }
}

/* Decodes a 16-bit binary PNM (header not yet read) into w*h*c interleaved bytes. */
static uint8_t *pnm16_load(FILE *f, int w, int h, int c)
{
    long pw, ph, maxv;
    int n = getc(f) == 'P' && getc(f) == '6' ? 3 : 1;
    if (pnm_number(f, &pw) || pnm_number(f, &ph) || pnm_number(f, &maxv) || pw != w || ph != h)
        return NULL;
    size_t px = (size_t)w * (size_t)h;
    uint8_t *raw = malloc(px * (size_t)n * 2), *out = malloc(px * (size_t)c);
    if (!raw || !out || fread(raw, 2 * (size_t)n, px, f) != px) {
        free(raw);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < px; i++) {
        uint16_t v[3];
        for (int k = 0; k < n; k++)
            v[k] = (uint16_t)(raw[2 * (i * (size_t)n + (size_t)k)] << 8 |
                              raw[2 * (i * (size_t)n + (size_t)k) + 1]);
        pixel16(out + i * (size_t)c, v, n, c);
    }
    free(raw);
    return out;
}

static int is_pnm16(FILE *f)
{
    char m[2];
    int pnm = fread(m, 1, 2, f) == 2 && m[0] == 'P' && (m[1] == '5' || m[1] == '6');
    rewind(f);
    return pnm && stbi_is_16_bit_from_file(f);
}

/* Decodes the open file f (header checked: iw x ih) into malloc'd interleaved c-channel bytes. */
static uint8_t *decode(FILE *f, int iw, int ih, int c, const char *path, cn_error *e)
{
    uint8_t *px;
    if (is_pnm16(f)) {
        px = pnm16_load(f, iw, ih, c);
        if (!px)
            cn_fail(e, "%s: cannot decode 16-bit PNM: truncated or corrupt file?", path);
        return px;
    }
    int w, h, n;
    px = stbi_load_from_file(f, &w, &h, &n, c);
    if (!px)
        cn_fail(e, "%s: cannot decode (%s): truncated or corrupt file?", path,
                stbi_failure_reason());
    else if (w != iw || h != ih) {
        free(px);
        px = NULL;
        cn_fail(e, "%s: decoded %dx%d, but the header says %dx%d", path, w, h, iw, ih);
    }
    return px;
}

int image_load_u8(uint8_t *dst, const char *path, int w, int h, int c, cn_error *e)
{
    CN_ASSERT(w >= 1 && h >= 1 && c >= 1 && c <= 4);
    FILE *f;
    int iw = 0, ih = 0;
    if (open_checked(&f, path, &iw, &ih, e))
        return -1;
    uint8_t *px = decode(f, iw, ih, c, path, e);
    fclose(f);
    if (!px)
        return -1;
    if (iw != w || ih != h) {
        uint8_t *scaled;
        int bad = resize(&scaled, px, iw, ih, w, h, c);
        free(px);
        if (bad)
            return cn_fail(e, "%s: out of memory resizing %dx%d to %dx%d", path, iw, ih, w, h);
        px = scaled;
    }
    hwc_to_chw(dst, px, (size_t)w * (size_t)h, c);
    free(px);
    return 0;
}

void image_u8_to_float(float *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] / 255.0f;
}

int image_load(float *dst, const char *path, int w, int h, int c, cn_error *e)
{
    CN_ASSERT(w >= 1 && h >= 1 && c >= 1 && c <= 4);
    size_t n = (size_t)w * (size_t)h * (size_t)c;
    uint8_t *buf = malloc(n);
    if (!buf)
        return cn_fail(e, "%s: out of memory for a %dx%dx%d image", path, w, h, c);
    int rc = image_load_u8(buf, path, w, h, c, e);
    if (!rc)
        image_u8_to_float(dst, buf, n);
    free(buf);
    return rc;
}
