/* file_floor.c - what one image of a list costs the loader's thread, split into its parts, so the
 * first epoch's ceiling (training CPU per image / (that + the loader's)) rests on a measured
 * floor rather than a guess. One thread, CPU time of that thread (CLOCK_THREAD_CPUTIME_ID: user
 * and system), per file, best of PASSES passes over the list in a seeded shuffled order
 * (as the loader reads an epoch), after one untimed pass that brings every file into the page
 * cache:
 *   read    - open, read and close only, as image.c reads a file (openat relative to the
 *             directory, kept open; one read into a buffer kept from file to file; no fstat):
 *             the kernel's share, which no decoder can remove;
 *   decode  - the decode alone, from the bytes already in memory (png.h for the common PNG,
 *             stb_image for the rest): the user-space share;
 *   loader  - image_decode_into, the loader's call for one image: read, checks and decode.
 *   file_floor LIST [CHANNELS [PASSES]]   (LIST: one image path per line, first field; CHANNELS:
 *   the channels decoded to, as the cfg's channels=, default 1; PASSES default 5)
 * Built and run by bench/train_loader.sh (its floor row). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stb_image.h>

#include "data/image.h"
#include "data/png.h"

struct files {
    char **path;
    uint8_t **bytes; /* the file's contents, for the decode pass */
    size_t *len;
    int n;
};

/* This thread's CPU time, user and system. Only the sum is exact: the kernel splits it between
 * the two by sampling at its ticks, which for calls of a few microseconds says little. */
static double thread_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int list_read(struct files *f, const char *list)
{
    FILE *fp = fopen(list, "r");
    if (!fp)
        return -1;
    char line[4096];
    int cap = 0;
    while (fgets(line, sizeof line, fp)) {
        char *p = strtok(line, " \t\r\n");
        if (!p)
            continue;
        if (f->n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **grown = realloc(f->path, (size_t)cap * sizeof *f->path);
            if (!grown) {
                fclose(fp);
                return -1;
            }
            f->path = grown;
        }
        if (!(f->path[f->n++] = strdup(p))) {
            fclose(fp);
            return -1;
        }
    }
    fclose(fp);
    f->bytes = calloc((size_t)f->n, sizeof *f->bytes);
    f->len = calloc((size_t)f->n, sizeof *f->len);
    return f->n && f->bytes && f->len ? 0 : -1;
}

/* Seeded Fisher-Yates with xorshift64: the same order every run. */
static void shuffle(int *order, int n)
{
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int j = (int)(x % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j], order[j] = t;
    }
}

/* The read pass's file read: image.c's open_image and read_file, without the error reports. */
struct reader {
    char dir[4096];
    int dir_fd;
    uint8_t buf[1 << 16];
};

static ssize_t read_one(struct reader *r, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) + 1 : 0;
    int relative =
        slash && len < sizeof r->dir; /* else the whole path, as image.c without memory */
    if (relative && (r->dir_fd < 0 || strncmp(r->dir, path, len) || r->dir[len])) {
        if (r->dir_fd >= 0)
            close(r->dir_fd);
        memcpy(r->dir, path, len);
        r->dir[len] = '\0';
        r->dir_fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    int fd = relative && r->dir_fd >= 0 ? openat(r->dir_fd, slash + 1, O_RDONLY | O_CLOEXEC)
                                        : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, r->buf, sizeof r->buf);
    close(fd);
    return got;
}

static int decode_one(const uint8_t *p, size_t n, int c, uint8_t *px, size_t px_cap,
                      struct png_scratch *s)
{
    struct png_header hd;
    if (png_common(p, n, &hd) && (size_t)hd.w * hd.h * c <= px_cap)
        return png_decode(px, c, p, n, &hd, s);
    int w, h, comp;
    uint8_t *q = stbi_load_from_memory(p, (int)n, &w, &h, &comp, c);
    free(q);
    return q ? 0 : -1;
}

enum pass { READ, DECODE, LOADER };

/* One timed pass of kind k over f in order; returns the CPU seconds of this thread; *bad counts
 * the files that failed. */
static double run_pass(enum pass k, struct files *f, const int *order, int c, struct reader *r,
                       struct image_scratch *is, uint8_t *px, size_t px_cap, int *bad)
{
    double t0 = thread_seconds();
    for (int i = 0; i < f->n; i++) {
        int j = order[i];
        if (k == READ) {
            *bad += read_one(r, f->path[j]) <= 0;
        } else if (k == DECODE) {
            *bad += decode_one(f->bytes[j], f->len[j], c, px, px_cap, &is->png) != 0;
        } else {
            const uint8_t *out;
            int w, h;
            cn_error e;
            *bad += image_decode_into(&out, &w, &h, f->path[j], c, is, &e) != 0;
        }
    }
    return thread_seconds() - t0;
}

/* The untimed pass: every file read once (page cache) and kept for the decode pass. */
static int load_all(struct files *f, struct reader *r)
{
    for (int i = 0; i < f->n; i++) {
        ssize_t got = read_one(r, f->path[i]);
        if (got <= 0 || got == (ssize_t)sizeof r->buf) {
            fprintf(stderr, "file_floor: %s: cannot read, or larger than %zu bytes\n", f->path[i],
                    sizeof r->buf);
            return -1;
        }
        f->len[i] = (size_t)got;
        f->bytes[i] = malloc((size_t)got);
        if (!f->bytes[i])
            return -1;
        memcpy(f->bytes[i], r->buf, (size_t)got);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: file_floor LIST [CHANNELS [PASSES]]\n");
        return 1;
    }
    int c = argc >= 3 ? atoi(argv[2]) : 1, passes = argc == 4 ? atoi(argv[3]) : 5;
    if (c < 1 || c > 4 || passes < 1) {
        fprintf(stderr, "file_floor: CHANNELS must be 1 to 4 and PASSES at least 1\n");
        return 1;
    }
    struct files f = {0};
    if (list_read(&f, argv[1])) {
        fprintf(stderr, "file_floor: %s: cannot read the list, or it names no file\n", argv[1]);
        return 1;
    }
    struct reader *r = malloc(sizeof *r); /* 64 KiB: not on the stack */
    struct image_scratch is = {0};
    size_t px_cap = (size_t)1 << 26;
    uint8_t *px = malloc(px_cap);
    int *order = malloc((size_t)f.n * sizeof *order);
    if (!r || !px || !order)
        return 1;
    r->dir_fd = -1;
    if (load_all(&f, r))
        return 1;
    shuffle(order, f.n);
    static const char *name[] = {"read (open, read, close)", "decode (from memory)",
                                 "loader (image_decode_into)"};
    for (int k = READ; k <= LOADER; k++) {
        double best = 1e30;
        int bad = 0;
        for (int p = 0; p < passes; p++) {
            double t = run_pass((enum pass)k, &f, order, c, r, &is, px, px_cap, &bad);
            if (t < best)
                best = t;
        }
        printf("%-28s %7.2f us of CPU per file, %d files, best of %d%s\n", name[k],
               1e6 * best / f.n, f.n, passes, bad ? " (some files failed)" : "");
    }
    return 0;
}
