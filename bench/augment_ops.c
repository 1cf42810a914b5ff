/* augment_ops.c - milliseconds per 224x224x3 image of each augmentation kernel, the fast one and
 * its naive reference (data/augment.h) side by side in one run, on a real photo
 * (/usr/share/darknet/data/dog.jpg resized to 224x224, or a synthetic gradient without it).
 * Built and run by bench/augment_ops.sh; best of ROUNDS rounds of N images each. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/augment.h"
#include "data/image.h"

enum { W = 224, H = 224, C = 3, N = 100, ROUNDS = 5 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); /* CPU time: less hit by a busy machine */
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

struct job {
    const uint8_t *src;
    float *x;
    const float *fresh; /* the image as floats, copied in before each photometric call */
    struct aug_warp wp;
    void *scratch;
    float hue, sat, exp;
};

typedef void (*op_fn)(struct job *j);

static void warp_fast(struct job *j) { aug_warp(j->x, W, H, j->src, W, H, C, &j->wp, j->scratch); }
static void warp_ref(struct job *j) { aug_warp_ref(j->x, W, H, j->src, W, H, C, &j->wp); }
static void hsv_fast(struct job *j)
{
    memcpy(j->x, j->fresh, sizeof(float) * W * H * C);
    aug_distort(j->x, (size_t)W * H, C, j->hue, j->sat, j->exp);
}
static void hsv_ref(struct job *j)
{
    memcpy(j->x, j->fresh, sizeof(float) * W * H * C);
    aug_distort_ref(j->x, (size_t)W * H, C, j->hue, j->sat, j->exp);
}
static void copy(struct job *j) { memcpy(j->x, j->fresh, sizeof(float) * W * H * C); }
static void shrink(struct job *j)
{
    image_resize_u8(j->scratch, 190, 224, j->src, W, H, C); /* aspect 4/3 crops shrink x */
}

static double time_op(op_fn f, struct job *j)
{
    double best = 1e30;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        for (int i = 0; i < N; i++)
            f(j);
        best = fmin(best, (now() - t0) / N * 1e3);
    }
    return best;
}

int main(void)
{
    static uint8_t src[W * H * C];
    static float x[W * H * C], fresh[W * H * C];
    cn_error e;
    if (image_load_u8(src, "/usr/share/darknet/data/dog.jpg", W, H, C, &e)) {
        printf("(no /usr/share/darknet/data/dog.jpg: a synthetic image)\n");
        for (int i = 0; i < W * H * C; i++)
            src[i] = (uint8_t)(i * 7 % 251);
    }
    image_u8_to_float(fresh, src, (size_t)W * H * C);
    struct job j = {src, x, fresh, {1.1, 1.2, 3.5, -2.25, 1, 0}, malloc(1 << 20), 0, 1, 1};
    double rad = 5 * M_PI / 180;
    printf("%-44s %10s %10s %8s\n", "224x224x3, ms per image", "reference", "fast", "speed-up");
    double a = time_op(warp_ref, &j), b = time_op(warp_fast, &j);
    printf("%-44s %10.3f %10.3f %7.1fx\n", "warp, no rotation (crop/aspect/translate)", a, b, a / b);
    j.wp.cs = cos(rad);
    j.wp.sn = sin(rad);
    a = time_op(warp_ref, &j), b = time_op(warp_fast, &j);
    printf("%-44s %10.3f %10.3f %7.1fx\n", "warp, rotation 5 degrees", a, b, a / b);
    j.hue = .05f, j.sat = 1.3f, j.exp = .8f;
    a = time_op(hsv_ref, &j), b = time_op(hsv_fast, &j);
    printf("%-44s %10.3f %10.3f %7.1fx\n", "HSV jitter: hue, saturation, exposure", a, b, a / b);
    j.hue = 0;
    a = time_op(hsv_ref, &j), b = time_op(hsv_fast, &j);
    printf("%-44s %10.3f %10.3f %7.1fx\n", "HSV jitter without hue (saturation, exposure)", a,
           b, a / b);
    printf("%-44s %10s %10.3f\n", "anti-aliased pre-shrink 224->190 x 224", "", time_op(shrink, &j));
    printf("(the HSV rows include copying the image in first: %.3f ms)\n", time_op(copy, &j));
    free(j.scratch);
    return 0;
}
