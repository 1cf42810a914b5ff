/* cli.h - the `net` command's subcommands. Only src/cli/ prints usage or exits; every
 * subcommand returns the process exit status (0 success, 1 failure or usage error). */
#ifndef CN_CLI_H
#define CN_CLI_H

int cli_summary(int argc, char **argv);
int cli_classifier(int argc, char **argv);
int cli_prepare(int argc, char **argv);

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
