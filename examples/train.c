/* train.c - train a small network from C on arrays in memory, with no files and no `net` command:
 * a cfg in a string, synthetic images, cfgnet_train_labels, and the loss falling.
 *
 *   train [PREFIX]
 *
 * The task: 12x12 gray images holding a horizontal bar (class 0), a vertical bar (1) or both, a
 * cross (2), at random positions over random noise. The network is a 3x3 convolution, 2x2 max
 * pooling and two connected layers with a softmax, trained with SGD and momentum (the [net]
 * section's settings, as `net classifier train` would). It prints the loss as it falls, then the
 * accuracy on 300 images it never saw, and exits 1 unless the loss fell to a fifth and the accuracy
 * is at least 90%. With PREFIX it also writes PREFIX.cfg and PREFIX.weights, which the classify
 * and features examples, and `net classifier predict`, can load.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cfgnet.h>

#define SIDE 12
#define PIXELS (SIDE * SIDE)
#define BATCH 32
#define STEPS 150

static const char cfg[] = "[net]\n"
                          "batch=32\nheight=12\nwidth=12\nchannels=1\n"
                          "learning_rate=0.05\nmomentum=0.9\ndecay=0.0005\nseed=1\n"
                          "[convolutional]\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=relu\n"
                          "[maxpool]\nsize=2\nstride=2\n"
                          "[connected]\noutput=16\nactivation=relu\n"
                          "[connected]\noutput=3\nactivation=linear\n"
                          "[softmax]\n";

/* xorshift64*: the example's own seeded generator, so every run draws the same images. */
static uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* One image of class cls into x (SIDE x SIDE floats in [0, 1]). */
static void draw(float *x, int cls, uint64_t *rng)
{
    for (int i = 0; i < PIXELS; i++)
        x[i] = (float)(next(rng) >> 40) / (float)(1 << 24) * 0.3f;
    int row = 1 + (int)(next(rng) % (SIDE - 2)), col = 1 + (int)(next(rng) % (SIDE - 2));
    for (int i = 0; i < SIDE; i++) {
        if (cls != 1)
            x[row * SIDE + i] = 1.f;
        if (cls != 0)
            x[i * SIDE + col] = 1.f;
    }
}

static void batch_of(float *x, int *labels, int n, uint64_t *rng)
{
    for (int b = 0; b < n; b++) {
        labels[b] = (int)(next(rng) % 3);
        draw(x + b * PIXELS, labels[b], rng);
    }
}

/* Share of n fresh images whose most probable class is their label. */
static int accuracy(cfgnet_net *net, int n, uint64_t *rng, double *acc)
{
    float x[BATCH * PIXELS];
    int labels[BATCH], hits = 0;
    for (int done = 0; done < n; done += BATCH) {
        int count = n - done < BATCH ? n - done : BATCH, best;
        batch_of(x, labels, count, rng);
        if (cfgnet_forward(net, x, count, 1, SIDE, SIDE, NULL, 0))
            return -1;
        for (int b = 0; b < count; b++) {
            if (cfgnet_top_k(net, b, 1, &best, NULL) < 0)
                return -1;
            hits += best == labels[b];
        }
    }
    *acc = (double)hits / n;
    return 0;
}

static int save(cfgnet_net *net, const char *prefix)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.cfg", prefix);
    FILE *f = fopen(path, "w");
    if (!f || fputs(cfg, f) < 0 || fclose(f)) {
        fprintf(stderr, "train: cannot write %s\n", path);
        return -1;
    }
    snprintf(path, sizeof path, "%s.weights", prefix);
    if (cfgnet_save_weights(net, path))
        return -1;
    printf("wrote %s.cfg and %s\n", prefix, path);
    return 0;
}

int main(int argc, char **argv)
{
    cfgnet_net *net = cfgnet_create();
    if (!net || cfgnet_load_string(net, cfg, "train.c", NULL, 0, CFGNET_TRAIN)) {
        fprintf(stderr, "train: %s\n", cfgnet_error(net));
        return 1;
    }
    uint64_t rng = 42;
    float x[BATCH * PIXELS], loss, first = 0, avg = 0;
    int labels[BATCH], failed = 0;
    for (int step = 1; step <= STEPS && !failed; step++) {
        batch_of(x, labels, BATCH, &rng);
        failed = cfgnet_train_labels(net, x, BATCH, 1, SIDE, SIDE, labels, CFGNET_LR_FROM_CFG,
                                     &loss) != CFGNET_OK;
        if (failed)
            break;
        first = step == 1 ? loss : first;
        avg = step == 1 ? loss : 0.9f * avg + 0.1f * loss;
        if (step == 1 || step % 25 == 0)
            printf("step %3d: loss %.4f, average %.4f\n", step, loss, avg);
    }
    double acc = 0;
    int rc = failed || accuracy(net, 300, &rng, &acc) || (argc > 1 && save(net, argv[1]));
    if (rc) {
        fprintf(stderr, "train: %s\n", cfgnet_error(net));
    } else {
        printf("accuracy on 300 new images: %.1f%%\n", 100 * acc);
        rc = !(avg < first / 5 && acc >= 0.9);
        if (rc)
            fprintf(stderr, "train: the network did not learn (loss %.4f -> %.4f)\n", first, avg);
    }
    cfgnet_free(net);
    return rc;
}
