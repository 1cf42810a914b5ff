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
    "usage: net classifier <train|valid|predict|features|cam> DATA CFG [WEIGHTS] [args]\n"
    "\n"
    "  train   DATA CFG [WEIGHTS]   train on train=, checkpoints to backup=\n"
    "      -clear -seed N -print_every N -backup_every N -snapshot_every N -keep K\n"
    "      -valid_every N|epoch -stop_after N   ('net classifier train -h' explains each)\n"
    "  valid   DATA CFG WEIGHTS     on valid=: top-1, top-k (k = top= in DATA), per-class\n"
    "                               accuracy, precision and F1, confusion matrix\n"
    "      -o FILE.csv       write the confusion matrix and per-class figures as CSV\n"
    "  predict DATA CFG WEIGHTS INPUT...   top-k labels with probabilities; an INPUT is an\n"
    "                               image, a .list/.txt of paths, or a directory (its files,\n"
    "                               sorted by name; each must be an image)\n"
    "      -o FILE.csv       write path,label_1,p_1,...,label_k,p_k per image\n"
    "  valid and predict (both preprocess alike: README 'Evaluation'):\n"
    "      -crops N          1 (centre, default), 2 (+ mirror), 5 (centre + 4 corners),\n"
    "                        10 (those 5 + mirrors); softmax outputs are averaged\n"
    "      -scale R          crops from the image resized to R x the net input, 1..8\n"
    "                        (default 1 for 1-2 crops, 256/224 = 1.1429 for 5-10)\n"
    "      -scales N1,N2..   multi-scale: average over resizes to shorter side N1, N2.. px\n"
    "      -pad P            no resize: crops of the input-size image zero-padded by P px\n"
    "                        (corners = P-pixel shifts; the views of pad_crop= training)\n"
    "      -letterbox        Darknet's predict preprocessing instead (parity with darknet):\n"
    "                        the whole image, Darknet's resize, centred on 0.5 grey\n"
    "      -ensemble CFG2,WEIGHTS2[,W2]   average with another model, weight W2 (default 1);\n"
    "                        repeat for more; every model needs DATA's classes\n"
    "      -weight W1        weight of CFG WEIGHTS (default 1); weights are normalised\n"
    "      -top K            k for top-k (default top= in DATA)\n"
    "      -batch N          views per forward pass (default 100)\n"
    "  features DATA CFG WEIGHTS -layer K INPUT... -o FEATS.csv   layer K's activations\n"
    "                               (global-average-pooled when spatial) per image as CSV\n"
    "  cam     DATA CFG WEIGHTS IMAGE -o CAM.png [-class NAME] [-zoom Z]   class activation\n"
    "                               map over the image (CFG ends in global average pooling\n"
    "                               and a linear classifier)\n";

static double clock_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double cli_now_seconds(void)
{
    return clock_seconds(CLOCK_MONOTONIC);
}

double cli_cpu_seconds(void)
{
    return clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
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

int cli_classifier(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "train"))
        return cli_classifier_train(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "valid"))
        return cli_classifier_valid(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "predict"))
        return cli_classifier_predict(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "features"))
        return cli_classifier_features(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "cam"))
        return cli_classifier_cam(argc - 1, argv + 1);
    int help = argc >= 2 && (!strcmp(argv[1], "help") || !strcmp(argv[1], "-h"));
    fputs(cli_classifier_usage, help ? stdout : stderr);
    if (argc >= 2 && !help)
        fprintf(stderr, "net: unknown classifier command '%s'\n", argv[1]);
    return help ? 0 : 1;
}
