/*
 * Multi-threaded stress of the ring, built under ThreadSanitizer (and plain).
 * WRITERS threads write FRAMES frames each, of random sizes, through all
 * three write paths (copy, batch, reservation) and through shared and
 * private writer handles; one reader thread checks, per writer, that
 * sequence numbers arrive complete and in order with intact checksums.  The
 * ring is small so wrap, padding, full waits and futex sleeps all happen.
 *
 * usage: stress_ring [writers] [frames]
 */
#define _GNU_SOURCE
#include "ring.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WRITERS 16
#define MAX_PAYLOAD 300

typedef struct frame_head {
    uint32_t writer;
    uint32_t seq;
    uint32_t checksum; /* over the bytes after this header */
    uint32_t len;
} frame_head;

static uint32_t fnv1a(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static uint32_t fill(uint8_t *buf, uint32_t writer, uint32_t seq, unsigned *rng) {
    uint32_t len = sizeof(frame_head) + (uint32_t)(rand_r(rng) % (MAX_PAYLOAD - sizeof(frame_head)));
    for (uint32_t i = sizeof(frame_head); i < len; i++) buf[i] = (uint8_t)rand_r(rng);
    frame_head h = {writer, seq, fnv1a(buf + sizeof h, len - sizeof h), len};
    memcpy(buf, &h, sizeof h);
    return len;
}

static const char *g_name;
static void unlink_channel(void) { myc_unlink(g_name); }
static uint32_t g_frames;
static myc_writer *g_shared; /* used by odd-numbered writers */

static void *writer_main(void *arg) {
    uint32_t id = (uint32_t)(uintptr_t)arg;
    myc_writer *w = g_shared;
    if (id % 2 == 0 && myc_writer_open(g_name, MYC_ATTACH, 0, 0, 0, NULL, &w) != MYC_OK) {
        fprintf(stderr, "writer %u: open: %s\n", id, myc_last_error());
        exit(2);
    }
    unsigned rng = id * 7919u + 1;
    uint8_t buf[8 * MAX_PAYLOAD];
    for (uint32_t seq = 0; seq < g_frames;) {
        int mode = (int)(rand_r(&rng) % 3);
        if (mode == 0) {
            uint32_t len = fill(buf, id, seq, &rng);
            int rc = myc_write(w, 1 + id, buf, len, -1);
            if (rc != MYC_OK) { fprintf(stderr, "write: %s\n", myc_last_error()); exit(2); }
            seq++;
        } else if (mode == 1) {
            uint16_t types[8];
            uint32_t lens[8], n = 0, off = 0;
            while (n < 8 && seq + n < g_frames) {
                lens[n] = fill(buf + off, id, seq + n, &rng);
                types[n] = (uint16_t)(1 + id);
                off += lens[n++];
            }
            int64_t done = myc_write_batch(w, n, types, lens, buf, -1);
            if (done <= 0) { fprintf(stderr, "batch: %s\n", myc_last_error()); exit(2); }
            /* frames past `done` were not written: regenerate them later */
            seq += (uint32_t)done;
        } else {
            uint8_t tmp[MAX_PAYLOAD];
            uint32_t len = fill(tmp, id, seq, &rng);
            myc_reservation res;
            if (myc_reserve(w, 1 + id, len, -1, &res) != MYC_OK) { fprintf(stderr, "reserve: %s\n", myc_last_error()); exit(2); }
            memcpy(res.payload, tmp, len);
            if (myc_commit(w, &res) != MYC_OK) { fprintf(stderr, "commit: %s\n", myc_last_error()); exit(2); }
            seq++;
        }
    }
    if (w != g_shared) myc_writer_close(w);
    return NULL;
}

int main(int argc, char **argv) {
    uint32_t writers = argc > 1 ? (uint32_t)atoi(argv[1]) : 4;
    g_frames = argc > 2 ? (uint32_t)atoi(argv[2]) : 20000;
    if (writers < 1 || writers > MAX_WRITERS) return 2;
    static char name[64]; /* static: the atexit handler reads it after main returns */
    snprintf(name, sizeof name, "cstress-%d", (int)getpid());
    g_name = name;
    myc_unlink(name);
    atexit(unlink_channel); /* also on the exit(2) of a failing writer */
    myc_reader *r = NULL;
    if (myc_reader_open(name, MYC_CREATE, 4096, 1024, 0, NULL, &r) != MYC_OK ||
        myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &g_shared) != MYC_OK) {
        fprintf(stderr, "open: %s\n", myc_last_error());
        return 2;
    }
    pthread_t threads[MAX_WRITERS];
    for (uint32_t i = 0; i < writers; i++)
        pthread_create(&threads[i], NULL, writer_main, (void *)(uintptr_t)i);

    uint32_t next_seq[MAX_WRITERS] = {0};
    uint64_t total = 0, expected = (uint64_t)writers * g_frames, errors = 0;
    uint8_t buf[1024], batch[8192];
    uint16_t types[64];
    uint32_t lens[64];
    while (total < expected && errors < 10) {
        /* alternate single reads, batches and zero-copy peeks */
        int64_t n;
        const uint8_t *frames[64];
        uint8_t *views = NULL;
        myc_frame f;
        switch (total % 3) {
        case 0: {
            int64_t got = myc_read(r, 5 * 1000000000LL, buf, sizeof buf);
            if (got < 0) { fprintf(stderr, "read: %s\n", myc_last_error()); return 1; }
            types[0] = (uint16_t)(got >> 32);
            lens[0] = (uint32_t)got;
            frames[0] = buf;
            n = 1;
            break;
        }
        case 1: {
            n = myc_read_batch(r, 64, 5 * 1000000000LL, batch, sizeof batch, types, lens);
            if (n < 0) { fprintf(stderr, "batch read: %s\n", myc_last_error()); return 1; }
            uint64_t off = 0;
            for (int64_t i = 0; i < n; i++) { frames[i] = batch + off; off += lens[i]; }
            break;
        }
        default:
            if (myc_peek(r, 5 * 1000000000LL, &f) != MYC_OK) { fprintf(stderr, "peek: %s\n", myc_last_error()); return 1; }
            types[0] = f.type_id;
            lens[0] = f.payload_len;
            frames[0] = f.payload;
            n = 1;
        }
        (void)views;
        for (int64_t i = 0; i < n; i++) {
            frame_head h;
            memcpy(&h, frames[i], sizeof h);
            int bad = h.writer >= writers || types[i] != 1 + h.writer || h.len != lens[i] ||
                      h.seq != next_seq[h.writer] ||
                      h.checksum != fnv1a(frames[i] + sizeof h, lens[i] - sizeof h);
            if (bad) {
                fprintf(stderr, "bad frame: writer %u seq %u (expected %u) len %u/%u\n", h.writer,
                        h.seq, h.writer < writers ? next_seq[h.writer] : 0, h.len, lens[i]);
                errors++;
            } else {
                next_seq[h.writer]++;
            }
            total++;
        }
    }
    myc_release(r);
    for (uint32_t i = 0; i < writers; i++) pthread_join(threads[i], NULL);
    myc_stats s;
    myc_reader_stats(r, &s);
    uint8_t extra[16];
    int64_t leftover = myc_read(r, 0, extra, sizeof extra);
    printf("stress: %u writers x %u frames: read %llu, errors %llu, padding %llu, full events %llu, "
           "reader sleeps %llu, wakes %llu/%llu\n",
           writers, g_frames, (unsigned long long)total, (unsigned long long)errors,
           (unsigned long long)s.padding_frames, (unsigned long long)s.full_events,
           (unsigned long long)s.reader_sleeps, (unsigned long long)s.writer_wakes,
           (unsigned long long)s.reader_wakes);
    /* the counters agree with what was read: every writer slot's counts
     * (live, or folded into the totals when a handle closed) add up */
    int counts_ok = s.frames_written == expected && s.frames_read == expected &&
                    s.bytes_written == s.bytes_read && s.head == s.tail && s.unblocks == 0;
    if (!counts_ok)
        fprintf(stderr, "counters: written %llu/%llu bytes, read %llu/%llu bytes, head %llu tail %llu, unblocks %llu\n",
                (unsigned long long)s.frames_written, (unsigned long long)s.bytes_written,
                (unsigned long long)s.frames_read, (unsigned long long)s.bytes_read,
                (unsigned long long)s.head, (unsigned long long)s.tail, (unsigned long long)s.unblocks);
    myc_writer_close(g_shared);
    myc_reader_close(r);
    int ok = errors == 0 && total == expected && leftover == MYC_ERR_EMPTY && counts_ok;
    printf("%d passed, %d failed\n", ok, !ok);
    return ok ? 0 : 1;
}
