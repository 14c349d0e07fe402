/* Data parallelism for minrnn-train: the few collective operations the
   trainer needs, over MPI when built with -DMINRNN_MPI (make mpi:
   build/minrnn-train-mpi), else trivial ones for a single process. The
   header minrnn.h knows nothing of MPI: the trainer computes local
   gradients with mr_train_grad, reduces them here, and applies them with
   mr_train_apply.

   A watchdog thread ends a process that waits in a collective longer than
   dp_timeout seconds (a rank died or hangs): it prints which rank waited
   and exits, and mpirun then ends the job. Include after minrnn.h (with
   its implementation) and common.h. */
#ifndef MINRNN_EXAMPLES_DP_H
#define MINRNN_EXAMPLES_DP_H
#include <stdint.h>
#include <stddef.h>
#include <unistd.h>
#ifdef MINRNN_MPI
#include <mpi.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>
#endif

static int dp_rank = 0, dp_size = 1, dp_local = 1;   /* this process, the processes, those on this machine */
static double dp_timeout = 300;                       /* seconds a collective may wait */
static FILE *dp_err;                                  /* where this rank's own failures go (stderr) */

#ifdef MINRNN_MPI
static volatile double dp_wait_since = 0;   /* ex_now() when the current collective began, 0: none */
static volatile const char *dp_wait_what = "";
static void *dp_watchdog(void *arg) {
    (void)arg;
    for (;;) {
        double t = dp_wait_since;
        sleep(1);
        if (t > 0 && t == dp_wait_since && ex_now() - t > dp_timeout) {
            fprintf(dp_err, "\nminrnn-train-mpi: rank %d of %d waited %.0f s in %s: another process died or hangs; stopping "
                    "(the last checkpoint is intact; --dp-timeout sets the wait)\n", dp_rank, dp_size, ex_now() - t, (const char *)dp_wait_what);
            fflush(dp_err);
            _exit(EX_FAIL);
        }
    }
    return NULL;
}
#define DP_BEGIN(what) (dp_wait_what = (what), dp_wait_since = ex_now())
#define DP_END() (dp_wait_since = 0)
static void dp_init(int *argc, char ***argv) {
    pthread_t th;
    MPI_Comm local;
    dp_err = stderr;
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &dp_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dp_size);
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &dp_local);
    MPI_Comm_free(&local);
    if (pthread_create(&th, NULL, dp_watchdog, NULL) == 0) pthread_detach(th);
}
static void dp_finalize(void) { DP_BEGIN("MPI_Finalize"); MPI_Finalize(); DP_END(); }
/* Ends every process of the job (a failure on one rank that the others cannot see). */
static void dp_abort(int code) { fflush(stderr); fflush(stdout); if (dp_size > 1) MPI_Abort(MPI_COMM_WORLD, code); exit(code); }
/* Rank 0's bytes to every rank, in pieces of at most 1 GiB (MPI counts are ints). */
static void dp_bcast(void *buf, size_t bytes) {
    size_t o = 0;
    if (dp_size == 1) return;
    DP_BEGIN("a broadcast");
    while (o < bytes) {
        size_t k = bytes - o < ((size_t)1 << 30) ? bytes - o : ((size_t)1 << 30);
        MPI_Bcast((uint8_t *)buf + o, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD);
        o += k;
    }
    DP_END();
}
static void dp_allreduce(void *x, size_t n, MPI_Datatype t, size_t size, MPI_Op op, const char *what) {
    size_t o = 0;
    if (dp_size == 1) return;
    DP_BEGIN(what);
    while (o < n) {
        size_t k = n - o < ((size_t)1 << 28) ? n - o : ((size_t)1 << 28);
        MPI_Allreduce(MPI_IN_PLACE, (uint8_t *)x + o * size, (int)k, t, op, MPI_COMM_WORLD);
        o += k;
    }
    DP_END();
}
static void dp_sum_f32(float *x, size_t n) { dp_allreduce(x, n, MPI_FLOAT, sizeof *x, MPI_SUM, "the gradient allreduce"); }
static void dp_sum_i64(int64_t *x, size_t n) { dp_allreduce(x, n, MPI_INT64_T, sizeof *x, MPI_SUM, "the gradient allreduce"); }
static void dp_sum_f64(double *x, size_t n) { dp_allreduce(x, n, MPI_DOUBLE, sizeof *x, MPI_SUM, "an allreduce"); }
static void dp_max_f64(double *x, size_t n) { dp_allreduce(x, n, MPI_DOUBLE, sizeof *x, MPI_MAX, "an allreduce"); }
static void dp_max_u64(uint64_t *x, size_t n) { dp_allreduce(x, n, MPI_UINT64_T, sizeof *x, MPI_MAX, "an allreduce"); }
/* Every rank's `bytes` bytes to rank 0, in rank order into recv (rank 0 only). */
static void dp_gather(const void *send, size_t bytes, void *recv) {
    if (dp_size == 1) { memcpy(recv, send, bytes); return; }
    DP_BEGIN("a gather");
    MPI_Gather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    DP_END();
}
#else
static void dp_init(int *argc, char ***argv) { (void)argc; (void)argv; dp_err = stderr; }
static void dp_finalize(void) {}
static void dp_abort(int code) { exit(code); }
static void dp_bcast(void *buf, size_t bytes) { (void)buf; (void)bytes; }
static void dp_sum_f32(float *x, size_t n) { (void)x; (void)n; }
static void dp_sum_i64(int64_t *x, size_t n) { (void)x; (void)n; }
static void dp_sum_f64(double *x, size_t n) { (void)x; (void)n; }
static void dp_max_f64(double *x, size_t n) { (void)x; (void)n; }
static void dp_max_u64(uint64_t *x, size_t n) { (void)x; (void)n; }
static void dp_gather(const void *send, size_t bytes, void *recv) { memcpy(recv, send, bytes); }
#endif

/* The other ranks print nothing (rank 0 speaks for the job); their own
   failures still reach the terminal through dp_err. Under mpirun, rank 0's
   output goes through a pipe that mpirun stops reading at Ctrl-C: the pipe
   is made non-blocking, so a full one drops lines instead of stopping the
   process before it saves. */
static void dp_quiet_others(void) {
    int fd;
#ifdef MINRNN_MPI
    if (dp_rank == 0 && dp_size > 1) {
        struct stat st;
        for (fd = 1; fd <= 2; fd++)
            if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) { int fl = fcntl(fd, F_GETFL); if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK); }
    }
#endif
    if (dp_rank == 0) return;
    fd = dup(2);
    if (fd >= 0 && (dp_err = fdopen(fd, "w")) == NULL) dp_err = stderr;
    if (dp_err != stderr) {
        if (!freopen("/dev/null", "w", stdout)) dp_err = stderr;
        if (!freopen("/dev/null", "w", stderr)) dp_err = stderr;
    }
}

/* The maximum of an int over the ranks (a failure anywhere is a failure everywhere). */
static int dp_max_int(int v) { double d = v; dp_max_f64(&d, 1); return (int)d; }

#ifndef MINRNN_NO_STDIO
/* mr_read_file on rank 0, its result (status, message, bytes) on every rank:
   only rank 0 needs the file (on one machine or many). The buffer is freed
   with mr_buffer_free. */
static mr_status dp_read_file(const char *path, uint8_t **out, size_t *len, size_t max_bytes, mr_error *err) {
    mr_status s = MR_OK;
    uint64_t hdr[2] = {0, 0};
    mr_error e;
    memset(&e, 0, sizeof e);
    *out = NULL; *len = 0;
    if (dp_rank == 0) s = mr_read_file(path, out, len, max_bytes, NULL, &e);
    if (dp_size == 1) { if (err) *err = e; return s; }
    hdr[0] = (uint64_t)(int64_t)s; hdr[1] = (uint64_t)*len;
    dp_bcast(hdr, sizeof hdr);
    dp_bcast(&e, sizeof e);
    s = (mr_status)(int64_t)hdr[0];
    if (err) *err = e;
    if (s != MR_OK) return s;
    if (dp_rank != 0) {
        /* the library's buffer layout (a header that mr_buffer_free reads), from its default allocator */
        *len = (size_t)hdr[1];
        *out = mr__buf_resize(NULL, NULL, 0, *len ? *len : 1);
        if (!*out) { fprintf(dp_err, "rank %d: out of memory for %zu bytes of '%s'\n", dp_rank, *len, path); dp_abort(1); }
    }
    dp_bcast(*out, *len);
    return MR_OK;
}
#endif
#endif
