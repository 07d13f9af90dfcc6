/*
 * Unit tests of the ring core, in the style of Aeron's ring buffer tests:
 * positions are set directly to create wrap and full states, and the raw
 * bytes of frame headers are asserted.  Built plain, and under ASan+UBSan.
 */
#define _GNU_SOURCE
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int g_failed_checks;
#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "  %s:%d: CHECK failed: %s (last error: %s)\n", __FILE__,     \
                    __LINE__, #cond, myc_last_error());                                 \
            g_failed_checks++;                                                          \
        }                                                                               \
    } while (0)
#define CHECK_EQ(a, b) CHECK((long long)(a) == (long long)(b))

static char g_name[64];
static const char *fresh_name(const char *what) {
    snprintf(g_name, sizeof g_name, "ctest-%d-%s", (int)getpid(), what);
    myc_unlink(g_name);
    return g_name;
}

/* Direct access to a channel's bytes, as another (possibly hostile)
 * process would have. */
typedef struct raw_map {
    uint8_t *base;
    size_t size;
} raw_map;

static raw_map raw_open(const char *name) {
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/mycelium.%s", name);
    int fd = open(path, O_RDWR);
    struct stat st;
    fstat(fd, &st);
    raw_map m = {mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
                 (size_t)st.st_size};
    close(fd);
    return m;
}
static void raw_close(raw_map m) { munmap(m.base, m.size); }
static uint64_t raw_u64(raw_map m, size_t off) {
    uint64_t v;
    memcpy(&v, m.base + off, 8);
    return v;
}
static void raw_set_u64(raw_map m, size_t off, uint64_t v) { memcpy(m.base + off, &v, 8); }
static void raw_set_u32(raw_map m, size_t off, uint32_t v) { memcpy(m.base + off, &v, 4); }
static int32_t raw_i32(raw_map m, size_t off) {
    int32_t v;
    memcpy(&v, m.base + off, 4);
    return v;
}

static myc_writer *open_writer(const char *name, uint64_t capacity) {
    myc_writer *w = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, capacity, 0, 0, NULL, &w), MYC_OK);
    return w;
}
static myc_reader *open_reader(const char *name) {
    myc_reader *r = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_OK);
    return r;
}

static int64_t read_one(myc_reader *r, uint8_t *buf, uint64_t len) {
    return myc_read(r, 0, buf, len);
}

/* ------------------------------------------------------------------------ */

static void test_names(void) {
    CHECK_EQ(myc_name_check("ticks"), MYC_OK);
    CHECK_EQ(myc_name_check("a.b-c_d"), MYC_OK);
    CHECK_EQ(myc_name_check(""), MYC_ERR_NAME);
    CHECK_EQ(myc_name_check("a/b"), MYC_ERR_NAME);
    CHECK_EQ(myc_name_check(".."), MYC_ERR_NAME);
    CHECK_EQ(myc_name_check("x..y"), MYC_ERR_NAME);
    CHECK_EQ(myc_name_check("."), MYC_ERR_NAME);
    CHECK_EQ(myc_name_check("bell\a"), MYC_ERR_NAME);
    char longname[MYC_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname);
    longname[MYC_NAME_MAX] = '\0';
    CHECK_EQ(myc_name_check(longname), MYC_OK);
    longname[MYC_NAME_MAX] = 'n';
    longname[MYC_NAME_MAX + 1] = '\0';
    CHECK_EQ(myc_name_check(longname), MYC_ERR_NAME);
    myc_writer *w = NULL;
    CHECK_EQ(myc_writer_open("bad/name", MYC_CREATE, 4096, 0, 0, NULL, &w), MYC_ERR_NAME);
    CHECK(w == NULL);
}

static void test_create_attach(void) {
    const char *name = fresh_name("create");
    myc_writer *w = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &w), MYC_ERR_NOT_FOUND);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 3000, 0, 0, NULL, &w), MYC_ERR_ARG);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 512, 0, 0, NULL, &w), MYC_ERR_ARG);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 4096, 4096, 0, NULL, &w), MYC_ERR_ARG);
    w = open_writer(name, 4096);
    myc_writer *w2 = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 4096, 0, 0, NULL, &w2), MYC_ERR_EXISTS);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE_OR_ATTACH, 4096, 0, 0, NULL, &w2), MYC_OK);
    myc_stats s;
    myc_writer_stats(w2, &s);
    CHECK_EQ(s.capacity, 4096);
    CHECK_EQ(s.max_payload, 4096 / 4 - 8);
    struct stat st;
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/mycelium.%s", name);
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(st.st_size, MYC_HEADER_SIZE + 4096);
    myc_writer_close(w2);
    myc_writer_close(w);
    CHECK_EQ(myc_unlink(name), MYC_OK);
    CHECK_EQ(myc_unlink(name), MYC_ERR_NOT_FOUND);
    /* a mode is honoured exactly, whatever the umask */
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 4096, 0, 0640, NULL, &w), MYC_OK);
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0640);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_round_trip_and_header_bytes(void) {
    const char *name = fresh_name("roundtrip");
    myc_writer *w = open_writer(name, 4096);
    myc_reader *r = open_reader(name);
    uint8_t buf[1024];
    CHECK_EQ(read_one(r, buf, sizeof buf), MYC_ERR_EMPTY);
    CHECK_EQ(myc_write(w, 7, "hello", 5, 0), MYC_OK);
    raw_map raw = raw_open(name);
    /* frame header: len 13 = 8 + 5, type 7, flags 0; next frame at 16 */
    CHECK_EQ(raw_i32(raw, MYC_HEADER_SIZE + 0), 13);
    CHECK_EQ(raw.base[MYC_HEADER_SIZE + 4], 7);
    CHECK_EQ(memcmp(raw.base + MYC_HEADER_SIZE + 8, "hello", 5), 0);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 16);
    int64_t got = read_one(r, buf, sizeof buf);
    CHECK_EQ(got >> 32, 7);
    CHECK_EQ(got & 0xffffffff, 5);
    CHECK_EQ(memcmp(buf, "hello", 5), 0);
    /* consumed bytes are zeroed and head advanced */
    CHECK_EQ(raw_i32(raw, MYC_HEADER_SIZE + 0), 0);
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), 16);
    CHECK_EQ(myc_write(w, 1, "", 0, 0), MYC_OK); /* empty payload */
    got = read_one(r, buf, sizeof buf);
    CHECK_EQ(got, (int64_t)1 << 32);
    CHECK_EQ(myc_write(w, 0, "x", 1, 0), MYC_ERR_ARG);
    CHECK_EQ(myc_write(w, 65536, "x", 1, 0), MYC_ERR_ARG);
    CHECK_EQ(myc_write(w, 1, buf, 1024, 0), MYC_ERR_TOO_LARGE);
    CHECK_EQ(myc_write(w, 65535, buf, 1016, 0), MYC_OK);
    got = read_one(r, buf, sizeof buf);
    CHECK_EQ(got >> 32, 65535);
    CHECK_EQ(got & 0xffffffff, 1016);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_wrap_with_padding(void) {
    const char *name = fresh_name("wrap");
    myc_writer *w = open_writer(name, 1024);
    myc_reader *r = open_reader(name);
    raw_map raw = raw_open(name);
    /* Start near the end: head = tail = 1000 (ring offset 1000, 24 to the end). */
    raw_set_u64(raw, MYC_OFF_HEAD, 1000);
    raw_set_u64(raw, MYC_OFF_TAIL, 1000);
    myc_reader_close(r);
    r = open_reader(name); /* picks up the new head */
    myc_writer_close(w);
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &w), MYC_OK);
    uint8_t payload[40];
    memset(payload, 0xab, sizeof payload);
    CHECK_EQ(myc_write(w, 3, payload, 40, 0), MYC_OK); /* 48 bytes: does not fit 24 */
    /* padding frame of 24 at offset 1000, then the frame at offset 0 */
    CHECK_EQ(raw_i32(raw, MYC_HEADER_SIZE + 1000), 24);
    CHECK_EQ(raw.base[MYC_HEADER_SIZE + 1004], 0);
    CHECK_EQ(raw_i32(raw, MYC_HEADER_SIZE + 0), 48);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 1000 + 24 + 48);
    uint8_t buf[256];
    int64_t got = read_one(r, buf, sizeof buf);
    CHECK_EQ(got >> 32, 3);
    CHECK_EQ(got & 0xffffffff, 40);
    CHECK_EQ(memcmp(buf, payload, 40), 0);
    myc_stats s;
    myc_reader_stats(r, &s);
    CHECK_EQ(s.padding_frames, 1);
    CHECK_EQ(s.head, 1000 + 24 + 48);
    /* exact fit at the end: no padding */
    raw_set_u64(raw, MYC_OFF_HEAD, 2048 - 16);
    raw_set_u64(raw, MYC_OFF_TAIL, 2048 - 16);
    myc_reader_close(r);
    r = open_reader(name);
    myc_writer_close(w);
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &w), MYC_OK);
    CHECK_EQ(myc_write(w, 4, payload, 8, 0), MYC_OK);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 2048);
    got = read_one(r, buf, sizeof buf);
    CHECK_EQ(got >> 32, 4);
    myc_reader_stats(r, &s);
    CHECK_EQ(s.padding_frames, 1);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_full_and_exact_capacity(void) {
    const char *name = fresh_name("full");
    myc_writer *w = open_writer(name, 1024);
    myc_reader *r = open_reader(name);
    uint8_t payload[120] = {0};
    /* 8 frames of 128 bytes fill 1024 exactly */
    for (int i = 0; i < 8; i++) {
        payload[0] = (uint8_t)i;
        CHECK_EQ(myc_write(w, 1, payload, 120, 0), MYC_OK);
    }
    CHECK_EQ(myc_write(w, 1, payload, 0, 0), MYC_ERR_FULL);
    int64_t t0 = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK_EQ(myc_write(w, 1, payload, 0, 20 * 1000000LL), MYC_ERR_FULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    t0 = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    CHECK(t0 >= 20 * 1000000LL);
    myc_stats s;
    myc_writer_stats(w, &s);
    CHECK_EQ(s.full_events, 2);
    CHECK_EQ(s.write_timeouts, 1);
    uint8_t buf[256];
    for (int i = 0; i < 8; i++) {
        int64_t got = read_one(r, buf, sizeof buf);
        CHECK_EQ(got & 0xffffffff, 120);
        CHECK_EQ(buf[0], i);
    }
    CHECK_EQ(read_one(r, buf, sizeof buf), MYC_ERR_EMPTY);
    /* batch: only the prefix that fits is written */
    uint16_t types[10];
    uint32_t lens[10];
    uint8_t blob[10 * 120];
    for (int i = 0; i < 10; i++) {
        types[i] = (uint16_t)(i + 1);
        lens[i] = 120;
        blob[i * 120] = (uint8_t)i;
    }
    CHECK_EQ(myc_write_batch(w, 10, types, lens, blob, 0), 8);
    uint32_t out_lens[16];
    uint16_t out_types[16];
    uint8_t big[4096];
    CHECK_EQ(myc_read_batch(r, 16, 0, big, sizeof big, out_types, out_lens), 8);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(out_types[i], i + 1);
        CHECK_EQ(out_lens[i], 120);
        CHECK_EQ(big[i * 120], i);
    }
    /* a read buffer too small for the next frame leaves it unread */
    CHECK_EQ(myc_write(w, 9, payload, 100, 0), MYC_OK);
    CHECK_EQ(myc_read(r, 0, buf, 10), MYC_ERR_ARG);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf) & 0xffffffff, 100);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_reserve_peek(void) {
    const char *name = fresh_name("reserve");
    myc_writer *w = open_writer(name, 4096);
    myc_reader *r = open_reader(name);
    myc_reservation res;
    myc_frame f;
    CHECK_EQ(myc_reserve(w, 5, 16, 0, &res), MYC_OK);
    CHECK_EQ(myc_peek(r, 0, &f), MYC_ERR_EMPTY); /* claimed, not committed */
    memcpy(res.payload, "0123456789abcdef", 16);
    CHECK_EQ(myc_commit(w, &res), MYC_OK);
    CHECK_EQ(myc_commit(w, &res), MYC_ERR_ARG);
    CHECK_EQ(myc_peek(r, 0, &f), MYC_OK);
    CHECK_EQ(f.type_id, 5);
    CHECK_EQ(f.payload_len, 16);
    CHECK_EQ(memcmp(f.payload, "0123456789abcdef", 16), 0);
    myc_stats s;
    myc_reader_stats(r, &s);
    CHECK_EQ(s.head, 0); /* held until release */
    myc_release(r);
    myc_reader_stats(r, &s);
    CHECK_EQ(s.head, 24);
    /* an aborted reservation becomes padding */
    CHECK_EQ(myc_reserve(w, 6, 8, 0, &res), MYC_OK);
    CHECK_EQ(myc_abort(w, &res), MYC_OK);
    CHECK_EQ(myc_write(w, 7, "z", 1, 0), MYC_OK);
    CHECK_EQ(myc_peek(r, 0, &f), MYC_OK);
    CHECK_EQ(f.type_id, 7);
    myc_reader_stats(r, &s);
    CHECK_EQ(s.padding_frames, 1);
    myc_reader_close(r); /* releases the held frame */
    r = open_reader(name);
    CHECK_EQ(myc_peek(r, 0, &f), MYC_ERR_EMPTY);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_stuck_writer_is_unblocked(void) {
    const char *name = fresh_name("stuck");
    myc_writer *w = open_writer(name, 4096);
    myc_reader *r = open_reader(name);
    myc_reader_set_stuck_timeout(r, 20 * 1000000LL);
    myc_reservation res;
    CHECK_EQ(myc_reserve(w, 5, 30, 0, &res), MYC_OK); /* never committed */
    CHECK_EQ(myc_write(w, 6, "after", 5, 0), MYC_OK);
    uint8_t buf[64];
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY);
    int64_t got = myc_read(r, 500 * 1000000LL, buf, sizeof buf);
    CHECK_EQ(got >> 32, 6);
    CHECK_EQ(memcmp(buf, "after", 5), 0);
    myc_stats s;
    myc_reader_stats(r, &s);
    CHECK_EQ(s.unblocks, 1);
    /* the stalled writer learns its frame was dropped */
    CHECK_EQ(myc_commit(w, &res), MYC_ERR_ABANDONED);

    /* a writer that died after claiming but before writing its header:
     * advance the tail by hand, leaving zeros */
    raw_map raw = raw_open(name);
    uint64_t tail = raw_u64(raw, MYC_OFF_TAIL);
    raw_set_u64(raw, MYC_OFF_TAIL, tail + 40);
    CHECK_EQ(myc_write(w, 8, "next", 4, 0), MYC_OK);
    got = myc_read(r, 500 * 1000000LL, buf, sizeof buf);
    CHECK_EQ(got >> 32, 8);
    myc_reader_stats(r, &s);
    CHECK_EQ(s.unblocks, 2);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_corrupt_frames(void) {
    const char *name = fresh_name("corrupt");
    myc_writer *w = open_writer(name, 4096);
    myc_reader *r = open_reader(name);
    raw_map raw = raw_open(name);
    uint8_t buf[4096];
    /* length pointing past the end of the ring */
    CHECK_EQ(myc_write(w, 1, "abc", 3, 0), MYC_OK);
    raw_set_u32(raw, MYC_HEADER_SIZE, 0x7ffffff0);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_CORRUPT);
    /* length below the header size */
    raw_set_u32(raw, MYC_HEADER_SIZE, 3);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_CORRUPT);
    /* length past the tail */
    raw_set_u32(raw, MYC_HEADER_SIZE, 64);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_CORRUPT);
    /* payload over the channel's maximum (capacity/4 - 8 = 1016) */
    raw_set_u64(raw, MYC_OFF_TAIL, 2048);
    raw_set_u32(raw, MYC_HEADER_SIZE, 1500);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_CORRUPT);
    /* head beyond tail: refused when attaching, and by a writer whose
     * cached head is fresh */
    myc_reader_close(r);
    myc_writer_close(w);
    raw_set_u64(raw, MYC_OFF_TAIL, 8);
    raw_set_u32(raw, MYC_HEADER_SIZE, 0);
    raw_set_u64(raw, MYC_OFF_HEAD, 64);
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_ERR_CORRUPT);
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &w), MYC_ERR_CORRUPT);
    /* tail more than a ring ahead of head */
    raw_set_u64(raw, MYC_OFF_HEAD, 0);
    raw_set_u64(raw, MYC_OFF_TAIL, 4096 + 8);
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_ERR_CORRUPT);
    raw_close(raw);
    myc_unlink(name);
}

static void test_corrupt_headers(void) {
    const char *name = fresh_name("header");
    myc_writer *w = open_writer(name, 4096);
    myc_writer_close(w);
    raw_map raw = raw_open(name);
    myc_reader *r = NULL;
    myc_info info;
    struct {
        size_t off;
        uint64_t value;
        int width;
    } cases[] = {
        {MYC_OFF_MAGIC, 0x1122334455667788ULL, 8},
        {MYC_OFF_VERSION, 2, 4},
        {MYC_OFF_HEADER_SIZE, 8192, 4},
        {MYC_OFF_CAPACITY, 3000, 8},
        {MYC_OFF_CAPACITY, 8192, 8}, /* file size no longer matches */
        {MYC_OFF_MAX_PAYLOAD, 0, 4},
        {MYC_OFF_MAX_PAYLOAD, 4096, 4},
        {MYC_OFF_FEATURES, 1, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t saved[8];
        memcpy(saved, raw.base + cases[i].off, 8);
        if (cases[i].width == 8) raw_set_u64(raw, cases[i].off, cases[i].value);
        else raw_set_u32(raw, cases[i].off, (uint32_t)cases[i].value);
        CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_ERR_FORMAT);
        CHECK_EQ(myc_inspect(name, &info), MYC_ERR_FORMAT);
        memcpy(raw.base + cases[i].off, saved, 8);
    }
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    raw_close(raw);
    /* a truncated file */
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/mycelium.%s", name);
    CHECK_EQ(truncate(path, MYC_HEADER_SIZE + 1024), 0);
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_ERR_FORMAT);
    myc_unlink(name);
}

static void test_schema_digest(void) {
    const char *name = fresh_name("schema");
    uint8_t d1[32], d2[32];
    memset(d1, 0x11, 32);
    memset(d2, 0x22, 32);
    myc_writer *w = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 4096, 0, 0, d1, &w), MYC_OK);
    myc_reader *r = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, d2, &r), MYC_ERR_SCHEMA);
    CHECK(strstr(myc_last_error(), "1111111111111111") != NULL);
    CHECK(strstr(myc_last_error(), "2222222222222222") != NULL);
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, d1, &r), MYC_OK);
    myc_reader_close(r);
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_OK); /* raw access */
    myc_reader_close(r);
    myc_info info;
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(memcmp(info.schema_digest, d1, 32), 0);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_reader_busy_and_takeover(void) {
    const char *name = fresh_name("takeover");
    myc_writer *w = open_writer(name, 4096);
    myc_reader *r = open_reader(name);
    myc_reader *r2 = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r2), MYC_ERR_READER_BUSY);
    myc_reader_close(r);
    CHECK_EQ(myc_write(w, 1, "one", 3, 0), MYC_OK);
    CHECK_EQ(myc_write(w, 2, "two", 3, 0), MYC_OK);
    pid_t child = fork();
    if (child == 0) { /* a reader that consumes one frame and dies */
        myc_reader *cr = NULL;
        uint8_t buf[16];
        if (myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &cr) != MYC_OK) _exit(2);
        if ((myc_read(cr, 0, buf, sizeof buf) >> 32) != 1) _exit(3);
        _exit(0); /* no close: the reader word still names this pid */
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    myc_info info;
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.reader_pid, child);
    CHECK_EQ(info.reader_alive, 0);
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_OK);
    uint8_t buf[16];
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf) >> 32, 2); /* continues after "one" */
    myc_stats s;
    myc_reader_stats(r, &s);
    CHECK_EQ(s.takeovers, 1);
    CHECK_EQ(s.frames_read, 2);
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.writer_count, 1);
    CHECK_EQ(info.writer_pids[0], getpid());
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

typedef struct wake_arg {
    myc_writer *w;
    int delay_ms;
} wake_arg;

static void *delayed_writer(void *p) {
    wake_arg *a = p;
    usleep((useconds_t)a->delay_ms * 1000);
    myc_write(a->w, 9, "wake", 4, 0);
    return NULL;
}

static void test_blocking_read_sleeps_and_wakes(void) {
    const char *name = fresh_name("wake");
    myc_writer *w = open_writer(name, 4096);
    myc_reader *r = open_reader(name);
    uint8_t buf[16];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK_EQ(myc_read(r, 30 * 1000000LL, buf, sizeof buf), MYC_ERR_EMPTY);
    clock_gettime(CLOCK_MONOTONIC, &b);
    int64_t waited = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    CHECK(waited >= 30 * 1000000LL);
    wake_arg arg = {w, 50};
    pthread_t t;
    pthread_create(&t, NULL, delayed_writer, &arg);
    int64_t got = myc_read(r, 5 * 1000000000LL, buf, sizeof buf);
    pthread_join(t, NULL);
    CHECK_EQ(got >> 32, 9);
    myc_stats s;
    myc_reader_stats(r, &s);
    CHECK(s.reader_sleeps >= 2);
    CHECK(s.writer_wakes >= 1); /* the writer saw the sleeping reader */
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_closed_handles(void) {
    CHECK_EQ(myc_write(NULL, 1, "x", 1, 0), MYC_ERR_CLOSED);
    uint8_t buf[4];
    CHECK_EQ(myc_read(NULL, 0, buf, 4), MYC_ERR_CLOSED);
    myc_writer_close(NULL);
    myc_reader_close(NULL);
}

int main(void) {
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"names", test_names},
        {"create_attach", test_create_attach},
        {"round_trip_and_header_bytes", test_round_trip_and_header_bytes},
        {"wrap_with_padding", test_wrap_with_padding},
        {"full_and_exact_capacity", test_full_and_exact_capacity},
        {"reserve_peek", test_reserve_peek},
        {"stuck_writer_is_unblocked", test_stuck_writer_is_unblocked},
        {"corrupt_frames", test_corrupt_frames},
        {"corrupt_headers", test_corrupt_headers},
        {"schema_digest", test_schema_digest},
        {"reader_busy_and_takeover", test_reader_busy_and_takeover},
        {"blocking_read_sleeps_and_wakes", test_blocking_read_sleeps_and_wakes},
        {"closed_handles", test_closed_handles},
    };
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int before = g_failed_checks;
        tests[i].fn();
        int ok = g_failed_checks == before;
        printf("%s %s\n", ok ? "PASS" : "FAIL", tests[i].name);
        ok ? passed++ : failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
