/*
 * ring_bench: the C ceiling for the benchmark suite.  The same round-trip and
 * throughput loops as the Python harness, calling the core (csrc/) directly, so
 * the report shows how much of each Python number is the ring and how much
 * is the interpreter.
 *
 *   ring_bench rtt ping|pong AB BA SIZE N WARM CORE block|poll OUT
 *       ping writes to AB and reads BA, N + WARM round trips, and stores the
 *       last N round-trip times (int64 ns, native order) in file OUT; pong
 *       echoes N + WARM frames from AB back on BA.
 *   ring_bench send CHAN SIZE N CORE single|batch|zc block|poll
 *   ring_bench recv CHAN SIZE N WARM CORE single|batch|zc block|poll
 *       recv prints "ELAPSED_NS TIMED_FRAMES" for the frames after WARM.
 *
 * Every process opens its channels with MYC_CREATE_OR_ATTACH, so start order
 * does not matter; the harness unlinks the channels.  When stdin is a pipe,
 * each process, once pinned, attached and with its buffers touched, prints
 * "ready" and waits for a byte (or EOF) on stdin: the harness answers when
 * every process of the run is ready, so no process start-up, attach or
 * first-touch page fault lands in anyone's timed loop, and no blocking reader
 * falls asleep waiting for a writer that is still starting (the Python rows
 * meet at a barrier the same way).  Run by hand, a process starts at once.
 *
 * "block" waits inside the core (timeout -1: spin, then futex); "poll" calls
 * with timeout 0 in a loop, with a pause instruction between empty / full
 * tries (as the core's own spin does).  "batch" moves batch_frames(SIZE)
 * frames per call, the rule of batch_size() in bench/transports_mycelium.py,
 * so the C and Python batch rows make calls of the same size.
 *
 * Nothing but the ring call runs per message: the mode is decoded once, the
 * buffers are one batch long (allocated and touched before the loop, so no
 * page fault is timed), and only the round-trip loop reads the clock per
 * message (twice per round trip, as every RTT row does).
 *
 * Exit status 2 on any ring error, with the reason on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"

#define CAPACITY (1ull << 20) /* same ring size as every Python row */
#define TYPE_ID 1u
#define BATCH 64u

enum mode { MODE_SINGLE, MODE_BATCH, MODE_ZC, MODE_BAD };

static enum mode parse_mode(const char *s) {
    if (strcmp(s, "single") == 0) return MODE_SINGLE;
    if (strcmp(s, "batch") == 0) return MODE_BATCH;
    if (strcmp(s, "zc") == 0) return MODE_ZC;
    return MODE_BAD;
}

/* Frames per batch call: BATCH, but a batch stays within 1/4 of the ring
 * (batch_size() in bench/transports_mycelium.py). */
static uint32_t batch_frames(uint32_t size) {
    uint64_t per = CAPACITY / 4 / ((uint64_t)size + 8);
    return per < 1 ? 1 : per > BATCH ? BATCH : (uint32_t)per;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fail(const char *what, int64_t rc) {
    fprintf(stderr, "ring_bench: %s: %s: %s\n", what, myc_result_name((int)rc),
            myc_last_error());
    exit(2);
}

/* A buffer of `bytes`, cache-line aligned, every page already touched. */
static uint8_t *buffer(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    uint8_t *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p == NULL) {
        perror("ring_bench: aligned_alloc");
        exit(2);
    }
    for (size_t i = 0; i < rounded; i++) p[i] = (uint8_t)i;
    return p;
}

static void pin(long core) {
    if (core < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)core, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) perror("ring_bench: sched_setaffinity");
}

/* The start barrier (see the top of the file); a no-op unless stdin is a pipe. */
static void start_barrier(void) {
    struct stat st;
    if (fstat(0, &st) != 0 || !S_ISFIFO(st.st_mode)) return;
    fputs("ready\n", stdout);
    fflush(stdout);
    char go;
    while (read(0, &go, 1) < 0 && errno == EINTR) {
    }
}

static myc_writer *open_writer(const char *name) {
    myc_writer *w = NULL;
    int rc = myc_writer_open(name, MYC_CREATE_OR_ATTACH, CAPACITY, 0, 0, NULL, &w);
    if (rc != MYC_OK) fail("myc_writer_open", rc);
    return w;
}

static myc_reader *open_reader(const char *name) {
    myc_reader *r = NULL;
    int rc = myc_reader_open(name, MYC_CREATE_OR_ATTACH, CAPACITY, 0, 0, NULL, &r);
    if (rc != MYC_OK) fail("myc_reader_open", rc);
    return r;
}

/* One frame out; in poll mode retry a full ring from here. */
static void put(myc_writer *w, const uint8_t *payload, uint32_t size, int poll) {
    int rc;
    while ((rc = myc_write(w, TYPE_ID, payload, size, poll ? 0 : -1)) == MYC_ERR_FULL && poll)
        cpu_relax();
    if (rc != MYC_OK) fail("myc_write", rc);
}

/* One frame in; returns its payload length. */
static uint32_t get(myc_reader *r, uint8_t *buf, uint64_t buf_len, int poll) {
    int64_t rc;
    while ((rc = myc_read(r, poll ? 0 : -1, buf, buf_len)) == MYC_ERR_EMPTY && poll) cpu_relax();
    if (rc < 0) fail("myc_read", rc);
    return (uint32_t)(rc & 0xFFFFFFFF);
}

static int rtt(int argc, char **argv) {
    if (argc != 11) return -1;
    int is_ping = strcmp(argv[2], "ping") == 0;
    const char *ab = argv[3], *ba = argv[4];
    uint32_t size = (uint32_t)strtoul(argv[5], NULL, 10);
    long n = strtol(argv[6], NULL, 10), warm = strtol(argv[7], NULL, 10);
    pin(strtol(argv[8], NULL, 10));
    int poll = strcmp(argv[9], "poll") == 0;
    uint8_t *buf = buffer(size + 8);
    myc_writer *w = open_writer(is_ping ? ab : ba);
    myc_reader *r = open_reader(is_ping ? ba : ab);
    int64_t *lat = is_ping ? (int64_t *)buffer(sizeof(int64_t) * (size_t)(n > 0 ? n : 1)) : NULL;
    start_barrier();
    if (!is_ping) {
        for (long i = 0; i < n + warm; i++) {
            uint32_t len = get(r, buf, size + 8, poll);
            put(w, buf, len, poll);
        }
    } else {
        for (long i = 0; i < n + warm; i++) {
            int64_t t0 = now_ns();
            put(w, buf, size, poll);
            uint32_t len = get(r, buf, size + 8, poll);
            int64_t t1 = now_ns();
            if (len != size) {
                fprintf(stderr, "ring_bench: echoed %u bytes, sent %u\n", len, size);
                return 2;
            }
            if (i >= warm) lat[i - warm] = t1 - t0;
        }
        FILE *out = fopen(argv[10], "wb");
        if (!out || fwrite(lat, sizeof *lat, (size_t)n, out) != (size_t)n || fclose(out)) {
            perror("ring_bench: writing latencies");
            return 2;
        }
        free(lat);
    }
    myc_reader_close(r);
    myc_writer_close(w);
    free(buf);
    return 0;
}

static int send_frames(int argc, char **argv) {
    if (argc != 8) return -1;
    uint32_t size = (uint32_t)strtoul(argv[3], NULL, 10);
    long n = strtol(argv[4], NULL, 10);
    pin(strtol(argv[5], NULL, 10));
    enum mode mode = parse_mode(argv[6]);
    if (mode == MODE_BAD) return -1;
    int poll = strcmp(argv[7], "poll") == 0;
    int64_t timeout = poll ? 0 : -1;
    uint32_t per = mode == MODE_BATCH ? batch_frames(size) : 1;
    uint8_t *payloads = buffer((size_t)size * per);
    uint16_t types[BATCH];
    uint32_t lens[BATCH];
    for (uint32_t i = 0; i < per; i++) {
        types[i] = TYPE_ID;
        lens[i] = size;
    }
    myc_writer *w = open_writer(argv[2]);
    start_barrier();
    if (mode == MODE_SINGLE) {
        for (long i = 0; i < n; i++) put(w, payloads, size, poll);
    } else if (mode == MODE_BATCH) {
        long left = n;
        while (left > 0) {
            uint32_t count = left < (long)per ? (uint32_t)left : per;
            int64_t rc = myc_write_batch(w, count, types, lens, payloads, timeout);
            if (rc == MYC_ERR_FULL && poll) {
                cpu_relax();
                continue;
            }
            if (rc < 0) fail("myc_write_batch", rc);
            left -= rc;
        }
    } else {
        for (long i = 0; i < n; i++) {
            myc_reservation res;
            int rc;
            while ((rc = myc_reserve(w, TYPE_ID, size, timeout, &res)) == MYC_ERR_FULL && poll)
                cpu_relax();
            if (rc != MYC_OK) fail("myc_reserve", rc);
            memcpy(res.payload, payloads, size);
            rc = myc_commit(w, &res);
            if (rc != MYC_OK) fail("myc_commit", rc);
        }
    }
    myc_writer_close(w);
    free(payloads);
    return 0;
}

/* Frames received by one call of the chosen mode (>= 1; exits on an error). */
static long receive(myc_reader *r, enum mode mode, int poll, uint8_t *buf, uint64_t buf_len,
                    uint32_t size, uint32_t want) {
    int64_t timeout = poll ? 0 : -1;
    if (mode == MODE_SINGLE) {
        if (get(r, buf, buf_len, poll) != size) fail("frame length", MYC_ERR_CORRUPT);
        return 1;
    }
    if (mode == MODE_BATCH) {
        uint16_t types[BATCH];
        uint32_t lens[BATCH];
        int64_t rc;
        while ((rc = myc_read_batch(r, want, timeout, buf, buf_len, types, lens)) ==
                   MYC_ERR_EMPTY && poll)
            cpu_relax();
        if (rc < 0) fail("myc_read_batch", rc);
        if (rc > 0 && lens[rc - 1] != size) fail("frame length", MYC_ERR_CORRUPT);
        return (long)rc;
    }
    myc_frame f;
    int rc;
    while ((rc = myc_peek(r, timeout, &f)) == MYC_ERR_EMPTY && poll) cpu_relax();
    if (rc != MYC_OK) fail("myc_peek", rc);
    if (f.payload_len != size) fail("frame length", MYC_ERR_CORRUPT);
    volatile uint8_t last = f.payload[size - 1]; /* touch the data, as a consumer would */
    (void)last;
    myc_release(r);
    return 1;
}

static int recv_frames(int argc, char **argv) {
    if (argc != 9) return -1;
    uint32_t size = (uint32_t)strtoul(argv[3], NULL, 10);
    long n = strtol(argv[4], NULL, 10), warm = strtol(argv[5], NULL, 10);
    pin(strtol(argv[6], NULL, 10));
    enum mode mode = parse_mode(argv[7]);
    if (mode == MODE_BAD) return -1;
    int poll = strcmp(argv[8], "poll") == 0;
    uint32_t per = mode == MODE_BATCH ? batch_frames(size) : 1;
    uint64_t buf_len = (uint64_t)size * per;
    uint8_t *buf = buffer(buf_len);
    myc_reader *r = open_reader(argv[2]);
    start_barrier();
    long got = 0, timed_from = -1;
    int64_t t0 = 0;
    if (warm == 0) {
        t0 = now_ns();
        timed_from = 0;
    }
    while (got < n) {
        uint32_t want = n - got < (long)per ? (uint32_t)(n - got) : per;
        got += receive(r, mode, poll, buf, buf_len, size, want);
        if (timed_from < 0 && got >= warm) {
            t0 = now_ns();
            timed_from = got;
        }
    }
    int64_t elapsed = now_ns() - t0;
    printf("%lld %ld\n", (long long)elapsed, n - timed_from);
    myc_reader_close(r);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    int rc = -1;
    if (argc >= 2 && strcmp(argv[1], "rtt") == 0) rc = rtt(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "send") == 0) rc = send_frames(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "recv") == 0) rc = recv_frames(argc, argv);
    if (rc == -1) {
        fprintf(stderr,
                "usage: ring_bench rtt ping|pong AB BA SIZE N WARM CORE block|poll OUT\n"
                "       ring_bench send CHAN SIZE N CORE single|batch|zc block|poll\n"
                "       ring_bench recv CHAN SIZE N WARM CORE single|batch|zc block|poll\n");
        return 64;
    }
    return rc;
}
