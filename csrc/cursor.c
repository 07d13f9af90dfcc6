/*
 * Broadcast channels: the cursor table (FORMAT.md 14).
 *
 * Each reader owns a slot with its position.  Writers never wait for a
 * lossy reader; they wait for the slowest tethered one, but only for so
 * long: a tethered reader that died, or held them back for longer than the
 * channel's untether window without reading, is untethered (and reads on
 * as a lossy reader until it has caught up).  A reader that may have been
 * lapped validates what it copied against TAIL; one that was lapped resumes
 * at the oldest lap start and learns from the lap table exactly how many
 * frames it lost.
 *
 * Only a slot's reader stores its POSITION, INDEX and counters; writers
 * store only TETHER (1 -> 0, by CAS) and UNTETHERS; attaching and
 * forgetting happen under CURSOR_LOCK.
 */
#include "ring_internal.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>

/* ------------------------------------------------------------------------ */
/* The cursor table lock (attach and forget only: rare, short)               */
/* ------------------------------------------------------------------------ */

/* CURSOR_LOCK names a process, so the threads of one process take turns
 * on this mutex first (one for every channel: the operations are rare and
 * short).  Taken with trylock and the same deadline, so that a child forked
 * while another thread of its parent held it gets an error, not a hang. */
static pthread_mutex_t g_table_threads = PTHREAD_MUTEX_INITIALIZER;

static int table_lock(myc_map *m) {
    uint64_t me = myc_self_owner();
    int64_t deadline = myc_now_ns() + MYC_ATTACH_WAIT_NS;
    while (pthread_mutex_trylock(&g_table_threads) != 0) {
        if (myc_now_ns() > deadline)
            return myc_fail(MYC_ERR_READER_BUSY,
                            "cursor table of '%s' stays locked by another thread of this process", m->name);
        sched_yield();
    }
    for (;;) {
        uint64_t cur = 0;
        /* acq_rel CAS: the holder's slot stores happen-before ours. */
        if (myc_cas_acq_rel_u64(m->base, MYC_OFF_CURSOR_LOCK, &cur, me)) break;
        int rc = MYC_OK;
        if (cur == me) /* not another thread (the mutex): a forked copy's or a hostile word */
            rc = myc_fail(MYC_ERR_ARG, "cursor table of '%s' is already locked by this process", m->name);
        /* A holder that died mid-change: take the lock over.  A slot it
         * left half set up (CLAIMING) is freed below. */
        else if (!myc_owner_alive(cur) && myc_cas_acq_rel_u64(m->base, MYC_OFF_CURSOR_LOCK, &cur, me))
            break;
        else if (myc_now_ns() > deadline)
            rc = myc_fail(MYC_ERR_READER_BUSY, "cursor table of '%s' stays locked by pid %d", m->name,
                          MYC_OWNER_PID(cur));
        if (rc != MYC_OK) {
            pthread_mutex_unlock(&g_table_threads);
            return rc;
        }
        myc_cpu_relax();
    }
    for (uint32_t i = 0; i < m->readers; i++) {
        uint64_t off = myc_cursor_off(i);
        /* relaxed: under the lock, nobody else changes STATE. */
        if (myc_load_relaxed_u32(m->base, off + MYC_CURSOR_OFF_STATE) == MYC_CURSOR_CLAIMING)
            myc_store_release_u32(m->base, off + MYC_CURSOR_OFF_STATE, MYC_CURSOR_FREE);
    }
    return MYC_OK;
}

static void table_unlock(myc_map *m) {
    uint64_t me = myc_self_owner();
    /* acq_rel: our slot stores happen-before the next holder's. */
    myc_cas_acq_rel_u64(m->base, MYC_OFF_CURSOR_LOCK, &me, 0);
    pthread_mutex_unlock(&g_table_threads);
}

/* ------------------------------------------------------------------------ */
/* Names and positions                                                       */
/* ------------------------------------------------------------------------ */

static int cursor_name_check(const char *cursor) {
    size_t len = strlen(cursor);
    if (len == 0 || len > MYC_CURSOR_NAME_MAX)
        return myc_fail(MYC_ERR_ARG, "cursor name '%.60s' is %zu bytes; it must be 1 to %u", cursor, len,
                        MYC_CURSOR_NAME_MAX);
    /* The channel-name rule (UTF-8, no control bytes) minus the path rules
     * that do not apply: reuse it for the bytes, then allow '/'. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)cursor[i] < 0x20 || cursor[i] == 0x7f)
            return myc_fail(MYC_ERR_ARG, "cursor name has a control byte at offset %zu", i);
    char probe[MYC_CURSOR_NAME_MAX + 1];
    memcpy(probe, cursor, len + 1);
    for (size_t i = 0; i < len; i++)
        if (probe[i] == '/' || probe[i] == '.') probe[i] = '_';
    if (myc_name_check(probe) != MYC_OK)
        return myc_fail(MYC_ERR_ARG, "cursor name is not valid UTF-8: %s", myc_last_error());
    return MYC_OK;
}

/* A slot's name, copied once and NUL-terminated whatever memory says. */
static void slot_name(const uint8_t *base, uint32_t slot, char out[MYC_CURSOR_NAME_MAX + 1]) {
    memcpy(out, base + myc_cursor_off(slot) + MYC_CURSOR_OFF_NAME, MYC_CURSOR_NAME_MAX + 1);
    out[MYC_CURSOR_NAME_MAX] = '\0';
}

/* TAIL and SEQ as one consistent pair: both only grow, and change together
 * (one 16-byte CAS), so a TAIL that did not move around the SEQ load names
 * the same claim. */
static void load_tail_seq(const myc_map *m, uint64_t *tail, uint64_t *seq) {
    for (;;) {
        /* acquire (all three): pairs with the claiming CAS. */
        uint64_t t1 = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
        uint64_t s = myc_load_acquire_u64(m->base, MYC_OFF_SEQ);
        uint64_t t2 = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
        if (t1 == t2) {
            *tail = t1;
            *seq = s;
            return;
        }
    }
}

/* Where a new cursor starts: the tail, or the oldest frame writers keep
 * (the slowest tethered cursor, else the oldest lap start in the ring). */
static void start_position(myc_map *m, int oldest, uint64_t *position, uint64_t *index, int *known) {
    uint64_t tail, seq;
    load_tail_seq(m, &tail, &seq);
    *position = tail;
    *index = seq;
    *known = 1;
    if (!oldest) return;
    uint64_t best = tail, best_index = seq;
    int found = 0;
    for (uint32_t i = 0; i < m->readers; i++) {
        uint64_t off = myc_cursor_off(i);
        /* acquire: the slot's words are published by its reader (release). */
        if (myc_load_acquire_u32(m->base, off + MYC_CURSOR_OFF_STATE) != MYC_CURSOR_READY) continue;
        if (!myc_load_acquire_u32(m->base, off + MYC_CURSOR_OFF_TETHER)) continue;
        uint64_t pos = myc_load_acquire_u64(m->base, off + MYC_CURSOR_OFF_POSITION);
        if (!myc_positions_ok(m, pos, tail) || pos >= best) continue;
        best = pos;
        best_index = myc_load_relaxed_u64(m->base, off + MYC_CURSOR_OFF_INDEX);
        found = 1;
    }
    if (found) {
        *position = best;
        *index = best_index;
        return;
    }
    /* No tethered reader: the oldest lap start still in the ring (a frame
     * always starts there); its index comes from the lap table. */
    uint64_t lap_start = tail < m->capacity ? 0 : (tail - m->capacity + m->mask) & ~m->mask;
    *position = lap_start;
    *known = 0;
}

/* ------------------------------------------------------------------------ */
/* Attach and detach                                                         */
/* ------------------------------------------------------------------------ */

/* Tether the slot (if its policy says so) and note from where the reader is
 * safe: a writer that looked at the table before the TETHER store may still
 * claim up to the TAIL it saw + capacity, so frames before the TAIL loaded
 * after that store are validated like a lossy reader's. */
static void tether(myc_reader *r, uint64_t off) {
    myc_map *m = &r->map;
    if ((r->policy & MYC_POLICY_MASK) != MYC_POLICY_TETHERED) {
        myc_store_seq_cst_u32(m->base, off + MYC_CURSOR_OFF_TETHER, 0);
        return;
    }
    /* seq_cst: ordered before the TAIL load (a writer's scan loads TETHER
     * seq_cst, then claims; see myc_cursor_limit). */
    myc_store_seq_cst_u32(m->base, off + MYC_CURSOR_OFF_TETHER, 1);
    r->safe_from = myc_load_seq_cst_u64(m->base, MYC_OFF_TAIL);
}

/* A TAIL that is not 16-aligned was not written by a writer (claims are
 * multiples of 16).  A new cursor would start there, mid-frame, and its
 * first stamp load at ring offset (TAIL & mask) could run up to 7 bytes
 * past the ring's end (found by tests/fuzz, mode 5).  Refuse it, as a
 * single-reader channel refuses such positions at attach; every later move
 * of a cursor (frame lengths rounded to 16, lap starts, a dead claim's
 * checked end) keeps it aligned. */
static int tail_aligned(myc_map *m) {
    /* acquire: as every TAIL load. */
    uint64_t tail_seen = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
    if ((tail_seen % MYC_FRAME_ALIGNMENT) == 0) return MYC_OK;
    return myc_fail(MYC_ERR_CORRUPT, "channel '%s' positions are inconsistent (tail %llu is not %u-aligned)",
                    m->name, (unsigned long long)tail_seen, MYC_FRAME_ALIGNMENT);
}

/* Under the table lock: the READY slot of durable cursor `cursor` (*slot,
 * its *owner; -1 if none) and the first reusable slot (*free_slot, -1 if
 * none); `names` lists the cursors that hold the other slots, for an error
 * message.  MYC_ERR_TOO_MANY_READERS if the cursor is new and no slot is
 * free. */
static int lookup(myc_map *m, const char *cursor, int *slot, uint64_t *owner, int *free_slot,
                  char *names, size_t names_size) {
    *slot = -1;
    *free_slot = -1;
    names[0] = '\0';
    for (uint32_t i = 0; i < m->readers; i++) {
        uint64_t off = myc_cursor_off(i);
        /* relaxed: under the lock, STATE and NAME only change under it. */
        uint32_t state = myc_load_relaxed_u32(m->base, off + MYC_CURSOR_OFF_STATE);
        if (state != MYC_CURSOR_READY) {
            if (*free_slot < 0) *free_slot = (int)i;
            continue;
        }
        char name[MYC_CURSOR_NAME_MAX + 1];
        slot_name(m->base, i, name);
        /* acquire: pairs with the owner's CAS. */
        uint64_t holder = myc_load_acquire_u64(m->base, off + MYC_CURSOR_OFF_OWNER);
        int alive = holder != 0 && myc_owner_alive(holder);
        uint32_t pol = myc_load_relaxed_u32(m->base, off + MYC_CURSOR_OFF_POLICY);
        if (cursor != NULL && (pol & MYC_CURSOR_DURABLE) && strcmp(name, cursor) == 0) {
            *slot = (int)i;
            *owner = holder;
            return MYC_OK;
        }
        /* An anonymous cursor whose reader is gone is free again. */
        if (!(pol & MYC_CURSOR_DURABLE) && !alive) {
            if (*free_slot < 0) *free_slot = (int)i;
            continue;
        }
        size_t used = strlen(names);
        snprintf(names + used, names_size - used, "%s'%s'", used ? ", " : "", name[0] ? name : "(anonymous)");
    }
    if (*free_slot >= 0) return MYC_OK;
    return myc_fail(MYC_ERR_TOO_MANY_READERS,
                    "channel '%s' has %u reader slots and all are taken (%s); forget a durable "
                    "cursor no reader needs (mycelium-shm cursor rm) or create the channel with "
                    "more readers (at most %u)",
                    m->name, m->readers, names, MYC_READER_SLOTS);
}

/* Under the table lock: set free slot `slot` up as cursor `cursor` (NULL:
 * anonymous) with `policy`, held by `owner` (0: detached), at the tail (or
 * the oldest lap start); its position and index go to the out words. */
static void slot_create(myc_map *m, uint32_t slot, const char *cursor, uint32_t policy, uint64_t owner,
                        int start_oldest, uint64_t *position, uint64_t *index, int *index_known) {
    uint64_t off = myc_cursor_off(slot);
    /* The slot is set up while CLAIMING: a lock holder that dies here
     * leaves it to be freed by the next one. */
    myc_store_release_u32(m->base, off + MYC_CURSOR_OFF_STATE, MYC_CURSOR_CLAIMING);
    start_position(m, start_oldest, position, index, index_known);
    /* relaxed: published by the release store of STATE below. */
    myc_store_relaxed_u32(m->base, off + MYC_CURSOR_OFF_POLICY, policy);
    myc_store_relaxed_u64(m->base, off + MYC_CURSOR_OFF_OWNER, owner);
    myc_store_relaxed_u64(m->base, off + MYC_CURSOR_OFF_POSITION, *position);
    myc_store_relaxed_u64(m->base, off + MYC_CURSOR_OFF_INDEX, *index);
    for (uint64_t w = MYC_CURSOR_OFF_FRAMES; w <= MYC_CURSOR_OFF_ATTACHED_NS; w += 8)
        myc_store_relaxed_u64(m->base, off + w, 0);
    char name[MYC_CURSOR_NAME_MAX + 1] = {0};
    if (cursor != NULL) memcpy(name, cursor, strlen(cursor));
    memcpy(m->base + off + MYC_CURSOR_OFF_NAME, name, sizeof name);
    myc_store_release_u32(m->base, off + MYC_CURSOR_OFF_STATE, MYC_CURSOR_READY);
}

int myc_cursor_attach(myc_reader *r, const char *cursor, uint32_t policy, int start_oldest) {
    myc_map *m = &r->map;
    if (policy == 0) policy = MYC_POLICY_TETHERED;
    if (policy != MYC_POLICY_TETHERED && policy != MYC_POLICY_LOSSY)
        return myc_fail(MYC_ERR_ARG, "unknown reader policy %u: use tethered (%u) or lossy (%u)", policy,
                        MYC_POLICY_TETHERED, MYC_POLICY_LOSSY);
    if (cursor != NULL) {
        int rc = cursor_name_check(cursor);
        if (rc != MYC_OK) return rc;
    }
    int rc = table_lock(m);
    if (rc != MYC_OK) return rc;
    rc = tail_aligned(m);
    if (rc != MYC_OK) {
        table_unlock(m);
        return rc;
    }
    uint64_t me = myc_self_owner();
    int slot = -1, resumed = 0, free_slot = -1;
    uint64_t owner = 0;
    char names[MYC_READER_SLOTS * (MYC_CURSOR_NAME_MAX + 3) + 1];
    rc = lookup(m, cursor, &slot, &owner, &free_slot, names, sizeof names);
    if (rc != MYC_OK) {
        table_unlock(m);
        return rc;
    }
    if (slot >= 0 && owner != 0 && myc_owner_alive(owner)) {
        table_unlock(m);
        return myc_fail(MYC_ERR_READER_BUSY, "cursor '%s' of channel '%s' is held by a live reader (pid %d)",
                        cursor, m->name, MYC_OWNER_PID(owner));
    }
    resumed = slot >= 0;
    uint64_t off;
    r->policy = policy | (cursor != NULL ? MYC_CURSOR_DURABLE : 0);
    if (resumed) {
        off = myc_cursor_off((uint32_t)slot);
        /* relaxed: the previous reader is gone; under the lock. */
        r->head = myc_load_acquire_u64(m->base, off + MYC_CURSOR_OFF_POSITION);
        r->index = myc_load_relaxed_u64(m->base, off + MYC_CURSOR_OFF_INDEX);
        r->index_known = 1;
        uint64_t tail = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
        /* A hostile or stale position: start over at the tail (counted as a
         * lap: what lay between is unknown). */
        if (r->head > tail || (r->head % MYC_FRAME_ALIGNMENT) != 0) {
            r->head = tail;
            r->index_known = 0;
        }
        myc_store_relaxed_u32(m->base, off + MYC_CURSOR_OFF_POLICY, r->policy);
        myc_store_release_u64(m->base, off + MYC_CURSOR_OFF_OWNER, me);
    } else {
        slot = free_slot;
        off = myc_cursor_off((uint32_t)slot);
        slot_create(m, (uint32_t)slot, cursor, r->policy, me, start_oldest, &r->head, &r->index,
                    &r->index_known);
    }
    r->cursor_slot = slot;
    myc_store_relaxed_u64(m->base, off + MYC_CURSOR_OFF_ATTACHED_NS, myc_realtime_ns());
    /* relaxed: only this reader writes its counters; continue them. */
    r->frames_read = myc_load_relaxed_u64(m->base, off + MYC_CURSOR_OFF_FRAMES);
    r->bytes_read = myc_load_relaxed_u64(m->base, off + MYC_CURSOR_OFF_BYTES);
    r->lost = myc_load_relaxed_u64(m->base, off + MYC_CURSOR_OFF_LOST);
    r->laps = myc_load_relaxed_u64(m->base, off + MYC_CURSOR_OFF_LAPS);
    r->safe_from = UINT64_MAX; /* until tethered: validate everything */
    tether(r, off);
    /* seq_cst: a dead predecessor's sleep bit would cost every write a wake. */
    myc_and_seq_cst_u32(m->base, MYC_OFF_READERS_SLEEPING, ~(1u << slot));
    if (resumed) myc_add_relaxed_u64(m->base, MYC_OFF_TAKEOVERS, 1);
    table_unlock(m);
    r->tail_cache = r->head;
    return MYC_OK;
}

void myc_cursor_detach(myc_reader *r) {
    myc_map *m = &r->map;
    uint64_t off = myc_cursor_off((uint32_t)r->cursor_slot);
    myc_cursor_publish_counters(r);
    myc_cursor_sleep_flag(r, 0);
    if (table_lock(m) != MYC_OK) return; /* a stuck lock: the slot reads as dead */
    uint64_t me = myc_self_owner();
    if (r->policy & MYC_CURSOR_DURABLE) {
        /* Durable: keep the position; writers untether it after the window
         * if it holds them back.  acq_rel: our POSITION store first. */
        myc_cas_acq_rel_u64(m->base, off + MYC_CURSOR_OFF_OWNER, &me, 0);
    } else {
        /* Anonymous: untether (writers stop waiting at once), then free. */
        myc_store_seq_cst_u32(m->base, off + MYC_CURSOR_OFF_TETHER, 0);
        myc_store_relaxed_u64(m->base, off + MYC_CURSOR_OFF_OWNER, 0);
        myc_store_release_u32(m->base, off + MYC_CURSOR_OFF_STATE, MYC_CURSOR_FREE);
    }
    table_unlock(m);
}

/* For an operator's call on cursor `cursor` of channel `name`: the name
 * checked, the channel mapped (read-write, any schema) and its cursor table
 * locked.  Undone by table_unlock, then myc_close_map. */
static int open_table(const char *name, const char *cursor, myc_map *m) {
    if (cursor == NULL) return myc_fail(MYC_ERR_ARG, "cursor name must not be NULL");
    int rc = cursor_name_check(cursor);
    if (rc != MYC_OK) return rc;
    rc = myc_open_map(name, MYC_ATTACH, 0, 0, 0, NULL, 0, 0, m);
    if (rc != MYC_OK) return rc;
    if (m->readers == 0)
        rc = myc_fail(MYC_ERR_ARG, "channel '%s' is a single-reader channel: it has no cursors", name);
    else
        rc = table_lock(m);
    if (rc != MYC_OK) myc_close_map(m);
    return rc;
}

int myc_cursor_register(const char *name, const char *cursor) {
    myc_map m;
    int rc = open_table(name, cursor, &m);
    if (rc != MYC_OK) return rc;
    int slot = -1, free_slot = -1;
    uint64_t owner = 0;
    char names[MYC_READER_SLOTS * (MYC_CURSOR_NAME_MAX + 3) + 1];
    rc = tail_aligned(&m);
    if (rc == MYC_OK) rc = lookup(&m, cursor, &slot, &owner, &free_slot, names, sizeof names);
    if (rc == MYC_OK && slot < 0) { /* new: detached, durable, tethered, at the tail */
        uint64_t position, index;
        int index_known;
        slot_create(&m, (uint32_t)free_slot, cursor, MYC_POLICY_TETHERED | MYC_CURSOR_DURABLE, 0, 0,
                    &position, &index, &index_known);
        /* seq_cst: as tether(); writers keep frames for it from now on. */
        myc_store_seq_cst_u32(m.base, myc_cursor_off((uint32_t)free_slot) + MYC_CURSOR_OFF_TETHER, 1);
    }
    table_unlock(&m);
    myc_close_map(&m);
    return rc;
}

int myc_cursor_forget(const char *name, const char *cursor) {
    myc_map m;
    int rc = open_table(name, cursor, &m);
    if (rc != MYC_OK) return rc;
    rc = myc_fail(MYC_ERR_NOT_FOUND, "channel '%s' has no cursor named '%s'", name, cursor);
    for (uint32_t i = 0; i < m.readers; i++) {
        uint64_t off = myc_cursor_off(i);
        if (myc_load_relaxed_u32(m.base, off + MYC_CURSOR_OFF_STATE) != MYC_CURSOR_READY) continue;
        char have[MYC_CURSOR_NAME_MAX + 1];
        slot_name(m.base, i, have);
        if (strcmp(have, cursor) != 0) continue;
        uint64_t owner = myc_load_acquire_u64(m.base, off + MYC_CURSOR_OFF_OWNER);
        if (owner != 0 && myc_owner_alive(owner)) {
            rc = myc_fail(MYC_ERR_READER_BUSY, "cursor '%s' of channel '%s' is held by a live reader (pid %d)",
                          cursor, name, MYC_OWNER_PID(owner));
            break;
        }
        myc_store_seq_cst_u32(m.base, off + MYC_CURSOR_OFF_TETHER, 0);
        myc_store_relaxed_u64(m.base, off + MYC_CURSOR_OFF_OWNER, 0);
        myc_store_release_u32(m.base, off + MYC_CURSOR_OFF_STATE, MYC_CURSOR_FREE);
        rc = MYC_OK;
        break;
    }
    table_unlock(&m);
    myc_close_map(&m);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The reader's side                                                         */
/* ------------------------------------------------------------------------ */

void myc_cursor_publish_counters(myc_reader *r) {
    myc_map *m = &r->map;
    uint64_t off = myc_cursor_off((uint32_t)r->cursor_slot);
    /* relaxed: statistics, written only by this reader. */
    myc_store_relaxed_u64(m->base, off + MYC_CURSOR_OFF_FRAMES, r->frames_read);
    myc_store_relaxed_u64(m->base, off + MYC_CURSOR_OFF_BYTES, r->bytes_read);
}

void myc_cursor_publish(myc_reader *r) {
    myc_map *m = &r->map;
    uint64_t off = myc_cursor_off((uint32_t)r->cursor_slot);
    /* relaxed: read with POSITION by a reader resuming this cursor (after
     * the owner CAS that orders both). */
    myc_store_relaxed_u64(m->base, off + MYC_CURSOR_OFF_INDEX, r->index);
    /* seq_cst store (release at least): writers that load POSITION know we
     * are done with the bytes before it; seq_cst orders the WAITING_MASK
     * load after it (Dekker with claim_wait, as for HEAD). */
    myc_store_seq_cst_u64(m->base, off + MYC_CURSOR_OFF_POSITION, r->head);
    uint32_t mask = myc_load_seq_cst_u32(m->base, MYC_OFF_WAITING_MASK);
    if (mask == 0) {
        r->woke_at = r->head;
        return;
    }
    /* Waiting writers may be held back by another, slower reader: a wake
     * per frame from every reader would cost a system call per frame and
     * reader.  Wake once this reader has freed an eighth of the ring since
     * its last wake, or (myc_cursor_idle) when it has caught up; a writer
     * also looks again after every sleep of at most 100 ms. */
    if (r->head - r->woke_at < m->capacity / 8) return;
    r->woke_at = r->head;
    /* release: writers' futex_wait compares this word. */
    myc_add_release_u32(m->base, MYC_OFF_SPACE_FUTEX, 1);
    myc_futex_wake_all(m->base, MYC_OFF_SPACE_FUTEX);
    r->wakes++;
}

int myc_cursor_intact(myc_reader *r, uint64_t position) {
    myc_map *m = &r->map;
    /* acquire fence: if the copy read any byte a writer stored after its
     * claim (and after the release fence that follows it), the loads below
     * see that claim's TAIL, or the untethering CAS before it. */
#ifndef __SANITIZE_THREAD__ /* ThreadSanitizer does not model fences */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
    uint64_t off = myc_cursor_off((uint32_t)r->cursor_slot);
    if (position >= r->safe_from &&
        myc_load_acquire_u32(m->base, off + MYC_CURSOR_OFF_TETHER) /* acquire: see above */)
        return 1;
    uint64_t tail = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
    /* Not position + capacity: it wraps for a hostile position near 2^64,
     * and a "not intact" the resync cannot act on (no lap start past the
     * position) made readers retry the same frame for ever (tests/fuzz).
     * Lapped means tail - capacity > position, so the resync moves on.  A
     * TAIL behind the position is no evidence of a lap; the walk's own
     * checks of TAIL report such positions as corrupt. */
    return tail <= position || tail - position <= m->capacity;
}

void myc_cursor_resync(myc_reader *r) {
    myc_map *m = &r->map;
    /* acquire: pairs with the claiming CAS. */
    uint64_t tail = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
    uint64_t lap_start = tail < m->capacity ? 0 : (tail - m->capacity + m->mask) & ~m->mask;
    if (lap_start <= r->head) return; /* not lapped after all: nothing to skip */
    r->head = lap_start;
    r->tail_cache = tail > lap_start ? tail : lap_start;
    r->resyncing = 1;
    r->laps++;
    r->held_bytes = 0;
    uint64_t off = myc_cursor_off((uint32_t)r->cursor_slot);
    /* relaxed: statistics, written only by this reader. */
    myc_store_relaxed_u64(m->base, off + MYC_CURSOR_OFF_LAPS, r->laps);
    myc_cursor_publish(r);
}

void myc_cursor_lap_start(myc_reader *r, uint64_t position) {
    myc_map *m = &r->map;
    uint64_t lap = position / m->capacity;
    uint64_t entry = MYC_OFF_LAP_TABLE + (lap % MYC_LAP_ENTRIES) * MYC_LAP_ENTRY_SIZE;
    /* acquire (twice) around a relaxed SEQ load: a seqlock read; the
     * writer stores LAP = 0, SEQ, then LAP = lap + 1 (release), before it
     * commits the frame whose stamp we acquired. */
    uint64_t tag = myc_load_acquire_u64(m->base, entry + MYC_LAP_OFF_LAP);
    uint64_t seq = myc_load_relaxed_u64(m->base, entry + MYC_LAP_OFF_SEQ);
#ifndef __SANITIZE_THREAD__
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
    uint64_t again = myc_load_relaxed_u64(m->base, entry + MYC_LAP_OFF_LAP);
    if (tag != lap + 1 || again != tag) return; /* unknown: keep counting, look at the next lap */
    if (r->resyncing && r->index_known && seq > r->index) {
        r->lost += seq - r->index;
        /* relaxed: statistics, written only by this reader. */
        myc_store_relaxed_u64(m->base, myc_cursor_off((uint32_t)r->cursor_slot) + MYC_CURSOR_OFF_LOST,
                              r->lost);
    }
    r->resyncing = 0;
    r->index = seq;
    r->index_known = 1;
}

void myc_cursor_idle(myc_reader *r) {
    myc_map *m = &r->map;
    if (r->head != r->woke_at) { /* a wake owed by the throttle of myc_cursor_publish */
        /* seq_cst: as in myc_cursor_publish (our POSITION store came first). */
        if (myc_load_seq_cst_u32(m->base, MYC_OFF_WAITING_MASK) != 0) {
            myc_add_release_u32(m->base, MYC_OFF_SPACE_FUTEX, 1); /* release: futex word */
            myc_futex_wake_all(m->base, MYC_OFF_SPACE_FUTEX);
            r->wakes++;
        }
        r->woke_at = r->head;
    }
    if ((r->policy & MYC_POLICY_MASK) != MYC_POLICY_TETHERED) return;
    uint64_t off = myc_cursor_off((uint32_t)r->cursor_slot);
    /* relaxed: our own slot; a stale 1 only delays this. */
    if (myc_load_relaxed_u32(m->base, off + MYC_CURSOR_OFF_TETHER)) return;
    myc_cursor_publish(r); /* POSITION before TETHER: a writer sees both */
    tether(r, off);
}

void myc_cursor_sleep_flag(myc_reader *r, int sleeping) {
    uint32_t bit = 1u << r->cursor_slot;
    /* seq_cst: the flag is ordered before the reader's last look (Dekker
     * with a writer's commit then mask load), as READER_SLEEPING. */
    if (sleeping)
        myc_or_seq_cst_u32(r->map.base, MYC_OFF_READERS_SLEEPING, bit);
    else
        myc_and_seq_cst_u32(r->map.base, MYC_OFF_READERS_SLEEPING, ~bit);
}

/* ------------------------------------------------------------------------ */
/* The writers' side                                                         */
/* ------------------------------------------------------------------------ */

static void untether(myc_map *m, uint32_t slot) {
    uint64_t off = myc_cursor_off(slot);
    /* CAS from the value seen, not from 1: the scan treats any non-zero
     * TETHER as tethered, and a hostile value (say 2) that a CAS from 1
     * never cleared made myc_cursor_limit untether the same blocker for
     * ever (found by tests/fuzz, mode 5).  Readers store only 0 and 1, so
     * for them this is the CAS 1 -> 0.  seq_cst (load and CAS): ordered
     * before this writer's scan and claim; the reader's acquire fence +
     * TETHER load after a copy sees it (myc_cursor_intact). */
    uint32_t seen = myc_load_seq_cst_u32(m->base, off + MYC_CURSOR_OFF_TETHER);
    if (seen != 0 && myc_cas_seq_cst_u32(m->base, off + MYC_CURSOR_OFF_TETHER, &seen, 0)) {
        myc_add_relaxed_u64(m->base, off + MYC_CURSOR_OFF_UNTETHERS, 1); /* statistics */
        myc_add_relaxed_u64(m->base, MYC_OFF_UNTETHERED, 1);
    }
}

/* The start of the oldest claim a live writer has made and not finished
 * (tail if none): writers must not lap it, or its late payload would land
 * in a newer frame that a lossy reader validates as intact (found by the
 * model, tests/model/broadcast.pml).  A single-reader channel needs no such
 * rule: HEAD never passes an unfinished claim; here, with no tethered
 * reader, nothing else holds writers back.  Writers mark a claim finished
 * by emptying their range (myc_claim_finished). */
/* myc_owner_alive, answered from the writer handle's cache (index: writer
 * slot, or MYC_WRITER_SLOTS + cursor slot) for MYC_ALIVE_CACHE_NS. */
static int owner_alive_cached(myc_writer *w, uint32_t index, uint64_t owner) {
    int64_t now = myc_now_ns();
    pthread_mutex_lock(&w->lock);
    int known = w->alive_cache[index].owner == owner && now - w->alive_cache[index].checked < MYC_ALIVE_CACHE_NS;
    int alive = w->alive_cache[index].alive;
    pthread_mutex_unlock(&w->lock);
    if (known) return alive;
    alive = myc_owner_alive(owner);
    pthread_mutex_lock(&w->lock);
    w->alive_cache[index].owner = owner;
    w->alive_cache[index].checked = now;
    w->alive_cache[index].alive = alive;
    pthread_mutex_unlock(&w->lock);
    return alive;
}

static uint64_t claims_limit(myc_writer *w, uint64_t tail, int32_t *pid) {
    myc_map *m = &w->map;
    uint64_t limit = tail;
    *pid = 0;
    for (uint32_t i = 0; i < MYC_WRITER_SLOTS; i++) {
        uint64_t off = myc_slot_off(i);
        /* acquire (all three): pairs with the writer's release stores; a
         * range that is empty again was finished. */
        uint64_t start = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_CLAIM_START) & ~MYC_CLAIM_PENDING;
        uint64_t end = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_CLAIM_END);
        /* Empty, at or past TAIL (an intention still to be tried), or more
         * than a lap old (stale or hostile): holds nobody.  An intended
         * range before TAIL is one whose CAS succeeded and is not yet
         * confirmed (or failed and is not yet retracted): kept, to be safe. */
        if (end <= start || start >= tail || tail - start > m->capacity || start >= limit) continue;
        uint64_t owner = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_OWNER);
        if (owner == 0 || !owner_alive_cached(w, i, owner)) continue; /* a dead writer's claim is skipped */
        limit = start;
        *pid = MYC_OWNER_PID(owner);
    }
    return limit;
}

void myc_claim_finished(myc_map *m, int slot, uint64_t end) {
    if (m->readers == 0 || slot < 0) return;
    /* release: our commits come first; an empty range [end, end) means no
     * claim in flight (the next claim publishes a new one the usual way:
     * start | PENDING first, so a writer dying in between leaves an empty
     * range too). */
    myc_store_release_u64(m->base, myc_slot_off((uint32_t)slot) + MYC_SLOT_OFF_CLAIM_START, end);
}

uint64_t myc_cursor_limit(myc_writer *w, uint64_t tail, int short_of_room) {
    myc_map *m = &w->map;
    int32_t claimer = 0;
    uint64_t in_flight = claims_limit(w, tail, &claimer);
    for (;;) {
        uint64_t limit = tail;
        int blocker = -1;
        for (uint32_t i = 0; i < m->readers; i++) {
            uint64_t off = myc_cursor_off(i);
            /* acquire: a READY slot's words were set up before it. */
            if (myc_load_acquire_u32(m->base, off + MYC_CURSOR_OFF_STATE) != MYC_CURSOR_READY) continue;
            /* seq_cst: against the reader's seq_cst TETHER store then TAIL
             * load (tether()): either we see it tethered, or it sees a TAIL
             * that bounds whatever we claim from this scan. */
            if (!myc_load_seq_cst_u32(m->base, off + MYC_CURSOR_OFF_TETHER)) continue;
            /* seq_cst: pairs with the reader's seq_cst POSITION store
             * (Dekker with WAITING_MASK, as HEAD). */
            uint64_t pos = myc_load_seq_cst_u64(m->base, off + MYC_CURSOR_OFF_POSITION);
            /* A position past TAIL or a lap behind: the reader is being
             * re-tethered behind (it validates) or the word is hostile;
             * neither may hold writers. */
            if (!myc_positions_ok(m, pos, tail)) continue;
            if (pos < limit) {
                limit = pos;
                blocker = (int)i;
            }
        }
        /* HEAD: the slowest tethered reader, for tools (writers of other
         * processes compute their own).  acq_rel CAS, only ever raised. */
        uint64_t head = myc_load_relaxed_u64(m->base, MYC_OFF_HEAD);
        while (head < limit && !myc_cas_acq_rel_u64(m->base, MYC_OFF_HEAD, &head, limit)) {
        }
        if (short_of_room) { /* for the Full message */
            pthread_mutex_lock(&w->lock);
            w->blocked_writer = in_flight < limit ? claimer : 0;
            if (in_flight < limit || blocker < 0) w->blocked_slot = -1;
            pthread_mutex_unlock(&w->lock);
        }
        if (blocker < 0 || !short_of_room || in_flight < limit)
            return in_flight < limit ? in_flight : limit;
        /* Short of room because of `blocker`: dead, or (alive or detached)
         * not moving while it held this writer back for the window? */
        uint64_t off = myc_cursor_off((uint32_t)blocker);
        uint64_t owner = myc_load_acquire_u64(m->base, off + MYC_CURSOR_OFF_OWNER);
        int64_t now = myc_now_ns();
        int drop = owner != 0 && !owner_alive_cached(w, MYC_WRITER_SLOTS + (uint32_t)blocker, owner);
        pthread_mutex_lock(&w->lock);
        if (w->blocked_slot != blocker || w->blocked_position != limit) {
            w->blocked_slot = blocker;
            w->blocked_position = limit;
            w->blocked_since = now;
        } else if (now - w->blocked_since >= (int64_t)m->untether_ms * 1000000LL) {
            drop = 1;
        }
        pthread_mutex_unlock(&w->lock);
        if (!drop) return limit < in_flight ? limit : in_flight;
        untether(m, (uint32_t)blocker);
    }
}

void myc_cursor_note_laps(myc_map *m, const claim_plan *p) {
    uint64_t end = p->tail + p->required;
    /* Does [tail, end) hold a lap start?  Only then lay the frames out. */
    uint64_t first_start = (p->tail + m->mask) & ~m->mask;
    if (first_start >= end) return;
    uint64_t pos = p->tail;
    for (uint32_t i = 0; i < p->planned; i++) {
        uint64_t fb = myc_plan_frame_bytes(p, i);
        uint64_t to_end = m->capacity - (pos & m->mask);
        if (fb > to_end) pos += to_end; /* padding first */
        if ((pos & m->mask) == 0) {
            uint64_t lap = pos / m->capacity;
            uint64_t entry = MYC_OFF_LAP_TABLE + (lap % MYC_LAP_ENTRIES) * MYC_LAP_ENTRY_SIZE;
            /* A seqlock write (myc_cursor_lap_start): LAP = 0, SEQ, LAP =
             * lap + 1, all before the frame's commit (seq_cst) publishes it. */
            myc_store_relaxed_u64(m->base, entry + MYC_LAP_OFF_LAP, 0);
#ifndef __SANITIZE_THREAD__
            __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
            myc_store_relaxed_u64(m->base, entry + MYC_LAP_OFF_SEQ, p->seq + i);
            myc_store_release_u64(m->base, entry + MYC_LAP_OFF_LAP, lap + 1);
        }
        pos += fb;
    }
}

void myc_cursor_wake_readers(myc_map *m) {
    static _Thread_local int64_t sleepers_checked; /* this thread's last look at /proc */
    /* seq_cst: after the commit CAS (seq_cst), against the reader's flag
     * store then last look. */
    uint32_t mask = myc_load_seq_cst_u32(m->base, MYC_OFF_READERS_SLEEPING);
    if (mask == 0) return;
    /* release: readers' futex_wait compares this word. */
    myc_add_release_u32(m->base, MYC_OFF_READER_FUTEX, 1);
    if (myc_futex_wake_all(m->base, MYC_OFF_READER_FUTEX) > 0) return;
    /* Nobody slept: bits of readers that died asleep?  Clear them (rate
     * limited: it reads /proc). */
    int64_t now = myc_now_ns();
    if (now - sleepers_checked < MYC_DEFAULT_STUCK_NS) return;
    sleepers_checked = now;
    for (uint32_t i = 0; i < m->readers; i++) {
        if (!(mask & (1u << i))) continue;
        uint64_t owner = myc_load_acquire_u64(m->base, myc_cursor_off(i) + MYC_CURSOR_OFF_OWNER);
        if (owner != 0 && myc_owner_alive(owner)) continue;
        myc_and_seq_cst_u32(m->base, MYC_OFF_READERS_SLEEPING, ~(1u << i));
    }
}

int myc_cursor_claim_passed(myc_map *m, uint64_t end) {
    /* acquire: pairs with the claiming CAS. */
    uint64_t tail = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
    if (end + m->capacity <= tail) return 1; /* lapped: every reader skips it anyway */
    for (uint32_t i = 0; i < m->readers; i++) {
        uint64_t off = myc_cursor_off(i);
        if (myc_load_acquire_u32(m->base, off + MYC_CURSOR_OFF_STATE) != MYC_CURSOR_READY) continue;
        uint64_t pos = myc_load_acquire_u64(m->base, off + MYC_CURSOR_OFF_POSITION);
        if (pos < end && pos + m->capacity > tail) return 0; /* may still walk over it */
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Inspection                                                                */
/* ------------------------------------------------------------------------ */

static void read_cursor(const myc_map *m, uint32_t slot, myc_cursor_info *out) {
    const uint8_t *b = m->base;
    uint64_t off = myc_cursor_off(slot);
    memset(out, 0, sizeof *out);
    slot_name(b, slot, out->name);
    out->slot = slot;
    /* relaxed throughout: a snapshot for display. */
    uint32_t pol = myc_load_relaxed_u32(b, off + MYC_CURSOR_OFF_POLICY);
    out->policy = pol & MYC_POLICY_MASK;
    out->durable = (pol & MYC_CURSOR_DURABLE) != 0;
    out->tethered = myc_load_relaxed_u32(b, off + MYC_CURSOR_OFF_TETHER) != 0;
    uint64_t owner = myc_load_relaxed_u64(b, off + MYC_CURSOR_OFF_OWNER);
    out->pid = owner ? MYC_OWNER_PID(owner) : 0;
    out->alive = owner ? myc_owner_alive(owner) : 0;
    out->position = myc_load_relaxed_u64(b, off + MYC_CURSOR_OFF_POSITION);
    uint64_t tail = myc_load_relaxed_u64(b, MYC_OFF_TAIL);
    out->lag = tail > out->position ? tail - out->position : 0;
    out->frames_read = myc_load_relaxed_u64(b, off + MYC_CURSOR_OFF_FRAMES);
    out->bytes_read = myc_load_relaxed_u64(b, off + MYC_CURSOR_OFF_BYTES);
    out->lost = myc_load_relaxed_u64(b, off + MYC_CURSOR_OFF_LOST);
    out->laps = myc_load_relaxed_u64(b, off + MYC_CURSOR_OFF_LAPS);
    out->untethers = myc_load_relaxed_u64(b, off + MYC_CURSOR_OFF_UNTETHERS);
    out->attached_ns = myc_load_relaxed_u64(b, off + MYC_CURSOR_OFF_ATTACHED_NS);
}

int myc_reader_cursor(const myc_reader *r, myc_cursor_info *out) {
    if (r == NULL) return myc_fail(MYC_ERR_CLOSED, "the reader is closed");
    if (out == NULL) return myc_fail(MYC_ERR_ARG, "out must not be NULL");
    if (r->cursor_slot < 0)
        return myc_fail(MYC_ERR_ARG, "channel '%s' is a single-reader channel: its reader has no cursor",
                        r->map.name);
    read_cursor(&r->map, (uint32_t)r->cursor_slot, out);
    return MYC_OK;
}

int myc_inspect_cursors(const char *name, myc_cursor_info *out, uint32_t max, uint32_t *count) {
    if (count == NULL || (out == NULL && max != 0)) return myc_fail(MYC_ERR_ARG, "out/count must not be NULL");
    myc_map m;
    int rc = myc_open_header_snapshot(name, &m);
    if (rc != MYC_OK) return rc;
    uint32_t n = 0;
    for (uint32_t i = 0; i < m.readers; i++) {
        if (myc_load_relaxed_u32(m.base, myc_cursor_off(i) + MYC_CURSOR_OFF_STATE) != MYC_CURSOR_READY)
            continue;
        if (n < max) read_cursor(&m, i, &out[n]);
        n++;
    }
    *count = n;
    myc_close_header_snapshot(&m);
    return MYC_OK;
}
