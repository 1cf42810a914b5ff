/* cli.h - the `net` command's subcommands. Only src/cli/ prints usage or exits; every
 * subcommand returns the process exit status (0 success, 1 failure or usage error). */
#ifndef CN_CLI_H
#define CN_CLI_H

#include <stddef.h>

#include "core/common.h"

int cli_summary(int argc, char **argv);
int cli_classifier(int argc, char **argv);
int cli_prepare(int argc, char **argv);
int cli_data(int argc, char **argv); /* `net data preview` (data.c) */
int cli_plot(int argc, char **argv);
int cli_speed(int argc, char **argv); /* `net speed`: per-layer timing (speed.c) */

/* `net classifier` subcommands (argv[0] is the subcommand name) and what they share. */
int cli_classifier_train(int argc, char **argv);
int cli_classifier_valid(int argc, char **argv);
int cli_classifier_predict(int argc, char **argv);
extern const char cli_classifier_usage[];
double cli_now_seconds(void); /* monotonic */
double cli_cpu_seconds(void); /* the process's CPU time so far, all its threads */
/* "cfg/lenet5.cfg" -> "lenet5" */
void cli_cfg_base(char *out, size_t n, const char *cfg);
struct data_cfg;
struct net;
/* classes= of the .data file must equal the net's outputs per image. */
int cli_check_classes(const struct data_cfg *d, const struct net *n, const char *data_path,
                      cn_error *e);


/* `net partial` and what `classifier train` needs for transfer learning (partial.c). */
int cli_partial(int argc, char **argv);
/* Loads WEIGHTS to train from: a file of this cfg's size loads exactly (a checkpoint; 0 in
 * *transferred), any other (or any with src_cfg, the cfg it was written for) through
 * transfer_load, printing each re-initialised layer (1 in *transferred: start from 0). */
int cli_train_weights(struct net *n, const char *path, const char *src_cfg, int *transferred,
                      cn_error *e);
/* -freeze N: net_freeze with N checked against the layers, and a line saying what is frozen. */
int cli_train_freeze(struct net *n, long prefix, cn_error *e);

/* Seeing inside a trained net: features.c, cam.c, visualize.c, draw.c. */
int cli_classifier_features(int argc, char **argv);
int cli_classifier_cam(int argc, char **argv);
int cli_visualize(int argc, char **argv);
int cli_draw(int argc, char **argv);
/* -layer K: 0..layers-1, or negative from the end (-1 the last layer). */
int cli_layer_index(long k, const struct net *n, int *out, cn_error *e);
/* net_create(cfg, batch, inference) and weights_load(weights). */
int cli_open_net(struct net **n, const char *cfg, const char *weights, int batch, cn_error *e);
/* Image b of n's input from path, preprocessed as `predict` does (one view, [net] mean/std). */
int cli_load_image(struct net *n, int b, const char *path, cn_error *e);

/* Prints "net: <msg>" to stderr and returns 1. */
int cli_error(const char *msg);

/* Flag helpers over argv: find "-name", take its value, and remove both from argv. */
int cli_take_flag(int *argc, char **argv, const char *name);
int cli_take_int(int *argc, char **argv, const char *name, long min, long max, long def,
                 long *out);
const char *cli_take_str(int *argc, char **argv, const char *name);
/* Removes the next "name VALUE" pair and sets *val: 1 when found, 0 when absent, -1 (printed)
 * when name is the last argument. */
int cli_take_value(int *argc, char **argv, const char *name, const char **val);
/* Rejects any remaining "-x" argument (returns 1 after printing it). */
int cli_no_flags_left(int argc, char **argv);

#endif
