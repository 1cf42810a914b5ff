/* draw.c - `net draw CFG -o OUT.dot|OUT.svg|OUT.png`: the network as a Graphviz graph
 * (net/dot.h). A .dot is written directly (atomically); for .svg and .png the DOT text goes to a
 * temporary file beside OUT and Graphviz's `dot` (Debian's graphviz package) renders it into
 * another temporary file, which is renamed over OUT: `dot` is run with fork and execvp, with its
 * arguments as an argv array, never through a shell. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/fileio.h"
#include "core/strbuf.h"
#include "net/dot.h"

static const char draw_usage[] =
    "usage: net draw CFG -o OUT.dot|OUT.svg|OUT.png\n"
    "  the network as a graph: a node per layer, edges labelled with the shapes they carry;\n"
    "  .svg and .png are rendered by Graphviz's dot (apt-get install graphviz)\n";

static const char *ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix) ? s + n - k : NULL;
}

/* Runs dot -T<format> -o out in, waiting for it. */
static int run_dot(const char *format, const char *in, const char *out, cn_error *e)
{
    char t[16];
    snprintf(t, sizeof t, "-T%s", format);
    char *const args[] = {"dot", t, "-o", (char *)out, (char *)in, NULL};
    pid_t pid = fork();
    if (pid < 0)
        return cn_fail(e, "cannot start dot: %s", strerror(errno));
    if (pid == 0) {
        execvp("dot", args);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return cn_fail(e, "waiting for dot: %s", strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
        return cn_fail(e,
                       "%s: Graphviz's dot is not installed (apt-get install graphviz); "
                       "-o x.dot writes the graph without it",
                       out);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        return cn_fail(e, "dot -T%s failed (status %d) on %s", format,
                       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), in);
    return 0;
}

static int render(const char *text, const char *format, const char *out, cn_error *e)
{
    char dot_tmp[4200], out_tmp[4200];
    snprintf(dot_tmp, sizeof dot_tmp, "%s.%ld.dot", out, (long)getpid());
    snprintf(out_tmp, sizeof out_tmp, "%s.%ld.tmp", out, (long)getpid());
    struct fileio_chunk c = {text, strlen(text)};
    if (fileio_write_atomic(dot_tmp, &c, 1, e))
        return -1;
    int rc = run_dot(format, dot_tmp, out_tmp, e);
    if (!rc && rename(out_tmp, out))
        rc = cn_fail(e, "%s: cannot rename %s to it: %s", out, out_tmp, strerror(errno));
    remove(dot_tmp);
    if (rc)
        remove(out_tmp);
    return rc;
}

int cli_draw(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        return fputs(draw_usage, stdout), 0;
    const char *out = cli_take_str(&argc, argv, "-o");
    if (cli_no_flags_left(argc, argv))
        return 1;
    if (argc != 2 || !out) {
        fputs(draw_usage, stderr);
        return 1;
    }
    const char *format = ends_with(out, ".svg") ? "svg" : ends_with(out, ".png") ? "png" : NULL;
    if (!format && !ends_with(out, ".dot"))
        return cli_error("draw: -o must end in .dot, .svg or .png");
    if (strlen(out) > 4096)
        return cli_error("draw: -o: path too long");
    cn_error e;
    struct net *n;
    if (net_create(&n, argv[1], 1, 0, &e))
        return cli_error(e.msg);
    struct strbuf b = {0};
    int rc = dot_write(n, argv[1], &b, &e);
    char *text = strbuf_take(&b);
    struct fileio_chunk c = {text, strlen(text)};
    if (!rc)
        rc = format ? render(text, format, out, &e) : fileio_write_atomic(out, &c, 1, &e);
    if (!rc)
        printf("%s: %d layers of %s\n", out, n->n, argv[1]);
    free(text);
    net_destroy(n);
    return rc ? cli_error(e.msg) : 0;
}
