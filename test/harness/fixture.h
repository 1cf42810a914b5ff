/* fixture.h - files and processes for the tests that drive the `net` binary or read data sets:
 * running a program with its stdout, stderr and exit status captured; expecting the one-line
 * failure every CLI error is; paths in a scratch directory; writing and reading small files; IDX
 * files (the MNIST container) built in memory; rm -r of a scratch tree; the tiny models (a cfg
 * and its .weights) the CLI tests run.
 *
 * The tests run from the repository root (test/run.sh), which also sets $CFGNET_NET to the binary
 * under test (else ./net). Every helper fails the current cmocka test on an error of its own (a
 * file that cannot be written, a program that cannot be started). Leaves out: pipes and stdin (the
 * commands under test read files), timeouts.
 */
#ifndef CN_TEST_FIXTURE_H
#define CN_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

/* What a run left: exit status (128 + signal number when killed) and the start of its output,
 * NUL-terminated (longer output is cut). */
struct fx_run {
    int status;
    char out[16384], err[8192];
};

/* The net binary under test: $CFGNET_NET, else ./net. */
const char *fx_net_bin(void);

/* Runs argv[0] (looked up on PATH when it has no '/') with the NULL-terminated argv and the
 * environment env (NULL: ours), waits for it and fills r. */
void fx_run_prog(struct fx_run *r, const char *const *argv, char *const *env);

/* Runs `net ARGS...` (args NULL-terminated, at most 38) and fills r. */
void fx_run_net(struct fx_run *r, const char *const *args);

/* fx_run_net, failing the test unless the exit status is 0. */
void fx_run_net_ok(struct fx_run *r, const char *const *args);

/* Runs `net ARGS...` and fails the test unless it exits with status 1 and prints exactly one line
 * on stderr, containing want. */
void fx_expect_fail(const char *const *args, const char *want);

/* dir/name in one of 16 buffers used in turn, so that up to 16 may be live at once (one call's
 * argument list); a longer path fails the test. */
const char *fx_path(const char *dir, const char *name);

/* Writes n bytes (or a string) to path, replacing it. */
void fx_write_file(const char *path, const void *data, size_t n);
void fx_write_text(const char *path, const char *text);

/* Reads up to n - 1 bytes of path into buf, NUL-terminated; a missing file reads as "". */
void fx_slurp(const char *path, char *buf, size_t n);

/* An IDX file in memory: the big-endian 4-byte magic (0x08xx: unsigned bytes, the low byte the
 * number of dimensions), ndim big-endian sizes, then the n data bytes (which need not agree with
 * the sizes: files that lie are test cases). malloc'd; its length in *len. */
uint8_t *fx_idx_bytes(uint32_t magic, const uint32_t *dims, int ndim, const uint8_t *data, size_t n,
                      size_t *len);

/* fx_idx_bytes written to path. */
void fx_write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndim,
                  const uint8_t *data, size_t n);

/* A tiny model for the CLI tests: writes cfg (text) to cfg_path, builds it (batch 1, for
 * inference) and saves its weights to weights_path. ntaps == 0: the parameters as the cfg's seed
 * initialises them; else every parameter is 0 but entries taps[0..ntaps) of each one named
 * "weights", which are gain (a [connected] of C inputs: tap o * C + i joins input i to output o). */
void fx_write_model(const char *cfg_path, const char *cfg, const char *weights_path, float gain,
                    const size_t *taps, int ntaps);

/* rm -r path (not following links); 0, or -1 when something could not be removed. */
int fx_remove_tree(const char *path);

/* A scratch directory as a cmocka test's state: fx_scratch_create is the body of a setup
 * function (mkdtemp /tmp/cfgnet_NAME_XXXXXX; *state points to the struct), fx_scratch_destroy a
 * teardown function (rm -r, free). */
struct fx_scratch {
    char dir[64];
};
int fx_scratch_create(void **state, const char *name);
int fx_scratch_destroy(void **state);

#endif
