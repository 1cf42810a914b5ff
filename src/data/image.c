/* image.c - decode, convert, resize, HWC -> CHW. See image.h for the conventions.
 *
 * stb_image is compiled in stb_impl.c from Debian's header (libstb-dev); only its declarations
 * are included here. Resizing is our own separable triangle filter: stb_image_resize 0.96
 * (Debian's) aborts (assert "total < 1.1f" in stbir__normalize_downsample_coefficients) on many
 * shrink ratios, e.g. 19 -> 13 or 224 -> 171. A file is read whole with one openat/read/close
 * (relative to its directory, kept open) into a buffer the caller may keep from image to image
 * (image_scratch: no stdio buffers, no allocation per file, a missing file reported with errno),
 * checked (stbcheck.h) and decoded from memory: the common PNG by png.h into the scratch's pixel
 * buffer, anything else by stb_image (stbi_info_from_memory, stbi_load_from_memory) with
 * req_comp = the wanted channels; a 1-channel result is used as it comes (it is planar
 * already), others are turned CHW once. stb's failure reason is thread-local, so decoding in
 * parallel is safe.
 *
 * 16-bit PNM (P5/P6 with maxval > 255) is read here instead: stb_image 2.27, Debian's, takes its
 * big-endian samples in host byte order and converts their channels as if they were 8-bit,
 * reading past its buffer (fixed upstream in 2.28). Here samples are big-endian, keep their high
 * byte and convert like 16-bit PNG; maxval is not rescaled, as stb_image does not rescale it.
 * Pixel buffers from either source are released with free(), which is stbi_image_free in a
 * default build of stb_image such as stb_impl.c's.
 */
#include "data/image.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image.h>

#include "data/png.h"
#include "data/stbcheck.h"

void image_scratch_free(struct image_scratch *s)
{
    free(s->file);
    free(s->px);
    png_scratch_free(&s->png);
    if (s->dir)
        close(s->dir_fd);
    free(s->dir);
    memset(s, 0, sizeof *s);
}

static int within_limits(int w, int h)
{
    return w >= 1 && h >= 1 && w <= IMAGE_MAX_SIDE && h <= IMAGE_MAX_SIDE &&
           (size_t)w * (size_t)h <= IMAGE_MAX_PIXELS;
}

/* path opened for reading: relative to the directory kept in s when path is in it (the loader
 * reads thousands of files from one directory: openat on a kept descriptor walks one name
 * instead of the whole path), that directory opened and kept first when it is another. */
static int open_image(struct image_scratch *s, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) + 1 : 0; /* the directory, its '/' included */
    if (!slash || !slash[1])
        return open(path, O_RDONLY | O_CLOEXEC);
    if (!s->dir || s->dir_len != len || memcmp(s->dir, path, len)) {
        char *dir = malloc(len + 1);
        if (!dir)
            return open(path, O_RDONLY | O_CLOEXEC);
        memcpy(dir, path, len);
        dir[len] = '\0';
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            free(dir);
            return open(path, O_RDONLY | O_CLOEXEC); /* open says why it fails */
        }
        if (s->dir)
            close(s->dir_fd);
        free(s->dir);
        s->dir = dir;
        s->dir_len = len;
        s->dir_fd = fd;
    }
    return openat(s->dir_fd, slash + 1, O_RDONLY | O_CLOEXEC);
}

/* Grows s->file to hold at least need bytes (doubling). */
static int file_grow(struct image_scratch *s, size_t need)
{
    return cn_reserve(&s->file, &s->cap, need, 4096, 1);
}

/* Reads the whole file at path into s->file; *n gets its length. One openat and one read when
 * the file fits the buffer, which keeps the size of the largest file read so far (a read that
 * does not fill it has reached the end of a regular file); no fstat: a file larger than the
 * buffer grows it and is read on. check (image_info) also rejects what is not a regular file,
 * with fstat; decoding one such (a pipe, a device named in a list) fails as a truncated image. */
static int read_file(struct image_scratch *s, size_t *n, const char *path, int check,
                     cn_error *e)
{
    int fd = open_image(s, path);
    if (fd < 0)
        return cn_fail(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (check && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
        close(fd);
        return cn_fail(e, "%s: not a regular file", path);
    }
    size_t got = 0;
    for (;;) {
        if (got == s->cap && file_grow(s, got + 1)) {
            close(fd);
            return cn_fail(e, "%s: out of memory for a file of more than %zu bytes", path, got);
        }
        if (got > INT_MAX) { /* stbi_load_from_memory takes an int length */
            close(fd);
            return cn_fail(e, "%s: a file of more than %d bytes is larger than an image can be",
                           path, INT_MAX);
        }
        ssize_t r = read(fd, s->file + got, s->cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            int regular = !fstat(fd, &st) && S_ISREG(st.st_mode); /* a directory, say */
            close(fd);
            if (!regular)
                return cn_fail(e, "%s: not a regular file", path);
            return cn_fail(e, "%s: cannot read: %s", path, strerror(err));
        }
        got += (size_t)r;
        if (r == 0 || got < s->cap)
            break;
    }
    close(fd);
    *n = got;
    return 0;
}

/* The header of the file in s (n bytes, stbcheck.h's scans passed): stb_image recognises it and
 * its size is within the limits; *w and *h get it. */
static int header_checked(const struct image_scratch *s, size_t n, const char *path, int *w,
                          int *h, cn_error *e)
{
    int iw, ih, ic;
    if (!stbi_info_from_memory(s->file, (int)n, &iw, &ih, &ic))
        return cn_fail(e, "%s: not an image stb_image can read (%s)", path, stbi_failure_reason());
    if (!within_limits(iw, ih))
        return cn_fail(e,
                       "%s: the header claims %dx%d pixels, more than the limit (%d per side, "
                       "%zu in all)",
                       path, iw, ih, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
    *w = iw;
    *h = ih;
    return 0;
}

/* Reads path into s and checks its header: stbcheck.h's scans, stb_image recognises it, and its
 * size is within the limits. *n gets the file's length, *w and *h the image's size. */
static int read_checked(struct image_scratch *s, size_t *n, const char *path, int *w, int *h,
                        cn_error *e)
{
    if (read_file(s, n, path, 1, e) || stb_check(s->file, *n, path, e))
        return -1;
    return header_checked(s, *n, path, w, h, e);
}

int image_info(const char *path, int *w, int *h, cn_error *e)
{
    struct image_scratch s = {0};
    size_t n;
    int iw = 0, ih = 0, rc = read_checked(&s, &n, path, &iw, &ih, e);
    image_scratch_free(&s);
    if (rc)
        return -1;
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

/* One axis of the resize: output i reads count[i] source samples from first[i] with weights
 * w[i * max ...], already normalised and clamped to the edges. Triangle filter centred on the
 * output pixel's centre in source coordinates, (i + 1/2) n_in / n_out - 1/2, with half-width 1
 * when enlarging (bilinear) and n_in / n_out when shrinking (the filter widens: anti-aliasing). */
struct taps {
    int *first, *count, max;
    float *w;
};

static int taps_make(struct taps *t, int nin, int nout)
{
    double inv = (double)nin / nout, radius = inv > 1 ? inv : 1;
    t->max = (int)ceil(2 * radius) + 2;
    t->first = malloc(sizeof *t->first * (size_t)nout);
    t->count = malloc(sizeof *t->count * (size_t)nout);
    t->w = malloc(sizeof *t->w * (size_t)nout * (size_t)t->max);
    if (!t->first || !t->count || !t->w)
        return -1;
    for (int i = 0; i < nout; i++) {
        double c = (i + .5) * inv - .5;
        int lo = (int)ceil(c - radius), hi = (int)floor(c + radius);
        int first = lo < 0 ? 0 : lo, last = hi > nin - 1 ? nin - 1 : hi;
        if (first > last) /* a centre beyond the last pixel: only that pixel */
            first = last = c < 0 ? 0 : nin - 1;
        int n = last - first + 1;
        float *w = t->w + (size_t)i * (size_t)t->max, sum = 0;
        memset(w, 0, sizeof *w * (size_t)n);
        for (int j = lo; j <= hi; j++) { /* taps past an edge read the edge pixel (clamp) */
            double d = fabs(j - c) / radius;
            int at = (j < first ? first : j > last ? last : j) - first;
            w[at] += d < 1 ? (float)(1 - d) : 0.f;
        }
        for (int k = 0; k < n; k++)
            sum += w[k];
        if (sum <= 0)
            w[0] = sum = 1;
        for (int k = 0; k < n; k++)
            w[k] /= sum;
        int skip = 0; /* zero weights at the ends add nothing: drop them (exactly) */
        while (n > 1 && w[skip] == 0)
            skip++, n--;
        while (n > 1 && w[skip + n - 1] == 0)
            n--;
        memmove(w, w + skip, sizeof *w * (size_t)n);
        t->first[i] = first + skip;
        t->count[i] = n;
    }
    return 0;
}

static void taps_free(struct taps *t)
{
    free(t->first);
    free(t->count);
    free(t->w);
}

/* One plane: rows through tx into tmp (ih x w floats), then columns through ty into dst. Each
 * source row is first converted to floats (row, iw floats); the column pass accumulates whole
 * rows (acc, w floats) tap by tap, in the same order per pixel as a per-pixel sum, so the
 * compiler can vectorise it. */
static void resize_plane(uint8_t *dst, int w, int h, const uint8_t *src, int iw, int ih,
                         const struct taps *tx, const struct taps *ty, float *tmp, float *row,
                         float *acc)
{
    for (int y = 0; y < ih; y++) {
        const uint8_t *s = src + (size_t)y * (size_t)iw;
        for (int x = 0; x < iw; x++)
            row[x] = s[x];
        for (int x = 0; x < w; x++) {
            const float *r = row + tx->first[x], *wt = tx->w + (size_t)x * (size_t)tx->max;
            float v = 0;
            for (int k = 0; k < tx->count[x]; k++)
                v += wt[k] * r[k];
            tmp[(size_t)y * (size_t)w + (size_t)x] = v;
        }
    }
    for (int y = 0; y < h; y++) {
        const float *wt = ty->w + (size_t)y * (size_t)ty->max;
        uint8_t *d = dst + (size_t)y * (size_t)w;
        for (int x = 0; x < w; x++)
            acc[x] = 0;
        for (int k = 0; k < ty->count[y]; k++) {
            const float *t = tmp + (size_t)(ty->first[y] + k) * (size_t)w, f = wt[k];
            for (int x = 0; x < w; x++)
                acc[x] += f * t[x];
        }
        for (int x = 0; x < w; x++) {
            float v = acc[x];
            d[x] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : (int)(v + .5f));
        }
    }
}

int image_resize_u8(uint8_t *dst, int w, int h, const uint8_t *src, int iw, int ih, int c)
{
    struct taps tx = {0}, ty = {0};
    float *tmp = malloc(sizeof *tmp * ((size_t)ih * (size_t)w + (size_t)iw + (size_t)w));
    int rc = !tmp || taps_make(&tx, iw, w) || taps_make(&ty, ih, h) ? -1 : 0;
    float *row = rc ? NULL : tmp + (size_t)ih * (size_t)w, *acc = rc ? NULL : row + iw;
    for (int k = 0; k < c && !rc; k++)
        resize_plane(dst + (size_t)k * (size_t)w * (size_t)h, w, h,
                     src + (size_t)k * (size_t)iw * (size_t)ih, iw, ih, &tx, &ty, tmp, row, acc);
    taps_free(&tx);
    taps_free(&ty);
    free(tmp);
    return rc;
}

/* A read position in a file's bytes; next() gives EOF past the end, like getc(). */
struct bytes {
    const uint8_t *p;
    size_t n, i;
};

static int next(struct bytes *b)
{
    return b->i < b->n ? b->p[b->i++] : EOF;
}

/* Skips blanks and '#' comments, reads a decimal number and the one blank after it. */
static int pnm_number(struct bytes *b, long *v)
{
    int ch = next(b);
    while (ch == '#' || isspace(ch)) {
        if (ch == '#')
            while ((ch = next(b)) != EOF && ch != '\n')
                ;
        ch = next(b);
    }
    if (!isdigit(ch))
        return -1;
    long x = 0;
    for (; isdigit(ch) && x < 100000000; ch = next(b))
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

/* Decodes a 16-bit binary PNM (the len bytes at p) into w*h*c interleaved bytes. */
static uint8_t *pnm16_load(const uint8_t *p, size_t len, int w, int h, int c)
{
    struct bytes b = {p, len, 0};
    long pw, ph, maxv;
    int n = next(&b) == 'P' && next(&b) == '6' ? 3 : 1;
    b.i = 2;
    if (pnm_number(&b, &pw) || pnm_number(&b, &ph) || pnm_number(&b, &maxv) || pw != w || ph != h)
        return NULL;
    size_t px = (size_t)w * (size_t)h;
    if ((b.n - b.i) / (2 * (size_t)n) < px)
        return NULL; /* truncated */
    uint8_t *out = malloc(px * (size_t)c);
    if (!out)
        return NULL;
    const uint8_t *raw = p + b.i;
    for (size_t i = 0; i < px; i++) {
        uint16_t v[3];
        for (int k = 0; k < n; k++)
            v[k] = (uint16_t)(raw[2 * (i * (size_t)n + (size_t)k)] << 8 |
                              raw[2 * (i * (size_t)n + (size_t)k) + 1]);
        pixel16(out + i * (size_t)c, v, n, c);
    }
    return out;
}

static int is_pnm16(const uint8_t *p, size_t n)
{
    return n >= 2 && p[0] == 'P' && (p[1] == '5' || p[1] == '6') &&
           stbi_is_16_bit_from_memory(p, (int)n);
}

/* Decodes the n bytes at p (header checked: iw x ih) into malloc'd interleaved c-channel bytes. */
static uint8_t *decode(const uint8_t *p, size_t n, int iw, int ih, int c, const char *path,
                       cn_error *e)
{
    uint8_t *px;
    if (is_pnm16(p, n)) {
        px = pnm16_load(p, n, iw, ih, c);
        if (!px)
            cn_fail(e, "%s: cannot decode 16-bit PNM: truncated or corrupt file?", path);
        return px;
    }
    int w, h, nc;
    px = stbi_load_from_memory(p, (int)n, &w, &h, &nc, c);
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

/* The common PNG (png.h) of the n bytes in s into s->px, w x h x c bytes, CHW. Returns 0, or
 * -1 when the file is not one or png_decode has a doubt: stb_image then decodes it. */
static int decode_common(struct image_scratch *s, size_t n, int c, int *w, int *h)
{
    struct png_header hd;
    if (!png_common(s->file, n, &hd) || !within_limits(hd.w, hd.h))
        return -1;
    size_t need = (size_t)hd.w * (size_t)hd.h * (size_t)c;
    if (cn_reserve(&s->px, &s->px_cap, need, 0, 0) ||
        png_decode(s->px, c, s->file, n, &hd, &s->png))
        return -1;
    *w = hd.w;
    *h = hd.h;
    return 0;
}

/* The file in s (n bytes, stbcheck.h's scans passed) decoded by stb_image into s->px. */
static int decode_stb(struct image_scratch *s, size_t n, const char *path, int c, int *w, int *h,
                      cn_error *e)
{
    int iw = 0, ih = 0;
    if (header_checked(s, n, path, &iw, &ih, e))
        return -1;
    uint8_t *px = decode(s->file, n, iw, ih, c, path, e);
    if (!px)
        return -1;
    size_t pixels = (size_t)iw * (size_t)ih;
    if (c > 1) { /* one channel: interleaved is planar already */
        uint8_t *chw = malloc(pixels * (size_t)c);
        if (!chw) {
            free(px);
            return cn_fail(e, "%s: out of memory for a %dx%dx%d image", path, iw, ih, c);
        }
        hwc_to_chw(chw, px, pixels, c);
        free(px);
        px = chw;
    }
    free(s->px);
    s->px = px;
    s->px_cap = pixels * (size_t)c;
    *w = iw;
    *h = ih;
    return 0;
}

int image_decode_into(const uint8_t **out, int *w, int *h, const char *path, int c,
                      struct image_scratch *s, cn_error *e)
{
    CN_ASSERT(c >= 1 && c <= 4);
    *out = NULL;
    size_t n;
    if (read_file(s, &n, path, 0, e) || stb_check(s->file, n, path, e))
        return -1;
    if (decode_common(s, n, c, w, h) && decode_stb(s, n, path, c, w, h, e))
        return -1;
    *out = s->px;
    return 0;
}

int image_decode_with(uint8_t **out, int *w, int *h, const char *path, int c,
                      struct image_scratch *s, cn_error *e)
{
    const uint8_t *px;
    *out = NULL;
    if (image_decode_into(&px, w, h, path, c, s, e))
        return -1;
    *out = s->px; /* the caller takes the buffer: the next decode allocates another */
    s->px = NULL;
    s->px_cap = 0;
    return 0;
}

int image_decode(uint8_t **out, int *w, int *h, const char *path, int c, cn_error *e)
{
    struct image_scratch s = {0};
    int rc = image_decode_with(out, w, h, path, c, &s, e);
    image_scratch_free(&s);
    return rc;
}

int image_load_u8(uint8_t *dst, const char *path, int w, int h, int c, cn_error *e)
{
    CN_ASSERT(w >= 1 && h >= 1 && c >= 1 && c <= 4);
    uint8_t *px;
    int iw, ih;
    if (image_decode(&px, &iw, &ih, path, c, e))
        return -1;
    int bad = 0;
    if (iw != w || ih != h)
        bad = image_resize_u8(dst, w, h, px, iw, ih, c);
    else
        memcpy(dst, px, (size_t)w * (size_t)h * (size_t)c);
    free(px);
    if (bad)
        return cn_fail(e, "%s: out of memory resizing %dx%d to %dx%d", path, iw, ih, w, h);
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

/* First pass of Darknet's resize_image: every row of src (iw wide) to w columns. */
static void darknet_columns(float *part, int w, const float *src, int iw, int ih, int c)
{
    float ws = w > 1 ? (float)(iw - 1) / (float)(w - 1) : 0.f;
    for (int k = 0; k < c; k++)
        for (int r = 0; r < ih; r++) {
            const float *row = src + ((size_t)k * (size_t)ih + (size_t)r) * (size_t)iw;
            float *out = part + ((size_t)k * (size_t)ih + (size_t)r) * (size_t)w;
            for (int x = 0; x < w; x++) {
                if (x == w - 1 || iw == 1) {
                    out[x] = row[iw - 1];
                    continue;
                }
                float sx = x * ws;
                int ix = (int)sx;
                float dx = sx - ix;
                out[x] = (1 - dx) * row[ix] + dx * row[ix + 1];
            }
        }
}

int image_resize_darknet(float *dst, int w, int h, const float *src, int iw, int ih, int c)
{
    float *part = malloc(sizeof *part * (size_t)w * (size_t)ih * (size_t)c);
    if (!part)
        return -1;
    darknet_columns(part, w, src, iw, ih, c);
    float hs = h > 1 ? (float)(ih - 1) / (float)(h - 1) : 0.f;
    for (int k = 0; k < c; k++)
        for (int r = 0; r < h; r++) {
            float sy = r * hs;
            int iy = (int)sy;
            float dy = sy - iy;
            const float *p0 = part + ((size_t)k * (size_t)ih + (size_t)iy) * (size_t)w;
            float *out = dst + ((size_t)k * (size_t)h + (size_t)r) * (size_t)w;
            for (int x = 0; x < w; x++)
                out[x] = (1 - dy) * p0[x];
            if (r == h - 1 || ih == 1)
                continue;
            for (int x = 0; x < w; x++)
                out[x] += dy * p0[(size_t)w + (size_t)x];
        }
    free(part);
    return 0;
}

int image_letterbox_darknet(float *dst, int w, int h, const float *src, int iw, int ih, int c)
{
    int nw = iw, nh = ih;
    if ((float)w / (float)iw < (float)h / (float)ih) {
        nw = w;
        nh = (int)((long long)ih * w / iw);
    } else {
        nh = h;
        nw = (int)((long long)iw * h / ih);
    }
    nw = nw < 1 ? 1 : nw;
    nh = nh < 1 ? 1 : nh;
    float *resized = malloc(sizeof *resized * (size_t)nw * (size_t)nh * (size_t)c);
    if (!resized)
        return -1;
    if (image_resize_darknet(resized, nw, nh, src, iw, ih, c)) {
        free(resized);
        return -1;
    }
    size_t n = (size_t)w * (size_t)h * (size_t)c;
    for (size_t i = 0; i < n; i++)
        dst[i] = .5f;
    int dx = (w - nw) / 2, dy = (h - nh) / 2;
    for (int k = 0; k < c; k++)
        for (int y = 0; y < nh; y++)
            memcpy(dst + ((size_t)k * (size_t)h + (size_t)(y + dy)) * (size_t)w + (size_t)dx,
                   resized + ((size_t)k * (size_t)nh + (size_t)y) * (size_t)nw,
                   sizeof *dst * (size_t)nw);
    free(resized);
    return 0;
}
