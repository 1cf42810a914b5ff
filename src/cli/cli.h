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

/* `net classifier` subcommands (argv[0] is the subcommand name) and what they share. */
int cli_classifier_train(int argc, char **argv);
int cli_classifier_valid(int argc, char **argv);
int cli_classifier_predict(int argc, char **argv);
extern const char cli_classifier_usage[];
double cli_now_seconds(void); /* monotonic */
/* "cfg/lenet5.cfg" -> "lenet5" */
void cli_cfg_base(char *out, size_t n, const char *cfg);
struct data_cfg;
struct net;
/* classes= of the .data file must equal the net's outputs per image. */
int cli_check_classes(const struct data_cfg *d, const struct net *n, const char *data_path,
                      cn_error *e);
/* Indices of the k largest of v[0..n) into idx, best first. */
void cli_top_k(int *idx, const float *v, int n, int k);

/* Prints "net: <msg>" to stderr and returns 1. */
int cli_error(const char *msg);

/* Flag helpers over argv: find "-name", take its value, and remove both from argv. */
int cli_take_flag(int *argc, char **argv, const char *name);
int cli_take_int(int *argc, char **argv, const char *name, long min, long max, long def,
                 long *out);
const char *cli_take_str(int *argc, char **argv, const char *name);
/* Rejects any remaining "-x" argument (returns 1 after printing it). */
int cli_no_flags_left(int argc, char **argv);

#endif
