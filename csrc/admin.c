/*
 * Looking at a channel from outside: statistics, inspection, and the
 * operator's force-unblock.
 */
#include "ring_internal.h"

#include <string.h>
#include <sys/mman.h>

static void read_stats(const myc_map *m, myc_stats *s) {
    const uint8_t *b = m->base;
    memset(s, 0, sizeof *s);
    s->capacity = m->capacity;
    s->max_payload = m->max_payload;
    /* relaxed throughout: a snapshot of counters, nothing is ordered by it. */
    s->head = myc_load_relaxed_u64(b, MYC_OFF_HEAD);
    s->tail = myc_load_relaxed_u64(b, MYC_OFF_TAIL);
    s->frames_written = myc_load_relaxed_u64(b, MYC_OFF_FRAMES_WRITTEN);
    s->bytes_written = myc_load_relaxed_u64(b, MYC_OFF_BYTES_WRITTEN);
    s->full_events = myc_load_relaxed_u64(b, MYC_OFF_FULL_EVENTS);
    s->write_timeouts = myc_load_relaxed_u64(b, MYC_OFF_WRITE_TIMEOUTS);
    /* Live (and not yet recycled) slots keep their own counts. */
    for (uint32_t i = 0; i < MYC_WRITER_SLOTS; i++) {
        uint64_t off = myc_slot_off(i);
        s->frames_written += myc_load_relaxed_u64(b, off + MYC_SLOT_OFF_FRAMES);
        s->bytes_written += myc_load_relaxed_u64(b, off + MYC_SLOT_OFF_BYTES);
        s->full_events += myc_load_relaxed_u64(b, off + MYC_SLOT_OFF_FULL);
        s->write_timeouts += myc_load_relaxed_u64(b, off + MYC_SLOT_OFF_TIMEOUTS);
    }
    s->writer_wakes = myc_load_relaxed_u64(b, MYC_OFF_WRITER_WAKES);
    s->frames_read = myc_load_relaxed_u64(b, MYC_OFF_FRAMES_READ);
    s->bytes_read = myc_load_relaxed_u64(b, MYC_OFF_BYTES_READ);
    s->padding_frames = myc_load_relaxed_u64(b, MYC_OFF_PADDING_FRAMES);
    s->unblocks = myc_load_relaxed_u64(b, MYC_OFF_UNBLOCKS);
    s->reader_wakes = myc_load_relaxed_u64(b, MYC_OFF_READER_WAKES);
    s->reader_sleeps = myc_load_relaxed_u64(b, MYC_OFF_READER_SLEEPS);
    s->takeovers = myc_load_relaxed_u64(b, MYC_OFF_TAKEOVERS);
}

/* The file may have shrunk under the handle's mapping since its last call:
 * one fstat (statistics are no hot path).  The handle is const to callers;
 * only its handle-local truncated flag may be set. */
static int stats_map_ok(const myc_map *map) { return myc_map_check_size((myc_map *)map); }

int myc_writer_stats(const myc_writer *w, myc_stats *out) {
    if (w == NULL) return myc_fail(MYC_ERR_CLOSED, "the writer is closed");
    int rc = stats_map_ok(&w->map);
    if (rc != MYC_OK) return rc;
    read_stats(&w->map, out);
    return MYC_OK;
}

int myc_reader_stats(const myc_reader *r, myc_stats *out) {
    if (r == NULL) return myc_fail(MYC_ERR_CLOSED, "the reader is closed");
    int rc = stats_map_ok(&r->map);
    if (rc != MYC_OK) return rc;
    read_stats(&r->map, out);
    if (r->cursor_slot >= 0) { /* broadcast: this reader's own numbers */
        out->head = r->head;
        out->frames_read = r->frames_read;
        out->bytes_read = r->bytes_read;
        out->reader_sleeps = r->sleeps;
        out->reader_wakes = r->wakes;
    }
    return MYC_OK;
}

/* myc_info from a validated mapping (the copies in `map` of the immutable
 * fields; the rest read for display only). */
static void fill_info(const myc_map *map, myc_info *out) {
    memset(out, 0, sizeof *out);
    read_stats(map, &out->stats);
    const uint8_t *b = map->base;
    memcpy(out->schema_digest, b + MYC_OFF_SCHEMA_DIGEST, MYC_DIGEST_SIZE);
    memcpy(&out->created_ns, b + MYC_OFF_CREATED_NS, 8);
    memcpy(&out->format_version, b + MYC_OFF_VERSION, 4);
    out->reader_slots = map->readers;
    out->file_size = map->map_size;
    uint64_t start;
    memcpy(&out->creator_pid, b + MYC_OFF_CREATOR_PID, 4);
    memcpy(&start, b + MYC_OFF_CREATOR_START, 8);
    out->creator_alive = myc_owner_alive(MYC_OWNER(out->creator_pid, start));
    /* relaxed: ownership words read for display only. */
    uint64_t owner = myc_load_relaxed_u64(b, MYC_OFF_READER_OWNER);
    out->reader_pid = owner ? MYC_OWNER_PID(owner) : 0;
    out->reader_alive = owner ? myc_owner_alive(owner) : 0;
    for (uint32_t i = 0; i < MYC_WRITER_SLOTS; i++) {
        owner = myc_load_relaxed_u64(b, myc_slot_off(i) + MYC_SLOT_OFF_OWNER);
        if (owner == 0) continue;
        int32_t pid = MYC_OWNER_PID(owner);
        int known = 0; /* one line per process, whatever its thread count */
        for (uint32_t j = 0; j < out->writer_count; j++) known |= out->writer_pids[j] == pid;
        if (known) continue;
        out->writer_pids[out->writer_count] = pid;
        out->writer_alive[out->writer_count] = myc_owner_alive(owner);
        out->writer_count++;
    }
    out->stalled_pid = myc_load_relaxed_i32(b, MYC_OFF_STALL_PID);
    out->stalled_since_ns = myc_load_relaxed_u64(b, MYC_OFF_STALL_SINCE);
    out->hold_position = myc_load_relaxed_u64(b, MYC_OFF_HOLD);
}

int myc_inspect(const char *name, myc_info *out) {
    myc_map map;
    int rc = myc_open_header_snapshot(name, &map);
    if (rc != MYC_OK) return rc;
    fill_info(&map, out);
    myc_close_header_snapshot(&map);
    return MYC_OK;
}

int myc_writer_inspect(const myc_writer *w, myc_info *out) {
    if (w == NULL) return myc_fail(MYC_ERR_CLOSED, "the writer is closed");
    int rc = stats_map_ok(&w->map);
    if (rc != MYC_OK) return rc;
    fill_info(&w->map, out);
    return MYC_OK;
}

int myc_force_unblock(const char *name, int32_t *pid_out, uint64_t *position_out) {
    myc_map map;
    int rc = myc_open_map(name, MYC_ATTACH | MYC_TRUST_FOREIGN, 0, 0, 0, NULL, 0, 0, &map);
    if (rc != MYC_OK) return rc;
    myc_map *m = &map;
    if (m->readers != 0) {
        /* Every reader of a broadcast channel waits at its own position; a
         * stalled live writer holds each of them and revoking would have to
         * be agreed by all.  Writers untether stuck readers; a stuck writer
         * is seen in inspect (and killing it makes its claim skippable). */
        rc = myc_fail(MYC_ERR_ARG,
                      "channel '%s' is a broadcast channel: force-unblock applies to single-reader "
                      "channels (here a stalled writer shows in `mycelium-shm stat`; once it exits "
                      "or is killed, every reader skips its claim)",
                      name);
        goto out;
    }
    /* acquire: the stamp we look at belongs to the claim at HEAD. */
    uint64_t pos = myc_load_acquire_u64(m->base, MYC_OFF_HEAD);
    uint64_t tail = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
    if (pid_out) *pid_out = 0;
    if (position_out) *position_out = pos;
    if (!myc_positions_ok(m, pos, tail)) {
        rc = myc_fail(MYC_ERR_CORRUPT, "channel '%s' positions are inconsistent (head %llu, tail %llu)",
                      name, (unsigned long long)pos, (unsigned long long)tail);
        goto out;
    }
    uint8_t *hdr = m->ring + (pos & m->mask);
    uint64_t stamp = myc_load_acquire_u64(hdr, MYC_FRAME_OFF_STAMP);
    int claimed = stamp == (pos | MYC_STAMP_CLAIMED);
    int32_t slot = -1;
    for (uint32_t i = 0; i < MYC_WRITER_SLOTS && slot < 0; i++) {
        uint64_t off = myc_slot_off(i);
        /* Only a confirmed range names the claim's owner: an intended one
         * may be a writer that lost the race for it and will move on, and
         * writers clear a HOLD whose holder no longer covers it (the model,
         * tests/model, FORMAT_MD_HOLDER).  acquire: as the reader's scan. */
        uint64_t start = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_CLAIM_START);
        uint64_t end = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_CLAIM_END);
        uint64_t owner = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_OWNER);
        if ((start & MYC_CLAIM_PENDING) == 0 && start <= pos && pos < end && owner != 0 &&
            myc_owner_alive(owner)) {
            slot = (int32_t)i;
            if (pid_out) *pid_out = MYC_OWNER_PID(owner);
        }
    }
    if (pos == tail || myc_stamp_final(stamp, pos) || slot < 0) {
        rc = myc_fail(MYC_ERR_EMPTY, "the reader of channel '%s' is not held by a live writer's claim",
                      name);
        goto out;
    }
    /* acquire: pairs with the release CAS that set the hold (for the
     * message only: a batch whose first frame was revoked already). */
    uint64_t hold = myc_load_acquire_u64(m->base, MYC_OFF_HOLD);
    uint64_t holder_start = myc_load_acquire_u64(m->base, myc_slot_off((uint32_t)(slot < 0 ? 0 : slot)) +
                                                              MYC_SLOT_OFF_CLAIM_START);
    if (!claimed && slot >= 0 && hold != MYC_NO_HOLD && holder_start <= hold && hold < pos) {
        rc = myc_fail(MYC_ERR_READER_BUSY,
                      "the claim at position %llu of channel '%s' is the rest of a batch whose "
                      "first frame (position %llu) was force-unblocked already: its writer turns "
                      "it into padding when it runs again, and the reader skips it if that writer "
                      "dies; until then the reader waits",
                      (unsigned long long)pos, name, (unsigned long long)hold);
        goto out;
    }
    if (!claimed) {
        rc = myc_fail(MYC_ERR_READER_BUSY,
                      "the claim at position %llu of channel '%s' has no frame header yet (its "
                      "writer stopped between claiming and writing it, or after committing the "
                      "first frame of a batch: only a claim's first frame can be revoked); it "
                      "cannot be revoked until that writer runs again or dies",
                      (unsigned long long)pos, name);
        goto out;
    }
    uint64_t none = MYC_NO_HOLD;
    /* HOLD_SLOT names the holder of the standing HOLD (a writer waiting for
     * room clears the hold if that slot's owner is gone): while a hold
     * stands, refuse before overwriting it.  acquire: pairs with the
     * release CAS that cleared the hold. */
    uint64_t standing = myc_load_acquire_u64(m->base, MYC_OFF_HOLD);
    if (standing != MYC_NO_HOLD) {
        rc = myc_fail(MYC_ERR_READER_BUSY,
                      "channel '%s' still holds an earlier revoked claim at %llu (its writer has "
                      "not yet returned)",
                      name, (unsigned long long)standing);
        goto out;
    }
    /* relaxed: published by the release half of the HOLD CAS below. */
    myc_store_relaxed_u32(m->base, MYC_OFF_HOLD_SLOT, slot < 0 ? 0u : (uint32_t)slot);
    /* acq_rel CAS: writers that see the hold (acquire) stop short of it
     * before the claim can be skipped; one hold at a time. */
    if (!myc_cas_acq_rel_u64(m->base, MYC_OFF_HOLD, &none, pos)) {
        rc = myc_fail(MYC_ERR_READER_BUSY,
                      "channel '%s' still holds an earlier revoked claim at %llu (its writer has "
                      "not yet returned)",
                      name, (unsigned long long)none);
        goto out;
    }
    /* seq_cst CAS against the writer's commit CAS: exactly one succeeds. */
    uint64_t expected = pos | MYC_STAMP_CLAIMED;
    if (!__atomic_compare_exchange_n(MYC_AT(hdr, MYC_FRAME_OFF_STAMP, uint64_t), &expected,
                                     pos | MYC_STAMP_REVOKED, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_ACQUIRE)) {
        uint64_t held = pos;
        /* acq_rel: give the hold back exactly as it was taken. */
        myc_cas_acq_rel_u64(m->base, MYC_OFF_HOLD, &held, MYC_NO_HOLD);
        rc = myc_fail(MYC_ERR_EMPTY, "the frame at position %llu of channel '%s' was committed meanwhile",
                      (unsigned long long)pos, name);
        goto out;
    }
    /* relaxed: statistics. */
    myc_add_relaxed_u64(m->base, MYC_OFF_FORCED_UNBLOCKS, 1);
    /* The reader may be asleep waiting for this very claim.  release: its
     * futex_wait compares this word. */
    myc_add_release_u32(m->base, MYC_OFF_READER_FUTEX, 1);
    myc_futex_wake_all(m->base, MYC_OFF_READER_FUTEX);
    rc = MYC_OK;
out:
    myc_close_map(m);
    return rc;
}
