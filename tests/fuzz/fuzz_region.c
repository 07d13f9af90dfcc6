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
 * zero-extended to the file size.  mode = byte & 7; byte >> 3 picks the
 * payload size of the write.  Modes 0-3 drive a single-reader channel,
 * modes 4-7 a broadcast channel (below).
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
 *
 * Modes 4-7: a broadcast channel (4 cursor slots, untether window 1 ms).
 * The mode byte is followed by two script bytes, then the image.
 *   4  raw, as 0 (plus: a CURSOR_LOCK naming a live process is cleared,
 *      or attaching would wait 2 s for it).
 *   5  as 1: real identity block; TAIL|SEQ, the lap table, HEAD, the
 *      cursor lock, READERS_SLEEPING, the cursor table and the rest of the
 *      header from the image.
 *   6  the real header except TAIL, SEQ, the lap table, HEAD, CURSOR_LOCK,
 *      READERS_SLEEPING and the cursor table, which come from the image
 *      (TAIL aligned to 16); the ring from the image.
 *   7  as 6, while a thread flips ring words (as 3).
 * The script attaches up to four readers (durable tethered "a", durable
 * lossy "b", an anonymous one, durable "c" from the oldest frame; policies
 * and start options from the script), reads with each (myc_read,
 * myc_read_batch, myc_peek + myc_reader_check_held), holds a peeked frame
 * across a writer that writes until the ring is full (and, by script, again
 * after the untether window), checks that a held frame that
 * myc_reader_check_held calls intact was not changed (modes 5 and 6),
 * reads again, and calls myc_reader_cursor, myc_inspect_cursors and
 * myc_cursor_forget (busy, absent and detached cursors) on the way.
 *
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
#include <time.h>
#include <unistd.h>

#define FUZZ_CAPACITY 4096u
#define FUZZ_NAME_PREFIX "fuzz-region-"
#define FUZZ_BUF 8192u   /* read buffers: more than any frame of the channel */
#define FUZZ_BATCH 8u
#define FUZZ_FLIPS 16u
#define FUZZ_FLIP_BLOCK (MYC_HEADER_SIZE - MYC_BLOCK_SIZE)
#define FUZZ_BC_READERS 4u    /* cursor slots of the broadcast channel */
#define FUZZ_BC_UNTETHER_MS 1u
#define FUZZ_BC_WRITES 96u    /* most frames one broadcast writer pass writes */

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
/* The broadcast channel (modes 4-7): same capacity, so g_size, g_capacity and
 * g_max_payload hold for it too. */
static char g_bc_name[64];
static char g_bc_path[128];
static uint8_t *g_bc_region;
static uint8_t g_bc_pristine[MYC_HEADER_SIZE];
static int g_ready;
static unsigned g_modes = 0xFF; /* bit m: mode m runs (FUZZ_REGION_MODES) */

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
static int g_guard_on;        /* set once the channels exist */
static dev_t g_dev[2];        /* the single-reader and the broadcast channel */
static ino_t g_ino[2];
static unsigned long g_guard_count;

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    int saved = errno;
    struct stat st;
    if (!__atomic_load_n(&g_guard_on, __ATOMIC_ACQUIRE) || addr != NULL || fd < 0 ||
        (flags & MAP_FIXED) || fstat(fd, &st) != 0 ||
        !((st.st_dev == g_dev[0] && st.st_ino == g_ino[0]) ||
          (st.st_dev == g_dev[1] && st.st_ino == g_ino[1]))) {
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

/* A pointer the core handed out (frame view, reservation) lies in the ring
 * of one of the core's live full mappings of a channel (a reader's or a
 * writer's: there may be several, of both channels). */
static void check_in_ring(const char *what, const uint8_t *p, uint64_t len) {
    if (!__atomic_load_n(&g_guard_on, __ATOMIC_ACQUIRE)) return;
    int inside = 0, seen = 0;
    const uint8_t *lo = NULL, *hi = NULL;
    pthread_mutex_lock(&g_guard_lock);
    for (size_t i = 0; i < sizeof g_guarded / sizeof g_guarded[0]; i++) {
        if (g_guarded[i].user == NULL || g_guarded[i].len != g_size) continue;
        seen = 1;
        lo = g_guarded[i].user + MYC_HEADER_SIZE;
        hi = g_guarded[i].user + g_size;
        if (p >= lo && p <= hi && len <= (uint64_t)(hi - p)) {
            inside = 1;
            break;
        }
    }
    pthread_mutex_unlock(&g_guard_lock);
    if (seen && !inside)
        fuzz_fail("%s [%p, +%llu) is outside the ring of every mapping of the channels", what,
                  (const void *)p, (unsigned long long)len);
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
    if (g_bc_name[0]) myc_unlink(g_bc_name);
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
        if ((*end != '\0' && strcmp(end, "-bc") != 0) || pid <= 0) continue;
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
            if (*c >= '0' && *c <= '7') g_modes |= 1u << (*c - '0');
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

    g_dev[0] = st.st_dev;
    g_ino[0] = st.st_ino;

    /* The broadcast channel, as large as the other one. */
    snprintf(g_bc_name, sizeof g_bc_name, FUZZ_NAME_PREFIX "%d-bc", (int)getpid());
    snprintf(g_bc_path, sizeof g_bc_path, "/dev/shm/mycelium.%s", g_bc_name);
    myc_unlink(g_bc_name);
    rc = myc_writer_open_ex(g_bc_name, MYC_CREATE, FUZZ_CAPACITY, 0, 0600, NULL, FUZZ_BC_READERS,
                            FUZZ_BC_UNTETHER_MS, &w);
    if (rc != MYC_OK) fuzz_fail("cannot create channel %s: %s", g_bc_name, myc_last_error());
    myc_writer_close(w);
    fd = open(g_bc_path, O_RDWR | O_CLOEXEC);
    if (fd < 0) fuzz_fail("cannot open %s: %s", g_bc_path, strerror(errno));
    struct stat bst;
    if (fstat(fd, &bst) != 0 || (size_t)bst.st_size != g_size)
        fuzz_fail("%s is not %zu bytes", g_bc_path, g_size);
    g_bc_region = mmap(NULL, g_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (g_bc_region == MAP_FAILED) fuzz_fail("cannot map %s: %s", g_bc_path, strerror(errno));
    close(fd);
    memcpy(g_bc_pristine, g_bc_region, MYC_HEADER_SIZE);
    g_dev[1] = bst.st_dev;
    g_ino[1] = bst.st_ino;
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
static uint8_t *g_flip_region; /* the channel whose ring is flipped */

static void *flipper_main(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&g_flip_lock);
        while (!g_flip_run) pthread_cond_wait(&g_flip_cond, &g_flip_lock);
        __atomic_store_n(&g_flip_busy, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&g_flip_lock);
        uint8_t *ring = g_flip_region + MYC_HEADER_SIZE;
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

static void flipper_start(uint8_t *region, const uint8_t *image_block) {
    g_flip_region = region;
    uint8_t *ring = region + MYC_HEADER_SIZE;
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
        memcpy(&head, region + MYC_OFF_HEAD, 8);
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
    /* With the real identity block (modes 1-3, 5-7), a delivered frame
     * respects max_payload. */
    if (mode != 0 && mode != 4 && len > g_max_payload)
        fuzz_fail("%s delivered %llu payload bytes, max_payload is %llu", what,
                  (unsigned long long)len, (unsigned long long)g_max_payload);
}

/* Buffers sized exactly, so that ASan sees any write past what was passed. */
static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) fuzz_fail("out of memory");
    return p;
}

static void reader_rounds(myc_reader *r, unsigned mode, int rounds) {
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
}

static void reader_pass(unsigned mode, int rounds) {
    myc_reader *r = NULL;
    if (myc_reader_open(g_name, MYC_ATTACH, 0, 0, 0, NULL, &r) != MYC_OK) return;
    if (myc_reader_set_stuck_timeout) myc_reader_set_stuck_timeout(r, 0);
    if (myc_reader_set_spin) myc_reader_set_spin(r, 0);
    reader_rounds(r, mode, rounds);
    myc_reader_close(r);
}

static void writer_ops(myc_writer *w, unsigned write_len) {
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
}

static void writer_pass(unsigned write_len) {
    myc_writer *w = NULL;
    if (myc_writer_open(g_name, MYC_ATTACH, 0, 0, 0, NULL, &w) != MYC_OK) return;
    if (myc_writer_set_spin) myc_writer_set_spin(w, 0);
    writer_ops(w, write_len);
    myc_writer_close(w);
}

/* ------------------------------------------------------------------------ */
/* The broadcast channel (modes 4-7)                                        */
/* ------------------------------------------------------------------------ */

/* A cursor lock held by a live process makes attaching wait 2 s for it
 * (right, for a real peer; a timeout for the fuzzer): such a value is
 * cleared.  A dead holder's is kept (it is taken over). */
static void bc_unlock_live(void) {
    uint64_t lock;
    memcpy(&lock, g_bc_region + MYC_OFF_CURSOR_LOCK, 8);
    if (lock != 0 && myc_pid_alive(MYC_OWNER_PID(lock), 0)) {
        lock = 0;
        memcpy(g_bc_region + MYC_OFF_CURSOR_LOCK, &lock, 8);
    }
}

static void bc_load_region(unsigned mode, const uint8_t *image, size_t len) {
    uint8_t *b = g_bc_region;
    if (len > g_size) len = g_size;
    memcpy(b, image, len);
    memset(b + len, 0, g_size - len);
    if (mode == 4) {
        uint64_t magic;
        uint32_t init;
        memcpy(&magic, b + MYC_OFF_MAGIC, 8);
        memcpy(&init, b + MYC_OFF_INIT, 4);
        if (init != MYC_INIT_READY && (magic == 0 || magic == MYC_MAGIC)) {
            init = MYC_INIT_READY;
            memcpy(b + MYC_OFF_INIT, &init, 4);
        }
    } else if (mode == 5) {
        memcpy(b, g_bc_pristine, MYC_BLOCK_SIZE);
    } else {
        /* modes 6 and 7: the real header, but what readers and writers of
         * a broadcast channel share comes from the image */
        uint8_t pos[MYC_BLOCK_SIZE], lock[8], head[8], sleeping[4];
        uint8_t table[MYC_READER_SLOTS * MYC_CURSOR_SLOT_SIZE];
        memcpy(pos, b + MYC_OFF_TAIL, sizeof pos); /* TAIL, SEQ, lap table */
        memcpy(head, b + MYC_OFF_HEAD, 8);
        memcpy(lock, b + MYC_OFF_CURSOR_LOCK, 8);
        memcpy(sleeping, b + MYC_OFF_READERS_SLEEPING, 4);
        memcpy(table, b + MYC_OFF_READER_TABLE, sizeof table);
        memcpy(b, g_bc_pristine, MYC_HEADER_SIZE);
        memcpy(b + MYC_OFF_TAIL, pos, sizeof pos);
        memcpy(b + MYC_OFF_HEAD, head, 8);
        memcpy(b + MYC_OFF_CURSOR_LOCK, lock, 8);
        memcpy(b + MYC_OFF_READERS_SLEEPING, sleeping, 4);
        memcpy(b + MYC_OFF_READER_TABLE, table, sizeof table);
        uint64_t tail;
        memcpy(&tail, b + MYC_OFF_TAIL, 8);
        tail &= ~(uint64_t)(MYC_FRAME_ALIGNMENT - 1);
        memcpy(b + MYC_OFF_TAIL, &tail, 8);
    }
    bc_unlock_live();
}

typedef struct bc_held {
    myc_reader *r;
    const uint8_t *payload;
    uint32_t len;
    uint8_t *copy;
} bc_held;

/* Peek with r and keep the frame (and a copy of its bytes). */
static void bc_hold(bc_held *h, myc_reader *r, unsigned mode) {
    memset(h, 0, sizeof *h);
    myc_frame f;
    if (r == NULL || myc_peek(r, 0, &f) != MYC_OK) return;
    if (f.type_id == MYC_TYPE_PADDING) fuzz_fail("myc_peek delivered padding");
    check_payload_len("myc_peek", f.payload_len, mode);
    check_in_ring("myc_peek view", f.payload, f.payload_len);
    h->r = r;
    h->payload = f.payload;
    h->len = f.payload_len;
    h->copy = xmalloc(f.payload_len);
    memcpy(h->copy, f.payload, f.payload_len);
}

/* After writers ran: a held frame that the core calls intact must be (the
 * harness is the only process writing, and no thread flips words: modes 5
 * and 6). */
static void bc_check_held(bc_held *h, unsigned mode) {
    if (h->r == NULL) return;
    int rc = myc_reader_check_held(h->r);
    if (rc != MYC_OK && rc != MYC_ERR_LAPPED)
        fuzz_fail("myc_reader_check_held returned %s", myc_result_name(rc));
    if (rc == MYC_OK && (mode == 5 || mode == 6) && memcmp(h->copy, h->payload, h->len) != 0)
        fuzz_fail("myc_reader_check_held says the held frame (%u bytes) is intact, but a "
                  "writer changed it", h->len);
    touch(h->payload, h->len);
    free(h->copy);
    h->copy = NULL;
    myc_release(h->r);
    h->r = NULL;
}

static void bc_inspect(void) {
    myc_cursor_info cursors[MYC_READER_SLOTS];
    uint32_t count = 0;
    if (myc_inspect_cursors(g_bc_name, cursors, MYC_READER_SLOTS, &count) == MYC_OK &&
        count > MYC_READER_SLOTS)
        fuzz_fail("myc_inspect_cursors counts %u cursors", count);
    myc_inspect_cursors(g_bc_name, NULL, 0, &count);
    myc_info info;
    myc_inspect(g_bc_name, &info);
}

static myc_reader *bc_attach(const char *cursor, uint32_t policy, int oldest) {
    myc_reader *r = NULL;
    int rc = cursor == NULL && policy == 0
                 ? myc_reader_open(g_bc_name, MYC_ATTACH, 0, 0, 0, NULL, &r)
                 : myc_reader_open_ex(g_bc_name, MYC_ATTACH | (oldest ? MYC_START_OLDEST : 0), 0, 0, 0,
                                      NULL, 0, 0, cursor, policy, &r);
    if (rc != MYC_OK) return NULL;
    if (myc_reader_set_stuck_timeout) myc_reader_set_stuck_timeout(r, 0);
    if (myc_reader_set_spin) myc_reader_set_spin(r, 0);
    myc_cursor_info info;
    if (myc_reader_cursor(r, &info) == MYC_OK && info.slot >= MYC_READER_SLOTS)
        fuzz_fail("myc_reader_cursor says slot %u", info.slot);
    return r;
}

/* Write until the ring is full (at most FUZZ_BC_WRITES frames), then the
 * usual calls; with `again`, wait past the untether window and write on
 * (a writer held by a tethered reader that does not read untethers it). */
static void bc_writer_pass(unsigned write_len, unsigned frames, int again) {
    myc_writer *w = NULL;
    if (myc_writer_open_ex(g_bc_name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, &w) != MYC_OK) return;
    if (myc_writer_set_spin) myc_writer_set_spin(w, 0);
    uint8_t payload[300];
    memset(payload, 0x42, sizeof payload);
    for (int round = 0; round < (again ? 2 : 1); round++) {
        for (unsigned i = 0; i < frames; i++) {
            uint32_t len = (write_len + 53 * i) % sizeof payload;
            if (myc_write(w, 1 + i % 7, payload, len, 0) != MYC_OK) break;
        }
        if (again && round == 0) {
            struct timespec ts = {0, (FUZZ_BC_UNTETHER_MS + 1) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    writer_ops(w, write_len);
    myc_writer_close(w);
}

/*
 * script[0]: bit 0  reader 0 is plain myc_reader_open (anonymous,
 *                   tethered), else durable tethered "a";
 *            bit 1  reader 1 ("b", lossy) starts at the oldest frame;
 *            bit 2  attach reader 2 (anonymous; policy: bit 3 lossy);
 *            bit 4  attach reader 3 (durable "c", from the oldest frame;
 *                   bit 5: lossy);
 *            bit 6  hold a frame of reader 0 across the writer too;
 *            bit 7  write again after the untether window.
 * script[1]: frames the writer writes before its usual calls
 *            (script[1] % (FUZZ_BC_WRITES + 1)).
 */
static void bc_run(unsigned mode, const uint8_t script[2], unsigned write_len) {
    bc_inspect();
    myc_reader *rd[4] = {NULL, NULL, NULL, NULL};
    rd[0] = (script[0] & 1) ? bc_attach(NULL, 0, 0) : bc_attach("a", MYC_POLICY_TETHERED, 0);
    rd[1] = bc_attach("b", MYC_POLICY_LOSSY, script[0] & 2);
    if (script[0] & 4) rd[2] = bc_attach(NULL, (script[0] & 8) ? MYC_POLICY_LOSSY : MYC_POLICY_TETHERED, 0);
    if (script[0] & 16)
        rd[3] = bc_attach("c", (script[0] & 32) ? MYC_POLICY_LOSSY : MYC_POLICY_TETHERED, 1);
    bc_inspect();
    /* Readers 2 and 3 read all they can; readers 0 and 1 one frame each,
     * then hold the next one (peek) across the writer. */
    for (int i = 2; i < 4; i++)
        if (rd[i]) reader_rounds(rd[i], mode, 1);
    for (int i = 0; i < 2; i++) {
        uint8_t *buf = xmalloc(FUZZ_BUF);
        if (rd[i]) {
            int64_t n = myc_read(rd[i], 0, buf, FUZZ_BUF);
            if (n >= 0) check_payload_len("myc_read", (uint64_t)n & 0xffffffffu, mode);
        }
        free(buf);
    }
    /* A busy cursor cannot be forgotten; an unknown one is not found. */
    int rc = myc_cursor_forget(g_bc_name, "b");
    if (rc == MYC_OK && rd[1] != NULL) fuzz_fail("myc_cursor_forget freed the cursor of a live reader");
    myc_cursor_forget(g_bc_name, "zz");

    bc_held held[2];
    bc_hold(&held[0], rd[1], mode);
    if (script[0] & 64) bc_hold(&held[1], rd[0], mode);
    else memset(&held[1], 0, sizeof held[1]);
    bc_writer_pass(write_len, script[1] % (FUZZ_BC_WRITES + 1), script[0] & 128);
    bc_check_held(&held[0], mode);
    bc_check_held(&held[1], mode);
    bc_inspect();

    for (int i = 0; i < 4; i++)
        if (rd[i]) reader_rounds(rd[i], mode, i == 1 ? 3 : 1);
    myc_reader_close(rd[0]);
    rd[0] = NULL;
    myc_cursor_forget(g_bc_name, "a"); /* detached now: freed */
    /* A reader resuming a durable cursor another one just left. */
    if (rd[1] != NULL) {
        myc_reader_close(rd[1]);
        rd[1] = bc_attach("b", MYC_POLICY_LOSSY, 0);
        if (rd[1]) reader_rounds(rd[1], mode, 1);
    }
    for (int i = 1; i < 4; i++) myc_reader_close(rd[i]);
    bc_inspect();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    if (size < 1) return 0;
    unsigned mode = data[0] & 7u;
    if (!(g_modes & (1u << mode))) return -1; /* -1: not added to the corpus */
    unsigned write_len = 1 + (data[0] >> 3) * 75u; /* 1 .. 2326: some too large */
    if (mode >= 4) {
        uint8_t script[2] = {0, 0};
        const uint8_t *image = data + 1;
        size_t len = size - 1;
        for (int i = 0; i < 2 && len > 0; i++, image++, len--) script[i] = *image;
        bc_load_region(mode, image, len);
        if (mode == 7) {
            uint8_t block[MYC_BLOCK_SIZE] = {0};
            if (len > FUZZ_FLIP_BLOCK) {
                size_t n = len - FUZZ_FLIP_BLOCK;
                memcpy(block, image + FUZZ_FLIP_BLOCK, n < sizeof block ? n : sizeof block);
            }
            flipper_start(g_bc_region, block);
        }
        bc_run(mode, script, write_len);
        if (mode == 7) flipper_stop();
        return 0;
    }
    load_region(mode, data + 1, size - 1);
    if (mode == 3) {
        uint8_t block[MYC_BLOCK_SIZE] = {0};
        if (size - 1 > FUZZ_FLIP_BLOCK) {
            size_t n = size - 1 - FUZZ_FLIP_BLOCK;
            memcpy(block, data + 1 + FUZZ_FLIP_BLOCK, n < sizeof block ? n : sizeof block);
        }
        flipper_start(g_region, block);
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
