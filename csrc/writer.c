/*
 * Writers: claim with one CAS on TAIL, fill, commit with one CAS on the
 * frame's stamp (FORMAT.md section 4).
 *
 * Before a writer claims, it publishes the range it is about to claim in
 * its registry slot; that is how the reader tells a dead writer's claim
 * (skipped) from a live writer's (waited for), and how far to skip.
 */
#include "ring_internal.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Per-thread registry slots                                                 */
/* ------------------------------------------------------------------------ */

static uint64_t g_next_generation = 1; /* relaxed atomic: a unique id only */

/* The last handle this thread wrote through, and its slot there. */
static _Thread_local struct {
    const myc_writer *writer;
    uint64_t generation;
    uint64_t fork_generation;
    myc_thread_slot *entry;
} tl_last;

myc_thread_slot *myc_writer_thread_slot(myc_writer *w) {
    uint64_t forks = __atomic_load_n(w->fork_counter, __ATOMIC_RELAXED);
    if (tl_last.writer == w && tl_last.generation == w->generation && tl_last.fork_generation == forks)
        return tl_last.entry;
    if (forks != w->fork_generation) {
        myc_fail(MYC_ERR_FORKED,
                 "this writer of channel '%s' was opened by the parent of this forked process; "
                 "open a new writer in the child",
                 w->map.name);
        return NULL;
    }
    uint64_t self = (uint64_t)pthread_self();
    myc_thread_slot *found = NULL;
    pthread_mutex_lock(&w->lock);
    for (uint32_t i = 0; i < w->thread_count; i++)
        if (w->threads[i].thread == self) found = &w->threads[i];
    if (found == NULL) {
        int slot = w->thread_count < MYC_WRITER_SLOTS ? myc_registry_take(&w->map)
                                                      : myc_fail(MYC_ERR_TOO_MANY_WRITERS,
                                                                 "this writer is used by %u threads, the limit",
                                                                 MYC_WRITER_SLOTS);
        if (slot >= 0) {
            found = &w->threads[w->thread_count++];
            memset(found, 0, sizeof *found);
            found->thread = self;
            found->slot = slot;
        }
    }
    pthread_mutex_unlock(&w->lock);
    if (found != NULL) {
        tl_last.writer = w;
        tl_last.generation = w->generation;
        tl_last.fork_generation = forks;
        tl_last.entry = found;
    }
    return found;
}

int myc_writer_open(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                    uint32_t mode, const uint8_t *schema_digest, myc_writer **out) {
    return myc_writer_open_ex(name, flags, capacity, max_payload, mode, schema_digest, 0, 0, out);
}

int myc_writer_open_ex(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                       uint32_t mode, const uint8_t *schema_digest, uint32_t readers,
                       uint32_t untether_ms, myc_writer **out) {
    if (out == NULL) return myc_fail(MYC_ERR_ARG, "out must not be NULL");
    *out = NULL;
    myc_writer *w = calloc(1, sizeof *w);
    if (w == NULL) return myc_fail_sys(ENOMEM, "cannot allocate a writer");
    int rc = myc_open_map(name, flags, capacity, max_payload, mode, schema_digest, readers, untether_ms,
                          &w->map);
    if (rc != MYC_OK) {
        free(w);
        return rc;
    }
    pthread_mutex_init(&w->lock, NULL);
    myc_fork_guard_init();
    w->fork_counter = &myc_g_fork_generation;
    w->fork_generation = __atomic_load_n(w->fork_counter, __ATOMIC_RELAXED);
    w->spin_ns = MYC_DEFAULT_SPIN_NS;
    w->blocked_slot = -1;
    w->generation = __atomic_fetch_add(&g_next_generation, 1, __ATOMIC_RELAXED);
    /* The opening thread takes its slot now, so "too many writers" is an
     * open-time error in the common single-threaded case. */
    if (myc_writer_thread_slot(w) == NULL) {
        rc = myc_last_result();
        myc_close_map(&w->map);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return rc;
    }
    *out = w;
    return MYC_OK;
}

void myc_writer_close(myc_writer *w) {
    if (w == NULL) return;
    /* A forked child's copy of the handle owns none of the parent's slots. */
    if (__atomic_load_n(w->fork_counter, __ATOMIC_RELAXED) == w->fork_generation &&
        !myc_map_is_truncated(&w->map)) /* a truncated header may be gone (SIGBUS) */
        for (uint32_t i = 0; i < w->thread_count; i++) myc_registry_release(&w->map, w->threads[i].slot);
    if (tl_last.writer == w) tl_last.writer = NULL;
    myc_close_map(&w->map);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void myc_writer_set_spin(myc_writer *w, int64_t spin_ns) {
    if (w != NULL) w->spin_ns = spin_ns < 0 ? 0 : spin_ns;
}

/* ------------------------------------------------------------------------ */
/* Claiming                                                                  */
/* ------------------------------------------------------------------------ */

/* The lowest position writers must not lap: HEAD (in a broadcast channel
 * the slowest tethered cursor), or an earlier HOLD. */
static uint64_t load_limit(myc_writer *w, uint64_t tail, int short_of_room) {
    myc_map *m = &w->map;
    /* seq_cst (acquire at least): pairs with the reader's seq_cst store of
     * HEAD, so the frames it consumed are done with; seq_cst so a writer
     * about to sleep cannot miss the reader's update (Dekker with
     * WAITING_MASK).  Broadcast: the same for each cursor's POSITION. */
    uint64_t head = m->readers ? myc_cursor_limit(w, tail, short_of_room)
                               : __atomic_load_n(MYC_AT(m->base, MYC_OFF_HEAD, uint64_t), __ATOMIC_SEQ_CST);
    /* acquire: pairs with the release CAS that set or cleared the hold. */
    uint64_t hold = myc_load_acquire_u64(m->base, MYC_OFF_HOLD);
    return hold < head ? hold : head;
}

/* How many of the plan's frames fit in `free_bytes` starting at `tail`, and
 * how many bytes that takes (a frame that would straddle the end is preceded
 * by padding to the end). */
static void lay_out(const myc_map *m, claim_plan *p, uint64_t tail, uint64_t free_bytes) {
    uint64_t used = 0, pos = tail;
    uint32_t n = 0;
    while (n < p->count) {
        uint64_t fb = myc_plan_frame_bytes(p, n);
        uint64_t to_end = m->capacity - (pos & m->mask);
        uint64_t need = fb > to_end ? to_end + fb : fb;
        if (used + need > free_bytes) break;
        used += need;
        pos += need;
        n++;
    }
    p->planned = n;
    p->required = used;
}

int myc_try_claim(myc_writer *w, myc_thread_slot *ts, claim_plan *p, int fresh_head) {
    myc_map *m = &w->map;
    uint64_t slot_off = myc_slot_off((uint32_t)ts->slot);
    /* relaxed: the CAS below validates the value; no data hangs off it. */
    uint64_t tail = myc_load_relaxed_u64(m->base, MYC_OFF_TAIL);
    /* relaxed: likewise (broadcast: the 16-byte CAS compares both). */
    uint64_t seq = m->readers ? myc_load_relaxed_u64(m->base, MYC_OFF_SEQ) : 0;
    for (;;) {
        /* acquire: pairs with the release store below by whichever thread
         * of this handle refreshed it, extending its synchronisation with
         * the reader to us. */
        uint64_t limit = __atomic_load_n(&w->head_cache, __ATOMIC_ACQUIRE);
        if (fresh_head || !myc_positions_ok(m, limit, tail)) {
            limit = load_limit(w, tail, 0);
            __atomic_store_n(&w->head_cache, limit, __ATOMIC_RELEASE);
            fresh_head = 0;
            /* limit and tail are only comparable if tail did not move while
             * we loaded the limit; otherwise look again. */
            uint64_t tail_now = myc_load_relaxed_u64(m->base, MYC_OFF_TAIL);
            if (tail_now != tail) {
                tail = tail_now;
                continue;
            }
            if (!myc_positions_ok(m, limit, tail))
                return myc_fail(MYC_ERR_CORRUPT,
                                "channel '%s' positions are inconsistent (head/hold %llu, tail %llu, capacity %llu)",
                                m->name, (unsigned long long)limit, (unsigned long long)tail,
                                (unsigned long long)m->capacity);
        }
        lay_out(m, p, tail, m->capacity - (tail - limit));
        if (p->planned < p->count) {
            /* Maybe only our cached limit is stale: look before giving up
             * (none fit) or claiming less than asked (some fit). */
            uint64_t fresh = load_limit(w, tail, 1);
            if (fresh != limit) {
                __atomic_store_n(&w->head_cache, fresh, __ATOMIC_RELEASE);
                continue;
            }
            if (p->planned == 0) return MYC_ERR_FULL;
        }
        /* Publish the range before claiming it, start first, marked
         * PENDING (intended, not yet ours).  A writer that dies between the
         * two stores leaves [tail, its previous end): empty, since that end
         * is at most `tail`; never its old start with its new end.  release
         * (both): a reader that acquires either word sees our earlier
         * commits, so a range that stopped covering it means "committed";
         * and the CAS below releases both to a reader that sees TAIL move. */
        myc_store_release_u64(m->base, slot_off + MYC_SLOT_OFF_CLAIM_START, tail | MYC_CLAIM_PENDING);
        myc_store_release_u64(m->base, slot_off + MYC_SLOT_OFF_CLAIM_END, tail + p->required);
        MYC_HOOK(MYC_STEP_PUBLISHED, tail);
        /* acq_rel: one writer wins each byte range; on failure `tail` is
         * reloaded and we lay out (and publish) again. */
        uint64_t intended = tail;
        if (m->readers) {
            /* seq_cst 16-byte CAS (broadcast): the claim and its frame
             * indexes in one step; on failure both are reloaded. */
            uint64_t seen_seq = seq;
            if (myc_cas_seq_cst_u128(m->base, MYC_OFF_TAIL, &tail, &seen_seq, tail + p->required,
                                     seq + p->planned)) {
                p->seq = seq;
                break;
            }
            seq = seen_seq;
        } else if (myc_cas_acq_rel_u64(m->base, MYC_OFF_TAIL, &tail, tail + p->required)) {
            break;
        }
        /* Lost the race: retract the range (make it empty), so that a
         * writer that now finds no room and waits does not leave an
         * intended range over another writer's claim, which would hold the
         * reader while we wait for the reader (a deadlock the model finds:
         * tests/model, FORMAT_MD_STALE).  release: as the publication. */
        myc_store_release_u64(m->base, slot_off + MYC_SLOT_OFF_CLAIM_END, intended);
    }
    p->tail = tail;
    if (m->readers) myc_cursor_note_laps(m, p);
    /* release: confirm the range is ours (a plain store on x86; pairs with
     * the reader's acquire load of CLAIM_START). */
    myc_store_release_u64(m->base, slot_off + MYC_SLOT_OFF_CLAIM_START, tail);
    /* release fence: the TAIL update is ordered before every ring store we
     * make next, so a passive observer that copied a frame and then finds
     * TAIL not past it knows no writer overwrote the copy (FORMAT.md 7). */
#ifndef __SANITIZE_THREAD__ /* ThreadSanitizer does not model fences (and rejects them) */
    __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
    MYC_HOOK(MYC_STEP_CLAIMED, tail);
    return MYC_OK;
}

void myc_count_full(myc_map *m, myc_thread_slot *ts) {
    /* relaxed: statistics, written only by this slot's thread. */
    myc_store_relaxed_u64(m->base, myc_slot_off((uint32_t)ts->slot) + MYC_SLOT_OFF_FULL, ++ts->full);
}

void myc_count_written(myc_map *m, myc_thread_slot *ts, uint64_t frames, uint64_t bytes) {
    uint64_t off = myc_slot_off((uint32_t)ts->slot);
    ts->frames += frames;
    ts->bytes += bytes;
    /* relaxed plain stores: statistics, written only by this slot's thread
     * (no locked instruction on the write path). */
    myc_store_relaxed_u64(m->base, off + MYC_SLOT_OFF_FRAMES, ts->frames);
    myc_store_relaxed_u64(m->base, off + MYC_SLOT_OFF_BYTES, ts->bytes);
}

/* If a force-unblocked claim's writer died, nobody will clear its hold. */
static void clear_dead_hold(myc_map *m) {
    /* acquire: pairs with the release CAS that set the hold. */
    uint64_t hold = myc_load_acquire_u64(m->base, MYC_OFF_HOLD);
    if (hold == MYC_NO_HOLD) return;
    /* relaxed: stored before the HOLD CAS we just acquired. */
    uint32_t slot = myc_load_relaxed_u32(m->base, MYC_OFF_HOLD_SLOT);
    if (slot >= MYC_WRITER_SLOTS) slot = 0; /* hostile value: check slot 0 */
    uint64_t off = myc_slot_off(slot);
    uint64_t owner = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_OWNER);
    uint64_t start = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_CLAIM_START) & ~MYC_CLAIM_PENDING;
    uint64_t end = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_CLAIM_END);
    int holder_gone = owner == 0 || !myc_owner_alive(owner) || hold < start || hold >= end;
    /* acq_rel CAS: only this hold is cleared, not a newer one. */
    if (holder_gone) myc_cas_acq_rel_u64(m->base, MYC_OFF_HOLD, &hold, MYC_NO_HOLD);
}

/* The last call on this thread returned at the end of its wait slice: the
 * caller's next call continues the same write (counted once in full_events). */
static _Thread_local int tl_resuming;

static int claim_wait(myc_writer *w, myc_thread_slot *ts, claim_plan *p, int64_t timeout_ns) {
    myc_map *m = &w->map;
    int resumed = tl_resuming;
    tl_resuming = 0;
    int rc = myc_try_claim(w, ts, p, 0);
    if (rc != MYC_ERR_FULL) return rc;
    if (!resumed) myc_count_full(m, ts);
    if (timeout_ns == 0) return MYC_ERR_FULL;
    int64_t start = myc_now_ns();
    int64_t deadline = timeout_ns < 0 ? INT64_MAX : start + timeout_ns;
    int64_t until = myc_slice_deadline(start, deadline);
    for (uint32_t spins = 1;; spins++) {
        myc_cpu_relax();
        if (spins % MYC_SPINS_PER_YIELD == 0) sched_yield(); /* a reader may share our core */
        rc = myc_try_claim(w, ts, p, 1);
        if (rc != MYC_ERR_FULL) return rc;
        if ((spins & 63) == 0 && myc_now_ns() - start >= w->spin_ns) break;
    }
    uint32_t bit = 1u << ts->slot;
    for (;;) {
        clear_dead_hold(m);
        /* seq_cst: announce the sleep before re-checking HEAD; the reader
         * stores HEAD (seq_cst) then loads WAITING_MASK (seq_cst), so one
         * of us sees the other. */
        __atomic_fetch_or(MYC_AT(m->base, MYC_OFF_WAITING_MASK, uint32_t), bit, __ATOMIC_SEQ_CST);
        uint32_t seq = myc_load_seq_cst_u32(m->base, MYC_OFF_SPACE_FUTEX);
        rc = myc_try_claim(w, ts, p, 1);
        int64_t now = myc_now_ns();
        if (rc != MYC_ERR_FULL || now >= until) {
            /* seq_cst: the bit is ours alone; see above. */
            __atomic_fetch_and(MYC_AT(m->base, MYC_OFF_WAITING_MASK, uint32_t), ~bit, __ATOMIC_SEQ_CST);
            if (rc != MYC_ERR_FULL) return rc;
            if (now < deadline) {
                tl_resuming = 1;
                return myc_fail(MYC_ERR_INTERRUPTED, "wait slice over; call again");
            }
            /* relaxed: statistics, written only by this slot's thread. */
            myc_store_relaxed_u64(m->base, myc_slot_off((uint32_t)ts->slot) + MYC_SLOT_OFF_TIMEOUTS,
                                  ++ts->timeouts);
            return rc;
        }
        int64_t wait = until == INT64_MAX ? MYC_MAX_SLEEP_NS : until - now;
        if (wait > MYC_MAX_SLEEP_NS) wait = MYC_MAX_SLEEP_NS;
        int err = myc_futex_wait(m->base, MYC_OFF_SPACE_FUTEX, seq, wait);
        /* Truncated while we slept?  Look before touching the ring again. */
        rc = myc_map_check_size(m);
        if (rc != MYC_OK) return rc;
        /* seq_cst: as every access to the mask. */
        __atomic_fetch_and(MYC_AT(m->base, MYC_OFF_WAITING_MASK, uint32_t), ~bit, __ATOMIC_SEQ_CST);
        if (err == EINTR) {
            tl_resuming = 1;
            return myc_fail(MYC_ERR_INTERRUPTED, "interrupted while waiting for room");
        }
    }
}

/* A Full error that says what a user needs to act on it. */
static int full_error(myc_writer *w, const claim_plan *p, int64_t timeout_ns) {
    myc_map *m = &w->map;
    /* relaxed: for the message only. */
    uint64_t owner = myc_load_relaxed_u64(m->base, MYC_OFF_READER_OWNER);
    uint64_t head = myc_load_relaxed_u64(m->base, MYC_OFF_HEAD);
    uint64_t tail = myc_load_relaxed_u64(m->base, MYC_OFF_TAIL);
    char reader[256];
    if (m->readers) {
        pthread_mutex_lock(&w->lock);
        int slot = w->blocked_slot;
        int32_t claimer = w->blocked_writer;
        pthread_mutex_unlock(&w->lock);
        head = __atomic_load_n(&w->head_cache, __ATOMIC_RELAXED);
        myc_cursor_info c;
        memset(&c, 0, sizeof c);
        if (slot >= 0 && (uint32_t)slot < m->readers) {
            owner = myc_load_relaxed_u64(m->base, myc_cursor_off((uint32_t)slot) + MYC_CURSOR_OFF_OWNER);
            memcpy(c.name, m->base + myc_cursor_off((uint32_t)slot) + MYC_CURSOR_OFF_NAME, MYC_CURSOR_NAME_MAX);
        }
        if (slot < 0)
            snprintf(reader, sizeof reader,
                     "writers do not lap the unfinished frame of live writer pid %d (it holds them "
                     "until it commits or dies)",
                     claimer);
        else
            snprintf(reader, sizeof reader,
                     "the slowest tethered reader ('%s', pid %d%s) holds writers back until it reads, "
                     "dies, or stays put for %u ms (then it is untethered)",
                     c.name[0] ? c.name : "anonymous", owner ? MYC_OWNER_PID(owner) : 0,
                     owner == 0 ? ", detached" : myc_owner_alive(owner) ? "" : ", dead", m->untether_ms);
    } else if (owner == 0)
        snprintf(reader, sizeof reader, "no reader is attached");
    else if (myc_owner_alive(owner))
        snprintf(reader, sizeof reader, "reader pid %d is alive but not keeping up",
                 MYC_OWNER_PID(owner));
    else
        snprintf(reader, sizeof reader, "its reader (pid %d) is dead", MYC_OWNER_PID(owner));
    uint64_t frame = myc_plan_frame_bytes(p, 0);
    return myc_fail(MYC_ERR_FULL,
                    "channel '%s' is full: no room for a %llu-byte frame (%u-byte payload) %s%.3f s; "
                    "%llu of %llu ring bytes unread; %s",
                    m->name, (unsigned long long)frame, p->lens ? p->lens[0] : p->len0,
                    timeout_ns == 0 ? "without waiting, timeout " : "within the timeout of ",
                    (double)timeout_ns / 1e9, (unsigned long long)(tail - head),
                    (unsigned long long)m->capacity, reader);
}

static int claim(myc_writer *w, myc_thread_slot *ts, claim_plan *p, int64_t timeout_ns) {
    if (ts->reserved_open)
        return myc_fail(MYC_ERR_ARG,
                        "this thread has an open reservation on channel '%s': commit or abort it "
                        "before writing again",
                        w->map.name);
    int rc = claim_wait(w, ts, p, timeout_ns);
    if (rc == MYC_ERR_FULL) return full_error(w, p, timeout_ns);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Filling and committing                                                    */
/* ------------------------------------------------------------------------ */

static void store_header(uint8_t *hdr, uint64_t frame_len, uint16_t type_id) {
    uint32_t len32 = (uint32_t)frame_len;
    uint16_t flags = 0;
    /* relaxed: published by the release store or CAS of the stamp. */
    myc_store_relaxed_u32(hdr, MYC_FRAME_OFF_LEN, len32);
    __atomic_store_n(MYC_AT(hdr, MYC_FRAME_OFF_TYPE, uint16_t), type_id, __ATOMIC_RELAXED);
    __atomic_store_n(MYC_AT(hdr, MYC_FRAME_OFF_FLAGS, uint16_t), flags, __ATOMIC_RELAXED);
}

static void write_padding(myc_map *m, uint64_t pos, uint64_t bytes) {
    uint8_t *hdr = m->ring + (pos & m->mask);
    store_header(hdr, bytes, MYC_TYPE_PADDING);
    /* seq_cst (release at least: frame_len is visible before the reader
     * acts on the stamp): like a commit, padding can be the word the
     * reader's seq_cst last look before sleeping reads (Dekker with
     * READER_SLEEPING).  Only at the ring's end, so the cost is nil. */
    __atomic_store_n(MYC_AT(hdr, MYC_FRAME_OFF_STAMP, uint64_t), pos | MYC_STAMP_PADDING,
                     __ATOMIC_SEQ_CST);
}

uint64_t myc_place_padding(myc_map *m, uint64_t pos, uint64_t frame_bytes) {
    uint64_t to_end = m->capacity - (pos & m->mask);
    if (frame_bytes <= to_end) return pos;
    write_padding(m, pos, to_end);
    return pos + to_end;
}

uint8_t *myc_begin_frame(myc_map *m, uint64_t pos, uint32_t type_id, uint32_t payload_len) {
    uint8_t *hdr = m->ring + (pos & m->mask);
    store_header(hdr, MYC_FRAME_HEADER_SIZE + (uint64_t)payload_len, (uint16_t)type_id);
    /* release: an operator's revoking CAS (acquire) that reads CLAIMED also
     * sees frame_len, which the reader then uses to skip the frame. */
    myc_store_release_u64(hdr, MYC_FRAME_OFF_STAMP, pos | MYC_STAMP_CLAIMED);
    MYC_HOOK(MYC_STEP_HEADER, pos);
    return hdr;
}

int myc_commit_frame(myc_map *m, uint64_t pos) {
    uint8_t *hdr = m->ring + (pos & m->mask);
    uint64_t expected = pos | MYC_STAMP_CLAIMED;
    MYC_HOOK(MYC_STEP_FILLED, pos);
    /* seq_cst CAS: release publishes header and payload to the reader's
     * acquire load of the stamp; seq_cst orders our next load of
     * READER_SLEEPING (Dekker); it fails only if an operator revoked the
     * claim (myc_force_unblock), which the CAS decides once for both. */
    if (__atomic_compare_exchange_n(MYC_AT(hdr, MYC_FRAME_OFF_STAMP, uint64_t), &expected,
                                    pos | MYC_STAMP_COMMITTED, 0, __ATOMIC_SEQ_CST,
                                    __ATOMIC_ACQUIRE)) {
        MYC_HOOK(MYC_STEP_COMMITTED, pos);
        return MYC_OK;
    }
    uint64_t hold = pos;
    /* acq_rel CAS: our claim is finished with, writers may reuse its space. */
    myc_cas_acq_rel_u64(m->base, MYC_OFF_HOLD, &hold, MYC_NO_HOLD);
    /* relaxed: statistics (a rare event: a shared counter is fine). */
    myc_add_relaxed_u64(m->base, MYC_OFF_ABANDONED, 1);
    return myc_fail(MYC_ERR_ABANDONED,
                    "an operator force-unblocked this frame of channel '%s' (position %llu) while "
                    "this writer was stalled; it was dropped and no byte of it was delivered",
                    m->name, (unsigned long long)pos);
}

int myc_put_frame(myc_map *m, const claim_plan *p, uint32_t i, uint64_t pos, uint32_t type_id,
                  const void *payload, uint32_t payload_len) {
    if (i == 0) { /* revocable: stamped CLAIMED, committed by CAS */
        uint8_t *hdr = myc_begin_frame(m, pos, type_id, payload_len);
        memcpy(hdr + MYC_FRAME_HEADER_SIZE, payload, payload_len);
        return myc_commit_frame(m, pos);
    }
    /* A later frame of the claim (FORMAT.md 4.2): the reader cannot reach
     * it before the first frame is committed, and only that one can be
     * revoked, so its commit needs no CAS.  Stamp 0 first (relaxed): stale
     * bytes of an earlier lap stop standing in the stamp word early. */
    uint8_t *hdr = m->ring + (pos & m->mask);
    store_header(hdr, MYC_FRAME_HEADER_SIZE + (uint64_t)payload_len, (uint16_t)type_id);
    myc_store_relaxed_u64(hdr, MYC_FRAME_OFF_STAMP, 0);
    MYC_HOOK(MYC_STEP_HEADER, pos);
    memcpy(hdr + MYC_FRAME_HEADER_SIZE, payload, payload_len);
    MYC_HOOK(MYC_STEP_FILLED, pos);
    if (i + 1 < p->planned) /* release: header and payload before the stamp */
        myc_store_release_u64(hdr, MYC_FRAME_OFF_STAMP, pos | MYC_STAMP_COMMITTED);
    else /* seq_cst: the claim's last store; orders step 10's READER_SLEEPING load */
        myc_store_seq_cst_u64(hdr, MYC_FRAME_OFF_STAMP, pos | MYC_STAMP_COMMITTED);
    MYC_HOOK(MYC_STEP_COMMITTED, pos);
    return MYC_OK;
}

void myc_wake_reader_if_sleeping(myc_map *m) {
    if (m->readers) {
        myc_cursor_wake_readers(m);
        return;
    }
    /* seq_cst: ordered after our seq_cst commit; pairs with the reader's
     * seq_cst store of READER_SLEEPING before its last check for frames. */
    uint32_t sleeping = myc_load_seq_cst_u32(m->base, MYC_OFF_READER_SLEEPING);
    if (sleeping == 0) return;
    /* release: the reader's futex_wait compares this word. */
    myc_add_release_u32(m->base, MYC_OFF_READER_FUTEX, 1);
    myc_futex_wake_all(m->base, MYC_OFF_READER_FUTEX);
    /* relaxed: statistics, beside a system call anyway. */
    myc_add_relaxed_u64(m->base, MYC_OFF_WRITER_WAKES, 1);
    /* This sleep has had its wake: clear the flag, so the writes that follow
     * while the reader is being scheduled pay no further syscall, and a
     * dead reader's flag costs one.  Safe: the reader arms the flag again,
     * with a new value, before every last look and sleep (a reader between
     * arming and FUTEX_WAIT returns at once, the word having moved); the
     * CAS clears exactly the value we saw, never a newer arming.  seq_cst
     * as the flag's other accesses. */
    __atomic_compare_exchange_n(MYC_AT(m->base, MYC_OFF_READER_SLEEPING, uint32_t), &sleeping, 0, 0,
                                __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

int myc_check_frame_args(const myc_map *m, uint32_t type_id, uint32_t payload_len) {
    if (type_id == MYC_TYPE_PADDING || type_id > MYC_TYPE_ID_MAX)
        return myc_fail(MYC_ERR_ARG, "type_id %u is out of range 1..%u", type_id, MYC_TYPE_ID_MAX);
    if (payload_len > m->max_payload)
        return myc_fail(MYC_ERR_TOO_LARGE,
                        "payload of %u bytes exceeds the maximum of %u of channel '%s'",
                        payload_len, m->max_payload, m->name);
    return MYC_OK;
}

void myc_pad_rest(myc_map *m, const claim_plan *p, uint64_t pos, uint32_t first) {
    for (uint32_t i = first; i < p->planned; i++) {
        uint64_t fb = myc_plan_frame_bytes(p, i);
        pos = myc_place_padding(m, pos, fb);
        write_padding(m, pos, fb);
        pos += fb;
    }
}

int myc_write_claimed(myc_writer *w, myc_thread_slot *ts, const claim_plan *p, uint32_t type_id,
                      const void *payload, uint32_t payload_len) {
    myc_map *m = &w->map;
    uint64_t pos = myc_place_padding(m, p->tail, myc_plan_frame_bytes(p, 0));
    int rc = myc_put_frame(m, p, 0, pos, type_id, payload, payload_len);
    myc_claim_finished(m, ts->slot, p->tail + p->required);
    if (rc == MYC_OK) myc_count_written(m, ts, 1, payload_len);
    myc_wake_reader_if_sleeping(m);
    return rc;
}

/* Check, find this thread's slot and claim room for one frame. */
static int claim_one(myc_writer *w, uint32_t type_id, uint32_t payload_len, int64_t timeout_ns,
                     myc_thread_slot **ts, claim_plan *p) {
    if (w == NULL) return myc_fail(MYC_ERR_CLOSED, "the writer is closed");
    if (myc_map_is_truncated(&w->map)) return myc_map_check_size(&w->map);
    int rc = myc_check_frame_args(&w->map, type_id, payload_len);
    if (rc != MYC_OK) return rc;
    *ts = myc_writer_thread_slot(w);
    if (*ts == NULL) return myc_last_result();
    *p = (claim_plan){.count = 1, .len0 = payload_len};
    return claim(w, *ts, p, timeout_ns);
}

int myc_write(myc_writer *w, uint32_t type_id, const void *payload, uint32_t payload_len,
              int64_t timeout_ns) {
    myc_thread_slot *ts = NULL;
    claim_plan p;
    int rc = claim_one(w, type_id, payload_len, timeout_ns, &ts, &p);
    if (rc != MYC_OK) return rc;
    return myc_write_claimed(w, ts, &p, type_id, payload, payload_len);
}

int64_t myc_write_batch(myc_writer *w, uint32_t count, const uint16_t *type_ids,
                        const uint32_t *lens, const void *payloads, int64_t timeout_ns) {
    myc_set_batch_written(0);
    if (w == NULL) return myc_fail(MYC_ERR_CLOSED, "the writer is closed");
    myc_map *m = &w->map;
    if (myc_map_is_truncated(m)) return myc_map_check_size(m);
    if (count == 0) return 0;
    for (uint32_t i = 0; i < count; i++) {
        int rc = myc_check_frame_args(m, type_ids[i], lens[i]);
        if (rc != MYC_OK) return rc;
    }
    myc_thread_slot *ts = myc_writer_thread_slot(w);
    if (ts == NULL) return myc_last_result();
    claim_plan p = {.count = count, .lens = lens};
    int rc = claim(w, ts, &p, timeout_ns);
    if (rc != MYC_OK) return rc;
    uint64_t pos = p.tail, payload_bytes = 0;
    const uint8_t *src = (const uint8_t *)payloads;
    uint32_t done = 0;
    for (; done < p.planned; done++) {
        uint64_t fb = myc_plan_frame_bytes(&p, done);
        pos = myc_place_padding(m, pos, fb);
        rc = myc_put_frame(m, &p, done, pos, type_ids[done], src, lens[done]);
        pos += fb;
        if (rc != MYC_OK) break;
        src += lens[done];
        payload_bytes += lens[done];
    }
    if (rc != MYC_OK) myc_pad_rest(m, &p, pos, done + 1);
    myc_claim_finished(m, ts->slot, p.tail + p.required);
    myc_count_written(m, ts, done, payload_bytes);
    myc_wake_reader_if_sleeping(m);
    if (rc != MYC_OK) {
        myc_set_batch_written(done);
        return rc;
    }
    return (int64_t)p.planned;
}

int myc_reserve(myc_writer *w, uint32_t type_id, uint32_t payload_len, int64_t timeout_ns,
                myc_reservation *res) {
    myc_thread_slot *ts = NULL;
    claim_plan p;
    int rc = claim_one(w, type_id, payload_len, timeout_ns, &ts, &p);
    if (rc != MYC_OK) return rc;
    myc_map *m = &w->map;
    uint64_t pos = myc_place_padding(m, p.tail, myc_plan_frame_bytes(&p, 0));
    uint8_t *hdr = myc_begin_frame(m, pos, type_id, payload_len);
    ts->reserved_open = 1;
    res->payload = hdr + MYC_FRAME_HEADER_SIZE;
    res->position = pos;
    res->payload_len = payload_len;
    res->type_id = type_id;
    return MYC_OK;
}

/* The thread entry whose open reservation this is (it may be finished on
 * another thread than the one that reserved). */
static myc_thread_slot *reservation_owner(myc_writer *w, const myc_reservation *res) {
    myc_thread_slot *ts = myc_writer_thread_slot(w);
    if (ts != NULL && ts->reserved_open) return ts;
    myc_thread_slot *found = NULL;
    pthread_mutex_lock(&w->lock);
    for (uint32_t i = 0; i < w->thread_count; i++) {
        uint64_t off = myc_slot_off((uint32_t)w->threads[i].slot);
        /* relaxed: our own process's words, and only to find the entry. */
        uint64_t start = myc_load_relaxed_u64(w->map.base, off + MYC_SLOT_OFF_CLAIM_START) &
                         ~MYC_CLAIM_PENDING;
        uint64_t end = myc_load_relaxed_u64(w->map.base, off + MYC_SLOT_OFF_CLAIM_END);
        if (w->threads[i].reserved_open && start <= res->position && res->position < end)
            found = &w->threads[i];
    }
    pthread_mutex_unlock(&w->lock);
    return found != NULL ? found : ts;
}

static int finish_reservation(myc_writer *w, myc_reservation *res, int commit) {
    if (w == NULL) return myc_fail(MYC_ERR_CLOSED, "the writer is closed");
    myc_map *m = &w->map;
    if (res->payload == NULL) return myc_fail(MYC_ERR_ARG, "reservation already committed or aborted");
    if (myc_map_is_truncated(m)) return myc_map_check_size(m);
    /* A forked child's copy of the parent's claim: finishing it would
     * commit (or pad) a frame the parent is still filling. */
    if (__atomic_load_n(w->fork_counter, __ATOMIC_RELAXED) != w->fork_generation)
        return myc_fail(MYC_ERR_FORKED,
                        "this reservation on channel '%s' belongs to the parent of this forked "
                        "process; the child cannot commit or abort it",
                        m->name);
    myc_thread_slot *ts = reservation_owner(w, res);
    int rc;
    if (commit) {
        rc = myc_commit_frame(m, res->position);
        if (rc == MYC_OK && ts != NULL) myc_count_written(m, ts, 1, res->payload_len);
    } else {
        uint8_t *hdr = m->ring + (res->position & m->mask);
        /* Turn the claim into padding: relaxed type store, published by the
         * commit CAS; a revoked claim stays revoked (the CAS fails). */
        __atomic_store_n(MYC_AT(hdr, MYC_FRAME_OFF_TYPE, uint16_t), (uint16_t)MYC_TYPE_PADDING,
                         __ATOMIC_RELAXED);
        rc = myc_commit_frame(m, res->position);
        if (rc == MYC_ERR_ABANDONED) rc = MYC_OK; /* dropped either way */
    }
    if (ts != NULL) {
        ts->reserved_open = 0;
        myc_claim_finished(m, ts->slot, res->position + MYC_ALIGN16(MYC_FRAME_HEADER_SIZE + (uint64_t)res->payload_len));
    }
    res->payload = NULL;
    myc_wake_reader_if_sleeping(m);
    return rc;
}

int myc_commit(myc_writer *w, myc_reservation *res) { return finish_reservation(w, res, 1); }
int myc_abort(myc_writer *w, myc_reservation *res) { return finish_reservation(w, res, 0); }
