/*
 * floor: the physical floor of the machine, for the rows of the benchmark
 * suite to be read against.  Nothing of mycelium-shm is used: two processes
 * share one MAP_SHARED mapping of a memfd (the way two mycelium processes
 * share a channel), each pinned to its own core, both busy-polling.
 *
 *   floor pingpong N WARM CORE_PING CORE_PONG [OUT]
 *       A cache-line ping-pong: ping writes a 64-byte line (56 bytes of
 *       payload, then an 8-byte sequence number stored with release), pong
 *       waits for it (acquire), copies the payload into its own line and
 *       publishes it the same way; ping waits for that.  N + WARM round
 *       trips, each timed with CLOCK_MONOTONIC as bench/c/ring_bench.c times
 *       its own (so the two compare like for like).  Prints
 *       "P50 P99 P999 MIN MEAN" (ns, nearest rank) and, with OUT, stores the
 *       last N round-trip times in OUT (int64 ns, native order).
 *
 *   floor framed N WARM CORE_PING CORE_PONG [OUT]
 *       The same round trips with a 64-byte payload carried the way a ring
 *       frame carries it: a 16-byte header (an 8-byte stamp, stored last
 *       with release, and the length) in front of the payload, 80 bytes at
 *       a position that advances by 80 per message in a ring per direction,
 *       so every message spans two cache lines, as a 64 B mycelium frame
 *       does.  Nothing else: no claim, no head or tail, no ownership.  It is
 *       the least any format with a header in front of a 64 B payload moves
 *       per trip.  Prints like pingpong.
 *
 *   floor spsc SIZE N WARM BATCH CORE_PRODUCER CORE_CONSUMER
 *       A minimal single-producer single-consumer ring of fixed SIZE-byte
 *       messages (slots of SIZE rounded up to 64 bytes, 1 MiB of slots as
 *       every shared-memory transport of the suite gets).  Each side keeps
 *       its own index locally and a cached copy of the other's, reloaded
 *       (acquire) only when the ring looks full / empty; the producer copies
 *       a message in and publishes its tail (release), the consumer copies
 *       it out, checks its sequence number and publishes its head (release).
 *       BATCH 1 publishes every message; BATCH B > 1 publishes an index once
 *       per up to B messages (and before waiting).  The consumer times the
 *       messages after the first WARM and prints "ELAPSED_NS TIMED_MSGS",
 *       like ring_bench recv.
 *
 *   floor mpsc SIZE N WARM CORE_PRODUCER CORE_CONSUMER
 *       The least a ring that several producers may write must do: the SPSC
 *       ring above, except that each message is claimed with one locked
 *       fetch-add on a claim counter (its own cache line, never read by the
 *       consumer) and published by a release store of its sequence number
 *       into its own slot, which the consumer polls (acquire); one producer
 *       runs, so nothing contends for the claim.  It measures what one
 *       locked instruction per message costs next to the SPSC ring: the
 *       ceiling of any multi-writer ring that claims each message with an
 *       atomic read-modify-write.  Prints like spsc.
 *
 * The parent process is ping / consumer, a forked child pong / producer.
 * Both touch every page of the mapping before the timed part and meet at a
 * barrier in shared memory, so neither page faults nor process start-up is
 * measured.  Exit status 2 on a system error, 3 on a wrong message, 64 on a
 * bad command line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE 64u
#define RING_BYTES (1u << 20) /* same ring size as every shared-memory row */
#define CTL_BYTES 4096u       /* control block before the slots */

/* Control block: every index on its own pair of cache lines (the adjacent
 * line prefetcher fetches lines in 128-byte pairs). */
#define OFF_BARRIER 0   /* u32: processes that reached the start line */
#define OFF_FAILED 128  /* u32: set by a process that gives up */
#define OFF_TAIL 256    /* u64: messages ever published by the producer */
#define OFF_HEAD 384    /* u64: messages ever consumed */
#define OFF_CLAIM 640   /* u64 (mpsc): messages ever claimed, a line of its own */
#define OFF_PING 512    /* ping's line: u8 payload[56], u64 seq at +56 */
#define OFF_PONG 768    /* pong's line */
#define SEQ_OFF 56u
/* framed: 16-byte header + 64-byte payload, 819 of them per direction (a
 * whole number of frames, about 64 KiB), in rings after the control block. */
#define FRAME_HEADER 16u
#define FRAME_PAYLOAD 64u
#define FRAME_BYTES (FRAME_HEADER + FRAME_PAYLOAD)
#define FRAMES_PER_RING 819u
#define FRAME_RING_BYTES (FRAMES_PER_RING * FRAME_BYTES)

#define AT(base, off, type) ((type *)((uint8_t *)(base) + (off)))

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

static void die(const char *what) {
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void pin(long core) {
    if (core < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)core, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

/* A MAP_SHARED mapping of a fresh memfd, every page touched. */
static uint8_t *map_shared(size_t bytes) {
    int fd = memfd_create("myc-floor", MFD_CLOEXEC);
    if (fd < 0) die("memfd_create");
    if (ftruncate(fd, (off_t)bytes) != 0) die("ftruncate");
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    close(fd);
    memset(p, 0, bytes);
    return p;
}

/* Both processes arrive; neither starts before the other is pinned and
 * has touched its memory.  Gives up (exit 2) if the other side died. */
static void barrier(uint8_t *base) {
    /* acq_rel: what each side did before the barrier is visible after it. */
    __atomic_add_fetch(AT(base, OFF_BARRIER, uint32_t), 1, __ATOMIC_ACQ_REL);
    int64_t deadline = now_ns() + 30 * (int64_t)1000000000;
    for (uint32_t spins = 0;
         __atomic_load_n(AT(base, OFF_BARRIER, uint32_t), __ATOMIC_ACQUIRE) < 2; spins++) {
        cpu_relax();
        if ((spins & 1023) == 0 &&
            (now_ns() > deadline || __atomic_load_n(AT(base, OFF_FAILED, uint32_t), __ATOMIC_RELAXED))) {
            fprintf(stderr, "floor: the other process never arrived\n");
            exit(2);
        }
    }
}

static void give_up(uint8_t *base, int status, const char *why) {
    __atomic_store_n(AT(base, OFF_FAILED, uint32_t), 1, __ATOMIC_RELAXED);
    fprintf(stderr, "floor: %s\n", why);
    exit(status);
}

/* In the child: die with the parent (a harness that kills the parent on
 * its deadline must not leave a child spinning). */
static void follow_parent(pid_t parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die("prctl");
    if (getppid() != parent) _exit(2); /* the parent died before prctl */
}

/* Reap the child; its failure is ours. */
static int reap(pid_t child) {
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR) die("waitpid");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    fprintf(stderr, "floor: child %s %d\n", WIFEXITED(status) ? "exited" : "killed by signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return 2;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, q in 0..1 (as bench/common.py). */
static int64_t rank(const int64_t *sorted, long n, double q) {
    long r = (long)(q * (double)n);
    if ((double)r < q * (double)n) r++; /* ceil */
    if (r < 1) r = 1;
    return sorted[r - 1];
}

/* ------------------------------------------------------------------------ */
/* Cache-line ping-pong                                                      */
/* ------------------------------------------------------------------------ */

/* Where the messages of one direction travel: one fixed line (pingpong),
 * or a ring of 80-byte frames, message `seq` in the next one (framed). */
typedef struct lane {
    uint8_t *at; /* the line, or the ring of frames */
    int framed;
} lane;

/* Message `seq`'s payload; its stamp in *stamp. */
static uint8_t *lane_msg(lane l, uint64_t seq, uint8_t **stamp) {
    if (!l.framed) {
        *stamp = l.at + SEQ_OFF;
        return l.at;
    }
    uint8_t *frame = l.at + ((seq - 1) % FRAMES_PER_RING) * FRAME_BYTES;
    *stamp = frame;
    return frame + FRAME_HEADER;
}

static uint32_t lane_payload(lane l) { return l.framed ? FRAME_PAYLOAD : SEQ_OFF; }

static void lane_send(lane l, uint64_t seq, const uint8_t *payload) {
    uint8_t *stamp, *dst = lane_msg(l, seq, &stamp);
    if (l.framed) { /* the length, published by the stamp like the payload */
        uint32_t frame_len = FRAME_BYTES;
        memcpy(stamp + sizeof seq, &frame_len, sizeof frame_len);
    }
    memcpy(dst, payload, lane_payload(l));
    /* release: the payload (and length) are visible before the stamp. */
    __atomic_store_n(AT(stamp, 0, uint64_t), seq, __ATOMIC_RELEASE);
}

static void lane_receive(lane l, uint64_t seq, uint8_t *out, uint8_t *base) {
    uint8_t *stamp, *src = lane_msg(l, seq, &stamp);
    /* acquire: pairs with the sender's release store of the stamp, so the
     * payload written before it is visible. */
    while (__atomic_load_n(AT(stamp, 0, uint64_t), __ATOMIC_ACQUIRE) != seq) cpu_relax();
    if (l.framed) {
        uint32_t frame_len;
        memcpy(&frame_len, stamp + sizeof seq, sizeof frame_len);
        if (frame_len != FRAME_BYTES) give_up(base, 3, "framed: a frame has the wrong length");
    }
    memcpy(out, src, lane_payload(l));
}

static int pingpong(int argc, char **argv, int framed) {
    if (argc != 6 && argc != 7) return -1;
    long n = strtol(argv[2], NULL, 10), warm = strtol(argv[3], NULL, 10);
    long core_ping = strtol(argv[4], NULL, 10), core_pong = strtol(argv[5], NULL, 10);
    const char *out_path = argc == 7 ? argv[6] : NULL;
    if (n < 1 || warm < 0) return -1;
    uint8_t *base = map_shared(CTL_BYTES + (framed ? 2 * FRAME_RING_BYTES : 0));
    lane to_pong = {base + OFF_PING, 0}, to_ping = {base + OFF_PONG, 0};
    if (framed) {
        to_pong = (lane){base + CTL_BYTES, 1};
        to_ping = (lane){base + CTL_BYTES + FRAME_RING_BYTES, 1};
    }
    uint32_t payload_len = lane_payload(to_pong);
    uint64_t total = (uint64_t)(n + warm);

    pid_t parent = getpid(), child = fork();
    if (child < 0) die("fork");
    if (child == 0) { /* pong: echo every message back */
        follow_parent(parent);
        pin(core_pong);
        uint8_t payload[FRAME_PAYLOAD];
        barrier(base);
        for (uint64_t seq = 1; seq <= total; seq++) {
            lane_receive(to_pong, seq, payload, base);
            lane_send(to_ping, seq, payload);
        }
        _exit(0);
    }

    pin(core_ping);
    int64_t *lat = malloc(sizeof(int64_t) * (size_t)n);
    if (lat == NULL) die("malloc");
    memset(lat, 0, sizeof(int64_t) * (size_t)n); /* no page faults while timing */
    uint8_t payload[FRAME_PAYLOAD], echo[FRAME_PAYLOAD];
    for (unsigned i = 0; i < FRAME_PAYLOAD; i++) payload[i] = (uint8_t)i;
    barrier(base);
    for (uint64_t seq = 1; seq <= total; seq++) {
        int64_t t0 = now_ns();
        payload[0] = (uint8_t)seq;
        lane_send(to_pong, seq, payload);
        lane_receive(to_ping, seq, echo, base);
        int64_t t1 = now_ns();
        if (echo[0] != (uint8_t)seq || echo[payload_len - 1] != payload[payload_len - 1])
            give_up(base, 3, "pingpong: the echo is not the message sent");
        if (seq > (uint64_t)warm) lat[seq - (uint64_t)warm - 1] = t1 - t0;
    }
    if (reap(child)) return 2;

    if (out_path != NULL) {
        FILE *out = fopen(out_path, "wb");
        if (!out || fwrite(lat, sizeof *lat, (size_t)n, out) != (size_t)n || fclose(out))
            die("writing latencies");
    }
    double sum = 0;
    for (long i = 0; i < n; i++) sum += (double)lat[i];
    qsort(lat, (size_t)n, sizeof *lat, cmp_i64);
    printf("%lld %lld %lld %lld %.1f\n", (long long)rank(lat, n, 0.50),
           (long long)rank(lat, n, 0.99), (long long)rank(lat, n, 0.999), (long long)lat[0],
           sum / (double)n);
    free(lat);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Minimal SPSC ring                                                         */
/* ------------------------------------------------------------------------ */

/* The slots of a ring of SIZE-byte messages: SIZE rounded up to whole lines,
 * a power of two of them in RING_BYTES, after the control block. */
typedef struct ring {
    uint32_t size, slot;
    uint64_t nslots;
    uint8_t *base, *slots;
} ring;

static ring ring_map(uint32_t size) {
    ring r = {.size = size, .slot = (size + LINE - 1) / LINE * LINE, .nslots = 1};
    while (r.nslots * 2 * r.slot <= RING_BYTES) r.nslots *= 2;
    r.base = map_shared(CTL_BYTES + (size_t)r.nslots * r.slot);
    r.slots = r.base + CTL_BYTES;
    return r;
}

/* Fork the producer: returns 0 in the child, pinned to `core` and gone with
 * the parent; the child's pid in the parent. */
static pid_t fork_producer(long core) {
    pid_t parent = getpid(), child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        follow_parent(parent);
        pin(core);
    }
    return child;
}

static void produce(uint8_t *base, uint8_t *slots, uint64_t nslots, uint32_t slot, uint32_t size,
                    uint64_t total, uint64_t batch) {
    uint64_t *shared_tail = AT(base, OFF_TAIL, uint64_t), *shared_head = AT(base, OFF_HEAD, uint64_t);
    uint8_t *payload = malloc(size);
    if (payload == NULL) die("malloc");
    for (uint32_t i = 0; i < size; i++) payload[i] = (uint8_t)i;
    uint64_t tail = 0, head_cache = 0, published = 0;
    barrier(base);
    while (tail < total) {
        if (tail - head_cache == nslots) {
            if (published != tail) { /* never wait with messages unpublished */
                /* release: the messages before `tail` are visible first. */
                __atomic_store_n(shared_tail, tail, __ATOMIC_RELEASE);
                published = tail;
            }
            /* acquire: pairs with the consumer's release of head, so it has
             * finished copying the slots we are about to reuse. */
            while ((head_cache = __atomic_load_n(shared_head, __ATOMIC_ACQUIRE)) + nslots == tail)
                cpu_relax();
        }
        uint8_t *dst = slots + (tail & (nslots - 1)) * slot;
        memcpy(dst, payload, size);
        memcpy(dst, &tail, sizeof tail); /* the sequence number, checked by the consumer */
        tail++;
        if (tail - published >= batch || tail == total) {
            /* release: pairs with the consumer's acquire load of tail. */
            __atomic_store_n(shared_tail, tail, __ATOMIC_RELEASE);
            published = tail;
        }
    }
    free(payload);
}

static int spsc(int argc, char **argv) {
    if (argc != 8) return -1;
    long size_arg = strtol(argv[2], NULL, 10);
    long n = strtol(argv[3], NULL, 10), warm = strtol(argv[4], NULL, 10);
    long batch = strtol(argv[5], NULL, 10);
    long core_producer = strtol(argv[6], NULL, 10), core_consumer = strtol(argv[7], NULL, 10);
    if (size_arg < (long)sizeof(uint64_t) || size_arg > (long)RING_BYTES / 2 || n < 1 ||
        warm < 0 || warm >= n || batch < 1)
        return -1;
    ring g = ring_map((uint32_t)size_arg);
    uint32_t size = g.size, slot = g.slot;
    uint64_t nslots = g.nslots, total = (uint64_t)n;
    uint8_t *base = g.base, *slots = g.slots;
    pid_t child = fork_producer(core_producer);
    if (child == 0) {
        produce(base, slots, nslots, slot, size, total, (uint64_t)batch);
        _exit(0);
    }

    pin(core_consumer);
    uint64_t *shared_tail = AT(base, OFF_TAIL, uint64_t), *shared_head = AT(base, OFF_HEAD, uint64_t);
    uint8_t *buf = malloc(size);
    if (buf == NULL) die("malloc");
    memset(buf, 0, size);
    uint64_t head = 0, tail_cache = 0, timed_from = (uint64_t)warm;
    int64_t t0 = 0;
    barrier(base);
    if (warm == 0) t0 = now_ns();
    while (head < total) {
        if (head == tail_cache) {
            /* acquire: pairs with the producer's release of tail, so the
             * messages before it are visible. */
            while ((tail_cache = __atomic_load_n(shared_tail, __ATOMIC_ACQUIRE)) == head)
                cpu_relax();
        }
        uint64_t end = tail_cache - head > (uint64_t)batch ? head + (uint64_t)batch : tail_cache;
        for (; head < end; head++) {
            memcpy(buf, slots + (head & (nslots - 1)) * slot, size);
            uint64_t seq;
            memcpy(&seq, buf, sizeof seq);
            if (seq != head || (size > sizeof seq && buf[size - 1] != (uint8_t)(size - 1)))
                give_up(base, 3, "spsc: a message is not the one sent");
        }
        /* release: our copies are done before the producer reuses the slots. */
        __atomic_store_n(shared_head, head, __ATOMIC_RELEASE);
        if (t0 == 0 && head >= timed_from) {
            t0 = now_ns();
            timed_from = head;
        }
    }
    int64_t elapsed = now_ns() - t0;
    free(buf);
    if (reap(child)) return 2;
    printf("%lld %llu\n", (long long)elapsed, (unsigned long long)(total - timed_from));
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Minimal MPSC ring: one locked claim per message                           */
/* ------------------------------------------------------------------------ */

/* Slots start with a u64 stamp: sequence + 1 once the message is in. */
static void produce_claimed(uint8_t *base, uint8_t *slots, uint64_t nslots, uint32_t slot,
                            uint32_t size, uint64_t total) {
    uint64_t *claim = AT(base, OFF_CLAIM, uint64_t), *shared_head = AT(base, OFF_HEAD, uint64_t);
    uint8_t *payload = malloc(size);
    if (payload == NULL) die("malloc");
    for (uint32_t i = 0; i < size; i++) payload[i] = (uint8_t)i;
    uint64_t head_cache = 0;
    barrier(base);
    for (;;) {
        /* acq_rel: the claim a multi-writer ring would make (one winner per
         * sequence number); the locked instruction is what is measured. */
        uint64_t seq = __atomic_fetch_add(claim, 1, __ATOMIC_ACQ_REL);
        if (seq >= total) break;
        /* acquire: pairs with the consumer's release of head (slot reuse). */
        while (seq - head_cache >= nslots) {
            head_cache = __atomic_load_n(shared_head, __ATOMIC_ACQUIRE);
            if (seq - head_cache >= nslots) cpu_relax();
        }
        uint8_t *dst = slots + (seq & (nslots - 1)) * slot;
        memcpy(dst + sizeof seq, payload + sizeof seq, size - sizeof seq);
        /* release: the payload is visible before the stamp (consumer acquires). */
        __atomic_store_n(AT(dst, 0, uint64_t), seq + 1, __ATOMIC_RELEASE);
    }
    free(payload);
}

static int mpsc(int argc, char **argv) {
    if (argc != 7) return -1;
    long size_arg = strtol(argv[2], NULL, 10);
    long n = strtol(argv[3], NULL, 10), warm = strtol(argv[4], NULL, 10);
    long core_producer = strtol(argv[5], NULL, 10), core_consumer = strtol(argv[6], NULL, 10);
    if (size_arg < (long)sizeof(uint64_t) || size_arg > (long)RING_BYTES / 2 || n < 1 ||
        warm < 0 || warm >= n)
        return -1;
    ring g = ring_map((uint32_t)size_arg);
    uint32_t size = g.size, slot = g.slot;
    uint64_t nslots = g.nslots, total = (uint64_t)n;
    uint8_t *base = g.base, *slots = g.slots;
    pid_t child = fork_producer(core_producer);
    if (child == 0) {
        produce_claimed(base, slots, nslots, slot, size, total);
        _exit(0);
    }

    pin(core_consumer);
    uint64_t *shared_head = AT(base, OFF_HEAD, uint64_t);
    uint8_t *buf = malloc(size);
    if (buf == NULL) die("malloc");
    memset(buf, 0, size);
    int64_t t0 = 0;
    barrier(base);
    if (warm == 0) t0 = now_ns();
    for (uint64_t head = 0; head < total; head++) {
        uint8_t *src = slots + (head & (nslots - 1)) * slot;
        /* acquire: pairs with the producer's release store of the stamp. */
        while (__atomic_load_n(AT(src, 0, uint64_t), __ATOMIC_ACQUIRE) != head + 1) cpu_relax();
        memcpy(buf, src, size);
        if (size > sizeof head && buf[size - 1] != (uint8_t)(size - 1))
            give_up(base, 3, "mpsc: a message is not the one sent");
        /* release: our copy is done before the producer reuses the slot. */
        __atomic_store_n(shared_head, head + 1, __ATOMIC_RELEASE);
        if (head + 1 == (uint64_t)warm) t0 = now_ns();
    }
    int64_t elapsed = now_ns() - t0;
    free(buf);
    if (reap(child)) return 2;
    printf("%lld %llu\n", (long long)elapsed, (unsigned long long)(total - (uint64_t)warm));
    return 0;
}

int main(int argc, char **argv) {
    int rc = -1;
    if (argc >= 2 && strcmp(argv[1], "pingpong") == 0) rc = pingpong(argc, argv, 0);
    else if (argc >= 2 && strcmp(argv[1], "framed") == 0) rc = pingpong(argc, argv, 1);
    else if (argc >= 2 && strcmp(argv[1], "spsc") == 0) rc = spsc(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "mpsc") == 0) rc = mpsc(argc, argv);
    if (rc == -1) {
        fprintf(stderr,
                "usage: floor pingpong N WARM CORE_PING CORE_PONG [OUT]\n"
                "       floor framed N WARM CORE_PING CORE_PONG [OUT]\n"
                "       floor spsc SIZE N WARM BATCH CORE_PRODUCER CORE_CONSUMER\n"
                "       floor mpsc SIZE N WARM CORE_PRODUCER CORE_CONSUMER\n");
        return 64;
    }
    return rc;
}
