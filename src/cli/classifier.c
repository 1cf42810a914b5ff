/* classifier.c - `net classifier train|valid|predict`: the classification workflow over a .data
 * file (Darknet's classifier.c commands, with its argument order). This file dispatches and holds
 * what the commands share; train.c trains, evaluate.c validates and predicts. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "data/datafile.h"
#include "net/net.h"

const char cli_classifier_usage[] =
    "usage: net classifier <train|valid|predict> DATA CFG [WEIGHTS] [args]\n"
    "\n"
    "  train   DATA CFG [WEIGHTS]   train on train=, checkpoints to backup=\n"
    "      -clear            start from iteration 0 (keep the loaded weights)\n"
    "      -seed N           override [net] seed= (initialisation, data order, dropout)\n"
    "      -print_every N    one progress line every N iterations (default 100)\n"
    "      -backup_every N   write <backup>/<cfg>.backup every N iterations (default 1000)\n"
    "  valid   DATA CFG WEIGHTS     top-1 and top-k (k = top= in DATA) on valid=\n"
    "      -batch N          images per forward pass (default 100)\n"
    "  predict DATA CFG WEIGHTS IMAGE...   top-k labels with probabilities\n";

double cli_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "cfg/lenet5.cfg" -> "lenet5" */
void cli_cfg_base(char *out, size_t n, const char *cfg)
{
    const char *slash = strrchr(cfg, '/');
    const char *b = slash ? slash + 1 : cfg;
    snprintf(out, n, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

int cli_check_classes(const struct data_cfg *d, const struct net *n, const char *data_path,
                         cn_error *e)
{
    if (net_outputs(n) != (size_t)d->classes)
        return cn_fail(e, "%s: classes=%d but %s outputs %zu values per image", data_path,
                       d->classes, n->cfg_path, net_outputs(n));
    return 0;
}

/* Ranks of the k largest of v[0..n) into idx, best first. */
void cli_top_k(int *idx, const float *v, int n, int k)
{
    for (int j = 0; j < k; j++)
        idx[j] = -1;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < k; j++) {
            if (idx[j] < 0 || v[i] > v[idx[j]]) {
                memmove(idx + j + 1, idx + j, sizeof *idx * (size_t)(k - j - 1));
                idx[j] = i;
                break;
            }
        }
    }
}

int cli_classifier(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "train"))
        return cli_classifier_train(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "valid"))
        return cli_classifier_valid(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "predict"))
        return cli_classifier_predict(argc - 1, argv + 1);
    int help = argc >= 2 && (!strcmp(argv[1], "help") || !strcmp(argv[1], "-h"));
    fputs(cli_classifier_usage, help ? stdout : stderr);
    if (argc >= 2 && !help)
        fprintf(stderr, "net: unknown classifier command '%s'\n", argv[1]);
    return help ? 0 : 1;
}
