/* main.c - entry point of the `net` command: dispatch to subcommands, usage, flag helpers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char usage[] =
    "usage: net <command> [args]\n"
    "\n"
    "commands:\n"
    "  classifier train   DATA CFG [WEIGHTS] [flags]              train (flags: add -h)\n"
    "  classifier valid   DATA CFG WEIGHTS                        top-1 and top-k on valid=\n"
    "  classifier predict DATA CFG WEIGHTS IMAGE...               top-k labels of images\n"
    "  classifier features DATA CFG WEIGHTS -layer K INPUT... -o FEATS.csv   activations\n"
    "  classifier cam     DATA CFG WEIGHTS IMAGE -o CAM.png       class activation map\n"
    "  summary CFG                       layers, shapes, parameters and FLOPs\n"
    "  speed CFG [-batch N] [-train]     per-layer time, GFLOP/s and algorithm (-h: flags)\n"
    "  plot LOG.csv [-o OUT.svg]         chart of a training log (loss, validation accuracy)\n"
    "  prepare fashion-mnist [SRC] [DST] IDX files of Debian's dataset-fashion-mnist -> PNGs\n"
    "  data preview DATA CFG -o OUT.png  grid of augmented training samples with their labels\n"
    "  partial CFG WEIGHTS OUT N         the first N layers' weights, seen reset (Darknet's)\n"
    "  visualize CFG WEIGHTS [-layer K] [IMAGE] -o OUT.png   filters, or one image's maps\n"
    "  draw CFG -o OUT.dot|svg|png       the network as a Graphviz graph\n"
    "  help                              this text ('net classifier help' for training flags)\n";

int cli_error(const char *msg)
{
    fprintf(stderr, "net: %s\n", msg);
    return 1;
}

static void drop(int *argc, char **argv, int i, int k)
{
    memmove(argv + i, argv + i + k, sizeof *argv * (size_t)(*argc - i - k + 1));
    *argc -= k;
}

int cli_take_flag(int *argc, char **argv, const char *name)
{
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], name)) {
            drop(argc, argv, i, 1);
            return 1;
        }
    }
    return 0;
}

const char *cli_take_str(int *argc, char **argv, const char *name)
{
    for (int i = 1; i < *argc - 1; i++) {
        if (!strcmp(argv[i], name)) {
            const char *v = argv[i + 1];
            drop(argc, argv, i, 2);
            return v;
        }
    }
    return NULL;
}

int cli_take_value(int *argc, char **argv, const char *name, const char **val)
{
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], name))
            continue;
        if (i + 1 >= *argc) {
            fprintf(stderr, "net: %s needs a value\n", name);
            return -1;
        }
        *val = argv[i + 1];
        drop(argc, argv, i, 2);
        return 1;
    }
    return 0;
}

int cli_take_int(int *argc, char **argv, const char *name, long min, long max, long def,
                 long *out)
{
    const char *s;
    int r = cli_take_value(argc, argv, name, &s);
    *out = def;
    if (r <= 0)
        return r;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < min || v > max) {
        fprintf(stderr, "net: %s %s: expected an integer in [%ld, %ld]\n", name, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_no_flags_left(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "net: unknown option '%s'\n", argv[i]);
            return 1;
        }
    }
    return 0;
}

/* OpenMP threads that wait for work spin by default (libgomp: up to 300,000 polls, about 40 ms
 * on a Xeon whose pause takes 140 cycles, before sleeping). On a 2-core VM whose other tenant
 * took a core, that long spin cost a factor of 3-4 at batch 1 (ResNet-50 forward: 428 ms
 * spinning, 103 ms passive) and halved training while loader threads needed the cores; but a
 * passive wait (sleep at once) pays a futex wake-up at every barrier, and a net of small layers
 * has thousands (2-core Xeon, batch 1: densenet201.cfg 74 ms passive, 50 spinning 5,000 polls,
 * inception_v3 67 / 59, resnet50 41 / 35; ResNet-18 training at batch 16 826 / 758). So threads
 * spin GOMP_SPINCOUNT polls, a few hundred microseconds, then sleep. libgomp reads its variables
 * once, when it is loaded, before main: so when the user has chosen neither OMP_WAIT_POLICY nor
 * GOMP_SPINCOUNT, the command re-executes itself with GOMP_SPINCOUNT set (once: it is then
 * set). A user's own setting wins. */
#define SPIN_POLLS "5000"

static void prefer_short_spin(char **argv)
{
#ifdef _OPENMP
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") ||
        setenv("GOMP_SPINCOUNT", SPIN_POLLS, 1))
        return;
    execv("/proc/self/exe", argv); /* returns only on failure: then go on as we are */
#else
    (void)argv;
#endif
}

int main(int argc, char **argv)
{
    prefer_short_spin(argv);
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "summary"))
        return cli_summary(argc - 1, argv + 1);
    if (!strcmp(argv[1], "classifier"))
        return cli_classifier(argc - 1, argv + 1);
    if (!strcmp(argv[1], "prepare"))
        return cli_prepare(argc - 1, argv + 1);
    if (!strcmp(argv[1], "data"))
        return cli_data(argc - 1, argv + 1);
    if (!strcmp(argv[1], "speed"))
        return cli_speed(argc - 1, argv + 1);
    if (!strcmp(argv[1], "plot"))
        return cli_plot(argc - 1, argv + 1);
    if (!strcmp(argv[1], "partial"))
        return cli_partial(argc - 1, argv + 1);
    if (!strcmp(argv[1], "visualize"))
        return cli_visualize(argc - 1, argv + 1);
    if (!strcmp(argv[1], "draw"))
        return cli_draw(argc - 1, argv + 1);
    fprintf(stderr, "net: unknown command '%s'\n\n%s", argv[1], usage);
    return 1;
}
