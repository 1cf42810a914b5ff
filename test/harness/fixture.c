/* fixture.c - files and processes for the CLI and data-set tests (see fixture.h). A child's
 * stdout and stderr go to two anonymous temporary files (tmpfile, close-on-exec, so no other child
 * inherits them), read back after it exits: nothing is left in the test's directory. The one piece
 * of state here is fx_path's ring of buffers (the tests run one at a time). */
#define _XOPEN_SOURCE 700
#include "fixture.h"

#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/net.h"
#include "net/weights.h"

extern char **environ;

const char *fx_net_bin(void)
{
    const char *net = getenv("CFGNET_NET");
    return net ? net : "./net";
}

static FILE *capture_file(void)
{
    FILE *f = tmpfile();
    if (!f || fcntl(fileno(f), F_SETFD, FD_CLOEXEC))
        fail_msg("cannot create a temporary file");
    return f;
}

/* Reads all f holds (up to n - 1 bytes) into buf and closes it. */
static void read_back(FILE *f, char *buf, size_t n)
{
    rewind(f);
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = '\0';
    fclose(f);
}

void fx_run_prog(struct fx_run *r, const char *const *argv, char *const *env)
{
    FILE *out = capture_file(), *err = capture_file();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fileno(out), 1);
    posix_spawn_file_actions_adddup2(&fa, fileno(err), 2);
    pid_t pid;
    if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, env ? env : environ))
        fail_msg("cannot run %s", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    if (waitpid(pid, &st, 0) != pid)
        fail_msg("waitpid failed for %s", argv[0]);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    read_back(out, r->out, sizeof r->out);
    read_back(err, r->err, sizeof r->err);
}

void fx_run_net(struct fx_run *r, const char *const *args)
{
    const char *argv[40] = {fx_net_bin()};
    int k = 0;
    for (; args[k]; k++) {
        if (k == 38)
            fail_msg("more than 38 arguments for net");
        argv[k + 1] = args[k];
    }
    argv[k + 1] = NULL;
    fx_run_prog(r, argv, NULL);
}

void fx_run_net_ok(struct fx_run *r, const char *const *args)
{
    fx_run_net(r, args);
    if (r->status != 0)
        fail_msg("status %d for net %s %s; stderr: %s", r->status, args[0] ? args[0] : "",
                 args[0] && args[1] ? args[1] : "", r->err);
}

void fx_expect_fail(const char *const *args, const char *want)
{
    struct fx_run r;
    fx_run_net(&r, args);
    if (r.status != 1)
        fail_msg("status %d (want 1) for net %s; stderr: %s", r.status, args[0] ? args[0] : "",
                 r.err);
    if (!strstr(r.err, want))
        fail_msg("stderr '%s' lacks '%s'", r.err, want);
    char *nl = strchr(r.err, '\n');
    if (!nl || nl[1] != '\0')
        fail_msg("stderr is not exactly one line: '%s'", r.err);
}

const char *fx_path(const char *dir, const char *name)
{
    static char buf[16][600];
    static int next;
    next = (next + 1) % 16;
    int n = snprintf(buf[next], sizeof buf[next], "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof buf[next])
        fail_msg("path %s/%s is too long", dir, name);
    return buf[next];
}

void fx_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot write %s", path);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

void fx_write_text(const char *path, const char *text)
{
    fx_write_file(path, text, strlen(text));
}

void fx_slurp(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "rb");
    size_t k = f ? fread(buf, 1, n - 1, f) : 0;
    buf[k] = '\0';
    if (f)
        fclose(f);
}

uint8_t *fx_idx_bytes(uint32_t magic, const uint32_t *dims, int ndim, const uint8_t *data, size_t n,
                      size_t *len)
{
    size_t head = 4 + 4 * (size_t)ndim;
    uint8_t *b = malloc(head + n + 1);
    assert_non_null(b);
    for (int i = 0; i <= ndim; i++) {
        uint32_t v = i ? dims[i - 1] : magic;
        for (int k = 0; k < 4; k++)
            b[4 * i + k] = (uint8_t)(v >> (24 - 8 * k));
    }
    if (n)
        memcpy(b + head, data, n);
    *len = head + n;
    return b;
}

void fx_write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndim,
                  const uint8_t *data, size_t n)
{
    size_t len;
    uint8_t *b = fx_idx_bytes(magic, dims, ndim, data, n, &len);
    fx_write_file(path, b, len);
    free(b);
}

void fx_write_model(const char *cfg_path, const char *cfg, const char *weights_path, float gain,
                    const size_t *taps, int ntaps)
{
    fx_write_text(cfg_path, cfg);
    struct net *n;
    cn_error e;
    if (net_create(&n, cfg_path, 1, 0, &e))
        fail_msg("%s", e.msg);
    for (int i = 0; ntaps > 0 && i < n->nparams; i++) {
        struct param *p = &n->params[i];
        memset(p->data, 0, sizeof(float) * p->n);
        for (int k = 0; k < ntaps && !strcmp(p->name, "weights"); k++) {
            if (taps[k] >= p->n)
                fail_msg("%s: tap %zu of %zu weights", cfg_path, taps[k], p->n);
            p->data[taps[k]] = gain;
        }
    }
    if (weights_save(n, weights_path, &e))
        fail_msg("%s", e.msg);
    net_destroy(n);
}

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

int fx_remove_tree(const char *path)
{
    return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) ? -1 : 0;
}

int fx_scratch_create(void **state, const char *name)
{
    struct fx_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    snprintf(s->dir, sizeof s->dir, "/tmp/cfgnet_%s_XXXXXX", name);
    *state = s;
    return mkdtemp(s->dir) ? 0 : -1;
}

int fx_scratch_destroy(void **state)
{
    struct fx_scratch *s = *state;
    int rc = s ? fx_remove_tree(s->dir) : 0;
    free(s);
    *state = NULL;
    return rc;
}
