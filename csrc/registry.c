/*
 * Who holds what: the writer registry (one slot per writing thread, each
 * naming its owner and publishing its claim range) and the reader's
 * ownership word.  Identities are one u64 (pid | start time << 32) taken
 * with one CAS, so no second process can see half an owner.
 */
#include "ring_internal.h"

#include <stdio.h>

/* Counters a slot keeps for its owner, folded into the block-4 totals when
 * the slot is released or recycled, so no count is lost with the slot. */
static const struct {
    uint64_t slot_off, total_off;
} k_slot_counters[] = {
    {MYC_SLOT_OFF_FRAMES, MYC_OFF_FRAMES_WRITTEN},
    {MYC_SLOT_OFF_BYTES, MYC_OFF_BYTES_WRITTEN},
    {MYC_SLOT_OFF_FULL, MYC_OFF_FULL_EVENTS},
    {MYC_SLOT_OFF_TIMEOUTS, MYC_OFF_WRITE_TIMEOUTS},
};

static void fold_counters(myc_map *m, uint64_t off) {
    for (size_t i = 0; i < sizeof k_slot_counters / sizeof k_slot_counters[0]; i++) {
        /* relaxed exchange: statistics; the exchange makes a count move to
         * the totals once even if two processes recycle the slot. */
        uint64_t v = __atomic_exchange_n(MYC_AT(m->base, off + k_slot_counters[i].slot_off, uint64_t),
                                         0, __ATOMIC_RELAXED);
        if (v != 0) myc_add_relaxed_u64(m->base, k_slot_counters[i].total_off, v);
    }
}

int myc_registry_take(myc_map *m) {
    uint64_t me = myc_self_owner();
    /* acquire: a dead slot's claim is behind a HEAD we have seen. */
    uint64_t head = myc_load_acquire_u64(m->base, MYC_OFF_HEAD);
    for (uint32_t i = 0; i < MYC_WRITER_SLOTS; i++) {
        uint64_t off = myc_slot_off(i);
        /* acquire: pairs with the release half of the previous owner's CAS
         * on the owner word, so its claim words are visible. */
        uint64_t owner = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_OWNER);
        if (owner != 0 && myc_owner_alive(owner)) continue;
        /* A free or dead slot may still describe a claim the reader has not
         * reached (a dead writer's, or one a closing writer never
         * committed): it tells the reader how far to skip, so keep it. */
        uint64_t end = myc_load_acquire_u64(m->base, off + MYC_SLOT_OFF_CLAIM_END);
        if (m->readers ? !myc_cursor_claim_passed(m, end) : end > head) continue;
        /* acq_rel CAS: exactly one process takes the slot; release
         * publishes nothing yet, acquire sees the old owner's words. */
        if (myc_cas_acq_rel_u64(m->base, off + MYC_SLOT_OFF_OWNER, &owner, me)) {
            fold_counters(m, off);
            return (int)i;
        }
    }
    return myc_fail(MYC_ERR_TOO_MANY_WRITERS,
                    "channel '%s' has %u writer slots and all hold live writers (or claims of "
                    "dead ones not yet skipped by the reader); one slot is used per writing thread",
                    m->name, MYC_WRITER_SLOTS);
}

void myc_registry_release(myc_map *m, int slot) {
    if (slot < 0) return;
    uint64_t off = myc_slot_off((uint32_t)slot);
    fold_counters(m, off);
    uint64_t me = myc_self_owner();
    /* acq_rel: our claim words (all committed by now) are ordered before
     * the slot is seen free. */
    myc_cas_acq_rel_u64(m->base, off + MYC_SLOT_OFF_OWNER, &me, 0);
}

int myc_reader_take(myc_map *m, int *took_over) {
    uint64_t me = myc_self_owner();
    *took_over = 0;
    for (;;) {
        /* acquire: pairs with the previous owner's CAS (release) that gave
         * the channel up, so its last HEAD store is visible to us. */
        uint64_t cur = myc_load_acquire_u64(m->base, MYC_OFF_READER_OWNER);
        if (cur != 0 && cur != me && myc_owner_alive(cur))
            return myc_fail(MYC_ERR_READER_BUSY, "channel '%s' already has a live reader (pid %d)",
                            m->name, MYC_OWNER_PID(cur));
        if (cur == me)
            return myc_fail(MYC_ERR_READER_BUSY,
                            "channel '%s' already has a live reader in this process (pid %d)", m->name,
                            MYC_OWNER_PID(cur));
        /* acq_rel CAS on the whole identity: exactly one process becomes
         * the reader, and nobody ever sees a pid without its start time. */
        if (myc_cas_acq_rel_u64(m->base, MYC_OFF_READER_OWNER, &cur, me)) {
            *took_over = cur != 0;
            return MYC_OK;
        }
    }
}

void myc_reader_give_back(myc_map *m) {
    uint64_t me = myc_self_owner();
    /* acq_rel: our HEAD store happens-before the next owner's acquire. */
    myc_cas_acq_rel_u64(m->base, MYC_OFF_READER_OWNER, &me, 0);
}
