/* dist.h - the ranks of a data-parallel run (Open MPI), behind one interface with two builds:
 * dist_mpi.c (make MPI=1, -DCFGNET_MPI) and dist_none.c (the default build: one rank, every
 * collective the identity). Callers (src/cli/train.c, net/ddp.c) have no #ifdef.
 *
 * A process started by mpirun (its environment names an Open MPI or PMIx job) is one rank of
 * MPI_COMM_WORLD; a process started otherwise is one rank of its own, without MPI_Init, even in
 * an MPI build, so that `net` behaves as the plain build outside mpirun.
 *
 * Every wait is bounded (the watchdog): collectives are non-blocking, polled with MPI_Test
 * against a deadline of timeout seconds from the start of the wait. On the deadline rank 0
 * names the ranks that did not reach the collective (each rank tells rank 0, with a small
 * non-blocking message, the number of every collective it enters) and calls MPI_Abort:
 *   "rank 0: no progress from rank(s) 1 at iteration 12 after 60.0 s (gradient allreduce)".
 * Other ranks wait 10 s longer, so that rank 0's message is the one printed. A signal (mpirun
 * forwards SIGTERM to every rank, and sends it to the survivors when a rank dies) while a
 * collective is not done for 0.5 s means a rank is gone (mpirun SIGKILLs 1 s later): the
 * message names the iteration. The final barrier (dist_close) ignores signals.
 * Collectives are numbered identically on every rank: every rank calls the same ones in the
 * same order.
 */
#ifndef CN_NET_DIST_H
#define CN_NET_DIST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

struct dist;

/* Joins the job (MPI_Init_thread) when launched by mpirun, else a single rank. timeout: the
 * watchdog's seconds per wait. stop: the caller's signal flag, read while waiting. Returns 0, or
 * -1 with a message. */
int dist_open(struct dist **out, double timeout, const volatile sig_atomic_t *stop, cn_error *e);
/* MPI_Finalize (after a barrier); NULL is a no-op. */
void dist_close(struct dist *d);
/* Ends every rank of the job with status code (MPI_Abort), after printing msg on stderr
 * prefixed with "net: rank R: ". Returns only for a single rank. */
void dist_abort(struct dist *d, int code, const char *msg);

int dist_rank(const struct dist *d);
int dist_size(const struct dist *d);
/* 1 in an MPI build (make MPI=1), 0 otherwise. */
int dist_built_with_mpi(void);
/* The iteration named by the watchdog's messages. */
void dist_set_iteration(struct dist *d, uint64_t iter);

/* x[0..n) = the sum of every rank's x, in place; blocking (bounded). what names it. */
int dist_sum_doubles(struct dist *d, double *x, int n, const char *what, cn_error *e);
/* x[0..n) = rank 0's x on every rank; blocking (bounded). */
int dist_broadcast_floats(struct dist *d, float *x, size_t n, const char *what, cn_error *e);
/* Fails, naming the iteration and the first rank whose value differs from rank 0's, unless
 * every rank passes the same value (a checksum of the parameters). */
int dist_check_same(struct dist *d, uint64_t value, const char *what, cn_error *e);

/* Non-blocking sums of float ranges (the gradient buckets): dist_isum starts the in-place sum of
 * x[0..n) (n < 2^31) and returns a slot (0..DIST_MAX_PENDING-1), dist_poll lets MPI advance
 * them (call it often while computing), dist_wait_all waits for every started one (bounded).
 * With one rank they are no-ops. */
#define DIST_MAX_PENDING 256
int dist_isum_floats(struct dist *d, float *x, size_t n, cn_error *e);
void dist_poll(struct dist *d);
int dist_wait_all(struct dist *d, const char *what, cn_error *e);

#endif
