/*
 * What the units of the core share: the handle structs, the validated copies
 * of a channel's immutable header fields, and the one frame walk that every
 * read path (the C API and Python's fast path) goes through.
 *
 * Rule for everything read from shared memory: read it once, validate the
 * copy, use only the copy.  Another process wrote it.
 */
#ifndef MYCELIUM_RING_INTERNAL_H
#define MYCELIUM_RING_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ring.h"
#include "myc_atomic.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mycelium-shm's format is little-endian; this target is not"
#endif

#define MYC_ALIGN16(x) (((x) + (uint64_t)(MYC_FRAME_ALIGNMENT - 1)) & ~(uint64_t)(MYC_FRAME_ALIGNMENT - 1))
#define MYC_DEFAULT_SPIN_NS 50000
#define MYC_DEFAULT_STUCK_NS 10000000LL
#define MYC_ATTACH_WAIT_NS 2000000000LL
#define NS_PER_S 1000000000LL
/* The longest a single futex sleep lasts before the sleeper looks again:
 * a wake lost to a process that died mid-protocol costs at most this. */
#define MYC_MAX_SLEEP_NS 100000000LL
#define MYC_ALIVE_CACHE_NS 10000000LL
/* A waiting reader or writer yields the CPU every this many spins, so a
 * process sharing its core gets to run (the one it may be waiting for). */
#define MYC_SPINS_PER_YIELD 256u

/* ------------------------------------------------------------------------ */
/* Test hooks: a test build (-DMYC_TEST_HOOKS) may stop a writer between any */
/* two steps of the write protocol (FORMAT.md section 4).                    */
/* ------------------------------------------------------------------------ */

enum myc_write_step {
    MYC_STEP_PUBLISHED = 1, /* claim range in the slot, TAIL not yet moved */
    MYC_STEP_CLAIMED = 2,   /* TAIL moved, no frame header yet */
    MYC_STEP_HEADER = 3,    /* header stamped CLAIMED, payload not copied */
    MYC_STEP_FILLED = 4,    /* payload copied, not committed */
    MYC_STEP_COMMITTED = 5, /* committed, reader not yet woken */
};
#ifdef MYC_TEST_HOOKS
extern void (*myc_test_hook)(int step, uint64_t position);
#define MYC_HOOK(step, position)                                  \
    do {                                                          \
        if (myc_test_hook != NULL) myc_test_hook(step, position); \
    } while (0)
#else
#define MYC_HOOK(step, position) ((void)0)
#endif

/* ------------------------------------------------------------------------ */
/* errors.c                                                                  */
/* ------------------------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) int myc_fail(int code, const char *fmt, ...);
__attribute__((format(printf, 2, 3))) int myc_fail_sys(int err, const char *fmt, ...);
void myc_set_batch_written(uint32_t written);
/* The result code of the last myc_fail on this thread. */
int myc_last_result(void);

/* ------------------------------------------------------------------------ */
/* proc.c: clocks, futexes, process identity                                 */
/* ------------------------------------------------------------------------ */

int64_t myc_now_ns(void);
uint64_t myc_realtime_ns(void);
/* Returns 0, or ETIMEDOUT / EAGAIN (word changed) / EINTR (signal). */
int myc_futex_wait(void *base, uint64_t off, uint32_t expected, int64_t timeout_ns);
/* Number of waiters woken. */
int myc_futex_wake_all(void *base, uint64_t off);
/* Bumped in the child of every fork (pthread_atfork): a handle remembers the
 * value it was opened under, so a forked child cannot write or read under
 * its parent's identity.  Relaxed: only this process's threads read it. */
extern uint64_t myc_g_fork_generation;
void myc_fork_guard_init(void);
/* This process's owner identity (MYC_OWNER of pid and start time). */
uint64_t myc_self_owner(void);
/* 1 if the identity names a live, non-zombie process. */
int myc_owner_alive(uint64_t owner);
/* Deadline for this call's own wait: the caller's, or the end of the slice. */
int64_t myc_slice_deadline(int64_t start, int64_t deadline);

/* ------------------------------------------------------------------------ */
/* map.c: names, creating and attaching, the validated header copy           */
/* ------------------------------------------------------------------------ */

typedef struct myc_map {
    uint8_t *base;        /* header; shared */
    uint8_t *ring;        /* base + MYC_HEADER_SIZE; shared */
    uint64_t capacity;    /* validated copies of immutable header fields */
    uint64_t mask;
    uint32_t max_payload;
    uint32_t readers;     /* cursor slots: 0 = single-reader channel */
    uint32_t untether_ms; /* broadcast: validated copy of UNTETHER_MS */
    size_t map_size;
    int fd;               /* the object, kept open to notice truncation; -1 none */
    int truncated;        /* myc_map_check_size found the file shrunk */
    char name[MYC_NAME_MAX + 1];
} myc_map;

/* `readers` / `untether_ms`: see myc_writer_open_ex. */
int myc_open_map(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                 uint32_t mode, const uint8_t *digest, uint32_t readers, uint32_t untether_ms,
                 myc_map *map);
/* For observers (inspection): the validated header copied once, with
 * pread, into map->base (no mapping: a file shrunk by another process can
 * never raise SIGBUS in a tool); map->ring is NULL.  Free it with
 * myc_close_header_snapshot. */
int myc_open_header_snapshot(const char *name, myc_map *map);
void myc_close_header_snapshot(myc_map *map);
void myc_close_map(myc_map *map);
/* MYC_ERR_CORRUPT (and map->truncated set) if the object's file is now
 * smaller than the mapping: a peer truncated it, and touching the missing
 * pages would raise SIGBUS.  One fstat: called on slow paths only (after a
 * sleep, before the ring is touched again). */
int myc_map_check_size(myc_map *map);

/* A call found the file truncated: the handle stays refused (every entry
 * point returns myc_map_check_size's error) and never touches the mapping
 * again, whose pages past the file's end would raise SIGBUS.  relaxed: a
 * handle-local flag that orders nothing (see myc_map_check_size). */
static inline int myc_map_is_truncated(const myc_map *map) {
    return __atomic_load_n(&map->truncated, __ATOMIC_RELAXED);
}

/* Positions loaded from shared memory: aligned, ordered, within a lap. */
static inline int myc_positions_ok(const myc_map *m, uint64_t head, uint64_t tail) {
    return tail >= head && tail - head <= m->capacity &&
           (head % MYC_FRAME_ALIGNMENT) == 0 && (tail % MYC_FRAME_ALIGNMENT) == 0;
}

/* A stamp that says the frame at `position` is finished: committed,
 * padding or revoked (the states a reader acts on).  Never-written memory
 * (state 0) and a stamp of any other position are not. */
static inline int myc_stamp_final(uint64_t stamp, uint64_t position) {
    uint64_t state = stamp & MYC_STAMP_STATE_MASK;
    return (stamp & ~MYC_STAMP_STATE_MASK) == position && state >= MYC_STAMP_COMMITTED &&
           state <= MYC_STAMP_REVOKED;
}

/* ------------------------------------------------------------------------ */
/* registry.c: writer slots and reader ownership                             */
/* ------------------------------------------------------------------------ */

static inline uint64_t myc_slot_off(uint32_t slot) {
    return MYC_OFF_WRITER_TABLE + (uint64_t)slot * MYC_WRITER_SLOT_SIZE;
}
/* Take a free slot, or a dead owner's whose claim lies behind HEAD. */
int myc_registry_take(myc_map *m);
/* Fold the slot's counters into the totals and free it. */
void myc_registry_release(myc_map *m, int slot);
int myc_reader_take(myc_map *m, int *took_over);
void myc_reader_give_back(myc_map *m);

/* ------------------------------------------------------------------------ */
/* writer.c                                                                  */
/* ------------------------------------------------------------------------ */

/* One registry slot per thread that writes through a handle: a slot holds
 * at most one claim in flight, and only its thread writes its counters. */
typedef struct myc_thread_slot {
    uint64_t thread;      /* pthread_self() of the thread, 0 = unused entry */
    int slot;             /* registry slot */
    int reserved_open;    /* a myc_reserve not yet committed or aborted */
    uint64_t frames, bytes, full, timeouts; /* owner-only counters, mirrored */
} myc_thread_slot;

struct myc_writer {
    myc_map map;
    uint64_t head_cache;  /* min(HEAD, HOLD) last seen; atomic (threads) */
    uint64_t generation;  /* unique per handle, for the thread-local cache */
    uint64_t fork_generation; /* *fork_counter at open */
    /* The fork counter of the copy of the core that opened the handle
     * (Python's fast path carries a second copy of the core). */
    const uint64_t *fork_counter;
    int64_t spin_ns;
    pthread_mutex_t lock; /* guards threads[] and the fields below (slow paths) */
    /* Broadcast: the tethered cursor that last held writers back, since
     * when (monotonic ns); what the untether window is measured on. */
    int blocked_slot;         /* -1: none (or a writer's claim, below) */
    int32_t blocked_writer;   /* pid of a live writer whose unfinished claim holds us, 0 = none */
    uint64_t blocked_position;
    int64_t blocked_since;
    /* Liveness seen (it reads /proc) of writer slots' and cursors' owners:
     * a writer short of room asks on every try, so answers are kept for
     * MYC_ALIVE_CACHE_NS (a death is noticed that much later). */
    struct {
        uint64_t owner;
        int64_t checked;
        int alive;
    } alive_cache[MYC_WRITER_SLOTS + MYC_READER_SLOTS];
    uint32_t thread_count;
    myc_thread_slot threads[MYC_WRITER_SLOTS];
};

/* The calling thread's slot on this handle (NULL + error if none left). */
myc_thread_slot *myc_writer_thread_slot(myc_writer *w);

/* A write in planning: frames laid out from `tail`, padding included. */
typedef struct claim_plan {
    uint32_t count;          /* frames wanted */
    const uint32_t *lens;    /* payload lengths (NULL: single frame of len0) */
    uint32_t len0;
    /* out */
    uint32_t planned;        /* frames that fit */
    uint64_t tail;           /* position claimed from */
    uint64_t required;       /* bytes claimed, padding included */
    uint64_t seq;            /* broadcast: index of the first frame */
} claim_plan;

static inline uint64_t myc_plan_frame_bytes(const claim_plan *p, uint32_t i) {
    return MYC_ALIGN16(MYC_FRAME_HEADER_SIZE + (uint64_t)(p->lens ? p->lens[i] : p->len0));
}

int myc_try_claim(myc_writer *w, myc_thread_slot *ts, claim_plan *p, int fresh_head);
int myc_check_frame_args(const myc_map *m, uint32_t type_id, uint32_t payload_len);
/* Write padding at `pos` if the frame of `frame_bytes` would straddle the
 * ring's end; returns the frame's position. */
uint64_t myc_place_padding(myc_map *m, uint64_t pos, uint64_t frame_bytes);
uint8_t *myc_begin_frame(myc_map *m, uint64_t pos, uint32_t type_id, uint32_t payload_len);
int myc_commit_frame(myc_map *m, uint64_t pos);
/* Write and commit frame i of claim p at pos (after its padding): frame 0
 * revocably (CLAIMED, commit CAS: MYC_OK or MYC_ERR_ABANDONED), later ones
 * with a store, the last of them seq_cst (FORMAT.md 4.2). */
int myc_put_frame(myc_map *m, const claim_plan *p, uint32_t i, uint64_t pos, uint32_t type_id,
                  const void *payload, uint32_t payload_len);
void myc_wake_reader_if_sleeping(myc_map *m);
/* Everything after a successful claim of a single frame. */
int myc_write_claimed(myc_writer *w, myc_thread_slot *ts, const claim_plan *p,
                      uint32_t type_id, const void *payload, uint32_t payload_len);
/* Frames [first, planned) of a claim will never be written: make them padding. */
void myc_pad_rest(myc_map *m, const claim_plan *p, uint64_t pos, uint32_t first);
void myc_count_written(myc_map *m, myc_thread_slot *ts, uint64_t frames, uint64_t bytes);
void myc_count_full(myc_map *m, myc_thread_slot *ts);

/* ------------------------------------------------------------------------ */
/* reader.c                                                                  */
/* ------------------------------------------------------------------------ */

struct myc_reader {
    myc_map map;
    uint64_t head;            /* our position; published to HEAD on consume */
    uint64_t tail_cache;      /* last TAIL seen */
    uint64_t held_bytes;      /* bytes of the frame handed out by myc_peek */
    uint32_t held_payload;    /* its payload length (validated copy) */
    uint16_t held_type;       /* its type id (copy) */
    uint64_t frames_read, bytes_read, padding_frames, unblocks, sleeps, wakes;
    uint64_t stuck_position;  /* position first seen stuck */
    int64_t stuck_since;      /* when (monotonic ns); 0 = not stuck */
    int64_t stuck_checked;    /* last liveness check of the claim's owners */
    int64_t waiters_checked;  /* last liveness check of waiting writers */
    int64_t stuck_timeout_ns;
    int64_t spin_ns;
    int stalled;              /* STALL_PID published for stuck_position */
    uint64_t fork_generation; /* *fork_counter at open */
    const uint64_t *fork_counter; /* see struct myc_writer */
    int busy;                 /* handle-local: one thread at a time */
    /* Broadcast channels only (cursor_slot >= 0). */
    int cursor_slot;          /* our slot in the cursor table, -1 = single reader */
    uint32_t policy;          /* MYC_POLICY_* | MYC_CURSOR_DURABLE */
    uint64_t index;           /* frame index at head (frames before it) */
    int index_known;          /* 0 after a skip whose frame count is unknown */
    int resyncing;            /* lapped: count the loss at the next lap start */
    uint64_t safe_from;       /* tethered: frames from here on cannot be lapped */
    uint64_t lost, laps;      /* mirrored in the slot */
    uint64_t held_position;   /* position of the frame myc_peek handed out */
    int64_t sleepers_checked; /* last liveness check of sleeping readers */
    uint64_t woke_at;         /* position when it last woke waiting writers */
};

/* A frame found by the walk: validated copies of its header. */
typedef struct myc_found {
    uint8_t *hdr;             /* ring address of the header */
    uint64_t position;        /* its position */
    uint64_t bytes;           /* bytes the frame occupies (aligned) */
    uint32_t payload_len;
    uint16_t type_id;
    uint16_t flags;
} myc_found;

enum { MYC_NEXT_FRAME = 1, MYC_NEXT_NONE = 2, MYC_NEXT_PENDING = 3 };

/*
 * The frame walk: find the next data frame at r->head, skipping (consuming)
 * padding, revoked frames and dead writers' claims.  `now` = 0 means "do
 * not run the stuck clock" (a non-blocking look).  Returns MYC_NEXT_* or a
 * negative myc_result.
 */
int myc_next_frame(myc_reader *r, int64_t now, myc_found *f);
/* Consume and count the frame the walk returned (no byte of the ring is
 * written); myc_reader_publish then makes it (and any before it) known. */
void myc_reader_consume(myc_reader *r, const myc_found *f);
void myc_reader_publish(myc_reader *r);
/* Broadcast: 1 if the frame the walk returned (and the caller copied) is
 * intact; else the reader was lapped, has resynchronised, and the copy
 * must be dropped.  Always 1 on a single-reader channel. */
int myc_found_intact(myc_reader *r, const myc_found *f);
/* Publish r->head (and wake writers waiting for room). */
void myc_publish_head(myc_reader *r);
void myc_publish_counters(myc_reader *r);

/* ------------------------------------------------------------------------ */
/* cursor.c: broadcast channels (FORMAT.md 14)                               */
/* ------------------------------------------------------------------------ */

static inline uint64_t myc_cursor_off(uint32_t slot) {
    return MYC_OFF_READER_TABLE + (uint64_t)slot * MYC_CURSOR_SLOT_SIZE;
}
/* Take a cursor for a new reader (the reader's map is open). */
int myc_cursor_attach(myc_reader *r, const char *cursor, uint32_t policy, int start_oldest);
/* Leave the cursor: an anonymous one is freed, a durable one detached. */
void myc_cursor_detach(myc_reader *r);
/* Publish the reader's position (and index) and wake writers waiting for room. */
void myc_cursor_publish(myc_reader *r);
void myc_cursor_publish_counters(myc_reader *r);
/* After copying the frame at `position`: 1 if no writer can have overwritten
 * it (always, for a tethered reader past safe_from). */
int myc_cursor_intact(myc_reader *r, uint64_t position);
/* The reader was lapped: resume at the oldest lap start writers keep. */
void myc_cursor_resync(myc_reader *r);
/* The walk reached a final frame at a lap start: sync the frame index. */
void myc_cursor_lap_start(myc_reader *r, uint64_t position);
/* The reader is caught up: wake writers it owes a wake (see
 * myc_cursor_publish); if writers untethered it, tether it again. */
void myc_cursor_idle(myc_reader *r);
/* Sleep announcement of a broadcast reader (bit of its slot). */
void myc_cursor_sleep_flag(myc_reader *r, int sleeping);
/* Writers: the lowest position they must not lap (the slowest tethered
 * reader, or `tail` if none), untethering a reader that died or held them
 * back longer than the window.  Called when the cached limit is short. */
uint64_t myc_cursor_limit(myc_writer *w, uint64_t tail, int short_of_room);
/* Writers: after claiming, note the frame index of a frame that starts a lap. */
void myc_cursor_note_laps(myc_map *m, const claim_plan *p);
/* Writers: after a commit, wake the readers that sleep. */
void myc_cursor_wake_readers(myc_map *m);
/* Writers of a broadcast channel: every frame of the slot's claim, which
 * ends at `end`, is committed (or padded): empty the range. */
void myc_claim_finished(myc_map *m, int slot, uint64_t end);
/* The registry may recycle a dead writer's slot whose claim ends at `end`. */
int myc_cursor_claim_passed(myc_map *m, uint64_t end);

#endif /* MYCELIUM_RING_INTERNAL_H */
