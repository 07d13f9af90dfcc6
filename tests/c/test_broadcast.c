/*
 * Broadcast channels (FORMAT.md 14): cursors, policies, laps, untethering,
 * durable cursors, many writers and readers in separate processes.
 *
 * Frames carry (writer, sequence number) and a body derived from both, so
 * every check is on bytes that crossed a process boundary.
 */
#include "test_util.h"

#include <pthread.h>
#include <stdint.h>

#define CAP (64 * 1024)

/* Payload: u32 writer, u32 length, u64 seq, then bytes f(writer, seq, i). */
static uint32_t fill_frame(uint8_t *buf, uint32_t writer, uint64_t seq, uint32_t len) {
    if (len < 16) len = 16;
    memcpy(buf, &writer, 4);
    memcpy(buf + 4, &len, 4);
    memcpy(buf + 8, &seq, 8);
    for (uint32_t i = 16; i < len; i++) buf[i] = (uint8_t)(writer * 31u + seq * 7u + i);
    return len;
}

/* 1 if the frame is intact; its writer and seq out. */
static int check_frame(const uint8_t *buf, uint32_t len, uint32_t *writer, uint64_t *seq) {
    uint32_t stated;
    if (len < 16) return 0;
    memcpy(writer, buf, 4);
    memcpy(&stated, buf + 4, 4);
    memcpy(seq, buf + 8, 8);
    if (stated != len) return 0;
    for (uint32_t i = 16; i < len; i++)
        if (buf[i] != (uint8_t)(*writer * 31u + *seq * 7u + i)) return 0;
    return 1;
}

/* Read every frame ready now (timeout 0), each checked intact; returns the
 * seq after the last one read.  With `gaps` NULL each must be exactly the
 * next (nothing lost); else seqs only grow and what was skipped is added to
 * *gaps. */
static uint64_t drain_ready(myc_reader *r, uint64_t next, uint64_t *gaps) {
    uint8_t out[4096];
    int64_t got;
    while ((got = myc_read(r, 0, out, sizeof out)) >= 0) {
        uint32_t wr = 0;
        uint64_t s = 0;
        CHECK(check_frame(out, (uint32_t)READ_LEN(got), &wr, &s));
        if (gaps == NULL) {
            CHECK_EQ(s, next);
        } else {
            CHECK(s >= next);
            *gaps += s - next;
        }
        next = s + 1;
    }
    CHECK_EQ(got, MYC_ERR_EMPTY);
    return next;
}

static uint32_t rand_len(uint64_t *state) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t r = (uint32_t)(*state >> 33);
    return 16 + (r % 8 == 0 ? r % 3000 : r % 200);
}

static myc_writer *bc_writer(const char *name, uint32_t readers, uint32_t untether_ms) {
    myc_writer *w = NULL;
    int rc = myc_writer_open_ex(name, MYC_CREATE_OR_ATTACH, CAP, 0, 0, NULL, readers, untether_ms, &w);
    CHECK_EQ(rc, MYC_OK);
    return w;
}

static myc_reader *bc_reader(const char *name, const char *cursor, uint32_t policy) {
    myc_reader *r = NULL;
    int rc = myc_reader_open_ex(name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, cursor, policy, &r);
    CHECK_EQ(rc, MYC_OK);
    return r;
}

/* ------------------------------------------------------------------------ */

static void test_slots_and_bad_input(void) {
    const char *name = fresh_name("slots");
    myc_writer *w = bc_writer(name, 3, 0);
    myc_info info;
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.reader_slots, 3);
    myc_reader *a = bc_reader(name, "a", MYC_POLICY_TETHERED);
    myc_reader *b = bc_reader(name, "b", MYC_POLICY_LOSSY);
    myc_reader *c = bc_reader(name, NULL, 0);
    myc_reader *d = NULL;
    CHECK_EQ(myc_reader_open_ex(name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, "d", 0, &d), MYC_ERR_TOO_MANY_READERS);
    CHECK(strstr(myc_last_error(), "'a'") != NULL);
    /* The same name while its reader lives. */
    CHECK_EQ(myc_reader_open_ex(name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, "a", 0, &d), MYC_ERR_READER_BUSY);
    myc_reader_close(c); /* anonymous: its slot is free again */
    CHECK_EQ(myc_reader_open_ex(name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, "d", 7, &d), MYC_ERR_ARG);
    CHECK(strstr(myc_last_error(), "policy") != NULL);
    CHECK_EQ(myc_reader_open_ex(name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, "0123456789012345678901234567890123456789", 0, &d),
             MYC_ERR_ARG);
    CHECK_EQ(myc_reader_open_ex(name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, "", 0, &d), MYC_ERR_ARG);
    CHECK_EQ(myc_reader_open_ex(name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, "tab\there", 0, &d), MYC_ERR_ARG);
    CHECK_EQ(myc_reader_open_ex(name, MYC_ATTACH, 0, 0, 0, NULL, 5, 0, "x", 0, &d), MYC_ERR_ARG); /* readers 5 != 3 */
    myc_writer *w2 = NULL;
    CHECK_EQ(myc_writer_open_ex(fresh_name("toomany"), MYC_CREATE, CAP, 0, 0, NULL, MYC_READER_SLOTS + 1, 0, &w2),
             MYC_ERR_TOO_MANY_READERS);
    /* Cursors belong to broadcast channels. */
    const char *single = fresh_name("single");
    myc_writer *sw = NULL;
    CHECK_EQ(myc_writer_open(single, MYC_CREATE, CAP, 0, 0, NULL, &sw), MYC_OK);
    CHECK_EQ(myc_reader_open_ex(single, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, "a", 0, &d), MYC_ERR_ARG);
    CHECK_EQ(myc_reader_open_ex(single, MYC_ATTACH | MYC_START_OLDEST, 0, 0, 0, NULL, 0, 0, NULL, 0, &d),
             MYC_ERR_ARG);
    myc_cursor_info ci[MYC_READER_SLOTS];
    uint32_t count = 0;
    CHECK_EQ(myc_inspect_cursors(name, ci, MYC_READER_SLOTS, &count), MYC_OK);
    CHECK_EQ(count, 2);
    CHECK(strcmp(ci[0].name, "a") == 0 && ci[0].policy == MYC_POLICY_TETHERED && ci[0].tethered == 1);
    CHECK(strcmp(ci[1].name, "b") == 0 && ci[1].policy == MYC_POLICY_LOSSY && ci[1].tethered == 0);
    CHECK_EQ(ci[0].pid, getpid());
    /* forget: refused while held, then frees the slot. */
    CHECK_EQ(myc_cursor_forget(name, "a"), MYC_ERR_READER_BUSY);
    myc_reader_close(a);
    CHECK_EQ(myc_cursor_forget(name, "a"), MYC_OK);
    CHECK_EQ(myc_cursor_forget(name, "a"), MYC_ERR_NOT_FOUND);
    myc_reader_close(b);
    myc_writer_close(sw);
    myc_writer_close(w);
}

/* Every tethered reader gets every frame, in order, intact. */
static void test_tethered_fanout_in_process(void) {
    const char *name = fresh_name("fan");
    myc_writer *w = bc_writer(name, 4, 0);
    myc_reader *r[3] = {bc_reader(name, "r0", 0), bc_reader(name, "r1", 0), bc_reader(name, NULL, 0)};
    uint8_t buf[4096], out[4096];
    uint64_t rng = 1, next[3] = {0, 0, 0};
    const uint64_t total = 20000;
    uint64_t written = 0;
    while (written < total || next[0] < total || next[1] < total || next[2] < total) {
        if (written < total) {
            uint32_t len = fill_frame(buf, 1, written, rand_len(&rng));
            int rc = myc_write(w, 5, buf, len, 0);
            if (rc == MYC_OK) written++;
            else CHECK_EQ(rc, MYC_ERR_FULL);
        }
        for (int i = 0; i < 3; i++) {
            int64_t got = myc_read(r[i], 0, out, sizeof out);
            if (got == MYC_ERR_EMPTY) continue;
            CHECK(got >= 0);
            uint32_t wr = 0;
            uint64_t seq = 0;
            CHECK(check_frame(out, (uint32_t)READ_LEN(got), &wr, &seq));
            CHECK_EQ(seq, next[i]);
            next[i] = seq + 1;
        }
        if (g_failed_checks) break;
    }
    for (int i = 0; i < 3; i++) {
        myc_cursor_info ci;
        CHECK_EQ(myc_reader_cursor(r[i], &ci), MYC_OK);
        CHECK_EQ(ci.frames_read, total);
        CHECK_EQ(ci.lost, 0);
        myc_reader_close(r[i]);
    }
    myc_writer_close(w);
}

/* ------------------------------------------------------------------------ */
/* Processes: W writers x R readers                                          */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    uint32_t writer;
    uint64_t frames;
    char cursor[24];
    uint32_t writers;
} proc_arg;

static int writer_proc(void *p) {
    proc_arg *a = p;
    myc_writer *w = NULL;
    if (myc_writer_open_ex(a->name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, &w) != MYC_OK) return 10;
    uint8_t buf[4096];
    uint64_t rng = a->writer * 977u + 3;
    for (uint64_t seq = 0; seq < a->frames; seq++) {
        uint32_t len = fill_frame(buf, a->writer, seq, rand_len(&rng));
        if (myc_write(w, 1 + a->writer, buf, len, 20 * 1000 * MS) != MYC_OK) return 11;
    }
    myc_writer_close(w);
    return 0;
}

static int reader_proc(void *p) {
    proc_arg *a = p;
    myc_reader *r = NULL;
    if (myc_reader_open_ex(a->name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, a->cursor, 0, &r) != MYC_OK) return 20;
    uint64_t next[8] = {0};
    uint64_t total = a->frames * a->writers, seen = 0;
    uint8_t out[4096];
    while (seen < total) {
        int64_t got = myc_read(r, 20 * 1000 * MS, out, sizeof out);
        if (got < 0) return 21;
        uint32_t wr = 0;
        uint64_t seq = 0;
        if (!check_frame(out, (uint32_t)READ_LEN(got), &wr, &seq)) return 22;
        if (wr >= 8 || READ_TYPE(got) != 1 + wr || seq != next[wr]) return 23;
        next[wr]++;
        seen++;
    }
    myc_cursor_info ci;
    if (myc_reader_cursor(r, &ci) != MYC_OK || ci.lost != 0 || ci.frames_read != total) return 24;
    myc_reader_close(r);
    return 0;
}

static void fanout_processes(uint32_t writers, uint32_t readers, uint64_t frames) {
    const char *name = fresh_name("procs");
    myc_writer *creator = bc_writer(name, readers, 60000);
    proc_arg ra[8], wa[8];
    pid_t rp[8], wp[8];
    for (uint32_t i = 0; i < readers; i++) {
        ra[i] = (proc_arg){.name = name, .frames = frames, .writers = writers};
        snprintf(ra[i].cursor, sizeof ra[i].cursor, "reader%u", i);
        /* Attach in the parent first, so no frame is written before every
         * cursor exists; the child resumes the durable cursor. */
        myc_reader *pre = bc_reader(name, ra[i].cursor, 0);
        myc_reader_close(pre);
        rp[i] = spawn(reader_proc, &ra[i]);
    }
    for (uint32_t i = 0; i < writers; i++) {
        wa[i] = (proc_arg){.name = name, .writer = i, .frames = frames, .writers = writers};
        wp[i] = spawn(writer_proc, &wa[i]);
    }
    for (uint32_t i = 0; i < writers; i++) CHECK_EQ(reap(wp[i], 120000), 0);
    for (uint32_t i = 0; i < readers; i++) CHECK_EQ(reap(rp[i], 120000), 0);
    myc_cursor_info ci[MYC_READER_SLOTS];
    uint32_t count = 0;
    CHECK_EQ(myc_inspect_cursors(name, ci, MYC_READER_SLOTS, &count), MYC_OK);
    CHECK_EQ(count, readers);
    for (uint32_t i = 0; i < count; i++) {
        CHECK_EQ(ci[i].frames_read, frames * writers);
        CHECK_EQ(ci[i].untethers, 0);
    }
    myc_writer_close(creator);
}

static void test_one_writer_four_readers(void) { fanout_processes(1, 4, 1000000); }
static void test_three_writers_four_readers(void) { fanout_processes(3, 4, 333334); }

/* ------------------------------------------------------------------------ */
/* Lossy readers and laps                                                    */
/* ------------------------------------------------------------------------ */

/* A lossy reader that does not read is lapped; it reports exactly the
 * frames it lost, and the frames it gets are intact and in order. */
static void test_lossy_counts_exactly(void) {
    const char *name = fresh_name("lossy");
    myc_writer *w = bc_writer(name, 2, 0);
    myc_reader *r = bc_reader(name, "l", MYC_POLICY_LOSSY);
    uint8_t buf[4096], out[4096];
    uint64_t rng = 9, seq = 0, received = 0, gaps = 0, expect = 0;
    for (int round = 0; round < 20; round++) {
        /* Write several laps' worth without reading: never blocks. */
        uint64_t burst = 500 + (uint64_t)round * 97;
        for (uint64_t i = 0; i < burst; i++, seq++) {
            uint32_t len = fill_frame(buf, 0, seq, rand_len(&rng));
            CHECK_EQ(myc_write(w, 3, buf, len, 0), MYC_OK);
        }
        for (;;) {
            int64_t got = myc_read(r, 0, out, sizeof out);
            if (got == MYC_ERR_EMPTY) break;
            CHECK(got >= 0);
            if (got < 0) break;
            uint32_t wr = 0;
            uint64_t s = 0;
            CHECK(check_frame(out, (uint32_t)READ_LEN(got), &wr, &s));
            CHECK(s >= expect);
            gaps += s - expect;
            expect = s + 1;
            received++;
        }
    }
    myc_cursor_info ci;
    CHECK_EQ(myc_reader_cursor(r, &ci), MYC_OK);
    CHECK_EQ(expect, seq); /* it caught up with the last frame */
    CHECK_EQ(ci.lost, gaps);
    CHECK_EQ(received + ci.lost, seq);
    CHECK(ci.laps > 0);
    CHECK(ci.lost > 0);
    myc_reader_close(r);
    myc_writer_close(w);
}

/* Zero-copy on a lossy reader: a frame overwritten while held says so. */
static void test_lossy_peek_overwritten(void) {
    const char *name = fresh_name("peek");
    myc_writer *w = bc_writer(name, 1, 0);
    myc_reader *r = bc_reader(name, "p", MYC_POLICY_LOSSY);
    uint8_t buf[1024];
    uint32_t len = fill_frame(buf, 0, 0, 1000);
    CHECK_EQ(myc_write(w, 1, buf, len, 0), MYC_OK);
    myc_frame f;
    CHECK_EQ(myc_peek(r, 0, &f), MYC_OK);
    CHECK_EQ(myc_reader_check_held(r), MYC_OK);
    for (int i = 0; i < 200; i++) CHECK_EQ(myc_write(w, 1, buf, len, 0), MYC_OK);
    CHECK_EQ(myc_reader_check_held(r), MYC_ERR_LAPPED);
    myc_release(r);
    myc_reader_close(r);
    myc_writer_close(w);
}

/* A tethered reader that stops reading holds writers for the untether
 * window, then is untethered (counted) and reads on, lossily, with the
 * loss counted exactly; once caught up it is tethered again. */
static void test_untether_window(void) {
    const char *name = fresh_name("untether");
    myc_writer *w = bc_writer(name, 2, 150);
    myc_reader *slow = bc_reader(name, "slow", MYC_POLICY_TETHERED);
    myc_reader *fast = bc_reader(name, "fast", MYC_POLICY_TETHERED);
    uint8_t buf[2048];
    uint64_t seq = 0, fast_next = 0;
    int64_t t0 = mono_ns(), blocked_at = 0;
    while (mono_ns() - t0 < 3000 * MS && seq < 3000) {
        uint32_t len = fill_frame(buf, 0, seq, 1000);
        int rc = myc_write(w, 1, buf, len, 0);
        if (rc == MYC_OK) seq++;
        else if (blocked_at == 0) blocked_at = mono_ns();
        fast_next = drain_ready(fast, fast_next, NULL);
    }
    CHECK_EQ(seq, 3000);        /* writers went on */
    CHECK_EQ(fast_next, 3000);  /* the other reader lost nothing */
    CHECK(blocked_at != 0);     /* after being held back first */
    myc_cursor_info ci;
    CHECK_EQ(myc_reader_cursor(slow, &ci), MYC_OK);
    CHECK_EQ(ci.untethers, 1);
    CHECK_EQ(ci.tethered, 0);
    uint64_t gaps = 0;
    CHECK_EQ(drain_ready(slow, 0, &gaps), 3000);
    CHECK_EQ(myc_reader_cursor(slow, &ci), MYC_OK);
    CHECK_EQ(ci.lost, gaps);
    CHECK(ci.lost > 0);
    CHECK_EQ(ci.tethered, 1); /* caught up: tethered again */
    myc_reader_close(slow);
    myc_reader_close(fast);
    myc_writer_close(w);
}

static int die_attached(void *p) {
    myc_reader *r = NULL;
    if (myc_reader_open_ex((const char *)p, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, "doomed", 0, &r) != MYC_OK) return 1;
    return 0; /* exits without closing: a dead tethered reader */
}

/* A dead tethered reader does not hold writers for the window. */
static void test_dead_reader_untethered_at_once(void) {
    const char *name = fresh_name("dead");
    myc_writer *w = bc_writer(name, 2, 60000);
    CHECK_EQ(reap(spawn(die_attached, (void *)name), 10000), 0);
    uint8_t buf[2048];
    int64_t t0 = mono_ns();
    for (uint64_t seq = 0; seq < 500; seq++) {
        uint32_t len = fill_frame(buf, 0, seq, 1000);
        CHECK_EQ(myc_write(w, 1, buf, len, 5000 * MS), MYC_OK);
    }
    CHECK(mono_ns() - t0 < 3000 * MS);
    myc_cursor_info ci[MYC_READER_SLOTS];
    uint32_t count = 0;
    CHECK_EQ(myc_inspect_cursors(name, ci, MYC_READER_SLOTS, &count), MYC_OK);
    CHECK_EQ(count, 1);
    CHECK_EQ(ci[0].alive, 0);
    CHECK_EQ(ci[0].untethers, 1);
    /* Its name resumes: the loss is counted, the rest is delivered. */
    myc_reader *r = bc_reader(name, "doomed", 0);
    uint64_t gaps = 0;
    CHECK_EQ(drain_ready(r, 0, &gaps), 500);
    myc_cursor_info mine;
    CHECK_EQ(myc_reader_cursor(r, &mine), MYC_OK);
    CHECK_EQ(mine.lost, gaps);
    myc_reader_close(r);
    myc_writer_close(w);
}

/* A durable cursor resumes where its reader left: no loss, no duplicate. */
static void test_durable_resume(void) {
    const char *name = fresh_name("durable");
    myc_writer *w = bc_writer(name, 2, 0);
    myc_reader *r = bc_reader(name, "keep", 0);
    uint8_t buf[256], out[4096];
    uint64_t seq = 0, next = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 30; i++, seq++) CHECK_EQ(myc_write(w, 1, buf, fill_frame(buf, 0, seq, 100), 0), MYC_OK);
        for (int i = 0; i < 17; i++) {
            int64_t got = myc_read(r, 0, out, sizeof out);
            CHECK(got >= 0);
            uint32_t wr = 0;
            uint64_t s = 0;
            CHECK(check_frame(out, (uint32_t)READ_LEN(got), &wr, &s));
            CHECK_EQ(s, next);
            next = s + 1;
        }
        myc_reader_close(r);
        for (int i = 0; i < 10; i++, seq++) CHECK_EQ(myc_write(w, 1, buf, fill_frame(buf, 0, seq, 100), 0), MYC_OK);
        r = bc_reader(name, "keep", 0);
    }
    CHECK_EQ(drain_ready(r, next, NULL), seq);
    myc_cursor_info ci;
    CHECK_EQ(myc_reader_cursor(r, &ci), MYC_OK);
    CHECK_EQ(ci.lost, 0);
    CHECK_EQ(ci.frames_read, seq);
    myc_reader_close(r);
    myc_writer_close(w);
}

/* myc_cursor_register: a durable cursor that exists before its reader, held
 * by nobody; frames written after it are kept for it; an existing cursor
 * (held or not) is left as it is. */
static void test_register(void) {
    const char *name = fresh_name("register");
    myc_writer *w = bc_writer(name, 3, 0);
    uint8_t buf[256];
    uint64_t seq = 0;
    for (; seq < 5; seq++) CHECK_EQ(myc_write(w, 1, buf, fill_frame(buf, 0, seq, 100), 0), MYC_OK);
    CHECK_EQ(myc_cursor_register(name, "keep"), MYC_OK);
    myc_cursor_info ci[MYC_READER_SLOTS];
    uint32_t count = 0;
    CHECK_EQ(myc_inspect_cursors(name, ci, MYC_READER_SLOTS, &count), MYC_OK);
    CHECK_EQ(count, 1);
    CHECK(strcmp(ci[0].name, "keep") == 0);
    CHECK_EQ(ci[0].durable, 1);
    CHECK_EQ(ci[0].tethered, 1);
    CHECK_EQ(ci[0].pid, 0);
    CHECK_EQ(ci[0].lag, 0);
    CHECK_EQ(ci[0].attached_ns, 0);
    for (; seq < 15; seq++) CHECK_EQ(myc_write(w, 1, buf, fill_frame(buf, 0, seq, 100), 0), MYC_OK);
    myc_reader *held = bc_reader(name, "held", 0);
    CHECK_EQ(myc_cursor_register(name, "held"), MYC_OK); /* held: left to its reader */
    CHECK_EQ(myc_cursor_register(name, "keep"), MYC_OK); /* exists: unchanged */
    CHECK_EQ(myc_inspect_cursors(name, ci, MYC_READER_SLOTS, &count), MYC_OK);
    CHECK_EQ(count, 2);
    for (uint32_t i = 0; i < count; i++)
        if (strcmp(ci[i].name, "held") == 0) CHECK_EQ(ci[i].pid, (int32_t)getpid());
    CHECK_EQ(myc_cursor_register(name, "third"), MYC_OK);
    CHECK_EQ(myc_cursor_register(name, "fourth"), MYC_ERR_TOO_MANY_READERS);
    CHECK(strstr(myc_last_error(), "all are taken") != NULL);
    myc_reader *r = bc_reader(name, "keep", 0);
    CHECK_EQ(drain_ready(r, 5, NULL), 15); /* the 10 frames written after it, none before */
    myc_reader_close(r);
    myc_reader_close(held);
    myc_writer_close(w);
    CHECK_EQ(myc_cursor_register(name, "a-name-of-forty-bytes-is-one-too-long-xy"), MYC_ERR_ARG);
    const char *single = fresh_name("register-single");
    myc_writer *sw = NULL;
    CHECK_EQ(myc_writer_open(single, MYC_CREATE, 4096, 0, 0, NULL, &sw), MYC_OK);
    CHECK_EQ(myc_cursor_register(single, "x"), MYC_ERR_ARG);
    myc_writer_close(sw);
    CHECK_EQ(myc_cursor_register(fresh_name("register-none"), "x"), MYC_ERR_NOT_FOUND);
}

/* MYC_START_OLDEST: a new cursor sees what a tethered reader still holds. */
static void test_start_oldest(void) {
    const char *name = fresh_name("oldest");
    myc_writer *w = bc_writer(name, 3, 0);
    myc_reader *keeper = bc_reader(name, "keeper", 0);
    uint8_t buf[256], out[4096];
    for (uint64_t seq = 0; seq < 40; seq++) CHECK_EQ(myc_write(w, 1, buf, fill_frame(buf, 0, seq, 100), 0), MYC_OK);
    myc_reader *late = NULL, *tail = NULL;
    CHECK_EQ(myc_reader_open_ex(name, MYC_ATTACH | MYC_START_OLDEST, 0, 0, 0, NULL, 0, 0, "late", 0, &late), MYC_OK);
    tail = bc_reader(name, "tail", 0);
    int64_t got = myc_read(late, 0, out, sizeof out);
    CHECK(got >= 0);
    uint32_t wr = 0;
    uint64_t s = 99;
    CHECK(check_frame(out, (uint32_t)READ_LEN(got), &wr, &s));
    CHECK_EQ(s, 0);
    CHECK_EQ(myc_read(tail, 0, out, sizeof out), MYC_ERR_EMPTY);
    myc_reader_close(late);
    myc_reader_close(tail);
    myc_reader_close(keeper);
    myc_writer_close(w);
}

/* Two threads, each with its own reader on the same channel, read the same
 * bytes zero-copy. */
typedef struct {
    const char *name;
    char cursor[8];
    uint64_t frames, ok;
} peek_arg;

static void *peek_thread(void *p) {
    peek_arg *a = p;
    myc_reader *r = NULL;
    if (myc_reader_open_ex(a->name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, a->cursor, 0, &r) != MYC_OK) return NULL;
    uint64_t next = 0;
    while (next < a->frames) {
        myc_frame f;
        if (myc_peek(r, 10000 * MS, &f) != MYC_OK) break;
        uint32_t wr = 0;
        uint64_t s = 0;
        if (check_frame(f.payload, f.payload_len, &wr, &s) && s == next) a->ok++;
        next++;
        myc_release(r);
    }
    myc_reader_close(r);
    return NULL;
}

static void test_zero_copy_readers(void) {
    const char *name = fresh_name("zc");
    myc_writer *w = bc_writer(name, 2, 60000);
    peek_arg args[2] = {{name, "z0", 20000, 0}, {name, "z1", 20000, 0}};
    for (int i = 0; i < 2; i++) myc_reader_close(bc_reader(name, args[i].cursor, 0)); /* exist first */
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, peek_thread, &args[i]);
    uint8_t buf[4096];
    uint64_t rng = 5;
    for (uint64_t seq = 0; seq < 20000; seq++)
        CHECK_EQ(myc_write(w, 1, buf, fill_frame(buf, 0, seq, rand_len(&rng)), 10000 * MS), MYC_OK);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK_EQ(args[0].ok, 20000);
    CHECK_EQ(args[1].ok, 20000);
    myc_writer_close(w);
}

/* Hostile cursor words: a position past the tail or misaligned neither
 * crashes a writer nor holds it. */
static void test_hostile_cursor_table(void) {
    const char *name = fresh_name("hostile");
    myc_writer *w = bc_writer(name, 2, 0);
    myc_reader *r = bc_reader(name, "victim", 0);
    raw_map raw = raw_open(name);
    uint64_t bogus = 0x123456789ULL; /* misaligned, past the tail */
    raw_set_u64(raw, MYC_OFF_READER_TABLE + MYC_CURSOR_OFF_POSITION, bogus);
    memset(raw.base + MYC_OFF_READER_TABLE + MYC_CURSOR_OFF_NAME, 'x', MYC_CURSOR_NAME_MAX + 1); /* no NUL */
    uint8_t buf[1024];
    for (uint64_t seq = 0; seq < 300; seq++) CHECK_EQ(myc_write(w, 1, buf, fill_frame(buf, 0, seq, 900), 1000 * MS), MYC_OK);
    myc_cursor_info ci[MYC_READER_SLOTS];
    uint32_t count = 0;
    CHECK_EQ(myc_inspect_cursors(name, ci, MYC_READER_SLOTS, &count), MYC_OK);
    CHECK_EQ(strlen(ci[0].name), MYC_CURSOR_NAME_MAX);
    /* Garbage in the slot's state and policy words. */
    raw_set_u32(raw, MYC_OFF_READER_TABLE + MYC_CURSOR_SLOT_SIZE + MYC_CURSOR_OFF_STATE, 0xdeadbeef);
    raw_set_u32(raw, MYC_OFF_READER_TABLE + MYC_CURSOR_SLOT_SIZE + MYC_CURSOR_OFF_TETHER, 0xdeadbeef);
    for (uint64_t seq = 0; seq < 300; seq++) CHECK_EQ(myc_write(w, 1, buf, fill_frame(buf, 0, seq, 900), 1000 * MS), MYC_OK);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
}

int main(int argc, char **argv) {
    static const test_case tests[] = {
        {"slots_and_bad_input", test_slots_and_bad_input, NULL},
        {"tethered_fanout_in_process", test_tethered_fanout_in_process, NULL},
        {"one_writer_four_readers", test_one_writer_four_readers, NULL},
        {"three_writers_four_readers", test_three_writers_four_readers, NULL},
        {"lossy_counts_exactly", test_lossy_counts_exactly, NULL},
        {"lossy_peek_overwritten", test_lossy_peek_overwritten, NULL},
        {"untether_window", test_untether_window, NULL},
        {"dead_reader_untethered_at_once", test_dead_reader_untethered_at_once, NULL},
        {"durable_resume", test_durable_resume, NULL},
        {"register", test_register, NULL},
        {"start_oldest", test_start_oldest, NULL},
        {"zero_copy_readers", test_zero_copy_readers, NULL},
        {"hostile_cursor_table", test_hostile_cursor_table, NULL},
    };
    return run_tests("test_broadcast", tests, sizeof tests / sizeof tests[0], argc, argv, 120);
}
