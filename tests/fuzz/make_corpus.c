/*
 * Seed corpus for tests/fuzz/fuzz_region.c: real channels in several states,
 * made through the public API, their bytes copied out of /dev/shm after every
 * handle is closed.
 *
 *   make_corpus OUTDIR [PREFIX]
 *
 * writes OUTDIR/PREFIX-<state>-m<mode> (PREFIX defaults to "seed"): the
 * fuzzer's mode byte (modes 4-7, the broadcast channel's: then its two
 * script bytes), then the region (header + ring) with its trailing zero
 * bytes cut (the harness zero-extends).  The channel has the harness's
 * capacity (and, broadcast, its 4 cursor slots), so positions, frames and
 * cursors line up with what it fuzzes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CAPACITY 4096u

static const char *g_out;
static const char *g_prefix = "seed";
static char g_name[64];
static int g_count;

static void die(const char *what, int rc) {
    fprintf(stderr, "make_corpus: %s: %s (%s)\n", what, myc_result_name(rc), myc_last_error());
    myc_unlink(g_name);
    exit(1);
}

static myc_writer *open_writer(void) {
    myc_writer *w;
    int rc = myc_writer_open(g_name, MYC_ATTACH, 0, 0, 0, NULL, &w);
    if (rc != MYC_OK) die("writer_open", rc);
    return w;
}

static myc_reader *open_bc_reader(const char *cursor, uint32_t policy) {
    myc_reader *r;
    int rc = myc_reader_open_ex(g_name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, cursor, policy, &r);
    if (rc != MYC_OK) die("reader_open_ex", rc);
    return r;
}

static myc_reader *open_reader(void) {
    myc_reader *r;
    int rc = myc_reader_open(g_name, MYC_ATTACH, 0, 0, 0, NULL, &r);
    if (rc != MYC_OK) die("reader_open", rc);
    return r;
}

static void put(myc_writer *w, uint32_t type, uint32_t len, uint8_t fill) {
    uint8_t buf[CAPACITY];
    memset(buf, fill, len);
    for (uint32_t i = 0; i < len; i += 7) buf[i] = (uint8_t)(i ^ type);
    int rc = myc_write(w, type, buf, len, 0);
    if (rc != MYC_OK) die("write", rc);
}

static void take(myc_reader *r, int n) {
    uint8_t buf[CAPACITY];
    for (int i = 0; i < n; i++) {
        int64_t got = myc_read(r, 0, buf, sizeof buf);
        if (got < 0) die("read", (int)got);
    }
}

static void fresh(void) {
    static int serial;
    snprintf(g_name, sizeof g_name, "fuzz-corpus-%d-%d", (int)getpid(), serial++);
    myc_unlink(g_name);
    myc_writer *w;
    int rc = myc_writer_open(g_name, MYC_CREATE, CAPACITY, 0, 0600, NULL, &w);
    if (rc != MYC_OK) die("create", rc);
    myc_writer_close(w);
}

/* A broadcast channel as the harness makes it: 4 cursor slots, 1 ms window. */
static void fresh_bc(void) {
    static int serial;
    snprintf(g_name, sizeof g_name, "fuzz-corpus-%d-bc%d", (int)getpid(), serial++);
    myc_unlink(g_name);
    myc_writer *w;
    int rc = myc_writer_open_ex(g_name, MYC_CREATE, CAPACITY, 0, 0600, NULL, 4, 1, &w);
    if (rc != MYC_OK) die("create", rc);
    myc_writer_close(w);
}

/* Copy the region out as seeds for the given modes, then remove the channel.
 * Broadcast modes (4-7) get two script bytes after the mode byte. */
static void save(const char *state, const char *modes) {
    char path[512];
    snprintf(path, sizeof path, "/dev/shm/mycelium.%s", g_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "make_corpus: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *image = malloc(size + 3);
    if (!image || read(fd, image + 3, size) != (ssize_t)size) {
        fprintf(stderr, "make_corpus: cannot read %s\n", path);
        exit(1);
    }
    close(fd);
    myc_unlink(g_name);
    size_t len = size;
    while (len > 0 && image[len + 2] == 0) len--;
    for (const char *m = modes; *m; m++) {
        int mode = *m - '0';
        /* Broadcast: mode, script bytes (see bc_run in fuzz_region.c: all
         * four readers, a frame held across the writer, the untether
         * window; 40 frames written), image.  Else mode, image. */
        uint8_t *seed = mode >= 4 ? image : image + 2;
        size_t n = mode >= 4 ? len + 3 : len + 1;
        seed[0] = (uint8_t)mode;
        if (mode >= 4) {
            seed[1] = mode == 4 ? 0x14 : 0xD6;
            seed[2] = mode == 4 ? 8 : 40;
        }
        snprintf(path, sizeof path, "%s/%s-%s-m%c", g_out, g_prefix, state, *m);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(seed, 1, n, f) != n || fclose(f) != 0) {
            fprintf(stderr, "make_corpus: cannot write %s\n", path);
            exit(1);
        }
        g_count++;
    }
    free(image);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: make_corpus OUTDIR [PREFIX]\n");
        return 2;
    }
    g_out = argv[1];
    if (argc == 3) g_prefix = argv[2];
    myc_writer *w;
    myc_reader *r;

    /* A new channel: nothing written. */
    fresh();
    save("empty", "012");

    /* Frames of several sizes, none read yet. */
    fresh();
    w = open_writer();
    for (uint32_t i = 0; i < 6; i++) put(w, 1 + i, 3 + 29 * i, (uint8_t)(0x10 + i));
    myc_writer_close(w);
    save("unread", "0123");

    /* Some read, some not: HEAD in the middle of the ring. */
    fresh();
    w = open_writer();
    r = open_reader();
    for (uint32_t i = 0; i < 10; i++) put(w, 2, 100 + i, (uint8_t)i);
    take(r, 4);
    myc_reader_close(r);
    myc_writer_close(w);
    save("partial", "023");

    /* Wrapped: frames run up to the end of the ring, padding fills the gap
     * before a frame that would straddle it, later frames start at 0. */
    fresh();
    w = open_writer();
    r = open_reader();
    for (int lap = 0; lap < 3; lap++) {
        for (uint32_t i = 0; i < 5; i++) put(w, 3, 500 + 13 * i, (uint8_t)(lap * 16 + i));
        take(r, 5);
    }
    for (uint32_t i = 0; i < 4; i++) put(w, 4, 300 + 50 * i, (uint8_t)(0x80 + i));
    myc_reader_close(r);
    myc_writer_close(w);
    save("wrapped", "0123");

    /* Full ring: written until the writer finds no room. */
    fresh();
    w = open_writer();
    r = open_reader();
    put(w, 5, 700, 1);
    take(r, 1);
    for (uint32_t i = 0;; i++) {
        uint8_t buf[200];
        memset(buf, (int)i, sizeof buf);
        int rc = myc_write(w, 5, buf, sizeof buf, 0);
        if (rc == MYC_ERR_FULL) break;
        if (rc != MYC_OK) die("write", rc);
    }
    myc_reader_close(r);
    myc_writer_close(w);
    save("full", "02");

    /* A claim never committed (the writer went away mid-frame) behind a
     * committed frame, and an aborted reservation (padding) before them. */
    fresh();
    w = open_writer();
    myc_reservation res;
    int rc = myc_reserve(w, 6, 64, 0, &res);
    if (rc != MYC_OK) die("reserve", rc);
    memset(res.payload, 0x66, res.payload_len);
    rc = myc_abort(w, &res);
    if (rc != MYC_OK) die("abort", rc);
    put(w, 6, 48, 0x61);
    rc = myc_reserve(w, 6, 80, 0, &res);
    if (rc != MYC_OK) die("reserve", rc);
    memset(res.payload, 0x67, 40);
    myc_writer_close(w);
    save("claimed", "012");

    /* Largest frames the channel takes, one of them across the wrap. */
    fresh();
    w = open_writer();
    r = open_reader();
    myc_stats stats;
    myc_writer_stats(w, &stats);
    uint32_t max = (uint32_t)stats.max_payload;
    put(w, 8, 40, 0x31);
    take(r, 1);
    put(w, 8, max, 0x32);
    put(w, 8, max, 0x33);
    take(r, 2);
    put(w, 8, max, 0x34);
    put(w, 8, max, 0x35);
    put(w, 8, 0, 0);
    myc_reader_close(r);
    myc_writer_close(w);
    save("maxpayload", "02");

    /* Broadcast: a new channel, no cursor yet. */
    fresh_bc();
    save("bc-empty", "456");

    /* Broadcast: durable cursors left behind at different positions
     * ("a" tethered, "b" lossy, "c" tethered), frames unread by each. */
    fresh_bc();
    w = open_writer();
    myc_reader *ra = open_bc_reader("a", MYC_POLICY_TETHERED);
    myc_reader *rb = open_bc_reader("b", MYC_POLICY_LOSSY);
    myc_reader *rc3 = open_bc_reader("c", MYC_POLICY_TETHERED);
    for (uint32_t i = 0; i < 10; i++) put(w, 2, 90 + 11 * i, (uint8_t)i);
    take(ra, 4);
    take(rb, 2);
    take(rc3, 9);
    myc_reader_close(ra);
    myc_reader_close(rb);
    myc_reader_close(rc3);
    myc_writer_close(w);
    save("bc-cursors", "4567");

    /* Broadcast: a lossy cursor lapped several times (lap table written,
     * padding at the ring's end) while a tethered one kept up. */
    fresh_bc();
    w = open_writer();
    ra = open_bc_reader("a", MYC_POLICY_TETHERED);
    rb = open_bc_reader("b", MYC_POLICY_LOSSY);
    for (uint32_t i = 0; i < 60; i++) {
        put(w, 3, 150 + 37 * (i % 9), (uint8_t)(0x40 + i));
        take(ra, 1);
    }
    myc_reader_close(rb);
    myc_reader_close(ra);
    myc_writer_close(w);
    save("bc-lapped", "4567");

    /* Broadcast: a tethered reader that reads nothing holds a full ring. */
    fresh_bc();
    w = open_writer();
    ra = open_bc_reader("a", MYC_POLICY_TETHERED);
    for (uint32_t i = 0;; i++) {
        uint8_t buf[200];
        memset(buf, (int)i, sizeof buf);
        rc = myc_write(w, 5, buf, sizeof buf, 0);
        if (rc == MYC_ERR_FULL) break;
        if (rc != MYC_OK) die("write", rc);
    }
    myc_reader_close(ra);
    myc_writer_close(w);
    save("bc-full", "46");

    /* Broadcast: an uncommitted claim behind committed frames. */
    fresh_bc();
    w = open_writer();
    rb = open_bc_reader("b", MYC_POLICY_LOSSY);
    put(w, 6, 48, 0x61);
    take(rb, 1);
    put(w, 6, 64, 0x62);
    rc = myc_reserve(w, 6, 80, 0, &res);
    if (rc != MYC_OK) die("reserve", rc);
    memset(res.payload, 0x67, 40);
    myc_reader_close(rb);
    myc_writer_close(w);
    save("bc-claimed", "56");

    printf("make_corpus: %d seeds in %s\n", g_count, g_out);
    return 0;
}
