/*
 * The operating system's side: clocks, futexes, wait slices and process
 * identity (pid plus start time, so a reused pid is not mistaken for the
 * process that held a slot).
 */
#include "ring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int64_t myc_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

uint64_t myc_realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

int myc_futex_wait(void *base, uint64_t off, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / NS_PER_S;
        ts.tv_nsec = timeout_ns % NS_PER_S;
        tsp = &ts;
    }
    /* Not FUTEX_PRIVATE: the word lives in memory shared between processes. */
    long rc = syscall(SYS_futex, MYC_AT(base, off, uint32_t), FUTEX_WAIT, expected, tsp, NULL, 0);
    return rc == 0 ? 0 : errno;
}

int myc_futex_wake_all(void *base, uint64_t off) {
    long rc = syscall(SYS_futex, MYC_AT(base, off, uint32_t), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    return rc > 0 ? (int)rc : 0;
}

/* ------------------------------------------------------------------------ */
/* Wait slicing (for callers that must service signals)                     */
/* ------------------------------------------------------------------------ */

static int64_t g_wait_slice_ns; /* relaxed atomic: a setting, orders nothing */

void myc_set_wait_slice(int64_t slice_ns) {
    __atomic_store_n(&g_wait_slice_ns, slice_ns < 0 ? 0 : slice_ns, __ATOMIC_RELAXED);
}

int64_t myc_slice_deadline(int64_t start, int64_t deadline) {
    int64_t slice = __atomic_load_n(&g_wait_slice_ns, __ATOMIC_RELAXED);
    return slice > 0 && deadline - start > slice ? start + slice : deadline;
}

/* ------------------------------------------------------------------------ */
/* Process identity                                                          */
/* ------------------------------------------------------------------------ */

/* Fields 3 (state) and 22 (start time, clock ticks since boot) of
 * /proc/PID/stat.  Returns 0 if the process does not exist. */
static int proc_stat(int32_t pid, char *state, uint64_t *start_ticks) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got <= 0) return 0;
    buf[got] = '\0';
    /* The command name (field 2) may hold spaces and ')': skip to the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ') return 0;
    *state = p[2];
    int field = 2;
    for (; *p && field < 22; p++)
        if (*p == ' ') field++;
    *start_ticks = strtoull(p, NULL, 10);
    return 1;
}

static uint64_t self_start_ticks(void) {
    static _Thread_local int32_t cached_pid;
    static _Thread_local uint64_t cached_start;
    int32_t pid = (int32_t)getpid();
    if (pid != cached_pid) { /* recomputed after fork */
        char state;
        if (!proc_stat(pid, &state, &cached_start)) cached_start = 0;
        cached_pid = pid;
    }
    return cached_start;
}

uint64_t myc_g_fork_generation;

static void on_fork_child(void) {
    __atomic_fetch_add(&myc_g_fork_generation, 1, __ATOMIC_RELAXED);
}

static pthread_once_t g_fork_guard_once = PTHREAD_ONCE_INIT;
static void register_fork_guard(void) { pthread_atfork(NULL, NULL, on_fork_child); }
void myc_fork_guard_init(void) { pthread_once(&g_fork_guard_once, register_fork_guard); }

uint64_t myc_self_owner(void) { return MYC_OWNER(getpid(), self_start_ticks()); }

/* Alive: exists, is not a zombie (a zombie's memory is gone: it will never
 * write again), and started when the identity says (0 = do not check). */
static int alive(int32_t pid, int check_start, uint64_t start_ticks, uint64_t start_mask) {
    if (pid <= 0) return 0;
    if (kill(pid, 0) != 0 && errno != EPERM) return 0;
    char state;
    uint64_t now_start;
    /* Unreadable /proc entry (hidepid): trust kill(). */
    if (!proc_stat(pid, &state, &now_start)) return kill(pid, 0) == 0 || errno == EPERM;
    if (state == 'Z' || state == 'X' || state == 'x') return 0;
    return !check_start || (now_start & start_mask) == (start_ticks & start_mask);
}

int myc_pid_alive(int32_t pid, uint64_t start_ticks) {
    return alive(pid, start_ticks != 0, start_ticks, UINT64_MAX);
}

int myc_owner_alive(uint64_t owner) {
    return alive(MYC_OWNER_PID(owner), MYC_OWNER_START(owner) != 0, MYC_OWNER_START(owner),
                 0xFFFFFFFFull);
}
