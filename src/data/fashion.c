/* fashion.c - Fashion-MNIST IDX files to PNGs and lists. See fashion.h for the layout.
 *
 * A set is N images (N x 28 x 28 bytes) and N labels; N is whatever the files say (60,000 and
 * 10,000 for the real data), at most 99,999 so that five digits name every image.
 */
#include "data/fashion.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "core/fileio.h"
#include "data/idx.h"

#define FASHION_MAX_IMAGES 99999
#define FASHION_PATH_MAX 4096

static const char *const fashion_labels[FASHION_CLASSES] = {
    "tee", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot",
};

const char *fashion_label(int k)
{
    CN_ASSERT(k >= 0 && k < FASHION_CLASSES);
    return fashion_labels[k];
}

struct fashion_set {
    const char *name; /* "train" or "test": the output directory and list */
    struct idx_array images, labels;
};

/* Reads one set's two files and checks them against each other. */
static int set_read(struct fashion_set *s, const char *src, const char *prefix, cn_error *e)
{
    char ip[FASHION_PATH_MAX], lp[FASHION_PATH_MAX], name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", prefix);
    if (fileio_join(ip, FASHION_PATH_MAX, src, name, e))
        return -1;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte.gz", prefix);
    if (fileio_join(lp, FASHION_PATH_MAX, src, name, e) || idx_read_gz(&s->images, ip, 3, e) ||
        idx_read_gz(&s->labels, lp, 1, e))
        return -1;
    uint32_t n = s->images.dim[0];
    if (s->images.dim[1] != FASHION_SIDE || s->images.dim[2] != FASHION_SIDE)
        return cn_fail(e, "%s: images are %ux%u, expected %dx%d", ip, s->images.dim[1],
                       s->images.dim[2], FASHION_SIDE, FASHION_SIDE);
    if (n > FASHION_MAX_IMAGES)
        return cn_fail(e, "%s: %u images, more than %d", ip, n, FASHION_MAX_IMAGES);
    if (s->labels.dim[0] != n)
        return cn_fail(e, "%s: %u labels, but %s has %u images", lp, s->labels.dim[0], ip, n);
    for (uint32_t i = 0; i < n; i++)
        if (s->labels.data[i] >= FASHION_CLASSES)
            return cn_fail(e, "%s: label %u of item %u is not in 0..%d", lp, s->labels.data[i], i,
                           FASHION_CLASSES - 1);
    return 0;
}

/* "dst/<set>/NNNNN_<label>.png" */
static int image_path(char *out, const char *dst, const struct fashion_set *s, int i)
{
    char rest[64];
    snprintf(rest, sizeof rest, "%s/%05d_%s.png", s->name, i, fashion_labels[s->labels.data[i]]);
    return fileio_join(out, FASHION_PATH_MAX, dst, rest, NULL);
}

/* Writes every image of s as a PNG, in parallel; reports the first failure by index. */
static int set_write_pngs(const struct fashion_set *s, const char *dst, cn_error *e)
{
    int n = (int)s->labels.dim[0], first_bad = -1, bad_errno = 0;
    const size_t px = FASHION_SIDE * FASHION_SIDE;
#pragma omp parallel for schedule(dynamic, 64)
    for (int i = 0; i < n; i++) {
        char path[FASHION_PATH_MAX];
        errno = 0;
        int ok =
            !image_path(path, dst, s, i) && stbi_write_png(path, FASHION_SIDE, FASHION_SIDE, 1,
                                                           s->images.data + px * i, FASHION_SIDE);
        int err = errno;
        if (!ok) {
#pragma omp critical(fashion_fail)
            if (first_bad < 0 || i < first_bad) {
                first_bad = i;
                bad_errno = err;
            }
        }
    }
    if (first_bad < 0)
        return 0;
    char path[FASHION_PATH_MAX];
    image_path(path, dst, s, first_bad);
    return cn_fail(e, "%s: cannot write PNG: %s", path,
                   bad_errno ? strerror(bad_errno) : "stb_image_write failed");
}

/* Writes dst/<set>.list (one image path per line) through a temporary file and a rename. */
static int set_write_list(const struct fashion_set *s, const char *dst, cn_error *e)
{
    int n = (int)s->labels.dim[0];
    size_t cap = (size_t)n * (strlen(dst) + 32) + 1, len = 0;
    char *text = xmalloc(cap);
    for (int i = 0; i < n; i++) {
        char path[FASHION_PATH_MAX];
        image_path(path, dst, s, i);
        len += (size_t)snprintf(text + len, cap - len, "%s\n", path);
    }
    char list[FASHION_PATH_MAX], rest[32];
    snprintf(rest, sizeof rest, "%s.list", s->name);
    struct fileio_chunk chunk = {text, len};
    int rc = fileio_join(list, FASHION_PATH_MAX, dst, rest, e) ||
             fileio_write_atomic(list, &chunk, 1, e);
    free(text);
    return rc;
}

/* Removes an old list, creates dst/<set>/. */
static int set_start(const struct fashion_set *s, const char *dst, cn_error *e)
{
    char path[FASHION_PATH_MAX], rest[32];
    snprintf(rest, sizeof rest, "%s.list", s->name);
    if (fileio_join(path, FASHION_PATH_MAX, dst, rest, e))
        return -1;
    if (unlink(path) && errno != ENOENT)
        return cn_fail(e, "%s: cannot remove the old list: %s", path, strerror(errno));
    if (fileio_join(path, FASHION_PATH_MAX, dst, s->name, e))
        return -1;
    if (mkdir(path, 0777) && errno != EEXIST)
        return cn_fail(e, "%s: cannot create directory: %s", path, strerror(errno));
    return 0;
}

int fashion_prepare(const char *src_dir, const char *dst_dir, cn_error *e)
{
    struct fashion_set sets[2] = {{.name = "train"}, {.name = "test"}};
    int rc = set_read(&sets[0], src_dir, "train", e) || set_read(&sets[1], src_dir, "t10k", e) ||
             fileio_check_dir_writable(dst_dir, e) || set_start(&sets[0], dst_dir, e) ||
             set_start(&sets[1], dst_dir, e) || set_write_pngs(&sets[0], dst_dir, e) ||
             set_write_pngs(&sets[1], dst_dir, e) || set_write_list(&sets[1], dst_dir, e) ||
             set_write_list(&sets[0], dst_dir, e);
    for (int i = 0; i < 2; i++) {
        idx_free(&sets[i].images);
        idx_free(&sets[i].labels);
    }
    return rc ? -1 : 0;
}
