/*
 * What the C tests share: checks that count failures instead of aborting,
 * channel names and child processes that are cleaned up whatever happens
 * (each test's end, exit, and a per-test watchdog), and raw access to a
 * channel's bytes as another, possibly hostile, process would have it.
 *
 * Header-only; each test program includes it once.
 */
#ifndef MYC_TEST_UTIL_H
#define MYC_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Checks                                                                    */
/* ------------------------------------------------------------------------ */

static int g_failed_checks;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "  %s:%d: CHECK failed: %s (last error: %s)\n", __FILE__,          \
                    __LINE__, #cond, myc_last_error());                                      \
            g_failed_checks++;                                                               \
        }                                                                                    \
    } while (0)

#define CHECK_EQ(a, b)                                                                       \
    do {                                                                                     \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                      \
        if (check_a_ != check_b_) {                                                          \
            fprintf(stderr, "  %s:%d: CHECK_EQ failed: %s == %s (%lld != %lld; 0x%llx != 0x%llx) " \
                            "(last error: %s)\n",                                            \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_,                          \
                    (unsigned long long)check_a_, (unsigned long long)check_b_,              \
                    myc_last_error());                                                       \
            g_failed_checks++;                                                               \
        }                                                                                    \
    } while (0)

/* Result of myc_read: type id and payload length. */
#define READ_TYPE(got) ((long long)((got) >> 32))
#define READ_LEN(got) ((long long)((got) & 0xffffffffLL))

#define MS (1000000LL)

static inline int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------------ */
/* Channels: every name made here is unlinked at the test's end and at exit  */
/* ------------------------------------------------------------------------ */

#define MAX_NAMES 256
static char g_names[MAX_NAMES][128];
static int g_name_count;
static const char *g_prog = "ctest";

static inline const char *fresh_name(const char *what) {
    if (g_name_count == MAX_NAMES) {
        fprintf(stderr, "too many channel names\n");
        abort();
    }
    char *name = g_names[g_name_count++];
    snprintf(name, sizeof g_names[0], "%s-%d-%s", g_prog, (int)getpid(), what);
    myc_unlink(name);
    return name;
}

static inline void shm_path(const char *name, char *out, size_t size) {
    snprintf(out, size, "/dev/shm/mycelium.%.255s", name);
}

/* Async-signal-safe: unlink(2) of the /dev/shm files. */
static inline void unlink_all_names(void) {
    for (int i = 0; i < g_name_count; i++) {
        char path[320];
        shm_path(g_names[i], path, sizeof path);
        unlink(path);
    }
    g_name_count = 0;
}

/* ------------------------------------------------------------------------ */
/* Children: every child forked here is killed (if still running) and      */
/* reaped at the test's end, at exit and on the watchdog                     */
/* ------------------------------------------------------------------------ */

#define MAX_CHILDREN 64
static pid_t g_children[MAX_CHILDREN];
static int g_child_count;
static pid_t g_main_pid;

/* fork(); the child runs fn(arg) and _exits with its result (no atexit
 * handlers, no leak check).  Returns the child's pid. */
static inline pid_t spawn(int (*fn)(void *), void *arg) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        abort();
    }
    if (pid == 0) {
        g_child_count = 0; /* the parent's children are not ours */
        _exit(fn(arg) & 0xff);
    }
    if (g_child_count < MAX_CHILDREN) g_children[g_child_count++] = pid;
    return pid;
}

static inline void forget_child(pid_t pid) {
    for (int i = 0; i < g_child_count; i++)
        if (g_children[i] == pid) g_children[i] = g_children[--g_child_count];
}

/* Wait for the child to exit and reap it; its exit code, or 128 + signal,
 * or -1 if it did not end within timeout_ms (then it is killed and reaped). */
static inline int reap(pid_t pid, int timeout_ms) {
    int status = 0;
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * MS;
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid) break;
        if (got < 0 && errno != EINTR) {
            forget_child(pid);
            return -2;
        }
        if (mono_ns() > deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            forget_child(pid);
            return -1;
        }
        sleep_ms(1);
    }
    forget_child(pid);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -3;
}

/* Wait until the child is stopped (SIGSTOP); 1 if it is, 0 otherwise. */
static inline int wait_stopped(pid_t pid, int timeout_ms) {
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * MS;
    for (;;) {
        int status = 0;
        pid_t got = waitpid(pid, &status, WUNTRACED | WNOHANG);
        if (got == pid) return WIFSTOPPED(status);
        if (got < 0 && errno != EINTR) return 0;
        if (mono_ns() > deadline) return 0;
        sleep_ms(1);
    }
}

/* Wait until process `pid` is in state `state` (field 3 of /proc/PID/stat,
 * e.g. 'S' while it sleeps in a futex wait). */
static inline int wait_process_state(pid_t pid, char state, int timeout_ms) {
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * MS;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (;;) {
        FILE *f = fopen(path, "r");
        size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[got] = '\0';
        const char *close_paren = strrchr(buf, ')');
        if (close_paren != NULL && close_paren[1] == ' ' && close_paren[2] == state) return 1;
        if (mono_ns() > deadline) return 0;
        sleep_ms(1);
    }
}

/* Wait until the child has exited, leaving it a zombie (not reaped). */
static inline int wait_zombie(pid_t pid) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    for (;;) {
        int rc = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT);
        if (rc == 0) return 1;
        if (errno != EINTR) return 0;
    }
}

/* Async-signal-safe. */
static inline void kill_all_children(void) {
    for (int i = 0; i < g_child_count; i++) {
        kill(g_children[i], SIGKILL);
        while (waitpid(g_children[i], NULL, 0) < 0 && errno == EINTR) {
        }
    }
    g_child_count = 0;
}

static inline void cleanup_at_exit(void) {
    if (getpid() != g_main_pid) return;
    kill_all_children();
    unlink_all_names();
}

static const char *volatile g_current_test = "";

static inline void on_watchdog(int sig) {
    (void)sig;
    static const char msg[] = "TIMEOUT: the test below hung; children killed, channels unlinked\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    ignored = write(2, g_current_test, strlen(g_current_test));
    ignored = write(2, "\n", 1);
    (void)ignored;
    kill_all_children();
    unlink_all_names();
    _exit(3);
}

/* A crash still kills the children and unlinks the channels, then dies of
 * the same signal.  (Not under ASan, whose own report is worth more.) */
static inline void on_fatal(int sig) {
    static const char msg[] = "FATAL signal in the test below; children killed, channels unlinked\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    ignored = write(2, g_current_test, strlen(g_current_test));
    ignored = write(2, "\n", 1);
    (void)ignored;
    if (getpid() == g_main_pid) {
        kill_all_children();
        unlink_all_names();
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ------------------------------------------------------------------------ */
/* Raw access to a channel's bytes                                           */
/* ------------------------------------------------------------------------ */

typedef struct raw_map {
    uint8_t *base;
    size_t size;
} raw_map;

static inline raw_map raw_open(const char *name) {
    char path[320];
    shm_path(name, path, sizeof path);
    raw_map m = {NULL, 0};
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "  raw_open %s: %s\n", path, strerror(errno));
        abort();
    }
    struct stat st;
    fstat(fd, &st);
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        fprintf(stderr, "  raw_open mmap %s: %s\n", path, strerror(errno));
        abort();
    }
    m.base = p;
    m.size = (size_t)st.st_size;
    return m;
}
static inline void raw_close(raw_map m) { munmap(m.base, m.size); }
static inline uint8_t *raw_ring(raw_map m) { return m.base + MYC_HEADER_SIZE; }
static inline uint64_t raw_u64(raw_map m, uint64_t off) {
    return __atomic_load_n((uint64_t *)(m.base + off), __ATOMIC_SEQ_CST);
}
static inline uint32_t raw_u32(raw_map m, uint64_t off) {
    return __atomic_load_n((uint32_t *)(m.base + off), __ATOMIC_SEQ_CST);
}
static inline uint16_t raw_u16(raw_map m, uint64_t off) {
    uint16_t v;
    memcpy(&v, m.base + off, 2);
    return v;
}
static inline void raw_set_u64(raw_map m, uint64_t off, uint64_t v) {
    __atomic_store_n((uint64_t *)(m.base + off), v, __ATOMIC_SEQ_CST);
}
static inline void raw_set_u32(raw_map m, uint64_t off, uint32_t v) {
    __atomic_store_n((uint32_t *)(m.base + off), v, __ATOMIC_SEQ_CST);
}
static inline void raw_set_u16(raw_map m, uint64_t off, uint16_t v) { memcpy(m.base + off, &v, 2); }

/* Frame header fields at ring offset `idx`. */
static inline uint64_t frame_stamp(raw_map m, uint64_t idx) {
    return raw_u64(m, MYC_HEADER_SIZE + idx + MYC_FRAME_OFF_STAMP);
}
static inline uint32_t frame_len(raw_map m, uint64_t idx) {
    return raw_u32(m, MYC_HEADER_SIZE + idx + MYC_FRAME_OFF_LEN);
}
static inline uint16_t frame_type(raw_map m, uint64_t idx) {
    return raw_u16(m, MYC_HEADER_SIZE + idx + MYC_FRAME_OFF_TYPE);
}
static inline uint16_t frame_flags(raw_map m, uint64_t idx) {
    return raw_u16(m, MYC_HEADER_SIZE + idx + MYC_FRAME_OFF_FLAGS);
}

/* Field 22 of /proc/PID/stat: start time in clock ticks since boot. */
static inline uint64_t proc_start_ticks(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got <= 0) return 0;
    buf[got] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL) return 0;
    int field = 2;
    for (; *p && field < 22; p++)
        if (*p == ' ') field++;
    return strtoull(p, NULL, 10);
}

/* ------------------------------------------------------------------------ */
/* Running                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct test_case {
    const char *name;
    void (*fn)(void);
    /* Reproduces a defect of the core not fixed yet: asserts the correct
     * behaviour, so it fails; run only when named (argv[1]). */
    const char *known_defect;
} test_case;

/* Runs every test (or those whose name contains argv[1]) with a watchdog;
 * cleans up children and channels after each. */
static inline int run_tests(const char *prog, const test_case *tests, size_t count, int argc,
                     char **argv, unsigned watchdog_s) {
    g_prog = prog;
    g_main_pid = getpid();
    atexit(cleanup_at_exit);
    signal(SIGALRM, on_watchdog);
#ifndef __SANITIZE_ADDRESS__
    signal(SIGSEGV, on_fatal);
    signal(SIGBUS, on_fatal);
    signal(SIGABRT, on_fatal);
#endif
    setvbuf(stdout, NULL, _IOLBF, 0);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < count; i++) {
        if (argc > 1 && strstr(tests[i].name, argv[1]) == NULL) continue;
        if (tests[i].known_defect != NULL && argc <= 1) {
            printf("SKIP %s (known defect: %s; run `%s %s` to reproduce)\n", tests[i].name,
                   tests[i].known_defect, prog, tests[i].name);
            continue;
        }
        int before = g_failed_checks;
        g_current_test = tests[i].name;
        alarm(watchdog_s);
        tests[i].fn();
        alarm(0);
        if (g_child_count != 0) {
            fprintf(stderr, "  %s left %d children running: killed\n", tests[i].name, g_child_count);
            g_failed_checks++;
        }
        kill_all_children();
        unlink_all_names();
        int ok = g_failed_checks == before;
        printf("%s %s\n", ok ? "PASS" : "FAIL", tests[i].name);
        if (ok) passed++;
        else failed++;
    }
    printf("%s: %d passed, %d failed\n", prog, passed, failed);
    return failed ? 1 : 0;
}

#endif /* MYC_TEST_UTIL_H */
