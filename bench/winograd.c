/* bench/winograd.c - Winograd 3x3 convolution (kernels/winograd.h) against im2col + GEMM (what
 * [convolutional] runs otherwise) on the 3x3 stride-1 layers of ResNet-18/34 and VGG-16.
 *
 * Build and run (from the top of the tree, after `make BUILD=build/winograd`):
 *   gcc -std=c11 -O3 -fopenmp -D_POSIX_C_SOURCE=200809L -Isrc bench/winograd.c \
 *       build/winograd/libcfgnet.a -lm -o build/winograd/bench_winograd
 *   build/winograd/bench_winograd [-batch N] [-threads N] [-reps N] [-vgg]
 * Times are the best of -reps runs: per-thread CPU time (CLOCK_THREAD_CPUTIME_ID) with one
 * thread, since the machine is shared and wall clock is noise; wall clock with more threads.
 * GFLOP/s count direct-convolution FLOPs (2 * F * C * 9 * OH * OW per image) for both, so the
 * Winograd figure is an effective rate. "filt" is the filter transform alone (redone per weight
 * change: every training step, once in inference); the winograd column excludes it.
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
    {"resnet", 512, 7, 512}, {"vgg16", 3, 224, 64},    {"vgg16", 64, 224, 64},
    {"vgg16", 64, 112, 128}, {"vgg16", 128, 112, 128}, {"vgg16", 128, 56, 256},
    {"vgg16", 256, 56, 256}, {"vgg16", 256, 28, 512},  {"vgg16", 512, 28, 512},
    {"vgg16", 512, 14, 512},
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

/* conv.c's GEMM path: per image, im2col then weights[F x 9C] * col[9C x P]. */
static void im2col_conv(float *out, const float *in, const float *w, float *col, int batch,
                        const struct im2col_geom *g, int f)
{
    int R = g->c * 9, P = g->oh * g->ow;
    for (int b = 0; b < batch; b++) {
        im2col(col, in + (size_t)b * g->c * g->h * g->w, g);
        gemm(out + (size_t)b * f * P, P, w, R, 0, col, P, 0, f, P, R, 1, 0);
    }
}

struct opts {
    int batch, threads, reps, vgg;
};

static void bench_shape(const struct shape3 *s, const struct opts *o)
{
    struct winograd_geom g;
    struct im2col_geom ig;
    if (winograd_geom_init(&g, WINOGRAD_F4, o->batch, s->c, s->h, s->h, s->f, 1, 1) ||
        im2col_geom_init(&ig, s->c, s->h, s->h, 3, 3, 1, 1, 1, 1, 1, 1))
        return;
    size_t nin = (size_t)o->batch * s->c * s->h * s->h, nout = (size_t)o->batch * s->f * g.oh * g.ow;
    float *in = filled(nin, 1), *w = filled((size_t)s->f * s->c * 9, 2);
    float *out = xmalloc(sizeof(float) * nout), *U = xmalloc(sizeof(float) * winograd_filter_floats(&g));
    float *work = xmalloc(sizeof(float) * winograd_workspace_floats(&g));
    float *col = xmalloc(sizeof(float) * im2col_rows(&ig) * im2col_cols(&ig));
    double best[4] = {1e30, 1e30, 1e30, 1e30};
    for (int r = 0; r < o->reps; r++) {
        double t0 = now(o->threads);
        winograd_filters(U, w, &g);
        double t1 = now(o->threads);
        winograd_conv(out, 0, in, U, work, &g);
        double t2 = now(o->threads);
        im2col_conv(out, in, w, col, o->batch, &ig, s->f);
        double t3 = now(o->threads);
        struct winograd_geom g2;
        winograd_geom_init(&g2, WINOGRAD_F2, o->batch, s->c, s->h, s->h, s->f, 1, 1);
        float *work2 = xmalloc(sizeof(float) * winograd_workspace_floats(&g2));
        float *U2 = xmalloc(sizeof(float) * winograd_filter_floats(&g2));
        winograd_filters(U2, w, &g2);
        double t4 = now(o->threads);
        winograd_conv(out, 0, in, U2, work2, &g2);
        double t5 = now(o->threads);
        free(work2), free(U2);
        double t[4] = {t1 - t0, t2 - t1, t3 - t2, t5 - t4};
        for (int k = 0; k < 4; k++)
            best[k] = CN_MIN(best[k], t[k]);
    }
    double fl = 2.0 * s->f * s->c * 9.0 * g.oh * g.ow * o->batch * 1e-9;
    printf("%-7s %4dx%3dx%-3d -> %-4d b%-3d  filt %7.2f ms  F4 %8.2f ms %6.1f GF/s  F2 %8.2f ms "
           "%6.1f GF/s  im2col+gemm %8.2f ms %6.1f GF/s  F4 speedup %.2fx\n",
           s->net, s->c, s->h, s->h, s->f, o->batch, 1e3 * best[0], 1e3 * best[1], fl / best[1],
           1e3 * best[3], fl / best[3], 1e3 * best[2], fl / best[2], best[2] / best[1]);
    fflush(stdout);
    free(in), free(w), free(out), free(U), free(work), free(col);
}

int main(int argc, char **argv)
{
    struct opts o = {1, 1, 3, 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-vgg"))
            o.vgg = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "-batch"))
            o.batch = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "-threads"))
            o.threads = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "-reps"))
            o.reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [-batch N] [-threads N] [-reps N] [-vgg]\n", argv[0]);
            return 1;
        }
    }
    if (o.batch < 1 || o.threads < 1 || o.reps < 1) {
        fprintf(stderr, "%s: -batch, -threads and -reps must be >= 1\n", argv[0]);
        return 1;
    }
#ifdef _OPENMP
    omp_set_num_threads(o.threads);
#endif
    printf("threads %d, best of %d, %s clock; GF/s by direct-convolution FLOPs\n", o.threads,
           o.reps, o.threads == 1 ? "thread CPU" : "wall");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (o.vgg || !strcmp(shapes[i].net, "resnet"))
            bench_shape(&shapes[i], &o);
    return 0;
}
