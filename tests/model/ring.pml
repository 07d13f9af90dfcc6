/*
 * ring.pml: a Promela model of the format-2 ring protocol as described in
 * the first format-2 design, docs/DESIGN-v2.md (the working notes added in commit 3e9e9c3 and removed
 * in 8c775b2; docs/FORMAT.md is the reference now, and -DFORMAT_MD models
 * its newer claim-range rules): claim and commit (writers), consume and
 * reclaim (the reader), force-unblock (the operator's HOLD protocol).
 * Writers can die at any step; the reader can crash and be replaced.
 * tests/model/run.sh checks it exhaustively with spin, together with
 * deliberately broken variants that must fail.
 *
 * Processes, and the parts of DESIGN-v2 they model
 *   writer(w)  "Write" steps 1-6 (step 7, the wake-up, is the reader's
 *              blocking guard), NF write calls of one frame each, using writer
 *              registry slot w. Dies, or not, before any of its steps.
 *   reader     "Read": consumes frames in order, validates stamps, skips
 *              PADDING and REVOKED frames, waits for a live writer's claim and
 *              reclaims (skips) a claim whose covering writers are all dead.
 *              It never writes the ring; it publishes only HEAD. It can crash
 *              and be replaced by a reader that starts at HEAD ("Ownership").
 *   operator   "Force-unblock": HOLD = P, HOLD_SLOT, stamp CLAIMED -> REVOKED;
 *              MAXREV attempts, at any time.
 *
 * Abstraction
 *   - The ring has C cells; a cell stands for one 16-byte unit. A frame takes
 *     1 or 2 cells (a header cell and at most one payload cell): 16-aligned
 *     byte positions become counters, and ring index = position % C.
 *   - Each cell holds what the ring holds at that 16-byte offset:
 *       st_pos, st_state  the u64 stamp (position | state), one word;
 *       flen              frame_len, in cells;
 *       data              the payload bytes, modelled as a tag: the id of the
 *                         frame whose writer wrote them.
 *     The payload cell of a 2-cell frame is payload only: writing it also
 *     overwrites the stamp word there, with a value that never validates
 *     (state 0) unless -DFORGE_PAYLOAD.
 *   - Positions are counters far below NONE (255), which stands for UINT64_MAX.
 *   - Sequential consistency: each Promela step is atomic. The design's
 *     relaxed/acquire/release orderings are not modelled.
 *   - Granularity: every store of the design that another process could
 *     observe half-done is its own step, except where a comment at the step
 *     says why merging it with a neighbour changes nothing observable (loads
 *     of values that only grow, loads of words nobody else may change then).
 *   - Futex sleeps and wake-ups (READER_SLEEPING, WAITING_MASK, step 7) are
 *     blocking guards: a sleeper moves on once what it waits for holds. "After
 *     stuck_timeout" is "at any time".
 *   - Death: a writer may die (dead[w] = true, the kernel's view: its pid is
 *     gone) instead of taking any of its steps, and never moves again. Death
 *     is permanent (the design checks pid and start time).
 *   - A deadlock (no process can move, some process not at an end state) is
 *     an "invalid end state" error of pan.
 *
 * Ghost state, read only by assertions. Frame ids f = w*NF + k + 1 (the k-th
 * frame of writer w).
 *   gpos[f]       position of f's header, set by f's successful tail CAS
 *   committed[f]  f's commit CAS succeeded
 *   acked[f]      the write of f returned OK. The OK is decided by the commit
 *                 CAS, so acked = committed; a writer that dies before it
 *                 returns still counts (requiring its delivery is stronger).
 *   abandoned[f]  f's writer was told FrameAbandoned
 *   revoked[f]    force-unblocked by the operator
 *   reclaimed[f]  skipped by the reader as a dead writer's claim
 *   delivered[f]  consumed: the reader stored HEAD past f with f's bytes in
 *                 hand. (A copying read publishes HEAD before it returns, so
 *                 a reader dying between the two loses the frame for its
 *                 caller; that is the design's at-most-once, not modelled.)
 *   lastdel[w]    1 + the sequence number of w's last delivered frame
 *   cowner[c]     the committed, undelivered frame whose bytes are in cell c
 *                 (0 = none): set by the commit, cleared by the delivery
 *
 * Properties (assertions)
 *   (a) no writer ever stores into a cell that holds a committed, undelivered
 *       frame (WCHK, at every ring store);
 *   (b) a frame is delivered at most once and in per-writer order (at the
 *       delivery); a frame whose write returned OK is never skipped (at the
 *       commit and at the reclaim) and is delivered (in the reader's final
 *       state, reached once every writer has finished or died and the reader
 *       has caught up with TAIL);
 *   (c) no stale frame: the reader delivers a frame only if its stamp names
 *       the reader's position, and all its bytes come from the one frame
 *       committed there, which was neither revoked nor reclaimed;
 *   (d) a frame whose writer was told FrameAbandoned is never delivered (at
 *       the delivery, at the abandonment, in the final state).
 *   The reader's length checks (else CorruptChannel) and its "no slot covers
 *   P" check (else CorruptChannel) are assertions too: a healthy channel must
 *   never look corrupt.
 *
 * Amendments to DESIGN-v2 (the model checks the design with these; each has
 * a variant that takes the design as written, which fails):
 *   A1 a writer whose tail CAS fails retracts its published claim range
 *      before it goes back to step 1 (else -DSTALE_RANGE deadlocks);
 *   A2 the reader re-loads the stamp before it reports CorruptChannel, not
 *      only before a reclaim (else -DCORRUPT_NO_RELOAD);
 *   A3 the operator takes HOLD_SLOT from the claimed frame's header, where the
 *      writer records its slot (DESIGN-v2 does not say where HOLD_SLOT comes
 *      from; finding it by claim range, -DHOLD_SLOT_BY_RANGE, deadlocks).
 *
 * Variants (spin -DNAME)
 *   Broken protocols, each of which must fail:
 *   BUG_RECLAIM_LIVE  the reader skips a stuck claim after its timeout even if
 *                     a covering writer is alive (format 1).
 *   BUG_NO_STAMP      the reader accepts any stamp whose state is COMMITTED,
 *                     whatever position it names.
 *   BUG_NO_RELOAD     the reader skips a dead writer's claim without
 *                     re-loading the stamp first.
 *   BUG_NO_HOLD       writers check room against HEAD only, ignoring HOLD.
 *   BUG_HOLD_FIRST    writers load HOLD before HEAD in the room check.
 *   The design as written, where an amendment was needed (must fail):
 *   STALE_RANGE, CORRUPT_NO_RELOAD, HOLD_SLOT_BY_RANGE (see A1-A3).
 *   The claim-range rules of docs/FORMAT.md (sections 4.1, 5.3, 8.3), which
 *   replaced DESIGN-v2's while this model was written:
 *   FORMAT_MD         claim_start carries a PENDING bit (intended range) from
 *                     before the tail CAS until a confirming store after it;
 *                     no retraction after a failed CAS; the reader prefers
 *                     confirmed covering slots; the operator's HOLD_SLOT is
 *                     the first live slot whose range covers P (0 if none);
 *                     a waiting writer clears HOLD if HOLD_SLOT's owner is
 *                     dead or its range no longer covers HOLD.
 *     with proposed fixes (all three needed; run.sh checks each is):
 *     FORMAT_MD_NOTORN            publish claim_start|PENDING before
 *                                 claim_end (no torn "confirmed" range);
 *     FORMAT_MD_CONFIRMED_HOLDER  the operator picks only a live slot whose
 *                                 CONFIRMED range covers P;
 *     FORMAT_MD_RETRACT           a writer whose CAS failed retracts its
 *                                 intended range (as A1).
 *   Other:
 *   FORGE_PAYLOAD     payload bytes may look like a valid COMMITTED stamp for
 *                     the position they are at (fails: see run.sh).
 *   NO_WRITE_TIMEOUT  writers never give up waiting for room.
 *   FINE              finer steps: the writer's loads, claim_start and the CAS,
 *                     payload and commit, and the operator's HOLD, HOLD_SLOT
 *                     and stamp CASes are separate steps (a check of the
 *                     merges; about 4x the states).
 *   COVER=n           assert(false) at coverage point n (REACHED(n)), to show
 *                     that the point is reached (run.sh does this).
 *   C, NF, MAXREV     sizes, below.
 */

#ifndef C
#define C       4       /* ring capacity, in cells */
#endif
#define NW      2       /* writer processes, one registry slot each */
#ifndef NF
#define NF      2       /* frames (write calls) per writer */
#endif
#ifndef MAXREV
#define MAXREV  1       /* force-unblocks by the operator */
#endif

#define NFR     (NW*NF)
#define NONE    255     /* UINT64_MAX: HOLD = none; no slot */

/* stamp states (DESIGN-v2 "Frame header"); 0 = never written, or payload */
#define CLAIMED   1
#define COMMITTED 2
#define PADDING   3
#define REVOKED   4

/* ---- shared memory ----------------------------------------------------- */
byte TAIL = 0;                  /* header block 1 */
byte HEAD = 0;                  /* header block 2 */
byte HOLD = NONE;               /* header block 2 */
#ifdef FORMAT_MD
byte HOLD_SLOT = 0;             /* header block 2 (zero-filled by the creator) */
#else
byte HOLD_SLOT = NONE;          /* header block 2 */
#endif

byte st_pos[C];                 /* the ring */
byte st_state[C];
byte flen[C];
byte data[C];

byte claim_start[NW];           /* writer registry: slot w is writer w's */
byte claim_end[NW];

bool dead[NW];                  /* the kernel's view: writer w's pid is gone */
bool pend[NW];                  /* FORMAT_MD only: claim_start's PENDING bit */

/* ---- ghost state ----------------------------------------------------------- */
byte gpos[NFR+1] = NONE;
bool committed[NFR+1];
bool acked[NFR+1];
bool abandoned[NFR+1];
bool revoked[NFR+1];
bool reclaimed[NFR+1];
bool delivered[NFR+1];
byte lastdel[NW];
byte cowner[C];
bool wdone[NW];                 /* writer w returned from its last write */

#define FWRITER(f)   (((f) - 1) / NF)
#define FSEQ(f)      (((f) - 1) % NF)
#define MIN(a, b)    ((a) < (b) -> (a) : (b))

/* coverage points: run.sh builds with -DCOVER=n to show that point n is reached */
#ifdef COVER
#define REACHED(n)   assert(COVER != (n))
#else
#define REACHED(n)   skip
#endif

/* (a): the cell about to be written holds no committed, undelivered frame */
#define WCHK(c)      assert(cowner[c] == 0)

/* the reader's stamp checks at position p: stamp == p | state */
#ifdef BUG_NO_STAMP
#define ISCOMMITTED(sp, ss, p)  ((ss) == COMMITTED)
#else
#define ISCOMMITTED(sp, ss, p)  ((sp) == (p) && (ss) == COMMITTED)
#endif
#define ISSKIP(sp, ss, p)       ((sp) == (p) && ((ss) == PADDING || (ss) == REVOKED))
#define ISVALID(sp, ss, p)      (ISCOMMITTED(sp, ss, p) || ISSKIP(sp, ss, p))
#define VALIDAT(p)              ISVALID(st_pos[(p) % C], st_state[(p) % C], p)

#define COVERS(w, p)    (claim_start[w] <= (p) && (p) < claim_end[w])
#define ANYLIVECOVER(p) ((!dead[0] && COVERS(0, p)) || (!dead[1] && COVERS(1, p)))
#define ALLWFIN         ((wdone[0] || dead[0]) && (wdone[1] || dead[1]))

/* where a frame of ln cells starting at tail t ends (padding to the ring end
 * first if it would straddle it), and would step 1 find room for it now? */
#define PADFOR(t, ln)  ((((t) % C) + (ln) > C) -> C - ((t) % C) : 0)
#ifdef BUG_NO_HOLD
#define ROOMNOW(ln)    (TAIL + PADFOR(TAIL, ln) + (ln) <= HEAD + C)
#else
#define ROOMNOW(ln)    (TAIL + PADFOR(TAIL, ln) + (ln) <= MIN(HEAD, HOLD) + C)
#endif
#ifdef FORMAT_MD
/* FORMAT.md 5.3: the reader waits if a live confirmed slot covers p, or if no
 * confirmed slot covers p and a live intended one does */
#define LIVECONF(w, p)  (!dead[w] && !pend[w] && COVERS(w, p))
#define CONFCOV(w, p)   (!pend[w] && COVERS(w, p))
#define LIVEINT(w, p)   (!dead[w] && pend[w] && COVERS(w, p))
#define READERWAITS(p)  (LIVECONF(0, p) || LIVECONF(1, p) || \
                         (!CONFCOV(0, p) && !CONFCOV(1, p) && (LIVEINT(0, p) || LIVEINT(1, p))))
/* FORMAT.md 8.3: a waiting writer clears HOLD h if HOLD_SLOT's owner is dead
 * or its range no longer covers h */
#define HSLOT           (HOLD_SLOT >= NW -> 0 : HOLD_SLOT)  /* "a value of 32 or more is read as slot 0" */
#define HOLDERGONE(h)   (dead[HSLOT] || !COVERS(HSLOT, h))
#else
#define READERWAITS(p)  ANYLIVECOVER(p)
#define HOLDERGONE(h)   (HOLD_SLOT != NONE && dead[HOLD_SLOT])
#endif
#define HOLDER_DEAD    (HOLD != NONE && HOLDERGONE(HOLD))

mtype:act = { NOTHING, WAIT, AGAIN };

/* ============================================================================ */
/* Writer                                                                       */
/* ============================================================================ */

/* An option of every writer step: die here instead (and forget the locals, so
 * that dead writers do not make states differ). */
#define OR_DIE   :: atomic { dead[w] = true; WRESET; goto gone }
#define WRESET   k = 0; fid = 0; ln = 0; t = 0; pad = 0; req = 0; h = 0; hd = 0; p = 0; c = 0; ok = false

/* step 5, after the header: the payload. In a 2-cell frame it overwrites the
 * stamp word of the second cell. */
#ifdef FORGE_PAYLOAD
#define CLOBBER(c)  st_pos[c] = p + 1; st_state[c] = COMMITTED; flen[c] = 1  /* reads as "p+1 | COMMITTED, len 1" */
#else
#define CLOBBER(c)  st_pos[c] = 0; st_state[c] = 0; flen[c] = 0
#endif
#define PAYLOAD \
    c = p % C; data[c] = fid; \
    if \
    :: ln == 2 -> c = (p + 1) % C; WCHK(c); data[c] = fid; CLOBBER(c) \
    :: else -> skip \
    fi; \
    c = 0

/* step 6: commit: CAS stamp p|CLAIMED -> p|COMMITTED. Success: the write
 * returns OK. Failure: the frame was force-unblocked (REVOKED): the write
 * returns FrameAbandoned. */
#define COMMIT \
    c = p % C; \
    if \
    :: st_pos[c] == p && st_state[c] == CLAIMED -> \
        st_state[c] = COMMITTED; \
        assert(!reclaimed[fid]);        /* (b) an OK frame was not skipped */ \
        committed[fid] = true; \
        acked[fid] = true; \
        cowner[c] = fid; \
        cowner[(p + 1) % C] = (ln == 2 -> fid : cowner[(p + 1) % C]); \
        ok = true \
    :: else -> \
        assert(revoked[fid]);           /* only a force-unblock fails a commit */ \
        assert(!delivered[fid]);        /* (d) */ \
        abandoned[fid] = true; \
        REACHED(6); \
        ok = false \
    fi; \
    c = 0

proctype writer(byte w)
{
    byte k = 0, fid, ln, t, pad, req, h, hd, p, c;
    bool ok;

    do
    :: k < NF ->
        /* a write call: frame fid, of 1 or 2 cells */
        if
        :: d_step { fid = w * NF + k + 1; ln = 1 }
        :: d_step { fid = w * NF + k + 1; ln = 2 }
        fi;
retry:
        /* Step 1: t = TAIL; lay out the frame (padding to the ring end if it
         * would straddle it: req = pad + ln); check room against
         * min(HEAD, HOLD), loading HEAD before HOLD. Step 2 begins:
         * claim_end = t + req.
         * One step, which is sound: TAIL only grows, so a writer whose CAS on
         * t succeeds saw TAIL == t all along; HEAD only grows, so HEAD loaded
         * when HOLD is loaded allows at least the room the earlier load
         * would; nobody can tell a store made at once from one made a bit
         * later. (Loading HOLD first is not the same: -DBUG_HOLD_FIRST.)
         * With no room, the writer clears the HOLD of a dead holder (CAS
         * HOLD hd -> none), in the same step: HOLD_SLOT is stored with HOLD
         * (see the operator), and a holder dying later wakes the sleeper. */
#ifdef BUG_HOLD_FIRST
        if
        :: hd = HOLD
        OR_DIE
        fi;
#endif
#ifdef FINE
        if
        :: d_step { t = TAIL; pad = PADFOR(t, ln); req = pad + ln }
        OR_DIE
        fi;
        if
        :: h = HEAD
        OR_DIE
        fi;
        if
        :: hd = HOLD
        OR_DIE
        fi;
#endif
        if
        :: atomic {
#ifndef FINE
               t = TAIL;
               pad = PADFOR(t, ln);
               req = pad + ln;
               h = HEAD;
#ifndef BUG_HOLD_FIRST
               hd = HOLD;
#endif
#endif
#ifdef BUG_NO_HOLD
               hd = NONE;
#endif
               if
               :: t + req <= MIN(h, hd) + C ->          /* room */
#ifdef FORMAT_MD_NOTORN
                   claim_start[w] = t; pend[w] = true;  /* claim_start|PENDING first */
#endif
                   claim_end[w] = t + req;             /* step 2 */
                   ok = true
               :: else ->
                   if
                   :: hd != NONE && HOLDERGONE(hd) && HOLD == hd ->
                       HOLD = NONE;
                       REACHED(7)
                   :: else -> skip
                   fi;
                   t = 0; pad = 0; req = 0; ok = false
               fi;
               h = 0; hd = 0
           }
        OR_DIE
        fi;
        if
        :: ok -> ok = false
        :: else ->
            /* No room: sleep (WAITING_MASK) until step 1 would find room or
             * the holder of HOLD has died (the real writer is woken by every
             * move of HEAD or HOLD and sleeps again while there is no room),
             * or time out (the write returns Full). Dying asleep is the same
             * as dying before falling asleep, so that option comes first. */
            if
            :: skip
            OR_DIE
            fi;
            if
            :: (ROOMNOW(ln) || HOLDER_DEAD) -> goto retry
#ifndef NO_WRITE_TIMEOUT
            :: REACHED(10); goto next
#endif
            fi
        fi;

        /* Step 2 (end): claim_start = t. Step 3: CAS TAIL t -> t + req; on
         * failure back to step 1. One step: until TAIL reaches t no reader
         * stops in [t, t + req); a live writer covering P only makes a
         * reader wait; a writer dying between the two would leave the range
         * that a writer dying after a failed CAS leaves. */
#ifdef FORMAT_MD
#define PENDSET  pend[w] = true                        /* t | PENDING: one word */
#else
#define PENDSET  skip
#endif
#ifdef FINE
        if
        :: d_step { claim_start[w] = t; PENDSET }
        OR_DIE
        fi;
#endif
        if
        :: atomic {
#ifndef FINE
               claim_start[w] = t;
               PENDSET;
#endif
               if
               :: TAIL == t ->
                   TAIL = t + req; gpos[fid] = t + pad;
                   p = t + pad; t = 0; req = 0; ok = true
               :: else -> ok = false
               fi
           }
        OR_DIE
        fi;
        if
        :: ok ->
            ok = false;
#ifdef FORMAT_MD
            /* FORMAT.md 4.1 step 4: confirm the range: claim_start = t */
            if
            :: pend[w] = false
            OR_DIE
            fi
#else
            skip
#endif
        :: else ->
            REACHED(9);
#if (!defined(STALE_RANGE) && !defined(FORMAT_MD)) || defined(FORMAT_MD_RETRACT)
            /* AMENDMENT A1: retract the published range (claim_start =
             * claim_end: empty) before going back to step 1, which may sleep.
             * As written, the range stays: it covers the claim that won the
             * CAS, and if that claim's writer dies, the reader waits for this
             * live writer, which may be asleep waiting for room that only the
             * reader can make: deadlock (-DSTALE_RANGE). */
            if
            :: claim_start[w] = t + req
            OR_DIE
            fi;
#endif
            d_step { t = 0; req = 0; pad = 0 };
            goto retry
        fi;

        /* Step 4: padding: frame_len (type 0), then stamp = P|PADDING. One
         * step: frame_len is read only at a cell whose stamp names the
         * reader's position, which this one's does not yet. */
        if
        :: pad > 0 ->
            if
            :: d_step {
                   c = (p - pad) % C; WCHK(c);
                   flen[c] = pad; st_pos[c] = p - pad; st_state[c] = PADDING;
                   c = 0; pad = 0
               }
            OR_DIE
            fi
        :: else -> skip
        fi;

        /* Step 5: frame_len/type/flags and stamp = p|CLAIMED (one step, as
         * for the padding; under A3 the flags carry the slot w). */
        if
        :: d_step { c = p % C; WCHK(c); flen[c] = ln; st_pos[c] = p; st_state[c] = CLAIMED; c = 0 }
        OR_DIE
        fi;
        /* Step 5 (payload) and step 6 (commit). */
#if defined(FORGE_PAYLOAD) || defined(FINE)
        if
        :: d_step { PAYLOAD }
        OR_DIE
        fi;
        if
        :: d_step { COMMIT }
        OR_DIE
        fi;
#else
        /* One step: nothing reads a frame's payload before its commit (the
         * stamp word it overwrites never validates), and the step can happen
         * when the real payload stores would. */
        if
        :: d_step { PAYLOAD; COMMIT }
        OR_DIE
        fi;
#endif
        /* FrameAbandoned: the writer clears HOLD (CAS HOLD p -> none). (The
         * design then turns the rest of its batch into padding; a batch's
         * later frames are committed by a store and are never CLAIMED, so
         * never revoked: FORMAT.md 4.2.  The model writes one frame per
         * call.) */
        if
        :: ok -> skip
        :: else ->
            if
            :: HOLD = (HOLD == p -> NONE : HOLD)
            OR_DIE
            fi
        fi;
next:
        atomic { k++; ln = 0; t = 0; pad = 0; req = 0; h = 0; hd = 0; p = 0; ok = false; fid = 0 }
    :: else -> break
    od;
    wdone[w] = true;
gone:
    skip
}

/* ============================================================================ */
/* Reader: local head P; its only shared store is HEAD.                         */
/* ============================================================================ */
active proctype reader()
{
    byte P, i, sp, ss, ln, f, f2, t, emin, w, g, ndead;
    bool got, stuck, live, cov;
    mtype:act act;

    /* a reader takes READER_OWNER and starts at the published HEAD */
    P = HEAD;
    do
    :: /* stamp = load(P). If it is P|COMMITTED: copy frame_len ONCE,
        * validate the copy (1 <= len, fits before the ring end,
        * P + len <= TAIL), copy the payload, publish HEAD = P + len: the
        * delivery. (The ghost checks come first only so that a broken
        * variant reports the property it breaks, not the length check.) If
        * it is P|PADDING or P|REVOKED: validate len, skip.
        * One step: once the stamp names P in one of those states, nothing
        * can change the frame's cells (writers stay below min(HEAD, HOLD) + C;
        * the operator only CASes a CLAIMED stamp), so the loads commute with
        * every other step, and dying before the HEAD store is the same as
        * dying before the stamp load. */
        d_step {
            i = P % C;
            sp = st_pos[i]; ss = st_state[i];
            if
            :: ISCOMMITTED(sp, ss, P) ->
                ln = flen[i]; t = TAIL;
                f = data[i];
                f2 = (ln == 2 -> data[(i + 1) % C] : f);
                assert(sp == P);                                     /* (c) */
                assert(f != 0 && f2 == f);                           /* (c) one frame's bytes */
                assert(gpos[f] == P);                                /* (c) the frame written at P */
                assert(committed[f] && !revoked[f] && !reclaimed[f]); /* (c) */
                assert(!abandoned[f]);                               /* (d) */
                assert(!delivered[f]);                               /* (b) at most once */
                assert(FSEQ(f) + 1 > lastdel[FWRITER(f)]);           /* (b) per-writer order */
                assert(ln >= 1 && i + ln <= C && P + ln <= t);      /* else CorruptChannel */
                delivered[f] = true;
                lastdel[FWRITER(f)] = FSEQ(f) + 1;
                cowner[i] = 0;
                cowner[(i + 1) % C] = (ln == 2 -> 0 : cowner[(i + 1) % C]);
                if
                :: P >= C -> REACHED(1)      /* a frame of the ring's second lap */
                :: else -> skip
                fi;
                HEAD = P + ln; P = P + ln;
                got = true
            :: ISSKIP(sp, ss, P) ->
                ln = flen[i]; t = TAIL;
                assert(ln >= 1 && i + ln <= C && P + ln <= t);  /* else CorruptChannel */
                if
                :: ss == PADDING -> REACHED(2)
                :: else -> REACHED(3)
                fi;
                HEAD = P + ln; P = P + ln;
                got = true
            :: else -> got = false
            fi;
            i = 0; ln = 0; f = 0; f2 = 0; t = 0;
            if
            :: got -> sp = 0; ss = 0; got = false; stuck = false
            :: else -> stuck = true     /* sp, ss kept for the next step */
            fi
        }
        if
        :: !stuck -> skip               /* consumed or skipped one: go round */
        :: stuck ->
            /* The reader dies (say, an operator kills a reader stalled on a
             * writer), and a new one takes READER_OWNER and starts at the
             * published HEAD. Since P == HEAD at every step (the HEAD store is
             * part of the consuming step), the new reader is where the old
             * one was before its last stamp load. Dying at any other point
             * (while it waits, say) is the same as pausing there and dying
             * here later; offering it only here keeps a reader that is stuck
             * for good visible as a deadlock. */
            d_step { assert(P == HEAD); P = HEAD; stuck = false; sp = 0; ss = 0; REACHED(8) }
        :: stuck ->
            /* The stamp did not validate. If P == TAIL: nothing there. If
             * P < TAIL, a claim is in flight: after stuck_timeout, look at the
             * writer slots whose [claim_start, claim_end) covers P. If any has
             * a live owner: wait. If all are dead: re-load the stamp (a commit
             * just before death wins), then skip to the smallest claim_end
             * among them (store HEAD; write nothing). If none covers P:
             * CorruptChannel.
             * One step for the loads of TAIL, the slots and the stamp (but not
             * the stamp load above): TAIL only grows, so P < TAIL stays true;
             * a dead writer's slot never changes again; a slot seen live makes
             * the reader wait whenever it is seen; and only P's claimant, whose
             * range covers P from before TAIL passed P until it is done (so
             * the scan sees it live, or dead and writing nothing more), or the
             * operator's revoke (skipped either way) can change the stamp at P.
             * (-DFORMAT_MD: FORMAT.md's rules, confirmed slots before
             * intended ones.) */
            d_step {
                stuck = false;
                t = TAIL;
                assert(P <= t);
                if
                :: P == t -> act = NOTHING
                :: else ->
                    live = false; cov = false; emin = NONE; ndead = 0; w = 0;
#ifdef FORMAT_MD
                    /* FORMAT.md 5.3: confirmed slots first, then intended */
                    live = READERWAITS(P);
                    g = NONE;       /* smallest end among the dead intended */
                    do
                    :: w < NW ->
                        if
                        :: COVERS(w, P) ->
                            cov = true;
                            if
                            :: dead[w] && !pend[w] -> emin = MIN(claim_end[w], emin); ndead++
                            :: dead[w] && pend[w] -> g = MIN(claim_end[w], g); ndead++
                            :: else -> skip
                            fi
                        :: else -> skip
                        fi;
                        w++
                    :: else -> break
                    od;
                    emin = (emin == NONE -> g : emin);
                    g = 0;
#else
                    do
                    :: w < NW ->
                        if
                        :: COVERS(w, P) ->
                            cov = true;
#ifdef BUG_RECLAIM_LIVE
                            /* format 1: reclaim after the timeout, live or not */
                            emin = MIN(claim_end[w], emin)
#else
                            if
                            :: !dead[w] -> live = true
                            :: else -> emin = MIN(claim_end[w], emin); ndead++
                            fi
#endif
                        :: else -> skip
                        fi;
                        w++
                    :: else -> break
                    od;
#endif
                    if
                    :: live -> act = WAIT; REACHED(11)
                    :: else ->
#ifdef CORRUPT_NO_RELOAD
                        assert(cov);    /* as written: no slot covers P = CorruptChannel */
#endif
                        /* Re-load the stamp. AMENDMENT A2: DESIGN-v2 re-loads
                         * it only when all covering writers are dead; it must
                         * also be re-loaded before CorruptChannel: the load
                         * above may predate a commit after which the writer
                         * moved its range on (-DCORRUPT_NO_RELOAD). */
#ifdef BUG_NO_RELOAD
                        if
                        :: !cov -> sp = st_pos[P % C]; ss = st_state[P % C]
                        :: else -> skip     /* reclaims on the stamp loaded above */
                        fi;
#else
                        sp = st_pos[P % C]; ss = st_state[P % C];
#endif
                        if
                        :: ISVALID(sp, ss, P) -> REACHED(15)  /* go round and read it */
                        :: else ->
                            assert(cov);                      /* else CorruptChannel */
                            g = 1;
                            do
                            :: g <= NFR ->
                                if
                                :: gpos[g] != NONE && P <= gpos[g] && gpos[g] < emin ->
                                    assert(!committed[g]);    /* (b) no committed frame skipped */
                                    reclaimed[g] = true
                                :: else -> skip
                                fi;
                                g++
                            :: else -> break
                            od;
                            g = 0;
                            REACHED(4);
                            if
                            :: ndead > 1 -> REACHED(5)        /* several dead slots cover P */
                            :: else -> skip
                            fi;
                            HEAD = emin;
                            P = emin
                        fi;
                        act = AGAIN
                    fi
                fi;
                t = 0; live = false; cov = false; emin = 0; ndead = 0; w = 0; sp = 0; ss = 0
            }
            if
            :: act == NOTHING ->
                /* sleep until a writer moves TAIL; or, once every writer has
                 * finished or died, the run is over */
                if
                :: TAIL != P -> skip
                :: (TAIL == P && ALLWFIN) -> break
                fi
            :: act == WAIT ->
                /* a live writer covers P: wait (back-pressure, STALL_PID)
                 * until the stamp at P validates or no live writer covers P */
                (VALIDAT(P) || !READERWAITS(P))
            :: act == AGAIN -> skip
            fi;
            d_step { act = 0 }
        fi
    od;

    /* The final state: every writer has finished or died, and the reader has
     * consumed everything up to TAIL. */
    atomic {
        assert(HEAD == TAIL && P == HEAD);
        g = 1; ln = 0;
        do
        :: g <= NFR ->
            assert(!acked[g] || delivered[g]);          /* (b) OK => delivered */
            assert(!(abandoned[g] && delivered[g]));    /* (d) */
            ln = (delivered[g] -> ln + 1 : ln);
            g++
        :: else -> break
        od;
        if
        :: dead[0] && dead[1] -> REACHED(13)
        :: else -> skip
        fi;
        if
        :: ln == NFR -> REACHED(12)                     /* every frame delivered */
        :: else -> skip
        fi;
        g = 0; ln = 0
    }
}

/* ============================================================================ */
/* Operator: force-unblock, MAXREV times at most, at any time.                  */
/* ============================================================================ */
/* HOLD_SLOT = the slot of the claim at p */
#if defined(FORMAT_MD) && defined(FORMAT_MD_CONFIRMED_HOLDER)
/* proposed fix to FORMAT.md 8.3: the first live slot whose CONFIRMED range
 * covers p (a written header implies a confirmed range) */
#define SETSLOT   HOLD_SLOT = (LIVECONF(0, p) -> 0 : (LIVECONF(1, p) -> 1 : 0))
#elif defined(FORMAT_MD)
/* FORMAT.md 8.3: the first slot with a live owner whose range covers p, 0 if
 * none */
#define SETSLOT   HOLD_SLOT = (!dead[0] && COVERS(0, p) -> 0 : (!dead[1] && COVERS(1, p) -> 1 : 0))
#elif defined(HOLD_SLOT_BY_RANGE)
/* DESIGN-v2 does not say where HOLD_SLOT comes from. Found like the reader
 * finds claimants (a slot whose range covers p), it can name a live writer
 * whose range covers p for a while (its CAS failed, or is going to); if the
 * real holder then dies, nobody clears HOLD and writers wait for room for
 * good. */
#define SETSLOT   if \
                  :: COVERS(0, p) -> HOLD_SLOT = 0 \
                  :: COVERS(1, p) -> HOLD_SLOT = 1 \
                  :: else -> HOLD_SLOT = NONE \
                  fi
#else
/* AMENDMENT A3: the writer records its slot in the frame header (flags)
 * before the CLAIMED stamp, and the operator reads it there. Modelled with
 * the ghost owner of the claim at p. */
#define SETSLOT   g = 1; \
                  do \
                  :: g <= NFR -> HOLD_SLOT = (gpos[g] == p -> FWRITER(g) : HOLD_SLOT); g++ \
                  :: else -> break \
                  od; \
                  g = 0
#endif

active proctype operator()
{
    byte n = 0, p, g;
    bool lost;

end:
    do
    :: /* p = HEAD; if the stamp at p is p|CLAIMED (the claim's header is
        * written) and HOLD is none: CAS HOLD none -> p, and store HOLD_SLOT.
        * One step, taken only when it succeeds: an operator that finds
        * nothing to unblock changes nothing. (HOLD_SLOT stored with HOLD
        * hides the moment when a writer waiting for room could see the new
        * HOLD with an old HOLD_SLOT; with two writers, no writer then waits
        * for room: the other one is the holder. -DFINE splits the step.) */
        atomic {
            (n < MAXREV && HOLD == NONE &&
             st_pos[HEAD % C] == HEAD && st_state[HEAD % C] == CLAIMED) ->
            n++; p = HEAD;
#if defined(FINE) && defined(FORMAT_MD)
            SETSLOT             /* FORMAT.md: HOLD_SLOT, then the HOLD CAS */
        }
        HOLD = p;               /* CAS none -> p: only this operator sets HOLD */
#elif defined(FINE)
            HOLD = p            /* DESIGN-v2: the HOLD CAS, then HOLD_SLOT */
        }
        atomic { SETSLOT }
#else
            HOLD = p;
            SETSLOT
        }
#endif
        /* CAS stamp p|CLAIMED -> p|REVOKED. If the writer committed first,
         * give HOLD back: CAS HOLD p -> none (in the same step unless FINE:
         * in between, HOLD only holds writers back). */
        d_step {
            if
            :: st_pos[p % C] == p && st_state[p % C] == CLAIMED ->
                st_state[p % C] = REVOKED;
                g = 1;
                do
                :: g <= NFR ->
                    revoked[g] = (gpos[g] == p -> true : revoked[g]);
                    g++
                :: else -> break
                od;
                g = 0;
                lost = false
            :: else ->
                REACHED(14);
                lost = true
            fi;
#ifndef FINE
            HOLD = (lost && HOLD == p -> NONE : HOLD);
            p = 0; lost = false
#endif
        }
#ifdef FINE
        if
        :: lost -> HOLD = (HOLD == p -> NONE : HOLD)
        :: else -> skip
        fi;
        d_step { p = 0; lost = false }
#endif
    od
}

init
{
    atomic {
        run writer(0);
        run writer(1)
    }
}
