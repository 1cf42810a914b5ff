/* weights.c - Darknet's .weights format (parser.c save_weights / load_weights).
 *
 * Layout, little-endian as Darknet writes it on every machine it runs on:
 *   int32 major, int32 minor, int32 revision
 *   seen (images trained on): uint64 when major * 10 + minor >= 2, else int32
 *   every parameter tensor of the net as float32, in the order the layers declared them, which
 *   is Darknet's: conv = biases, [scales, rolling_mean, rolling_variance], weights;
 *   connected = biases, weights, [scales, rolling_mean, rolling_variance].
 * There is no per-tensor framing, so the only check Darknet's format allows on the structure is
 * the total size; it is checked exactly against the cfg, with a hint when it does not match.
 *
 * Written: 0.2.0 (as Darknet). Read: major 0 with minor 0, 1 or 2 and any revision (AlexeyAB's
 * fork writes 0.2.5). Rejected: other majors, and files with major or minor > 1000, Darknet's
 * mark for [connected] weights stored transposed, which this reader does not undo.
 */
#include "net/weights.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "weights.c reads and writes native byte order, and .weights files are little-endian"
#endif

#define WEIGHTS_MAJOR 0
#define WEIGHTS_MINOR 2
#define WEIGHTS_REVISION 0
#define HEADER_VERSION 12 /* three int32 */
#define HEADER_SEEN64 20  /* ... then a uint64 seen */
#define HEADER_SEEN32 16  /* ... then an int32 seen (versions before 0.2) */
#define TRANSPOSED_MARK 1000

struct header {
    int32_t major, minor, revision;
    size_t size; /* bytes, with seen */
};

/* Floats the .weights file of n holds after its header: every declared parameter. */
static size_t weights_floats(const struct net *n)
{
    size_t total = 0;
    for (int i = 0; i < n->nparams; i++)
        total += n->params[i].n;
    return total;
}

int weights_save(const struct net *n, const char *path, cn_error *e)
{
    unsigned char head[HEADER_SEEN64];
    const int32_t version[3] = {WEIGHTS_MAJOR, WEIGHTS_MINOR, WEIGHTS_REVISION};
    const uint64_t seen = n->seen;
    memcpy(head, version, sizeof version);
    memcpy(head + HEADER_VERSION, &seen, sizeof seen);
    struct fileio_chunk *chunks = xcalloc((size_t)n->nparams + 1, sizeof *chunks);
    chunks[0] = (struct fileio_chunk){head, sizeof head};
    for (int i = 0; i < n->nparams; i++)
        chunks[i + 1] = (struct fileio_chunk){n->params[i].data, sizeof(float) * n->params[i].n};
    int rc = fileio_write_atomic(path, chunks, n->nparams + 1, e);
    free(chunks);
    return rc;
}

static int size_mismatch(const struct net *n, const char *path, uint64_t size, size_t header,
                         size_t floats, cn_error *e)
{
    return cn_fail(e,
                   "%s: %llu bytes, but %s needs %llu (header %zu + %zu floats); is this the "
                   "weights file of another cfg?",
                   path, (unsigned long long)size, n->cfg_path,
                   (unsigned long long)header + 4ull * (unsigned long long)floats, header, floats);
}

static int check_version(const struct header *h, const char *path, cn_error *e)
{
    if (h->major > TRANSPOSED_MARK || h->minor > TRANSPOSED_MARK)
        return cn_fail(e,
                       "%s: version %d.%d.%d marks [connected] weights stored transposed "
                       "(Darknet's major or minor > %d), which this reader does not support",
                       path, h->major, h->minor, h->revision, TRANSPOSED_MARK);
    if (h->major != 0 || h->minor < 0 || h->minor > WEIGHTS_MINOR)
        return cn_fail(e,
                       "%s: unknown .weights version %d.%d.%d; expected Darknet's 0.0, 0.1 or "
                       "0.2.x",
                       path, h->major, h->minor, h->revision);
    return 0;
}

/* fread of count items, or a message: an I/O error, or the file shrank after its size was taken. */
static int read_exact(FILE *f, void *dst, size_t size, size_t count, const char *path,
                      const char *what, cn_error *e)
{
    if (count == 0 || fread(dst, size, count, f) == count)
        return 0;
    return cn_fail(e, "%s: cannot read %s: %s", path, what,
                   ferror(f) ? strerror(errno) : "the file shrank while being read");
}

/* Reads the version and seen, and checks the file size against what n needs. */
static int read_header(FILE *f, const struct net *n, const char *path, uint64_t size,
                       uint64_t *seen, cn_error *e)
{
    size_t floats = weights_floats(n);
    int32_t v[3];
    if (size < HEADER_VERSION)
        return size_mismatch(n, path, size, HEADER_SEEN64, floats, e);
    if (read_exact(f, v, sizeof v, 1, path, "the version", e))
        return -1;
    struct header h = {v[0], v[1], v[2], 0};
    if (check_version(&h, path, e))
        return -1;
    h.size = h.major * 10 + h.minor >= 2 ? HEADER_SEEN64 : HEADER_SEEN32;
    if (size != h.size + 4ull * floats)
        return size_mismatch(n, path, size, h.size, floats, e);
    if (h.size == HEADER_SEEN64)
        return read_exact(f, seen, sizeof *seen, 1, path, "seen", e);
    int32_t seen32;
    if (read_exact(f, &seen32, sizeof seen32, 1, path, "seen", e))
        return -1;
    if (seen32 < 0)
        return cn_fail(e, "%s: version %d.%d header says seen = %d images, a negative count", path,
                       h.major, h.minor, seen32);
    *seen = (uint64_t)seen32;
    return 0;
}

/* Checks the values in buf (laid out as in the file) before any of them reaches the net. */
static int check_values(const struct net *n, const float *buf, const char *path, cn_error *e)
{
    for (int i = 0; i < n->nparams; i++) {
        const struct param *p = &n->params[i];
        const char *type = n->layers[p->layer].ops->name;
        int variance = !strcmp(p->name, "rolling_variance");
        for (size_t j = 0; j < p->n; j++) {
            if (!isfinite(buf[j]))
                return cn_fail(e,
                               "%s: layer %d (%s) %s[%zu] is %g; the file is damaged or "
                               "comes from a run that diverged",
                               path, p->layer, type, p->name, j, (double)buf[j]);
            if (variance && buf[j] < 0)
                return cn_fail(e, "%s: layer %d (%s) %s[%zu] = %g; a variance cannot be negative",
                               path, p->layer, type, p->name, j, (double)buf[j]);
        }
        buf += p->n;
    }
    return 0;
}

/* Reads the whole file into buf (weights_floats(n) floats) and *seen, with every check. */
static int read_checked(const struct net *n, const char *path, float *buf, uint64_t *seen,
                        cn_error *e)
{
    uint64_t size;
    if (fileio_size(path, &size, e))
        return -1;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cn_fail(e, "%s: cannot open: %s", path, strerror(errno));
    size_t floats = weights_floats(n);
    int rc = read_header(f, n, path, size, seen, e);
    if (!rc)
        rc = read_exact(f, buf, sizeof(float), floats, path, "the parameters", e);
    fclose(f);
    return rc ? rc : check_values(n, buf, path, e);
}

int weights_load(struct net *n, const char *path, cn_error *e)
{
    float *buf = cn_alloc_floats(weights_floats(n), "weights", e);
    if (!buf)
        return cn_wrap(e, "%s", path);
    uint64_t seen = 0;
    int rc = read_checked(n, path, buf, &seen, e);
    if (!rc) {
        const float *src = buf;
        for (int i = 0; i < n->nparams; i++) {
            memcpy(n->params[i].data, src, sizeof(float) * n->params[i].n);
            src += n->params[i].n;
        }
        net_params_changed(n);
        n->seen = seen;
    }
    cn_free_floats(buf);
    return rc;
}
