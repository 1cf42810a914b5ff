/* plot.c - `net plot LOG.csv [-o OUT.svg] [-title TEXT]`: draws a training log (the CSV that
 * `net classifier train` writes beside its checkpoints) as the same SVG chart training writes.
 * Without -o the chart goes beside the log, ".csv" replaced by ".svg". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "net/trainlog.h"

static const char plot_usage[] =
    "usage: net plot LOG.csv [-o OUT.svg] [-title TEXT]\n"
    "  draws loss, its moving average and validation accuracy over iterations as SVG\n"
    "  (default OUT: LOG with .csv replaced by .svg; default TEXT: LOG)\n";

/* LOG.csv -> LOG.svg (LOG -> LOG.svg when it does not end in .csv), malloc'd. */
static char *svg_beside(const char *csv)
{
    size_t n = strlen(csv);
    size_t stem = n > 4 && !strcmp(csv + n - 4, ".csv") ? n - 4 : n;
    char *s = xmalloc(stem + 5);
    memcpy(s, csv, stem);
    memcpy(s + stem, ".svg", 5);
    return s;
}

int cli_plot(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(plot_usage, stdout);
            return 0;
        }
    const char *out = cli_take_str(&argc, argv, "-o");
    const char *title = cli_take_str(&argc, argv, "-title");
    if (cli_no_flags_left(argc, argv))
        return 1;
    if (argc != 2) {
        fputs(plot_usage, stderr);
        return 1;
    }
    struct trainlog log;
    trainlog_init(&log, 1);
    char *path = out ? xstrdup(out) : svg_beside(argv[1]);
    cn_error e;
    int rc = trainlog_read(&log, argv[1], &e) ||
             trainlog_write_svg(&log, title ? title : argv[1], path, &e);
    if (!rc)
        printf("%s: %d rows -> %s\n", argv[1], log.n, path);
    trainlog_free(&log);
    free(path);
    return rc ? cli_error(e.msg) : 0;
}
