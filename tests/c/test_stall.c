/*
 * Writers stopped or killed between the steps of the write protocol
 * (docs/FORMAT.md section 4, "Writing"), through the core's test hooks: build with
 * -DMYC_TEST_HOOKS.  For each step (PUBLISHED, CLAIMED, HEADER, FILLED,
 * COMMITTED) a child process writes frame A and SIGSTOPs itself at that
 * step; a second writer process then writes frame B; this process reads.
 *
 *   stop      the reader waits for a live writer's claim (back-pressure:
 *             B is not delivered before A), shows it as a stall, and
 *             after SIGCONT delivers A then B; the child's write succeeded.
 *   kill      a dead writer's claim is skipped (B delivered, A and nothing
 *             else not), counted in unblocks; a zombie counts as dead.
 *   revoke    myc_force_unblock revokes a claim whose header is written:
 *             B is delivered, A never, and the child's commit fails with
 *             MYC_ERR_ABANDONED; a claim without a header cannot be revoked.
 *
 * Plus: a writer killed while asleep waiting for room does not cost later
 * reads a futex wake each; a second revoke refused while a first is held
 * does not release the first's space.
 *
 * `test_stall [substring]` runs the tests whose name contains it.
 */
#define _GNU_SOURCE
#include "ring_internal.h"
#include "test_util.h"

#ifndef MYC_TEST_HOOKS
#error "test_stall needs the core built with -DMYC_TEST_HOOKS"
#endif

#define CAPACITY 4096u
#define A_TYPE 1
#define A_LEN 40
#define B_TYPE 2
#define B_LEN 24
#define C_TYPE 3
#define C_LEN 8
#define STUCK_WAIT_NS (300 * MS) /* well past the 10 ms stuck timeout */

static const char *const k_step_names[] = {"", "PUBLISHED", "CLAIMED", "HEADER", "FILLED", "COMMITTED"};

/* ------------------------------------------------------------------------ */
/* Child writers                                                             */
/* ------------------------------------------------------------------------ */

/* What the next spawned writer does (set before spawn; fork copies it). */
static struct {
    const char *channel;
    uint32_t type;
    uint32_t len;
    uint8_t fill;
    int stop_step;  /* SIGSTOP itself at this step of its first frame, 0 = never */
    int fill_ring;  /* first fill the ring (timeout 0), then block for room */
    uint8_t forged[32]; /* bytes put into the payload at forged_at */
    uint32_t forged_at, forged_len;
    uint32_t batch;     /* > 0: write this many frames with one myc_write_batch */
    int stop_nth;       /* stop at the stop_step of this frame of the batch (0-based) */
} g_plan;

static int g_hook_fired, g_hook_seen;

static void stop_hook(int step, uint64_t position) {
    (void)position;
    if (g_hook_fired || step != g_plan.stop_step || g_hook_seen++ != g_plan.stop_nth) return;
    g_hook_fired = 1;
    raise(SIGSTOP);
}

/* Exit code: -(result of the write), so 0 = MYC_OK and 16 = ABANDONED;
 * 100+ = the child could not set up. */
static int child_writer(void *arg) {
    (void)arg;
    myc_writer *w = NULL;
    if (myc_writer_open(g_plan.channel, MYC_ATTACH, 0, 0, 0, NULL, &w) != MYC_OK) return 100;
    uint8_t payload[256];
    memset(payload, g_plan.fill, sizeof payload);
    memcpy(payload + g_plan.forged_at, g_plan.forged, g_plan.forged_len);
    if (g_plan.fill_ring) {
        while (myc_write(w, g_plan.type, payload, 0, 0) == MYC_OK) {
        }
        myc_write(w, g_plan.type, payload, 0, -1); /* sleeps until killed */
        return 101;
    }
    g_hook_fired = 0;
    g_hook_seen = 0;
    myc_test_hook = stop_hook;
    int rc;
    if (g_plan.batch > 0) {
        uint16_t types[8];
        uint32_t lens[8];
        uint8_t payloads[8 * 256];
        for (uint32_t i = 0; i < g_plan.batch && i < 8; i++) {
            types[i] = (uint16_t)g_plan.type;
            lens[i] = g_plan.len;
            memset(payloads + i * g_plan.len, g_plan.fill, g_plan.len);
        }
        int64_t written = myc_write_batch(w, g_plan.batch, types, lens, payloads, 5000 * MS);
        rc = written == (int64_t)g_plan.batch ? MYC_OK : written < 0 ? (int)written : 102;
    } else {
        rc = myc_write(w, g_plan.type, payload, g_plan.len, 5000 * MS);
    }
    myc_test_hook = NULL;
    myc_writer_close(w);
    return -rc;
}

static pid_t spawn_writer(const char *channel, uint32_t type, uint32_t len, uint8_t fill,
                          int stop_step) {
    memset(&g_plan, 0, sizeof g_plan);
    g_plan.channel = channel;
    g_plan.type = type;
    g_plan.len = len;
    g_plan.fill = fill;
    g_plan.stop_step = stop_step;
    return spawn(child_writer, NULL);
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                   */
/* ------------------------------------------------------------------------ */

static int intact(int64_t got, const uint8_t *buf, uint32_t type, uint32_t len, uint8_t fill) {
    if (READ_TYPE(got) != type || READ_LEN(got) != len) return 0;
    for (uint32_t i = 0; i < len; i++)
        if (buf[i] != fill) return 0;
    return 1;
}

/* The next frame: 'A', 'B' or 'C' (intact), 'E' (MYC_ERR_EMPTY), '!' (an
 * error), '?' (anything else: garbage). */
static char next_frame(myc_reader *r, int64_t timeout_ns) {
    uint8_t buf[512];
    int64_t got = myc_read(r, timeout_ns, buf, sizeof buf);
    if (got == MYC_ERR_EMPTY) return 'E';
    if (got < 0) {
        fprintf(stderr, "  read: %s: %s\n", myc_result_name((int)got), myc_last_error());
        return '!';
    }
    if (intact(got, buf, A_TYPE, A_LEN, 'A')) return 'A';
    if (intact(got, buf, B_TYPE, B_LEN, 'B')) return 'B';
    if (intact(got, buf, C_TYPE, C_LEN, 'C')) return 'C';
    fprintf(stderr, "  garbage frame: type %lld, %lld bytes, first byte 0x%02x\n", READ_TYPE(got),
            READ_LEN(got), buf[0]);
    return '?';
}

/* Frames until EMPTY (the first waited for up to first_ns, the others up to
 * 50 ms), as a string such as "AB". */
static void drain(myc_reader *r, int64_t first_ns, char *out, size_t size) {
    size_t n = 0;
    for (int64_t timeout = first_ns; n + 1 < size; timeout = 50 * MS) {
        char c = next_frame(r, timeout);
        if (c == 'E') break;
        out[n++] = c;
        if (c == '!') break;
    }
    out[n] = '\0';
}

#define CHECK_STR(got, want)                                                                    \
    do {                                                                                        \
        if (strcmp((got), (want)) != 0) {                                                       \
            fprintf(stderr, "  %s:%d: frames \"%s\", expected \"%s\"\n", __FILE__, __LINE__, (got), \
                    (want));                                                                    \
            g_failed_checks++;                                                                  \
        }                                                                                       \
    } while (0)

static myc_stats stats_of(myc_reader *r) {
    myc_stats s;
    memset(&s, 0, sizeof s);
    CHECK_EQ(myc_reader_stats(r, &s), MYC_OK);
    return s;
}

static myc_info info_of(const char *name) {
    myc_info info;
    memset(&info, 0, sizeof info);
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    return info;
}

/* ------------------------------------------------------------------------ */
/* One writer stopped at a step                                              */
/* ------------------------------------------------------------------------ */

typedef struct stall {
    const char *name;
    myc_reader *r;
    pid_t a;
    int step;
    int stalls; /* the step leaves a claim the reader must wait for */
} stall;

/* Channel, reader, child A stopped at `step`, then B written by another
 * process.  0 if the setup failed (already reported). */
static int stall_begin(stall *s, int step, const char *mode) {
    char tag[64];
    snprintf(tag, sizeof tag, "%s-%s", mode, k_step_names[step]);
    memset(s, 0, sizeof *s);
    s->step = step;
    s->stalls = step == MYC_STEP_CLAIMED || step == MYC_STEP_HEADER || step == MYC_STEP_FILLED;
    s->name = fresh_name(tag);
    CHECK_EQ(myc_reader_open(s->name, MYC_CREATE, CAPACITY, 0, 0, NULL, &s->r), MYC_OK);
    if (s->r == NULL) return 0;
    s->a = spawn_writer(s->name, A_TYPE, A_LEN, 'A', step);
    if (!wait_stopped(s->a, 5000)) {
        fprintf(stderr, "  writer A did not stop at step %s\n", k_step_names[step]);
        g_failed_checks++;
        return 0;
    }
    pid_t b = spawn_writer(s->name, B_TYPE, B_LEN, 'B', 0);
    CHECK_EQ(reap(b, 5000), 0); /* B's write returned MYC_OK */
    return 1;
}

static void stall_end(stall *s) {
    if (s->r) myc_reader_close(s->r);
    myc_unlink(s->name);
}

/* The reader's first look while A is stopped: for a stalling step it waits
 * (well past the stuck timeout) and delivers nothing, and the stall names
 * A; otherwise it delivers what is committed. */
static void first_look(stall *s, int64_t wait_ns) {
    char c = next_frame(s->r, wait_ns);
    myc_info info = info_of(s->name);
    switch (s->step) {
    case MYC_STEP_PUBLISHED: /* A has not claimed: B is the first frame */
        CHECK_EQ(c, 'B');
        CHECK_EQ(info.stalled_pid, 0);
        break;
    case MYC_STEP_COMMITTED: /* A is committed; only its wake is pending */
        CHECK_EQ(c, 'A');
        CHECK_EQ(info.stalled_pid, 0);
        break;
    default: /* back-pressure: B is not delivered before A */
        CHECK_EQ(c, 'E');
        CHECK_EQ(info.stalled_pid, s->a);
        CHECK(info.stalled_since_ns != 0);
        CHECK_EQ(stats_of(s->r).unblocks, 0);
        CHECK_EQ(stats_of(s->r).head, 0);
        break;
    }
}

static void stop_then_continue(int step) {
    stall s;
    if (stall_begin(&s, step, "stop")) {
        first_look(&s, STUCK_WAIT_NS);
        CHECK_EQ(kill(s.a, SIGCONT), 0);
        char frames[16];
        drain(s.r, 2000 * MS, frames, sizeof frames);
        switch (step) {
        case MYC_STEP_PUBLISHED: CHECK_STR(frames, "A"); break;
        case MYC_STEP_COMMITTED: CHECK_STR(frames, "B"); break;
        default: CHECK_STR(frames, "AB"); break;
        }
        CHECK_EQ(reap(s.a, 5000), 0); /* A's write returned MYC_OK */
        myc_stats st = stats_of(s.r);
        CHECK_EQ(st.unblocks, 0);
        CHECK_EQ(st.frames_read, 2);
        CHECK_EQ(st.head, st.tail);
        CHECK_EQ(info_of(s.name).stalled_pid, 0);
    }
    stall_end(&s);
}

static void stop_then_kill(int step) {
    stall s;
    if (stall_begin(&s, step, "kill")) {
        first_look(&s, 100 * MS);
        uint64_t unblocks = stats_of(s.r).unblocks;
        CHECK_EQ(kill(s.a, SIGKILL), 0);
        CHECK(wait_zombie(s.a)); /* dead, not yet reaped: a zombie */
        char frames[16];
        drain(s.r, 2000 * MS, frames, sizeof frames);
        /* PUBLISHED: nothing was claimed; B came first.  COMMITTED: A came
         * first.  Otherwise A's claim is skipped, B delivered. */
        CHECK_STR(frames, step == MYC_STEP_PUBLISHED ? "" : "B");
        myc_stats st = stats_of(s.r);
        CHECK_EQ(st.unblocks - unblocks, s.stalls ? 1 : 0);
        CHECK_EQ(st.frames_read, step == MYC_STEP_COMMITTED ? 2 : 1);
        CHECK_EQ(st.head, st.tail);
        CHECK_EQ(info_of(s.name).stalled_pid, 0);
        CHECK_EQ(reap(s.a, 5000), 128 + SIGKILL);
        /* the channel goes on: a new writer's frame is delivered */
        pid_t c = spawn_writer(s.name, C_TYPE, C_LEN, 'C', 0);
        CHECK_EQ(reap(c, 5000), 0);
        drain(s.r, 1000 * MS, frames, sizeof frames);
        CHECK_STR(frames, "C");
    }
    stall_end(&s);
}

static void stop_then_revoke(int step) {
    stall s;
    if (stall_begin(&s, step, "revoke")) {
        first_look(&s, 100 * MS);
        raw_map raw = raw_open(s.name);
        int32_t pid = -1;
        uint64_t position = 1;
        int rc = myc_force_unblock(s.name, &pid, &position);
        char frames[16];
        if (step == MYC_STEP_HEADER || step == MYC_STEP_FILLED) {
            CHECK_EQ(rc, MYC_OK);
            CHECK_EQ(pid, s.a);
            CHECK_EQ(position, 0); /* A claimed first */
            CHECK_EQ(frame_stamp(raw, 0), 0 | MYC_STAMP_REVOKED);
            CHECK_EQ(info_of(s.name).hold_position, 0);
            drain(s.r, 2000 * MS, frames, sizeof frames);
            CHECK_STR(frames, "B");
            CHECK_EQ(kill(s.a, SIGCONT), 0);
            CHECK_EQ(reap(s.a, 5000), -MYC_ERR_ABANDONED);
            CHECK_EQ(info_of(s.name).hold_position, MYC_NO_HOLD);
            drain(s.r, 100 * MS, frames, sizeof frames);
            CHECK_STR(frames, ""); /* A never */
            myc_stats st = stats_of(s.r);
            CHECK_EQ(st.frames_read, 1);
            CHECK_EQ(st.padding_frames, 1); /* the revoked claim, skipped */
            CHECK_EQ(st.unblocks, 0);
            CHECK_EQ(raw_u64(raw, MYC_OFF_FORCED_UNBLOCKS), 1);
            CHECK_EQ(raw_u64(raw, MYC_OFF_ABANDONED), 1);
        } else {
            if (step == MYC_STEP_CLAIMED) {
                /* no header yet: nothing to revoke */
                CHECK_EQ(rc, MYC_ERR_READER_BUSY);
                CHECK(strstr(myc_last_error(), "no frame header yet") != NULL);
                CHECK_EQ(pid, s.a);
            } else {
                /* the reader is not held: the frame at HEAD is complete */
                CHECK_EQ(rc, MYC_ERR_EMPTY);
            }
            CHECK_EQ(info_of(s.name).hold_position, MYC_NO_HOLD);
            CHECK_EQ(kill(s.a, SIGCONT), 0);
            CHECK_EQ(reap(s.a, 5000), 0);
            drain(s.r, 2000 * MS, frames, sizeof frames);
            switch (step) {
            case MYC_STEP_PUBLISHED: CHECK_STR(frames, "A"); break;
            case MYC_STEP_COMMITTED: CHECK_STR(frames, "B"); break;
            default: CHECK_STR(frames, "AB"); break;
            }
            CHECK_EQ(raw_u64(raw, MYC_OFF_FORCED_UNBLOCKS), 0);
        }
        raw_close(raw);
    }
    stall_end(&s);
}

#define STEP_TESTS(mode)                                                      \
    static void test_##mode##_published(void) { mode(MYC_STEP_PUBLISHED); } \
    static void test_##mode##_claimed(void) { mode(MYC_STEP_CLAIMED); }     \
    static void test_##mode##_header(void) { mode(MYC_STEP_HEADER); }       \
    static void test_##mode##_filled(void) { mode(MYC_STEP_FILLED); }       \
    static void test_##mode##_committed(void) { mode(MYC_STEP_COMMITTED); }
STEP_TESTS(stop_then_continue)
STEP_TESTS(stop_then_kill)
STEP_TESTS(stop_then_revoke)

/* ------------------------------------------------------------------------ */
/* A batch stopped after its first frame                                     */
/* ------------------------------------------------------------------------ */

/* A child writing a batch of `batch` A frames (1: one write) into `name`,
 * stopped at its `nth` (0-based) `step`: its pid once it has stopped, or -1
 * (a failed check; the child is killed and reaped). */
static pid_t stopped_a_writer(const char *name, int step, int nth, uint32_t batch) {
    memset(&g_plan, 0, sizeof g_plan);
    g_plan.channel = name;
    g_plan.type = A_TYPE;
    g_plan.len = A_LEN;
    g_plan.fill = 'A';
    g_plan.stop_step = step;
    g_plan.stop_nth = nth;
    g_plan.batch = batch > 1 ? batch : 0;
    pid_t a = spawn(child_writer, NULL);
    if (wait_stopped(a, 5000)) return a;
    fprintf(stderr, "  the writer did not stop\n");
    g_failed_checks++;
    kill(a, SIGKILL);
    reap(a, 5000);
    return -1;
}

/* A batch of three A frames whose writer stops after copying the second
 * (FORMAT.md 4.2): the first is delivered; the reader then waits for the
 * live writer; force-unblock refuses (only a claim's first frame is
 * revocable); SIGCONT delivers the rest, SIGKILL skips it. */
static void batch_stopped_after_first_frame(int then_kill) {
    const char *name = fresh_name(then_kill ? "batch-kill" : "batch-stop");
    myc_reader *r = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_CREATE, CAPACITY, 0, 0, NULL, &r), MYC_OK);
    if (r == NULL) return;
    pid_t a = stopped_a_writer(name, MYC_STEP_FILLED, 1, 3);
    if (a > 0) {
        CHECK_EQ(next_frame(r, 100 * MS), 'A');
        CHECK_EQ(next_frame(r, STUCK_WAIT_NS), 'E'); /* held by the live writer */
        CHECK_EQ(info_of(name).stalled_pid, a);
        int32_t pid = -1;
        CHECK_EQ(myc_force_unblock(name, &pid, NULL), MYC_ERR_READER_BUSY);
        CHECK(strstr(myc_last_error(), "first frame") != NULL);
        CHECK_EQ(pid, a);
        CHECK_EQ(info_of(name).hold_position, MYC_NO_HOLD);
        char frames[16];
        if (then_kill) {
            CHECK_EQ(kill(a, SIGKILL), 0);
            CHECK(wait_zombie(a));
            drain(r, 2000 * MS, frames, sizeof frames);
            CHECK_STR(frames, ""); /* the rest of the dead writer's claim is skipped */
            CHECK_EQ(stats_of(r).unblocks, 1);
            CHECK_EQ(reap(a, 5000), 128 + SIGKILL);
        } else {
            CHECK_EQ(kill(a, SIGCONT), 0);
            drain(r, 2000 * MS, frames, sizeof frames);
            CHECK_STR(frames, "AA");
            CHECK_EQ(reap(a, 5000), 0); /* the batch call returned 3 */
            CHECK_EQ(stats_of(r).frames_read, 3);
        }
        myc_stats st = stats_of(r);
        CHECK_EQ(st.head, st.tail);
    }
    myc_reader_close(r);
    myc_unlink(name);
}

/* A batch of three A frames whose writer stops before committing the first
 * (FORMAT.md 8.3, "A batch"): force-unblock revokes the first frame; the
 * reader skips it and waits at the second, which the stopped writer never
 * wrote; a second unblock there says why it cannot help; SIGCONT: the commit
 * fails, the rest becomes padding, nothing of A is delivered, B goes on. */
static void test_batch_revoked_first_frame_holds_the_reader_until_it_runs(void) {
    const char *name = fresh_name("batch-revoke");
    myc_reader *r = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_CREATE, CAPACITY, 0, 0, NULL, &r), MYC_OK);
    if (r == NULL) return;
    pid_t a = stopped_a_writer(name, MYC_STEP_FILLED, 0, 3);
    if (a > 0) {
        CHECK_EQ(next_frame(r, STUCK_WAIT_NS), 'E'); /* held by the live writer */
        int32_t pid = -1;
        uint64_t position = 1;
        CHECK_EQ(myc_force_unblock(name, &pid, &position), MYC_OK);
        CHECK_EQ(pid, a);
        CHECK_EQ(position, 0);
        CHECK_EQ(next_frame(r, STUCK_WAIT_NS), 'E'); /* skipped frame 0, held at frame 1 */
        myc_stats st = stats_of(r);
        CHECK(st.head > 0 && st.head < st.tail);
        CHECK_EQ(st.padding_frames, 1);
        CHECK_EQ(myc_force_unblock(name, &pid, &position), MYC_ERR_READER_BUSY);
        CHECK(strstr(myc_last_error(), "rest of a batch whose first frame (position 0) was "
                                       "force-unblocked already") != NULL);
        CHECK_EQ(info_of(name).hold_position, 0);
        CHECK_EQ(kill(a, SIGCONT), 0);
        CHECK_EQ(reap(a, 5000), -MYC_ERR_ABANDONED);
        CHECK_EQ(info_of(name).hold_position, MYC_NO_HOLD);
        pid_t b = spawn_writer(name, B_TYPE, B_LEN, 'B', 0);
        CHECK_EQ(reap(b, 5000), 0);
        char frames[16];
        drain(r, 2000 * MS, frames, sizeof frames);
        CHECK_STR(frames, "B"); /* no A, ever */
        st = stats_of(r);
        CHECK_EQ(st.frames_read, 1);
        CHECK_EQ(st.padding_frames, 3); /* the revoked frame and the two padded */
        CHECK_EQ(st.unblocks, 0);
        CHECK_EQ(st.head, st.tail);
    }
    myc_reader_close(r);
    myc_unlink(name);
}

/* A lone writer stopped before its commit, revoked: once the reader has
 * skipped the revoked frame, no stall is shown (nothing holds it any more),
 * though no data frame followed. */
static void test_revoked_lone_claim_clears_the_stall(void) {
    const char *name = fresh_name("revoke-lone");
    myc_reader *r = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_CREATE, CAPACITY, 0, 0, NULL, &r), MYC_OK);
    if (r == NULL) return;
    pid_t a = stopped_a_writer(name, MYC_STEP_FILLED, 0, 1);
    if (a > 0) {
        CHECK_EQ(next_frame(r, STUCK_WAIT_NS), 'E');
        CHECK_EQ(info_of(name).stalled_pid, a);
        CHECK_EQ(myc_force_unblock(name, NULL, NULL), MYC_OK);
        CHECK_EQ(next_frame(r, 100 * MS), 'E'); /* the revoked frame, skipped */
        CHECK_EQ(stats_of(r).padding_frames, 1);
        CHECK_EQ(info_of(name).stalled_pid, 0);
        CHECK_EQ(info_of(name).stalled_since_ns, 0);
        CHECK_EQ(kill(a, SIGCONT), 0);
        CHECK_EQ(reap(a, 5000), -MYC_ERR_ABANDONED);
    }
    myc_reader_close(r);
    myc_unlink(name);
}

static void test_batch_stopped_after_first_frame_continues(void) { batch_stopped_after_first_frame(0); }
static void test_batch_stopped_after_first_frame_killed(void) { batch_stopped_after_first_frame(1); }

/* ------------------------------------------------------------------------ */
/* A writer killed while asleep waiting for room                             */
/* ------------------------------------------------------------------------ */

static void test_dead_sleeping_writer_costs_no_wakes(void) {
    const char *name = fresh_name("deadwaiter");
    myc_reader *r = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_CREATE, 1024, 0, 0, NULL, &r), MYC_OK);
    if (r == NULL) return;
    raw_map raw = raw_open(name);
    memset(&g_plan, 0, sizeof g_plan);
    g_plan.channel = name;
    g_plan.type = C_TYPE;
    g_plan.fill_ring = 1;
    pid_t child = spawn(child_writer, NULL);
    int64_t deadline = mono_ns() + 5000 * MS;
    while (raw_u32(raw, MYC_OFF_WAITING_MASK) == 0 && mono_ns() < deadline) sleep_ms(1);
    CHECK(raw_u32(raw, MYC_OFF_WAITING_MASK) != 0);
    sleep_ms(20); /* into its futex wait */
    CHECK_EQ(kill(child, SIGKILL), 0);
    CHECK(wait_zombie(child));
    CHECK(raw_u32(raw, MYC_OFF_WAITING_MASK) != 0); /* the dead writer's bit */

    uint64_t wakes0 = stats_of(r).reader_wakes;
    uint8_t buf[16];
    int frames = 0;
    while (myc_read(r, 0, buf, sizeof buf) == ((int64_t)C_TYPE << 32)) frames++;
    CHECK_EQ(frames, 1024 / 16);
    /* one wake finds nobody asleep, and the dead waiter's bit is cleared */
    uint64_t wakes1 = stats_of(r).reader_wakes;
    CHECK(wakes1 - wakes0 <= 1);
    CHECK_EQ(raw_u32(raw, MYC_OFF_WAITING_MASK), 0);
    myc_writer *w = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &w), MYC_OK);
    for (int i = 0; i < 1000 && w != NULL; i++) {
        CHECK_EQ(myc_write(w, C_TYPE, "CCCCCCCC", C_LEN, 0), MYC_OK);
        if (next_frame(r, 0) != 'C') {
            CHECK(!"frame C not read");
            break;
        }
    }
    CHECK_EQ(stats_of(r).reader_wakes, wakes1); /* flat over 1000 reads */
    CHECK_EQ(reap(child, 5000), 128 + SIGKILL);
    myc_writer_close(w);
    raw_close(raw);
    myc_reader_close(r);
    myc_unlink(name);
}

/* ------------------------------------------------------------------------ */
/* Two stalled writers, one revoked: the refused second revoke must not     */
/* release the first one's space                                             */
/* ------------------------------------------------------------------------ */

static void test_second_revoke_keeps_first_hold(void) {
    const char *name = fresh_name("twoholds");
    myc_reader *r = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_CREATE, 1024, 0, 0, NULL, &r), MYC_OK);
    if (r == NULL) return;
    raw_map raw = raw_open(name);
    /* X claims [0, 64) and stops with its header written; revoked */
    pid_t x = spawn_writer(name, A_TYPE, 48, 'X', MYC_STEP_HEADER);
    CHECK(wait_stopped(x, 5000));
    int32_t pid = 0;
    uint64_t position = 1;
    CHECK_EQ(myc_force_unblock(name, &pid, &position), MYC_OK);
    CHECK_EQ(pid, x);
    CHECK_EQ(position, 0);
    /* Y claims [64, 128) and stops likewise; the reader passes X's revoked
     * claim and waits on Y */
    pid_t y = spawn_writer(name, A_TYPE, 48, 'Y', MYC_STEP_HEADER);
    CHECK(wait_stopped(y, 5000));
    CHECK_EQ(next_frame(r, 50 * MS), 'E');
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), 64);
    /* Y cannot be revoked while X's hold stands */
    CHECK_EQ(myc_force_unblock(name, &pid, &position), MYC_ERR_READER_BUSY);
    CHECK(strstr(myc_last_error(), "earlier revoked claim") != NULL);
    CHECK_EQ(info_of(name).hold_position, 0);
    /* X is alive (stopped) and will still copy its payload into [16, 64):
     * writers must not reuse that space, however long they wait */
    myc_writer *w = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &w), MYC_OK);
    uint8_t payload[48];
    memset(payload, 'W', sizeof payload);
    int written = 0;
    while (myc_write(w, B_TYPE, payload, sizeof payload, 0) == MYC_OK) written++;
    CHECK_EQ(written, (1024 - 128) / 64);
    CHECK_EQ(myc_write(w, B_TYPE, payload, sizeof payload, 200 * MS), MYC_ERR_FULL);
    CHECK_EQ(info_of(name).hold_position, 0);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 1024);
    /* X resumes: its commit fails and it gives the space back */
    CHECK_EQ(kill(x, SIGCONT), 0);
    CHECK_EQ(reap(x, 5000), -MYC_ERR_ABANDONED);
    CHECK_EQ(info_of(name).hold_position, MYC_NO_HOLD);
    CHECK_EQ(myc_write(w, B_TYPE, payload, sizeof payload, 0), MYC_OK); /* at 1024 */
    written++;
    /* now Y can be revoked */
    CHECK_EQ(myc_force_unblock(name, &pid, &position), MYC_OK);
    CHECK_EQ(pid, y);
    CHECK_EQ(position, 64);
    CHECK_EQ(kill(y, SIGCONT), 0);
    CHECK_EQ(reap(y, 5000), -MYC_ERR_ABANDONED);
    /* every frame the reader gets is W's, intact */
    uint8_t buf[256];
    int64_t got;
    int read = 0;
    while ((got = myc_read(r, 100 * MS, buf, sizeof buf)) >= 0) {
        if (!intact(got, buf, B_TYPE, sizeof payload, 'W')) {
            fprintf(stderr, "  garbage frame %d: type %lld, %lld bytes, byte 0 '%c'\n", read,
                    READ_TYPE(got), READ_LEN(got), buf[0]);
            g_failed_checks++;
        }
        read++;
    }
    CHECK_EQ(got, MYC_ERR_EMPTY);
    CHECK_EQ(read, written);
    myc_writer_close(w);
    raw_close(raw);
    myc_reader_close(r);
    myc_unlink(name);
}

/* ------------------------------------------------------------------------ */
/* A phantom range: published, never claimed                                 */
/* ------------------------------------------------------------------------ */

/* Writer A is killed at PUBLISHED: its slot keeps the range [0, 64) it was
 * about to claim, though TAIL never moved for it.  Writer D then really
 * claims [0, 128), copies its payload and is killed before committing.  The
 * reader, stuck at 0, finds two dead slots covering it and skips to the
 * smaller claim end, 64: the middle of D's claim, where D's payload bytes
 * happen to look like a committed frame at position 64.  No writer ever
 * committed a frame there; nothing may be delivered. */
static void test_phantom_range_does_not_split_a_dead_claim(void) {
    const char *name = fresh_name("phantom");
    myc_reader *r = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_CREATE, CAPACITY, 0, 0, NULL, &r), MYC_OK);
    if (r == NULL) return;
    pid_t a = spawn_writer(name, A_TYPE, 48, 'A', MYC_STEP_PUBLISHED);
    CHECK(wait_stopped(a, 5000));
    CHECK_EQ(kill(a, SIGKILL), 0);
    CHECK(wait_zombie(a));
    /* D's payload: 112 bytes, of which those at ring index 64..88 read as
     * a frame header stamped 64|COMMITTED, 8 bytes "GARBAGE!" */
    memset(&g_plan, 0, sizeof g_plan);
    g_plan.channel = name;
    g_plan.type = B_TYPE;
    g_plan.len = 112;
    g_plan.fill = 'D';
    g_plan.stop_step = MYC_STEP_FILLED;
    uint8_t *forged = g_plan.forged;
    uint64_t stamp = 64 | MYC_STAMP_COMMITTED;
    uint32_t len = MYC_FRAME_HEADER_SIZE + 8;
    uint16_t type = 7, flags = 0;
    memcpy(forged + 0, &stamp, 8);
    memcpy(forged + 8, &len, 4);
    memcpy(forged + 12, &type, 2);
    memcpy(forged + 14, &flags, 2);
    memcpy(forged + 16, "GARBAGE!", 8);
    g_plan.forged_at = 64 - MYC_FRAME_HEADER_SIZE; /* payload offset of ring index 64 */
    g_plan.forged_len = 24;
    pid_t d = spawn(child_writer, NULL);
    CHECK(wait_stopped(d, 5000));
    CHECK_EQ(kill(d, SIGKILL), 0);
    CHECK(wait_zombie(d));
    char frames[16];
    drain(r, 500 * MS, frames, sizeof frames);
    CHECK_STR(frames, ""); /* format 2 before confirmed ranges: "?" (the forged frame) */
    myc_stats st = stats_of(r);
    CHECK_EQ(st.frames_read, 0);
    CHECK_EQ(st.head, st.tail);
    CHECK_EQ(reap(a, 5000), 128 + SIGKILL);
    CHECK_EQ(reap(d, 5000), 128 + SIGKILL);
    myc_reader_close(r);
    myc_unlink(name);
}

/* Broadcast, no tethered reader: a writer stopped after writing its frame
 * header (claim in flight) is never lapped by other writers, or its late
 * payload would land in a newer frame that a lossy reader validates as
 * intact (the model found this: tests/model/broadcast.pml, BCAST_W2).  Once
 * it continues, or dies, writers go on. */
static void broadcast_writer_in_flight(int kill_it) {
    const char *name = fresh_name(kill_it ? "bc-inflight-kill" : "bc-inflight-cont");
    myc_writer *a = NULL;
    CHECK_EQ(myc_writer_open_ex(name, MYC_CREATE, 1024, 0, 0, NULL, 2, 0, &a), MYC_OK);
    if (a == NULL) return;
    pid_t child = spawn_writer(name, 2, 100, 'B', MYC_STEP_HEADER); /* claims [0, 128) */
    CHECK(wait_stopped(child, 5000));
    uint8_t p[100];
    memset(p, 'A', sizeof p);
    for (int i = 0; i < 7; i++) CHECK_EQ(myc_write(a, 1, p, sizeof p, 0), MYC_OK); /* [128, 1024) */
    myc_reader *lossy = NULL;
    CHECK_EQ(myc_reader_open_ex(name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, "l", MYC_POLICY_LOSSY, &lossy),
             MYC_OK);
    /* [1024, 1152) is B's ring bytes: refused while B's claim is in flight. */
    CHECK_EQ(myc_write(a, 1, p, sizeof p, 0), MYC_ERR_FULL);
    if (kill_it) {
        kill(child, SIGKILL);
        CHECK_EQ(reap(child, 5000), 128 + SIGKILL);
    } else {
        kill(child, SIGCONT);
        CHECK_EQ(reap(child, 5000), 0); /* its commit succeeded: not abandoned */
    }
    /* A death is noticed within MYC_ALIVE_CACHE_NS (writers cache liveness). */
    CHECK_EQ(myc_write(a, 1, p, sizeof p, 2000 * MS), MYC_OK);
    uint8_t buf[200];
    int64_t got = myc_read(lossy, 0, buf, sizeof buf);
    CHECK_EQ(READ_TYPE(got), 1);
    CHECK_EQ(READ_LEN(got), 100);
    CHECK(memcmp(buf, p, sizeof p) == 0); /* A's bytes, not B's */
    myc_cursor_info ci;
    CHECK_EQ(myc_reader_cursor(lossy, &ci), MYC_OK);
    CHECK_EQ(ci.lost, 0);
    myc_reader_close(lossy);
    myc_writer_close(a);
}

static void test_broadcast_claim_in_flight_is_not_lapped(void) { broadcast_writer_in_flight(0); }
static void test_broadcast_dead_claim_in_flight_is_lapped(void) { broadcast_writer_in_flight(1); }

int main(int argc, char **argv) {
#define STEP_CASES(mode)                                  \
    {#mode "_published", test_##mode##_published, NULL}, \
        {#mode "_claimed", test_##mode##_claimed, NULL},  \
        {#mode "_header", test_##mode##_header, NULL},    \
        {#mode "_filled", test_##mode##_filled, NULL},    \
        {#mode "_committed", test_##mode##_committed, NULL}
    static const test_case tests[] = {
        STEP_CASES(stop_then_continue),
        STEP_CASES(stop_then_kill),
        STEP_CASES(stop_then_revoke),
        {"batch_stopped_after_first_frame_continues", test_batch_stopped_after_first_frame_continues,
         NULL},
        {"batch_stopped_after_first_frame_killed", test_batch_stopped_after_first_frame_killed, NULL},
        {"revoked_lone_claim_clears_the_stall", test_revoked_lone_claim_clears_the_stall, NULL},
        {"batch_revoked_first_frame_holds_the_reader_until_it_runs",
         test_batch_revoked_first_frame_holds_the_reader_until_it_runs, NULL},
        {"dead_sleeping_writer_costs_no_wakes", test_dead_sleeping_writer_costs_no_wakes, NULL},
        {"second_revoke_keeps_first_hold", test_second_revoke_keeps_first_hold, NULL},
        {"phantom_range_does_not_split_a_dead_claim", test_phantom_range_does_not_split_a_dead_claim,
         NULL},
        {"broadcast_claim_in_flight_is_not_lapped", test_broadcast_claim_in_flight_is_not_lapped, NULL},
        {"broadcast_dead_claim_in_flight_is_lapped", test_broadcast_dead_claim_in_flight_is_lapped, NULL},
    };
    return run_tests("test_stall", tests, sizeof tests / sizeof tests[0], argc, argv, 60);
}
