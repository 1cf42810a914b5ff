/* bench/winograd.c - Winograd 3x3 convolution (kernels/winograd.h) F(4x4) and F(2x2) against the
 * implicit GEMM with packed weights (what an inference net's [convolutional] runs otherwise:
 * gemm_conv_packed) and im2col + GEMM, on the 3x3 stride-1 layers of ResNet-18/34, DenseNet-201
 * (Darknet's densenet201.cfg: 128 -> 32 channels at 64, 32, 16 and 8) and VGG-16.
 *
 * Build and run (from the top of the tree, after `make BUILD=build/winograd`):
 *   gcc -std=c11 -O3 -fopenmp -D_POSIX_C_SOURCE=200809L -Isrc bench/winograd.c \
 *       build/winograd/libcfgnet.a -lm -o build/winograd/bench_winograd
 *   build/winograd/bench_winograd [-batch N] [-threads N] [-reps N] [-vgg] [-dense] [-shape C,H,F]
 * Times are the best of -reps runs: per-thread CPU time (CLOCK_THREAD_CPUTIME_ID) with one
 * thread, since the machine is shared and wall clock is noise; wall clock with more threads.
 * The methods run interleaved within each repeat, so a slow spell hits them alike.
 * GFLOP/s count direct-convolution FLOPs (2 * F * C * 9 * OH * OW per image) for all, so the
 * Winograd figures are effective rates. "filt" is F(4x4)'s filter transform alone (redone per
 * weight change: every training step, once in inference); the winograd columns exclude it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/common.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "kernels/winograd.h"

#ifdef _OPENMP
#include <omp.h>
#endif

struct shape3 {
    const char *net;
    int c, h, f;
};

static const struct shape3 shapes[] = {
    {"resnet", 64, 56, 64},  {"resnet", 128, 28, 128}, {"resnet", 256, 14, 256},
    {"resnet", 512, 7, 512}, {"dense", 128, 64, 32},   {"dense", 128, 32, 32},
    {"dense", 128, 16, 32},  {"dense", 128, 8, 32},    {"vgg16", 3, 224, 64},
    {"vgg16", 64, 224, 64},  {"vgg16", 64, 112, 128},  {"vgg16", 128, 112, 128},
    {"vgg16", 128, 56, 256}, {"vgg16", 256, 56, 256},  {"vgg16", 256, 28, 512},
    {"vgg16", 512, 28, 512}, {"vgg16", 512, 14, 512},
};

static double now(int threads)
{
    struct timespec ts;
    clock_gettime(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *filled(size_t n, unsigned seed)
{
    float *p = xmalloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
    return p;
}

/* conv.c's unpacked GEMM path: per image, im2col then weights[F x 9C] * col[9C x P]. */
static void im2col_conv(float *out, const float *in, const float *w, float *col, int batch,
                        const struct im2col_geom *g, int f)
{
    int R = g->c * 9, P = g->oh * g->ow;
    for (int b = 0; b < batch; b++) {
        im2col(col, in + (size_t)b * g->c * g->h * g->w, g);
        gemm(out + (size_t)b * f * P, P, w, R, 0, col, P, 0, f, P, R, 1, 0);
    }
}

/* conv.c's inference path: per image, the implicit GEMM with the weights packed once. */
static void implicit_conv(float *out, const float *in, const float *wp, int batch,
                          const struct im2col_geom *g, int f)
{
    int P = g->oh * g->ow;
    for (int b = 0; b < batch; b++)
        gemm_conv_packed(out + (size_t)b * f * P, P, wp, in + (size_t)b * g->c * g->h * g->w, g,
                         f, 1, 0, NULL, NULL, ACT_LINEAR);
}

struct opts {
    int batch, threads, reps, vgg, dense;
    struct shape3 one; /* -shape C,H,F: this one alone (c 0: the tables) */
};

/* One Winograd variant's geometry, filters and workspace. */
struct wino_run {
    struct winograd_geom g;
    float *U, *work;
};

static int wino_run_init(struct wino_run *r, enum winograd_variant v, const struct shape3 *s,
                         int batch, const float *w)
{
    if (winograd_geom_init(&r->g, v, batch, s->c, s->h, s->h, s->f, 1, 1))
        return -1;
    r->U = xmalloc(sizeof(float) * winograd_filter_floats(&r->g));
    r->work = xmalloc(sizeof(float) * winograd_workspace_floats(&r->g));
    winograd_filters(r->U, w, &r->g);
    return 0;
}

enum { T_FILT, T_F4, T_F2, T_IMPL, T_COL, T_COUNT };

static void bench_report(const struct shape3 *s, const struct opts *o, const double *best, int oh)
{
    double fl = 2.0 * s->f * s->c * 9.0 * oh * oh * o->batch * 1e-9;
    printf("%-6s %4dx%3dx%-3d -> %-4d b%-3d filt %6.2f ms  F4 %7.3f ms %6.1f  F2 %7.3f ms %6.1f  "
           "implicit %7.3f ms %6.1f  im2col %7.3f ms %6.1f GF/s\n",
           s->net, s->c, s->h, s->h, s->f, o->batch, 1e3 * best[T_FILT], 1e3 * best[T_F4],
           fl / best[T_F4], 1e3 * best[T_F2], fl / best[T_F2], 1e3 * best[T_IMPL],
           fl / best[T_IMPL], 1e3 * best[T_COL], fl / best[T_COL]);
    fflush(stdout);
}

static void bench_shape(const struct shape3 *s, const struct opts *o)
{
    struct wino_run f4, f2;
    struct im2col_geom ig;
    float *w = filled((size_t)s->f * s->c * 9, 2);
    if (wino_run_init(&f4, WINOGRAD_F4, s, o->batch, w) ||
        wino_run_init(&f2, WINOGRAD_F2, s, o->batch, w) ||
        im2col_geom_init(&ig, s->c, s->h, s->h, 3, 3, 1, 1, 1, 1, 1, 1))
        return;
    size_t nin = (size_t)o->batch * s->c * s->h * s->h, nout = (size_t)o->batch * s->f * s->h * s->h;
    float *in = filled(nin, 1), *out = xmalloc(sizeof(float) * nout);
    float *wp = xmalloc(sizeof(float) * gemm_packed_a_floats(s->f, s->c * 9));
    float *col = xmalloc(sizeof(float) * im2col_rows(&ig) * im2col_cols(&ig));
    gemm_pack_a_all(wp, w, s->c * 9, 0, s->f, s->c * 9);
    double best[T_COUNT];
    for (int k = 0; k < T_COUNT; k++)
        best[k] = 1e30;
    for (int r = 0; r < o->reps; r++) {
        double t[T_COUNT + 1];
        t[0] = now(o->threads);
        winograd_filters(f4.U, w, &f4.g);
        t[1] = now(o->threads);
        winograd_conv(out, 0, in, f4.U, f4.work, &f4.g);
        t[2] = now(o->threads);
        winograd_conv(out, 0, in, f2.U, f2.work, &f2.g);
        t[3] = now(o->threads);
        implicit_conv(out, in, wp, o->batch, &ig, s->f);
        t[4] = now(o->threads);
        im2col_conv(out, in, w, col, o->batch, &ig, s->f);
        t[5] = now(o->threads);
        for (int k = 0; k < T_COUNT; k++)
            best[k] = CN_MIN(best[k], t[k + 1] - t[k]);
    }
    bench_report(s, o, best, ig.oh);
    free(in), free(w), free(out), free(wp), free(col);
    free(f4.U), free(f4.work), free(f2.U), free(f2.work);
}

static int bench_parse(struct opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-vgg"))
            o->vgg = 1;
        else if (!strcmp(argv[i], "-dense"))
            o->dense = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "-shape")) {
            o->one.net = "shape";
            if (sscanf(argv[++i], "%d,%d,%d", &o->one.c, &o->one.h, &o->one.f) != 3)
                o->one.c = -1;
        } else if (i + 1 < argc && !strcmp(argv[i], "-batch"))
            o->batch = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "-threads"))
            o->threads = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "-reps"))
            o->reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [-batch N] [-threads N] [-reps N] [-vgg] [-dense] [-shape C,H,F]\n",
                    argv[0]);
            return -1;
        }
    }
    if (o->batch < 1 || o->threads < 1 || o->reps < 1 || o->one.c < 0 || o->one.h < 0 ||
        o->one.f < 0) {
        fprintf(stderr, "%s: -batch, -threads, -reps and -shape's sizes must be >= 1\n", argv[0]);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {1, 1, 3, 0, 0, {NULL, 0, 0, 0}};
    if (bench_parse(&o, argc, argv))
        return 1;
#ifdef _OPENMP
    omp_set_num_threads(o.threads);
#endif
    printf("threads %d, best of %d, %s clock; GF/s by direct-convolution FLOPs\n", o.threads,
           o.reps, o.threads == 1 ? "thread CPU" : "wall");
    if (o.one.c)
        bench_shape(&o.one, &o);
    for (size_t i = 0; !o.one.c && i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].net, "resnet") || (o.vgg && !strcmp(shapes[i].net, "vgg16")) ||
            (o.dense && !strcmp(shapes[i].net, "dense")))
            bench_shape(&shapes[i], &o);
    return 0;
}
