/*
 * libFuzzer harness over the content of a channel's shared region.
 *
 * Another process shares the region and may write anything into it, so the
 * core must survive any bytes there: every call returns (with an error when
 * the state is corrupt) and no access leaves the mapping.  This harness makes
 * one channel through the public API, then for each input writes the input
 * over the channel's bytes (through its own MAP_SHARED mapping of
 * /dev/shm/mycelium.<name>) and drives the public API over it: myc_inspect,
 * a reader (myc_read, myc_read_batch, myc_peek + myc_release), a writer
 * (myc_write, myc_write_batch, myc_reserve + myc_commit / myc_abort), the
 * reader again, myc_force_unblock where the core has it.  Every wait has
 * timeout 0, and the reader's stuck timeout is 0.
 *
 * Input: one mode byte, then an image of the region (header, then ring),
 * zero-extended to the file size.  mode = byte & 3; byte >> 2 picks the
 * payload size of the write.
 *   0  raw: the image as it is (only the init word is forced to READY when
 *      the header looks half-written, so that attaching does not wait 2 s
 *      for a creator).
 *   1  positions: block 0 (identity) from the real header, the rest of the
 *      header (positions, owner words, futex words, counters, writer
 *      registry) and the ring from the image.
 *   2  ring: the real header except HEAD and TAIL, which come from the
 *      image with TAIL clamped into [HEAD, HEAD + capacity]; the ring from
 *      the image.  Gets past header validation to the frame parsing.
 *   3  as 2, while a thread flips words of the ring between their value and
 *      another (a hostile peer racing the reader's checks).  Up to 16 flips
 *      come from the image's last header block (u32 ring offset, u32 value
 *      each); none there = the frame length word at HEAD, flipped to a length
 *      that runs 64 bytes past the end of the ring.  Not deterministic.
 * FUZZ_REGION_MODES (e.g. "012") runs only the listed modes.
 *
 * The core's mappings of the channel get a PROT_NONE guard page on each side
 * (mmap/munmap are wrapped: link with -Wl,--wrap=mmap,--wrap=munmap), so an
 * access past the ring's end faults at once instead of landing in whatever
 * mapping happens to follow.  Frame views (myc_peek) and reservations are
 * also checked to lie inside the ring.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ring.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_CAPACITY 4096u
#define FUZZ_NAME_PREFIX "fuzz-region-"
#define FUZZ_BUF 8192u   /* read buffers: more than any frame of the channel */
#define FUZZ_BATCH 8u
#define FUZZ_FLIPS 16u
#define FUZZ_FLIP_BLOCK (MYC_HEADER_SIZE - MYC_BLOCK_SIZE)

/* Optional entry points: present in one version of the core, not in another. */
#pragma weak myc_reader_set_stuck_timeout
#pragma weak myc_reader_set_spin
#pragma weak myc_writer_set_spin
int myc_force_unblock(const char *name, int32_t *pid_out, uint64_t *position_out)
    __attribute__((weak));

static char g_name[64];
static char g_path[128];
static uint8_t *g_region;     /* our own mapping of the whole object */
static size_t g_size;         /* file size: header + ring */
static uint64_t g_capacity;
static uint64_t g_max_payload;
static uint8_t g_pristine[MYC_HEADER_SIZE]; /* header as created, no handle open */
static int g_ready;
static unsigned g_modes = 0xF; /* bit m: mode m runs (FUZZ_REGION_MODES) */

__attribute__((noreturn, format(printf, 1, 2))) static void fuzz_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_region: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

/* ------------------------------------------------------------------------ */
/* Guard pages around the core's mappings of the channel                    */
/* ------------------------------------------------------------------------ */

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);

typedef struct guarded {
    uint8_t *user;     /* what the caller got */
    size_t len;
    uint8_t *reserve;  /* guard page, mapping, guard page */
    size_t total;
} guarded;

static pthread_mutex_t g_guard_lock = PTHREAD_MUTEX_INITIALIZER;
static guarded g_guarded[64];
static int g_guard_on;        /* set once the channel exists */
static dev_t g_dev;
static ino_t g_ino;
static unsigned long g_guard_count;

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    int saved = errno;
    struct stat st;
    if (!__atomic_load_n(&g_guard_on, __ATOMIC_ACQUIRE) || addr != NULL || fd < 0 ||
        (flags & MAP_FIXED) || fstat(fd, &st) != 0 || st.st_dev != g_dev || st.st_ino != g_ino) {
        errno = saved;
        return __real_mmap(addr, len, prot, flags, fd, off);
    }
    errno = saved;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = (len + page - 1) / page * page;
    size_t total = span + 2 * page;
    uint8_t *res = __real_mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                               -1, 0);
    if (res == MAP_FAILED) return __real_mmap(addr, len, prot, flags, fd, off);
    /* The end of a page-multiple mapping is the start of the upper guard. */
    void *p = __real_mmap(res + page, len, prot, flags | MAP_FIXED, fd, off);
    if (p == MAP_FAILED) {
        int err = errno;
        __real_munmap(res, total);
        errno = err;
        return MAP_FAILED;
    }
    pthread_mutex_lock(&g_guard_lock);
    size_t i = 0;
    while (i < sizeof g_guarded / sizeof g_guarded[0] && g_guarded[i].user != NULL) i++;
    if (i == sizeof g_guarded / sizeof g_guarded[0]) {
        pthread_mutex_unlock(&g_guard_lock);
        fuzz_fail("more than %zu live mappings of the channel", i);
    }
    g_guarded[i] = (guarded){p, len, res, total};
    g_guard_count++;
    pthread_mutex_unlock(&g_guard_lock);
    return p;
}

int __wrap_munmap(void *addr, size_t len) {
    pthread_mutex_lock(&g_guard_lock);
    for (size_t i = 0; i < sizeof g_guarded / sizeof g_guarded[0]; i++) {
        if (g_guarded[i].user != addr) continue;
        guarded g = g_guarded[i];
        g_guarded[i].user = NULL;
        pthread_mutex_unlock(&g_guard_lock);
        if (len != g.len) fuzz_fail("munmap of %zu bytes of a %zu-byte mapping", len, g.len);
        return __real_munmap(g.reserve, g.total);
    }
    pthread_mutex_unlock(&g_guard_lock);
    return __real_munmap(addr, len);
}

/* The ring of the core's live full mapping of the channel, if it has one. */
static int core_ring(const uint8_t **lo, const uint8_t **hi) {
    int found = 0;
    pthread_mutex_lock(&g_guard_lock);
    for (size_t i = 0; i < sizeof g_guarded / sizeof g_guarded[0]; i++) {
        if (g_guarded[i].user == NULL || g_guarded[i].len != g_size) continue;
        if (g_guarded[i].user == g_region) continue;
        *lo = g_guarded[i].user + MYC_HEADER_SIZE;
        *hi = g_guarded[i].user + g_size;
        found = 1;
        break;
    }
    pthread_mutex_unlock(&g_guard_lock);
    return found;
}

/* A pointer the core handed out (frame view, reservation) lies in the ring. */
static void check_in_ring(const char *what, const uint8_t *p, uint64_t len) {
    const uint8_t *lo, *hi;
    if (!core_ring(&lo, &hi)) return;
    if (p < lo || p > hi || len > (uint64_t)(hi - p))
        fuzz_fail("%s [%p, +%llu) is outside the ring [%p, %p)", what, (const void *)p,
                  (unsigned long long)len, (const void *)lo, (const void *)hi);
}

static uint8_t touch(const uint8_t *p, uint64_t len) {
    volatile uint8_t sum = 0;
    for (uint64_t i = 0; i < len; i++) sum = (uint8_t)(sum + p[i]);
    return sum;
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                    */
/* ------------------------------------------------------------------------ */

static void cleanup(void) {
    if (g_name[0]) myc_unlink(g_name);
}

/* Channels left by earlier runs that crashed (no atexit then). */
static void remove_stale(void) {
    DIR *d = opendir("/dev/shm");
    if (!d) return;
    const char *prefix = "mycelium." FUZZ_NAME_PREFIX;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + strlen(prefix), &end, 10);
        if (*end != '\0' || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM) continue;
        myc_unlink(e->d_name + strlen("mycelium."));
    }
    closedir(d);
}

static void setup(void) {
    if (g_ready) return;
    const char *modes = getenv("FUZZ_REGION_MODES"); /* e.g. "012": leave out the racy mode 3 */
    if (modes && *modes) {
        g_modes = 0;
        for (const char *c = modes; *c; c++)
            if (*c >= '0' && *c <= '3') g_modes |= 1u << (*c - '0');
    }
    remove_stale();
    snprintf(g_name, sizeof g_name, FUZZ_NAME_PREFIX "%d", (int)getpid());
    snprintf(g_path, sizeof g_path, "/dev/shm/mycelium.%s", g_name);
    myc_unlink(g_name); /* a previous process with our pid */
    myc_writer *w = NULL;
    int rc = myc_writer_open(g_name, MYC_CREATE, FUZZ_CAPACITY, 0, 0600, NULL, &w);
    if (rc != MYC_OK) fuzz_fail("cannot create channel %s: %s", g_name, myc_last_error());
    atexit(cleanup);
    myc_writer_close(w);

    int fd = open(g_path, O_RDWR | O_CLOEXEC);
    if (fd < 0) fuzz_fail("cannot open %s: %s", g_path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) fuzz_fail("cannot stat %s", g_path);
    g_size = (size_t)st.st_size;
    g_region = mmap(NULL, g_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (g_region == MAP_FAILED) fuzz_fail("cannot map %s: %s", g_path, strerror(errno));
    close(fd);
    memcpy(g_pristine, g_region, MYC_HEADER_SIZE);

    myc_info info;
    rc = myc_inspect(g_name, &info);
    if (rc != MYC_OK) fuzz_fail("inspect of the new channel: %s", myc_last_error());
    g_capacity = info.stats.capacity;
    g_max_payload = info.stats.max_payload;
    if (g_size != MYC_HEADER_SIZE + g_capacity)
        fuzz_fail("file is %zu bytes for capacity %llu", g_size, (unsigned long long)g_capacity);

    g_dev = st.st_dev;
    g_ino = st.st_ino;
    __atomic_store_n(&g_guard_on, 1, __ATOMIC_RELEASE);
    /* Check that the wrap works: the core's mapping must be guarded. */
    unsigned long before = g_guard_count;
    rc = myc_inspect(g_name, &info);
    if (rc != MYC_OK) fuzz_fail("inspect of the new channel: %s", myc_last_error());
    if (g_guard_count == before)
        fprintf(stderr, "fuzz_region: warning: the core's mappings are not guarded "
                        "(link with -Wl,--wrap=mmap,--wrap=munmap)\n");
    g_ready = 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setup();
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The flipping thread (mode 3)                                             */
/* ------------------------------------------------------------------------ */

typedef struct flip {
    uint64_t off;      /* ring offset, 4-aligned */
    uint32_t value;
} flip;

static pthread_mutex_t g_flip_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_flip_cond = PTHREAD_COND_INITIALIZER;
static pthread_t g_flipper;
static int g_flipper_started;
static int g_flip_run;        /* 1 while the flipper should flip */
static int g_flip_busy;       /* 1 while it does */
static flip g_flips[FUZZ_FLIPS];
static uint32_t g_flip_orig[FUZZ_FLIPS];
static unsigned g_nflips;

static void *flipper_main(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&g_flip_lock);
        while (!g_flip_run) pthread_cond_wait(&g_flip_cond, &g_flip_lock);
        __atomic_store_n(&g_flip_busy, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&g_flip_lock);
        uint8_t *ring = g_region + MYC_HEADER_SIZE;
        for (uint32_t round = 0; __atomic_load_n(&g_flip_run, __ATOMIC_SEQ_CST); round++) {
            for (unsigned i = 0; i < g_nflips; i++) {
                uint32_t v = (round & 1) ? g_flip_orig[i] : g_flips[i].value;
                __atomic_store_n((uint32_t *)(ring + g_flips[i].off), v, __ATOMIC_RELAXED);
            }
        }
        __atomic_store_n(&g_flip_busy, 0, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void flipper_start(const uint8_t *image_block) {
    uint8_t *ring = g_region + MYC_HEADER_SIZE;
    g_nflips = 0;
    for (unsigned i = 0; i < FUZZ_FLIPS; i++) {
        uint32_t off, value;
        memcpy(&off, image_block + 8 * i, 4);
        memcpy(&value, image_block + 8 * i + 4, 4);
        if (off == 0 && value == 0) continue;
        g_flips[g_nflips++] = (flip){(off & (g_capacity - 1)) & ~(uint64_t)3, value};
    }
    if (g_nflips == 0) {
        uint64_t head;
        memcpy(&head, g_region + MYC_OFF_HEAD, 8);
        uint64_t idx = (head & (g_capacity - 1)) & ~(uint64_t)3;
        uint64_t off = (idx + MYC_FRAME_OFF_LEN) & (g_capacity - 1);
        g_flips[g_nflips++] = (flip){off, (uint32_t)(g_capacity - idx + 64)};
    }
    for (unsigned i = 0; i < g_nflips; i++) memcpy(&g_flip_orig[i], ring + g_flips[i].off, 4);
    if (!g_flipper_started) {
        if (pthread_create(&g_flipper, NULL, flipper_main, NULL) != 0)
            fuzz_fail("cannot start the flipping thread");
        g_flipper_started = 1;
    }
    pthread_mutex_lock(&g_flip_lock);
    g_flip_run = 1;
    pthread_cond_signal(&g_flip_cond);
    pthread_mutex_unlock(&g_flip_lock);
}

static void flipper_stop(void) {
    pthread_mutex_lock(&g_flip_lock);
    __atomic_store_n(&g_flip_run, 0, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&g_flip_lock);
    while (__atomic_load_n(&g_flip_busy, __ATOMIC_SEQ_CST)) sched_yield();
}

/* ------------------------------------------------------------------------ */
/* One input                                                                */
/* ------------------------------------------------------------------------ */

static void load_region(unsigned mode, const uint8_t *image, size_t len) {
    if (len > g_size) len = g_size;
    memcpy(g_region, image, len);
    memset(g_region + len, 0, g_size - len);
    if (mode == 0) {
        uint64_t magic;
        uint32_t init;
        memcpy(&magic, g_region + MYC_OFF_MAGIC, 8);
        memcpy(&init, g_region + MYC_OFF_INIT, 4);
        /* Attaching waits up to 2 s for a creator still writing the header. */
        if (init != MYC_INIT_READY && (magic == 0 || magic == MYC_MAGIC)) {
            init = MYC_INIT_READY;
            memcpy(g_region + MYC_OFF_INIT, &init, 4);
        }
        return;
    }
    if (mode == 1) {
        memcpy(g_region, g_pristine, MYC_BLOCK_SIZE);
        return;
    }
    /* modes 2 and 3: the real header, positions from the image */
    uint64_t head, tail;
    memcpy(&head, g_region + MYC_OFF_HEAD, 8);
    memcpy(&tail, g_region + MYC_OFF_TAIL, 8);
    memcpy(g_region, g_pristine, MYC_HEADER_SIZE);
    tail = head + (tail - head) % (g_capacity + 1);
    memcpy(g_region + MYC_OFF_HEAD, &head, 8);
    memcpy(g_region + MYC_OFF_TAIL, &tail, 8);
}

static void check_payload_len(const char *what, uint64_t len, unsigned mode) {
    /* With the real header (modes 1-3), a delivered frame respects max_payload. */
    if (mode != 0 && len > g_max_payload)
        fuzz_fail("%s delivered %llu payload bytes, max_payload is %llu", what,
                  (unsigned long long)len, (unsigned long long)g_max_payload);
}

/* Buffers sized exactly, so that ASan sees any write past what was passed. */
static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) fuzz_fail("out of memory");
    return p;
}

static void reader_pass(unsigned mode, int rounds) {
    myc_reader *r = NULL;
    if (myc_reader_open(g_name, MYC_ATTACH, 0, 0, 0, NULL, &r) != MYC_OK) return;
    if (myc_reader_set_stuck_timeout) myc_reader_set_stuck_timeout(r, 0);
    if (myc_reader_set_spin) myc_reader_set_spin(r, 0);
    uint16_t *types = xmalloc(FUZZ_BATCH * sizeof *types);
    uint32_t *lens = xmalloc(FUZZ_BATCH * sizeof *lens);
    for (int round = 0; round < rounds; round++) {
        /* Round 1 reads into buffers smaller than some frames. */
        uint64_t read_len = round == 1 ? 100 : FUZZ_BUF;
        uint64_t batch_len = round == 1 ? 600 : FUZZ_BUF;
        uint8_t *buf = xmalloc(read_len);
        int64_t n = myc_read(r, 0, buf, read_len);
        if (n >= 0) {
            uint64_t len = (uint64_t)n & 0xffffffffu;
            if ((uint64_t)n >> 32 == MYC_TYPE_PADDING) fuzz_fail("myc_read delivered padding");
            if (len > read_len) fuzz_fail("myc_read says %llu bytes", (unsigned long long)len);
            check_payload_len("myc_read", len, mode);
        }
        free(buf);
        buf = xmalloc(batch_len);
        n = myc_read_batch(r, FUZZ_BATCH, 0, buf, batch_len, types, lens);
        if (n > 0) {
            if (n > (int64_t)FUZZ_BATCH) fuzz_fail("myc_read_batch says %lld frames", (long long)n);
            uint64_t total = 0;
            for (int64_t i = 0; i < n; i++) {
                if (types[i] == MYC_TYPE_PADDING) fuzz_fail("myc_read_batch delivered padding");
                check_payload_len("myc_read_batch", lens[i], mode);
                total += lens[i];
            }
            if (total > batch_len)
                fuzz_fail("myc_read_batch packed %llu bytes", (unsigned long long)total);
        }
        free(buf);
        myc_frame f;
        if (myc_peek(r, 0, &f) == MYC_OK) {
            if (f.type_id == MYC_TYPE_PADDING) fuzz_fail("myc_peek delivered padding");
            check_payload_len("myc_peek", f.payload_len, mode);
            check_in_ring("myc_peek view", f.payload, f.payload_len);
            touch(f.payload, f.payload_len);
            myc_release(r);
        }
    }
    free(types);
    free(lens);
    myc_reader_close(r);
}

static void writer_pass(unsigned write_len) {
    myc_writer *w = NULL;
    if (myc_writer_open(g_name, MYC_ATTACH, 0, 0, 0, NULL, &w) != MYC_OK) return;
    if (myc_writer_set_spin) myc_writer_set_spin(w, 0);
    uint8_t *payload = xmalloc(write_len);
    memset(payload, 0x5A, write_len);
    myc_write(w, 7, payload, write_len, 0);
    free(payload);

    uint16_t types[3] = {3, 4, 5};
    uint32_t lens[3] = {write_len % 300, 17, 250};
    payload = xmalloc(lens[0] + lens[1] + lens[2]);
    memset(payload, 0x3C, lens[0] + lens[1] + lens[2]);
    myc_write_batch(w, 3, types, lens, payload, 0);
    free(payload);

    myc_reservation res;
    memset(&res, 0, sizeof res);
    if (myc_reserve(w, 9, 40, 0, &res) == MYC_OK) {
        if (res.payload_len != 40) fuzz_fail("reservation of %u bytes, asked 40", res.payload_len);
        check_in_ring("reservation", res.payload, res.payload_len);
        memset(res.payload, 0xA5, res.payload_len);
        myc_commit(w, &res);
    }
    memset(&res, 0, sizeof res);
    if (myc_reserve(w, 10, 24, 0, &res) == MYC_OK) {
        check_in_ring("reservation", res.payload, res.payload_len);
        memset(res.payload, 0x99, res.payload_len);
        myc_abort(w, &res);
    }
    myc_writer_close(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    if (size < 1) return 0;
    unsigned mode = data[0] & 3u;
    if (!(g_modes & (1u << mode))) return -1; /* -1: not added to the corpus */
    unsigned write_len = 1 + (data[0] >> 2) * 37u; /* 1 .. 2332: some too large */
    load_region(mode, data + 1, size - 1);
    if (mode == 3) {
        uint8_t block[MYC_BLOCK_SIZE] = {0};
        if (size - 1 > FUZZ_FLIP_BLOCK) {
            size_t n = size - 1 - FUZZ_FLIP_BLOCK;
            memcpy(block, data + 1 + FUZZ_FLIP_BLOCK, n < sizeof block ? n : sizeof block);
        }
        flipper_start(block);
    }

    myc_info info;
    myc_inspect(g_name, &info);
    reader_pass(mode, 3);
    writer_pass(write_len);
    reader_pass(mode, 1);
    if (myc_force_unblock) {
        int32_t pid;
        uint64_t pos;
        myc_force_unblock(g_name, &pid, &pos);
    }
    if (mode == 3) flipper_stop();
    return 0;
}
