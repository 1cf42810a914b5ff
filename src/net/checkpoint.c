/* checkpoint.c - .weights plus .state side files, and the numbered copies of a run (checkpoint.h).
 *
 * The hash ties a state file to the .weights it was written with: the two files are renamed one
 * after the other, so a crash between the renames can pair a new state with old weights (or the
 * reverse), and resuming from such a pair would be silently wrong. FNV-1a (64 bit) over the
 * parameter bytes in .weights order is enough for that: it guards against accidents, not attacks.
 */
#include "net/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "net/weights.h"

#define STATE_MAGIC "CFGNETST"
#define STATE_VERSION 1u
#define STATE_HEADER 96

struct state_header {
    char magic[8];
    uint32_t version, kind;
    uint64_t seen, steps, seed, nparam, nstate, hash;
    uint64_t rng[4];
};
_Static_assert(sizeof(struct state_header) == STATE_HEADER, "state header is 96 packed bytes");

char *checkpoint_name(const char *dir, const char *base, const char *suffix)
{
    size_t len = strlen(dir);
    const char *sep = len && dir[len - 1] == '/' ? "" : "/";
    size_t n = len + strlen(sep) + strlen(base) + strlen(suffix) + 1;
    char *s = xmalloc(n);
    snprintf(s, n, "%s%s%s%s", dir, sep, base, suffix);
    return s;
}

char *checkpoint_state_path(const char *weights_path)
{
    size_t n = strlen(weights_path) + sizeof CHECKPOINT_STATE_SUFFIX;
    char *s = xmalloc(n);
    snprintf(s, n, "%s%s", weights_path, CHECKPOINT_STATE_SUFFIX);
    return s;
}

static uint64_t params_hash(const struct net *n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < n->nparams; i++) {
        const unsigned char *b = (const unsigned char *)n->params[i].data;
        size_t len = sizeof(float) * n->params[i].n;
        for (size_t j = 0; j < len; j++)
            h = (h ^ b[j]) * 0x100000001b3ULL;
    }
    return h;
}

int checkpoint_first_nonfinite_param(const struct net *n)
{
    for (int i = 0; i < n->nparams; i++)
        for (size_t j = 0; j < n->params[i].n; j++)
            if (!isfinite(n->params[i].data[j]))
                return i;
    return -1;
}

static struct state_header header_of(const struct net *n, const struct optimizer *o, uint64_t seed)
{
    struct state_header h = {.version = STATE_VERSION,
                             .kind = (uint32_t)optimizer_kind(o),
                             .seen = n->seen,
                             .steps = optimizer_steps(o),
                             .seed = seed,
                             .nparam = n->nparam_floats,
                             .hash = params_hash(n)};
    memcpy(h.magic, STATE_MAGIC, sizeof h.magic);
    memcpy(h.rng, n->rng.s, sizeof h.rng);
    return h;
}

int checkpoint_save(const struct net *n, const struct optimizer *o, uint64_t data_seed,
                    const char *path, cn_error *e)
{
    int bad = checkpoint_first_nonfinite_param(n);
    if (bad >= 0)
        return cn_fail(e, "%s: not written: layer %d (%s) %s holds a NaN or an infinity", path,
                       n->params[bad].layer, n->layers[n->params[bad].layer].ops->name,
                       n->params[bad].name);
    size_t nstate;
    const float *state = optimizer_state((struct optimizer *)o, &nstate);
    struct state_header h = header_of(n, o, data_seed);
    h.nstate = nstate;
    struct fileio_chunk chunks[2] = {{&h, sizeof h}, {state, sizeof(float) * nstate}};
    char *sp = checkpoint_state_path(path);
    int rc = fileio_write_atomic(sp, chunks, 2, e);
    free(sp);
    return rc ? rc : weights_save(n, path, e);
}

/* The header fields that say which net and optimiser a state file is for. */
static int check_kind(const struct state_header *h, const struct state_header *want, const char *sp,
                      cn_error *e)
{
    if (memcmp(h->magic, STATE_MAGIC, sizeof h->magic))
        return cn_fail(e, "%s: not a cfgnet state file (no " STATE_MAGIC " mark)", sp);
    if (h->version != STATE_VERSION)
        return cn_fail(e, "%s: state version %u, this build reads %u", sp, h->version,
                       STATE_VERSION);
    if (h->kind != want->kind)
        return cn_fail(e, "%s: holds %s state but the cfg trains with %s", sp,
                       optimizer_kind_name((enum optimizer_kind)h->kind),
                       optimizer_kind_name((enum optimizer_kind)want->kind));
    if (h->nparam != want->nparam || h->nstate != want->nstate)
        return cn_fail(e,
                       "%s: state of %llu floats for %llu parameter floats; the cfg needs %llu "
                       "for %llu (the state of another cfg?)",
                       sp, (unsigned long long)h->nstate, (unsigned long long)h->nparam,
                       (unsigned long long)want->nstate, (unsigned long long)want->nparam);
    return 0;
}

/* The fields that tie a state file to its .weights and its run. */
static int check_pairing(const struct state_header *h, const struct state_header *want,
                         const char *sp, const char *wp, cn_error *e)
{
    if (h->seen != want->seen || h->hash != want->hash)
        return cn_fail(e,
                       "%s: written with other weights than %s (seen %llu vs %llu); a crash "
                       "between the two writes? Delete the .state file to resume with a fresh "
                       "optimiser state",
                       sp, wp, (unsigned long long)h->seen, (unsigned long long)want->seen);
    if (h->seed != want->seed)
        return cn_fail(e,
                       "%s: the run used seed %llu for its data order, this one %llu; pass "
                       "-seed %llu to resume it",
                       sp, (unsigned long long)h->seed, (unsigned long long)want->seed,
                       (unsigned long long)h->seed);
    return 0;
}

/* Reads and checks the header of sp, then its exact size, then the values into buf. */
static int read_state(const char *sp, const char *wp, const struct state_header *want,
                      struct state_header *h, float *buf, cn_error *e)
{
    uint64_t size, want_size = STATE_HEADER + 4ull * want->nstate;
    if (fileio_size(sp, &size, e))
        return -1;
    FILE *f = fopen(sp, "rb");
    if (!f)
        return cn_fail(e, "%s: cannot open: %s", sp, strerror(errno));
    int rc = 0;
    if (size < STATE_HEADER || fread(h, sizeof *h, 1, f) != 1)
        rc = cn_fail(e, "%s: %llu bytes, shorter than the %d-byte header of a state file", sp,
                     (unsigned long long)size, STATE_HEADER);
    else if (check_kind(h, want, sp, e))
        rc = -1;
    else if (size != want_size)
        rc = cn_fail(e,
                     "%s: %llu bytes, but the optimiser state of this cfg needs %llu "
                     "(header %d + %llu floats)",
                     sp, (unsigned long long)size, (unsigned long long)want_size, STATE_HEADER,
                     (unsigned long long)want->nstate);
    else if (want->nstate && fread(buf, sizeof(float), want->nstate, f) != want->nstate)
        rc = cn_fail(e, "%s: cannot read: the file shrank or an I/O error occurred", sp);
    fclose(f);
    for (size_t i = 0; !rc && i < want->nstate; i++)
        if (!isfinite(buf[i]))
            rc =
                cn_fail(e, "%s: state value %zu is %g; the file is damaged", sp, i, (double)buf[i]);
    return rc ? rc : check_pairing(h, want, sp, wp, e);
}

static int load_checked(struct net *n, struct optimizer *o, uint64_t seed, const char *sp,
                        const char *wp, cn_error *e)
{
    size_t nstate;
    float *dst = optimizer_state(o, &nstate);
    float *buf = cn_alloc_floats(nstate, "optimiser state", e);
    if (!buf)
        return cn_wrap(e, "%s", sp);
    struct state_header h, want = header_of(n, o, seed);
    want.nstate = nstate;
    int rc = read_state(sp, wp, &want, &h, buf, e);
    if (!rc) {
        memcpy(dst, buf, sizeof(float) * nstate);
        optimizer_set_steps(o, h.steps);
        memcpy(n->rng.s, h.rng, sizeof h.rng);
    }
    cn_free_floats(buf);
    return rc;
}

int checkpoint_load_state(struct net *n, struct optimizer *o, uint64_t data_seed,
                          const char *weights_path, int *restored, cn_error *e)
{
    *restored = 0;
    char *sp = checkpoint_state_path(weights_path);
    int rc = 0;
    if (access(sp, F_OK) == 0) {
        rc = load_checked(n, o, data_seed, sp, weights_path, e);
        *restored = rc == 0;
    } else if (errno != ENOENT) {
        rc = cn_fail(e, "%s: %s", sp, strerror(errno));
    }
    free(sp);
    return rc;
}

/* The number N of "<base>_N.weights", or -1 when name is not one. */
static long long numbered(const char *name, const char *base)
{
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) || name[bl] != '_')
        return -1;
    const char *p = name + bl + 1, *q = p;
    while (*q >= '0' && *q <= '9')
        q++;
    if (q == p || q - p > 18 || strcmp(q, ".weights"))
        return -1;
    return strtoll(p, NULL, 10);
}

static int desc(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x < y) - (x > y);
}

/* Collects the numbers of every numbered checkpoint of base in dir. */
static int list_numbered(const char *dir, const char *base, long long **out, int *n, cn_error *e)
{
    DIR *d = opendir(dir);
    if (!d)
        return cn_fail(e, "%s: cannot list: %s", dir, strerror(errno));
    int cap = 0;
    *out = NULL;
    *n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        long long k = numbered(de->d_name, base);
        if (k < 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *out = xrealloc(*out, sizeof **out * (size_t)cap);
        }
        (*out)[(*n)++] = k;
    }
    closedir(d);
    return 0;
}

int checkpoint_prune(const char *dir, const char *base, int keep, int *removed, cn_error *e)
{
    *removed = 0;
    long long *num = NULL;
    int n = 0;
    if (keep < 1)
        return 0;
    if (list_numbered(dir, base, &num, &n, e))
        return -1;
    qsort(num, (size_t)n, sizeof *num, desc);
    int rc = 0;
    for (int i = keep; i < n && !rc; i++) {
        char suffix[48];
        snprintf(suffix, sizeof suffix, "_%lld.weights", num[i]);
        char *wp = checkpoint_name(dir, base, suffix), *sp = checkpoint_state_path(wp);
        if (unlink(wp) && errno != ENOENT)
            rc = cn_fail(e, "%s: cannot remove: %s", wp, strerror(errno));
        else if (unlink(sp) && errno != ENOENT)
            rc = cn_fail(e, "%s: cannot remove: %s", sp, strerror(errno));
        else
            ++*removed;
        free(wp);
        free(sp);
    }
    free(num);
    return rc;
}
