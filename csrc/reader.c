/*
 * The reader: one per channel.  It walks frames by their stamps, copies or
 * lends them, and publishes its position; it never writes the ring.
 *
 * A claim that stays uncommitted holds the reader.  After the stuck timeout
 * the reader looks at the writer slots whose published claim covers its
 * position: a live owner is waited for (and shown as a stall); if every
 * owner is dead, the reader skips to the end of the claim.
 */
#include "ring_internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

int myc_reader_open(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                    uint32_t mode, const uint8_t *schema_digest, myc_reader **out) {
    return myc_reader_open_ex(name, flags, capacity, max_payload, mode, schema_digest, 0, 0, NULL, 0, out);
}

static void reader_defaults(myc_reader *r) {
    r->stuck_timeout_ns = MYC_DEFAULT_STUCK_NS;
    r->spin_ns = MYC_DEFAULT_SPIN_NS;
    myc_fork_guard_init();
    r->fork_counter = &myc_g_fork_generation;
    r->fork_generation = __atomic_load_n(r->fork_counter, __ATOMIC_RELAXED);
}

int myc_reader_open_ex(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                       uint32_t mode, const uint8_t *schema_digest, uint32_t readers,
                       uint32_t untether_ms, const char *cursor, uint32_t policy, myc_reader **out) {
    if (out == NULL) return myc_fail(MYC_ERR_ARG, "out must not be NULL");
    *out = NULL;
    int start_oldest = (flags & MYC_START_OLDEST) != 0;
    flags &= ~MYC_START_OLDEST;
    myc_reader *r = calloc(1, sizeof *r);
    if (r == NULL) return myc_fail_sys(ENOMEM, "cannot allocate a reader");
    r->cursor_slot = -1;
    int rc = myc_open_map(name, flags, capacity, max_payload, mode, schema_digest, readers, untether_ms,
                          &r->map);
    if (rc != MYC_OK) {
        free(r);
        return rc;
    }
    myc_map *m = &r->map;
    if (m->readers != 0) {
        reader_defaults(r);
        rc = myc_cursor_attach(r, cursor, policy, start_oldest);
        if (rc != MYC_OK) {
            myc_close_map(m);
            free(r);
            return rc;
        }
        *out = r;
        return MYC_OK;
    }
    if (cursor != NULL || (policy != 0 && policy != MYC_POLICY_TETHERED) || start_oldest) {
        rc = myc_fail(MYC_ERR_ARG,
                      "channel '%s' is a single-reader channel: cursors, policies and start "
                      "positions belong to broadcast channels (create it with readers=N)",
                      name);
        myc_close_map(m);
        free(r);
        return rc;
    }
    int took_over = 0;
    rc = myc_reader_take(m, &took_over);
    if (rc == MYC_OK) {
        /* acquire: pairs with the previous reader's seq_cst HEAD store. */
        r->head = myc_load_acquire_u64(m->base, MYC_OFF_HEAD);
        r->tail_cache = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
        if (!myc_positions_ok(m, r->head, r->tail_cache)) {
            rc = myc_fail(MYC_ERR_CORRUPT,
                          "channel '%s' positions are inconsistent (head %llu, tail %llu, capacity %llu)",
                          name, (unsigned long long)r->head, (unsigned long long)r->tail_cache,
                          (unsigned long long)m->capacity);
            myc_reader_give_back(m);
        }
    }
    if (rc != MYC_OK) {
        myc_close_map(m);
        free(r);
        return rc;
    }
    /* seq_cst: a dead reader's sleep flag would cost every write a wake. */
    myc_store_seq_cst_u32(m->base, MYC_OFF_READER_SLEEPING, 0);
    /* relaxed: only this reader writes its counters; continue the totals. */
    r->frames_read = myc_load_relaxed_u64(m->base, MYC_OFF_FRAMES_READ);
    r->bytes_read = myc_load_relaxed_u64(m->base, MYC_OFF_BYTES_READ);
    r->padding_frames = myc_load_relaxed_u64(m->base, MYC_OFF_PADDING_FRAMES);
    r->unblocks = myc_load_relaxed_u64(m->base, MYC_OFF_UNBLOCKS);
    r->sleeps = myc_load_relaxed_u64(m->base, MYC_OFF_READER_SLEEPS);
    r->wakes = myc_load_relaxed_u64(m->base, MYC_OFF_READER_WAKES);
    if (took_over) myc_add_relaxed_u64(m->base, MYC_OFF_TAKEOVERS, 1);
    reader_defaults(r);
    *out = r;
    return MYC_OK;
}

void myc_reader_set_stuck_timeout(myc_reader *r, int64_t timeout_ns) {
    if (r != NULL) r->stuck_timeout_ns = timeout_ns < 0 ? 0 : timeout_ns;
}
void myc_reader_set_spin(myc_reader *r, int64_t spin_ns) {
    if (r != NULL) r->spin_ns = spin_ns < 0 ? 0 : spin_ns;
}

/* ------------------------------------------------------------------------ */
/* Publishing                                                                */
/* ------------------------------------------------------------------------ */

/* Writers whose waiting bit is set but who sleep no more (dead): clear
 * their bits, so reads stop paying a wake syscall.  Rate-limited: it reads
 * /proc. */
static void clear_dead_waiters(myc_reader *r, uint32_t mask) {
    myc_map *m = &r->map;
    int64_t now = myc_now_ns();
    if (r->waiters_checked != 0 && now - r->waiters_checked < MYC_DEFAULT_STUCK_NS) return;
    r->waiters_checked = now;
    for (uint32_t i = 0; i < MYC_WRITER_SLOTS; i++) {
        if (!(mask & (1u << i))) continue;
        uint64_t owner = myc_load_acquire_u64(m->base, myc_slot_off(i) + MYC_SLOT_OFF_OWNER);
        if (owner != 0 && myc_owner_alive(owner)) continue;
        /* seq_cst: as every access to the mask. */
        __atomic_fetch_and(MYC_AT(m->base, MYC_OFF_WAITING_MASK, uint32_t), ~(1u << i),
                           __ATOMIC_SEQ_CST);
    }
}

void myc_publish_head(myc_reader *r) {
    if (r->cursor_slot >= 0) {
        myc_cursor_publish(r);
        return;
    }
    myc_map *m = &r->map;
    /* seq_cst store (release at least): writers that load HEAD know we are
     * done with the bytes before it; seq_cst orders the WAITING_MASK load
     * after it (Dekker with claim_wait). */
    myc_store_seq_cst_u64(m->base, MYC_OFF_HEAD, r->head);
    uint32_t mask = myc_load_seq_cst_u32(m->base, MYC_OFF_WAITING_MASK);
    if (mask == 0) return;
    /* release: writers' futex_wait compares this word. */
    myc_add_release_u32(m->base, MYC_OFF_SPACE_FUTEX, 1);
    int woken = myc_futex_wake_all(m->base, MYC_OFF_SPACE_FUTEX);
    /* relaxed: statistics, written only by this reader. */
    myc_store_relaxed_u64(m->base, MYC_OFF_READER_WAKES, ++r->wakes);
    if (woken == 0) clear_dead_waiters(r, mask);
}

void myc_publish_counters(myc_reader *r) {
    if (r->cursor_slot >= 0) {
        myc_cursor_publish_counters(r);
        return;
    }
    myc_map *m = &r->map;
    /* relaxed: statistics, written only by this reader. */
    myc_store_relaxed_u64(m->base, MYC_OFF_FRAMES_READ, r->frames_read);
    myc_store_relaxed_u64(m->base, MYC_OFF_BYTES_READ, r->bytes_read);
}

static void clear_stall(myc_reader *r) {
    r->stuck_since = 0;
    r->stuck_checked = 0;
    if (!r->stalled) return;
    r->stalled = 0;
    /* relaxed: informational words for tools. */
    myc_store_relaxed_i32(r->map.base, MYC_OFF_STALL_PID, 0);
    myc_store_relaxed_u64(r->map.base, MYC_OFF_STALL_SINCE, 0);
}

void myc_reader_consume(myc_reader *r, const myc_found *f) {
    r->head += f->bytes;
    r->index++;
    r->frames_read++;
    r->bytes_read += f->payload_len;
}

void myc_reader_publish(myc_reader *r) {
    myc_publish_counters(r);
    myc_publish_head(r);
}

/* ------------------------------------------------------------------------ */
/* The frame walk                                                            */
/* ------------------------------------------------------------------------ */

static int positions_error(myc_reader *r) {
    return myc_fail(MYC_ERR_CORRUPT, "channel '%s' positions are inconsistent (head %llu, tail %llu)",
                    r->map.name, (unsigned long long)r->head, (unsigned long long)r->tail_cache);
}

enum { TAIL_LAPPED = 1 };

/* Load TAIL into tail_cache and check it against our head.  A broadcast
 * reader more than a lap behind was lapped: TAIL_LAPPED. */
static int refresh_tail(myc_reader *r) {
    /* acquire: a claim's slot words (published before the claiming CAS)
     * are visible once we see TAIL past it. */
    r->tail_cache = myc_load_acquire_u64(r->map.base, MYC_OFF_TAIL);
    if (myc_positions_ok(&r->map, r->head, r->tail_cache)) return MYC_OK;
    if (r->cursor_slot >= 0 && r->tail_cache > r->head && (r->tail_cache % MYC_FRAME_ALIGNMENT) == 0 &&
        (r->head % MYC_FRAME_ALIGNMENT) == 0)
        return TAIL_LAPPED;
    return positions_error(r);
}

/* Broadcast: did writers lap the reader at `pos`?  (Then the bytes there
 * may be a later lap's: a header, a payload, anything.) */
static int lapped_at(myc_reader *r, uint64_t pos) {
    if (r->cursor_slot < 0) return 0;
    /* acquire: pairs with the claiming CAS. */
    uint64_t tail = myc_load_acquire_u64(r->map.base, MYC_OFF_TAIL);
    /* Written without pos + capacity, which wraps for a hostile position
     * near 2^64: then "lapped" held while myc_cursor_resync found no lap
     * start past pos, and the walk looped on the same frame for ever
     * (found by tests/fuzz, mode 6).  As written, lapped implies
     * tail - capacity > pos, so the resync always moves forward. */
    return tail > pos && tail - pos > r->map.capacity;
}

int myc_found_intact(myc_reader *r, const myc_found *f) {
    if (r->cursor_slot < 0 || myc_cursor_intact(r, f->position)) return 1;
    myc_cursor_resync(r);
    return 0;
}

enum { STUCK_WAIT = 0, STUCK_SKIPPED = 1, STUCK_RECHECK = 2 };

/*
 * The claim at r->head has been pending past the stuck timeout: find whose
 * it is and whether it must be waited for or skipped.  Exactly one
 * confirmed range covers a claimed position: its owner's.  Intended
 * (PENDING) ranges are either that owner's between its CAS and its
 * confirmation, or ranges whose CAS failed or never happened.  So:
 *   a live confirmed owner            -> wait;
 *   a dead confirmed owner            -> skip to its end (exact);
 *   a live intended range             -> wait (it may be the owner);
 *   only dead intended ranges         -> skip to the smallest end (the
 *                                        owner died within its CAS window).
 */
static int resolve_stuck(myc_reader *r, const uint8_t *hdr) {
    myc_map *m = &r->map;
    uint64_t pos = r->head, confirmed_end = UINT64_MAX, intended_end = UINT64_MAX;
    /* Judge the claim against TAIL as it is now, not as cached: a cached
     * value may be one since corrected (a glitched or hostile store that
     * passed the position checks), and a position at TAIL is no claim. */
    int rc = refresh_tail(r);
    if (rc == TAIL_LAPPED) return STUCK_RECHECK; /* the walk resynchronises */
    if (rc != MYC_OK) return rc;
    if (pos == r->tail_cache) return STUCK_RECHECK; /* the walk finds nothing */
    int covered = 0;
    int32_t live_confirmed = 0, live_intended = 0;
    for (uint32_t i = 0; i < MYC_WRITER_SLOTS && live_confirmed == 0; i++) {
        uint64_t off = myc_slot_off(i);
        /* acquire (both words): pairs with the writer's release stores;
         * whichever of its stores we see, its earlier commits are visible
         * to the stamp re-check below. */
        uint64_t raw_start = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_CLAIM_START);
        uint64_t end = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_CLAIM_END);
        uint64_t start = raw_start & ~MYC_CLAIM_PENDING;
        int intended = (raw_start & MYC_CLAIM_PENDING) != 0;
        if (start > pos || end <= pos || end - pos > m->capacity) continue;
        covered = 1;
        uint64_t owner = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_OWNER);
        int alive = owner != 0 && myc_owner_alive(owner);
        if (alive && !intended) live_confirmed = MYC_OWNER_PID(owner);
        else if (alive) live_intended = MYC_OWNER_PID(owner);
        else if (!intended && end < confirmed_end) confirmed_end = end;
        else if (intended && end < intended_end) intended_end = end;
    }
    int32_t live_pid = live_confirmed != 0 ? live_confirmed
                       : confirmed_end == UINT64_MAX ? live_intended
                                                      : 0;
    uint64_t min_end = confirmed_end != UINT64_MAX ? confirmed_end : intended_end;
    if (live_pid != 0) {
        if (!r->stalled) {
            r->stalled = 1;
            /* relaxed: informational words for tools. */
            myc_store_relaxed_i32(m->base, MYC_OFF_STALL_PID, live_pid);
            myc_store_relaxed_u64(m->base, MYC_OFF_STALL_SINCE, myc_realtime_ns());
        }
        return STUCK_WAIT;
    }
    /* acquire: a commit made before the writer died (or before it moved on
     * to a claim that no longer covers us) wins over the skip. */
    uint64_t stamp = myc_load_acquire_u64(hdr, MYC_FRAME_OFF_STAMP);
    if (myc_stamp_final(stamp, pos)) return STUCK_RECHECK;
    if (!covered && r->cursor_slot >= 0) {
        /* Broadcast: a dead writer's slot may be recycled once every reader
         * then attached was past its claim; a reader that started behind it
         * later cannot know its end.  It waits until writers lap it (they
         * untether it if it is tethered) and resumes at a lap start. */
        if (!lapped_at(r, pos)) return STUCK_WAIT;
        myc_cursor_resync(r);
        return STUCK_SKIPPED;
    }
    if (!covered) {
        /* Every claim is published before it is made; a claim nobody
         * published was written by something that is not a writer. */
        return myc_fail(MYC_ERR_CORRUPT,
                        "channel '%s': position %llu is claimed (tail %llu) but no writer slot "
                        "covers it",
                        m->name, (unsigned long long)pos, (unsigned long long)r->tail_cache);
    }
    rc = refresh_tail(r); /* again: TAIL covers every claim confirmed by now */
    if (rc == TAIL_LAPPED) return STUCK_RECHECK; /* the walk resynchronises */
    if (rc != MYC_OK) return rc;
    if (min_end > r->tail_cache || (min_end % MYC_FRAME_ALIGNMENT) != 0)
        return myc_fail(MYC_ERR_CORRUPT, "channel '%s': a dead writer's claim at %llu ends at %llu, past the tail %llu",
                        m->name, (unsigned long long)pos, (unsigned long long)min_end,
                        (unsigned long long)r->tail_cache);
    r->head = min_end;
    r->index_known = 0; /* how many frames the claim held is unknown */
    r->unblocks++;
    /* relaxed: statistics, written only by this reader. */
    myc_store_relaxed_u64(m->base, MYC_OFF_UNBLOCKS, r->unblocks);
    clear_stall(r);
    myc_publish_head(r);
    return STUCK_SKIPPED;
}

int myc_next_frame(myc_reader *r, int64_t now, myc_found *f) {
    myc_map *m = &r->map;
    int broadcast = r->cursor_slot >= 0;
    for (;;) {
        uint64_t pos = r->head;
        uint64_t idx = pos & m->mask;
        uint64_t to_end = m->capacity - idx;
        uint8_t *hdr = m->ring + idx;
        /* acquire: pairs with the writer's commit CAS (or padding's release
         * store), so the header and payload written before are visible. */
        uint64_t stamp = myc_load_acquire_u64(hdr, MYC_FRAME_OFF_STAMP);
        uint32_t state = (uint32_t)(stamp & MYC_STAMP_STATE_MASK);
        if (myc_stamp_final(stamp, pos)) {
            /* One read of each header field; only these copies are used.
             * relaxed: the acquire load of the stamp above ordered them. */
            uint32_t frame_len = myc_load_relaxed_u32(hdr, MYC_FRAME_OFF_LEN);
            uint16_t type_id = __atomic_load_n(MYC_AT(hdr, MYC_FRAME_OFF_TYPE, uint16_t), __ATOMIC_RELAXED);
            uint16_t flags = __atomic_load_n(MYC_AT(hdr, MYC_FRAME_OFF_FLAGS, uint16_t), __ATOMIC_RELAXED);
            uint64_t bytes = MYC_ALIGN16((uint64_t)frame_len);
            int bad_len = frame_len < MYC_FRAME_HEADER_SIZE || bytes > to_end;
            int data = state == MYC_STAMP_COMMITTED && type_id != MYC_TYPE_PADDING;
            int too_big = !bad_len && data && frame_len - MYC_FRAME_HEADER_SIZE > m->max_payload;
            /* Broadcast: a header that is not what it seems was overwritten
             * by a later lap (a lossy reader's normal life). */
            if (broadcast && (bad_len || too_big) && lapped_at(r, pos)) {
                myc_cursor_resync(r);
                continue;
            }
            if (bad_len)
                return myc_fail(MYC_ERR_CORRUPT,
                                "channel '%s': frame at position %llu has length %u (ring offset %llu, %llu bytes to the end)",
                                m->name, (unsigned long long)pos, frame_len, (unsigned long long)idx,
                                (unsigned long long)to_end);
            if (pos + bytes > r->tail_cache) {
                int rc = refresh_tail(r);
                if (rc == TAIL_LAPPED || (broadcast && rc == MYC_OK && pos + bytes > r->tail_cache &&
                                          lapped_at(r, pos))) {
                    myc_cursor_resync(r);
                    continue;
                }
                if (rc != MYC_OK) return rc;
                if (pos + bytes > r->tail_cache)
                    return myc_fail(MYC_ERR_CORRUPT,
                                    "channel '%s': frame at position %llu (%llu bytes) runs past the tail %llu",
                                    m->name, (unsigned long long)pos, (unsigned long long)bytes,
                                    (unsigned long long)r->tail_cache);
            }
            if (!data) {
                if (broadcast) {
                    /* Skip only what was really there when we looked. */
                    if (!myc_cursor_intact(r, pos)) {
                        myc_cursor_resync(r);
                        continue;
                    }
                    if (idx == 0) myc_cursor_lap_start(r, pos);
                    /* A revoked or aborted frame was counted at its claim;
                     * padding at the ring's end was not. */
                    if (state != MYC_STAMP_PADDING) r->index++;
                }
                r->head += bytes;
                /* Past the position it waited at: that stall is over (a
                 * revoked claim, skipped, may be all that held it). */
                if (r->stuck_since != 0) clear_stall(r);
                r->padding_frames++;
                /* relaxed: statistics, written only by this reader. */
                myc_store_relaxed_u64(m->base, MYC_OFF_PADDING_FRAMES, r->padding_frames);
                myc_publish_head(r);
                continue;
            }
            if (too_big)
                return myc_fail(MYC_ERR_CORRUPT,
                                "channel '%s': frame at position %llu carries %u bytes, the maximum is %u",
                                m->name, (unsigned long long)pos, frame_len - MYC_FRAME_HEADER_SIZE,
                                m->max_payload);
            if (broadcast && idx == 0) myc_cursor_lap_start(r, pos);
            if (r->stuck_since != 0) clear_stall(r);
            f->hdr = hdr;
            f->position = pos;
            f->bytes = bytes;
            f->payload_len = frame_len - MYC_FRAME_HEADER_SIZE;
            f->type_id = type_id;
            f->flags = flags;
            return MYC_NEXT_FRAME;
        }
        if (pos == r->tail_cache) {
            int rc = refresh_tail(r);
            if (rc == TAIL_LAPPED) {
                myc_cursor_resync(r);
                continue;
            }
            if (rc != MYC_OK) return rc;
            if (pos == r->tail_cache) {
                if (broadcast) myc_cursor_idle(r); /* caught up */
                return MYC_NEXT_NONE;
            }
            continue; /* a claim appeared: look at its stamp again */
        }
        /* pos < tail: a writer claimed this frame and has not committed, or
         * (broadcast) writers lapped us and the bytes are a later lap's. */
        if (broadcast && stamp != (pos | MYC_STAMP_CLAIMED) && lapped_at(r, pos)) {
            myc_cursor_resync(r);
            continue;
        }
        if (now == 0) return MYC_NEXT_PENDING;
        if (r->stuck_since == 0 || r->stuck_position != pos) {
            clear_stall(r);
            r->stuck_position = pos;
            r->stuck_since = now;
            return MYC_NEXT_PENDING;
        }
        if (now - r->stuck_since < r->stuck_timeout_ns) return MYC_NEXT_PENDING;
        if (r->stuck_checked != 0 && now - r->stuck_checked < r->stuck_timeout_ns)
            return MYC_NEXT_PENDING;
        r->stuck_checked = now;
        int rc = resolve_stuck(r, hdr);
        if (rc < 0) return rc;
        if (rc == STUCK_WAIT) return MYC_NEXT_PENDING;
        /* skipped, or committed meanwhile: walk on */
    }
}

/* The reader no longer sleeps: clear its flag (seq_cst, as its arming). */
static void reader_unarm(myc_reader *r) {
    if (r->cursor_slot >= 0)
        myc_cursor_sleep_flag(r, 0);
    else
        myc_store_seq_cst_u32(r->map.base, MYC_OFF_READER_SLEEPING, 0);
}

/* Wait up to timeout_ns for a data frame.  MYC_OK, MYC_ERR_EMPTY or error. */
static int wait_frame(myc_reader *r, int64_t timeout_ns, myc_found *f) {
    myc_map *m = &r->map;
    int rc = myc_next_frame(r, 0, f);
    if (rc == MYC_NEXT_FRAME) return MYC_OK;
    if (rc < 0) return rc;
    int64_t start = myc_now_ns();
    int64_t deadline = timeout_ns < 0 ? INT64_MAX : start + timeout_ns;
    int64_t until = myc_slice_deadline(start, deadline);
    if (rc == MYC_NEXT_PENDING) { /* run the stuck clock */
        rc = myc_next_frame(r, start, f);
        if (rc == MYC_NEXT_FRAME) return MYC_OK;
        if (rc < 0) return rc;
    }
    if (timeout_ns == 0) return MYC_ERR_EMPTY;
    for (uint32_t spins = 1;; spins++) {
        myc_cpu_relax();
        if (spins % MYC_SPINS_PER_YIELD == 0) sched_yield(); /* a writer may share our core */
        int64_t now = (spins & 63) == 0 ? myc_now_ns() : 0;
        rc = myc_next_frame(r, now, f);
        if (rc == MYC_NEXT_FRAME) return MYC_OK;
        if (rc < 0) return rc;
        if (now != 0 && (now - start >= r->spin_ns || now >= until)) break;
    }
    for (;;) {
        /* seq_cst: announce the sleep before the last look; a writer commits
         * (seq_cst CAS) then loads READER_SLEEPING (seq_cst), so either we
         * see its frame or it sees us and wakes us.  The value is new on
         * every sleep, so a writer that clears a flag it believes stale
         * (nobody woke) cannot clear this one. */
        uint32_t armed = ((uint32_t)r->sleeps << 1) | 1u;
        if (r->cursor_slot >= 0) /* broadcast: one bit per cursor */
            myc_cursor_sleep_flag(r, 1);
        else
            myc_store_seq_cst_u32(m->base, MYC_OFF_READER_SLEEPING, armed);
        uint32_t seq = myc_load_seq_cst_u32(m->base, MYC_OFF_READER_FUTEX);
        /* The last look, seq_cst as the flag store before it: the stamp a
         * writer commits (seq_cst CAS) before it loads READER_SLEEPING
         * (seq_cst).  In the single total order either this load follows
         * the commit and sees it, or the writer's load follows our store
         * and it wakes us: no store-buffering, which acquire alone would
         * allow.  The walk below then reads the same word again. */
        (void)myc_load_seq_cst_u64(m->ring + (r->head & m->mask), MYC_FRAME_OFF_STAMP);
        int64_t now = myc_now_ns();
        rc = myc_next_frame(r, now, f);
        if (rc == MYC_NEXT_FRAME || rc < 0 || now >= until) {
            reader_unarm(r);
            if (rc == MYC_NEXT_FRAME) return MYC_OK;
            if (rc < 0) return rc;
            if (now < deadline) return myc_fail(MYC_ERR_INTERRUPTED, "wait slice over; call again");
            return MYC_ERR_EMPTY;
        }
        int64_t wait = until == INT64_MAX ? MYC_MAX_SLEEP_NS : until - now;
        if (wait > MYC_MAX_SLEEP_NS) wait = MYC_MAX_SLEEP_NS;
        if (rc == MYC_NEXT_PENDING) { /* wake up in time to look at the claim */
            int64_t due = (r->stuck_checked ? r->stuck_checked : r->stuck_since) + r->stuck_timeout_ns - now;
            if (due < 1000000) due = 1000000;
            if (due < wait) wait = due;
        }
        r->sleeps++;
        /* relaxed: statistics, written only by this reader. */
        myc_store_relaxed_u64(m->base, MYC_OFF_READER_SLEEPS, r->sleeps);
        int err = myc_futex_wait(m->base, MYC_OFF_READER_FUTEX, seq, wait);
        /* The ring may have been truncated while we slept: look before
         * touching it again (a truncation at any other moment is SIGBUS;
         * see the threat model in docs/FORMAT.md). */
        rc = myc_map_check_size(m);
        if (rc != MYC_OK) return rc;
        reader_unarm(r);
        if (err == EINTR) return myc_fail(MYC_ERR_INTERRUPTED, "interrupted while waiting for a frame");
    }
}

/* ------------------------------------------------------------------------ */
/* Read calls                                                                */
/* ------------------------------------------------------------------------ */

/* Consume the frame handed out by myc_peek. */
static void release_held(myc_reader *r) {
    r->head += r->held_bytes;
    r->index++;
    r->frames_read++;
    r->bytes_read += r->held_payload;
    r->held_bytes = 0;
    myc_publish_counters(r);
    myc_publish_head(r);
}

static int reader_enter(myc_reader *r) {
    if (r == NULL) return myc_fail(MYC_ERR_CLOSED, "the reader is closed");
    if (__atomic_load_n(r->fork_counter, __ATOMIC_RELAXED) != r->fork_generation)
        return myc_fail(MYC_ERR_FORKED,
                        "this reader of channel '%s' was opened by the parent of this forked "
                        "process; the channel still belongs to the parent's reader",
                        r->map.name);
    if (!myc_flag_try_take(&r->busy))
        return myc_fail(MYC_ERR_HANDLE_BUSY, "the reader is in use by another thread");
    if (myc_map_is_truncated(&r->map)) {
        myc_flag_release(&r->busy);
        return myc_map_check_size(&r->map);
    }
    if (r->held_bytes != 0) release_held(r); /* the frame of the last myc_peek is done */
    return MYC_OK;
}

static void reader_leave(myc_reader *r) { myc_flag_release(&r->busy); }

static int too_small(const myc_found *f, uint64_t buf_len) {
    return myc_fail(MYC_ERR_ARG, "frame of %u bytes does not fit the %llu-byte buffer",
                    f->payload_len, (unsigned long long)buf_len);
}

int64_t myc_read(myc_reader *r, int64_t timeout_ns, uint8_t *buf, uint64_t buf_len) {
    int rc = reader_enter(r);
    if (rc != MYC_OK) return rc;
    myc_found f;
    for (;;) {
        rc = wait_frame(r, timeout_ns, &f);
        if (rc == MYC_OK && f.payload_len > buf_len) rc = too_small(&f, buf_len);
        if (rc != MYC_OK) {
            reader_leave(r);
            return rc;
        }
        memcpy(buf, f.hdr + MYC_FRAME_HEADER_SIZE, f.payload_len);
        if (myc_found_intact(r, &f)) break; /* else lapped while copying: the next one */
    }
    myc_reader_consume(r, &f);
    myc_reader_publish(r);
    reader_leave(r);
    return ((int64_t)f.type_id << 32) | (int64_t)f.payload_len;
}

int myc_peek(myc_reader *r, int64_t timeout_ns, myc_frame *frame) {
    int rc = reader_enter(r);
    if (rc != MYC_OK) return rc;
    myc_found f;
    rc = wait_frame(r, timeout_ns, &f);
    if (rc == MYC_OK) {
        frame->type_id = f.type_id;
        frame->flags = f.flags;
        frame->payload = f.hdr + MYC_FRAME_HEADER_SIZE;
        frame->payload_len = f.payload_len;
        r->held_position = f.position;
        r->held_bytes = f.bytes; /* counted as read when released */
        r->held_payload = f.payload_len;
        r->held_type = f.type_id;
    }
    reader_leave(r);
    return rc;
}

void myc_release(myc_reader *r) {
    if (reader_enter(r) == MYC_OK) reader_leave(r);
}

int myc_reader_check_held(myc_reader *r) {
    if (r == NULL) return myc_fail(MYC_ERR_CLOSED, "the reader is closed");
    if (r->cursor_slot < 0 || r->held_bytes == 0 || myc_cursor_intact(r, r->held_position)) return MYC_OK;
    return myc_fail(MYC_ERR_LAPPED,
                    "writers overwrote the frame at position %llu of channel '%s' while this %s "
                    "reader held it: what was read through the view is not reliable",
                    (unsigned long long)r->held_position, r->map.name,
                    (r->policy & MYC_POLICY_MASK) == MYC_POLICY_LOSSY ? "lossy" : "untethered");
}

int64_t myc_read_batch(myc_reader *r, uint32_t max_frames, int64_t timeout_ns, uint8_t *buf,
                       uint64_t buf_len, uint16_t *type_ids, uint32_t *lens) {
    int rc = reader_enter(r);
    if (rc != MYC_OK) return rc;
    if (max_frames == 0) {
        reader_leave(r);
        return 0;
    }
    myc_found f;
    uint64_t used = 0;
    uint32_t n = 0;
    rc = wait_frame(r, timeout_ns, &f);
    while (rc == MYC_OK) {
        if (used + f.payload_len > buf_len) {
            if (n == 0) rc = too_small(&f, buf_len);
            break;
        }
        memcpy(buf + used, f.hdr + MYC_FRAME_HEADER_SIZE, f.payload_len);
        if (!myc_found_intact(r, &f)) { /* lapped while copying: resynchronised */
            if (n > 0) break;
            rc = wait_frame(r, timeout_ns, &f);
            continue;
        }
        type_ids[n] = f.type_id;
        lens[n] = f.payload_len;
        used += f.payload_len;
        myc_reader_consume(r, &f);
        if (++n == max_frames) break;
        int nrc = myc_next_frame(r, 0, &f);
        if (nrc < 0) rc = nrc;
        else if (nrc != MYC_NEXT_FRAME) break;
    }
    if (n > 0) {
        myc_reader_publish(r);
    }
    reader_leave(r);
    if (n > 0) return n; /* an error after some frames surfaces on the next call */
    return rc;
}

void myc_reader_close(myc_reader *r) {
    if (r == NULL) return;
    myc_map *m = &r->map;
    if (__atomic_load_n(r->fork_counter, __ATOMIC_RELAXED) != r->fork_generation ||
        myc_map_is_truncated(m)) {
        /* A forked child's copy: the channel is the parent's to give back.
         * A truncated channel: its header may be gone too (SIGBUS). */
        myc_close_map(m);
        free(r);
        return;
    }
    if (r->held_bytes != 0) release_held(r);
    clear_stall(r);
    if (r->cursor_slot >= 0) {
        myc_cursor_detach(r);
        myc_close_map(m);
        free(r);
        return;
    }
    myc_store_seq_cst_u32(m->base, MYC_OFF_READER_SLEEPING, 0);
    myc_reader_give_back(m);
    myc_close_map(m);
    free(r);
}
