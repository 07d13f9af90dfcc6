/*
 * ring.pml: a Promela model of the format-2 ring protocol (docs/DESIGN-v2.md):
 * claim / commit (writers), consume / reclaim (reader), force-unblock (the
 * operator's HOLD protocol), with writers that can die at any step and a
 * reader that can crash and be replaced. Checked exhaustively by spin;
 * tests/model/run.sh builds and runs it and its deliberately broken variants.
 *
 * Processes and the design steps they model
 *   writer(w)   "Write" steps 1-6, NF frames, one frame per write call, using
 *               registry slot w. May die before any of its shared-memory steps.
 *   reader      "Read": consume in order, validate stamps, skip padding and
 *               revoked frames, reclaim a stuck claim whose covering writers
 *               are all dead. Publishes nothing but HEAD; can crash and be
 *               replaced by a reader that starts at HEAD ("Ownership").
 *   operator    "Force-unblock": HOLD = P, HOLD_SLOT, stamp CLAIMED -> REVOKED.
 *
 * Abstraction
 *   - The ring has C cells; a cell stands for one 16-byte unit. A frame takes
 *     1 or 2 cells (header cell + optional payload cell), so 16-aligned
 *     positions become plain counters and ring index = position % C.
 *   - Each cell holds what the ring holds at that 16-byte offset:
 *       st_pos, st_state  the u64 stamp (position | state), one word;
 *       flen              frame_len (in cells);
 *       data              payload bytes, modelled as a tag: the id of the frame
 *                         whose writer wrote them.
 *     A frame's second cell is payload: writing it clobbers the stamp word
 *     there (state 0, which never validates; see FORGE_PAYLOAD).
 *   - Sequential consistency: each Promela step is atomic. The design's
 *     relaxed/release/acquire annotations are not modelled. Steps that only
 *     read, or that no other process can observe in between, are merged (each
 *     merge says why); every separate store of the design that another
 *     process can observe half-done is a separate step.
 *   - Futex sleeps/wakes (READER_SLEEPING, WAITING_MASK, write step 7) are
 *     blocking guards: a sleeper blocks until what it waits for has changed.
 *     "After stuck_timeout" is "at any time".
 *   - A writer can die before any of its shared steps (including while it
 *     sleeps for room): it sets dead[w] (the kernel's view: the pid is gone)
 *     and takes no further step. Death is permanent (pid + start time).
 *   - Positions are counters well below NONE (255), the model's UINT64_MAX.
 *
 * Ghost state (read only by assertions). Frame ids f = w*NF + k + 1 (the
 * k-th frame of writer w).
 *   gpos[f]       position of f's header, set by f's successful tail CAS
 *   committed[f]  f's commit CAS succeeded
 *   acked[f]      the write returned OK (= committed: the OK is decided by the
 *                 commit CAS; requiring delivery of every committed frame is
 *                 the stronger check)
 *   abandoned[f]  f's writer was told FrameAbandoned
 *   revoked[f]    force-unblocked          reclaimed[f]  skipped as dead
 *   delivered[f]  consumed by the reader: the HEAD store past f, with f's
 *                 bytes copied (a copying read publishes HEAD before it
 *                 returns; a crash after that store loses the frame for the
 *                 application, the design's at-most-once, outside the model)
 *   lastdel[w]    1 + sequence number of w's last delivered frame
 *   cowner[c]     the committed, undelivered frame whose bytes are in cell
 *                 c, 0 = none (set by the commit, cleared by the delivery)
 *
 * Properties (assertions)
 *   (a) a writer never writes a cell that holds a committed, undelivered frame
 *       (WCHK at every ring store);
 *   (b) every frame delivered at most once and in per-writer order (at the
 *       delivery); a frame whose write returned OK is never skipped (at the
 *       commit and at the reclaim) and is delivered (in the reader's final
 *       state, reached once every writer has finished or died and the reader
 *       has caught up with TAIL);
 *   (c) no stale frame: the reader delivers a frame only if its stamp names
 *       the reader's position and all its bytes come from the one frame that
 *       was committed there, neither revoked nor reclaimed;
 *   (d) a frame whose writer was told FrameAbandoned is never delivered (at
 *       the delivery, at the abandonment, and in the final state).
 *   A deadlock (no process can move, some process not at its end) is an
 *   "invalid end state" error of pan.
 *
 * Variants (spin -DNAME). The first five are deliberately broken protocols;
 * run.sh expects each to fail.
 *   BUG_RECLAIM_LIVE  the reader skips a stuck claim after its timeout even if
 *                     a covering writer is alive (format 1).
 *   BUG_NO_STAMP      the reader accepts any stamp whose state is COMMITTED,
 *                     whatever position it names.
 *   BUG_NO_RELOAD     the reader skips a dead writer's claim without
 *                     re-loading the stamp (loses a commit made just before
 *                     the writer died).
 *   BUG_NO_HOLD       writers check room against HEAD only, ignoring HOLD.
 *   BUG_HOLD_FIRST    writers load HOLD before HEAD in the room check.
 *   The next two are DESIGN-v2 taken literally, where the model needed an
 *   amendment (see the comments at the amendments). run.sh expects them to
 *   fail too and reports them as findings.
 *   STALE_RANGE       a writer whose tail CAS failed goes back to step 1
 *                     leaving its claim range published.
 *   CORRUPT_NO_RELOAD the reader reports CorruptChannel when no slot covers P
 *                     without re-loading the stamp first.
 *   Others:
 *   FORGE_PAYLOAD     payload bytes may equal a valid COMMITTED stamp for the
 *                     position they sit at (an exploration, see run.sh).
 *   C, NW (2 or 3), NF, MAXREV: sizes, below.
 */

#ifndef C
#define C       4       /* ring capacity, in cells */
#endif
#ifndef NW
#define NW      2       /* writer processes (= writer slots) */
#endif
#ifndef NF
#define NF      2       /* frames per writer */
#endif
#ifndef MAXREV
#define MAXREV  1       /* force-unblock attempts by the operator */
#endif

#define NFR     (NW*NF)
#define NONE    255     /* UINT64_MAX: HOLD = none, no slot */

/* stamp states (DESIGN-v2 "Frame header"); 0 = never written / payload bytes */
#define CLAIMED   1
#define COMMITTED 2
#define PADDING   3
#define REVOKED   4

/* ---- shared memory -------------------------------------------------------- */
byte TAIL = 0;                  /* header block 1 */
byte HEAD = 0;                  /* header block 2 */
byte HOLD = NONE;               /* header block 2 */
byte HOLD_SLOT = NONE;          /* header block 2 */

byte st_pos[C];                 /* the ring */
byte st_state[C];
byte flen[C];
byte data[C];

byte claim_start[NW];           /* writer registry; slot w is writer w's */
byte claim_end[NW];

bool dead[NW];                  /* the kernel's view of the writer processes */

/* ---- ghost state ------------------------------------------------------------ */
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
bool rdone = false;             /* the reader reached its final state */

#define FWRITER(f)   (((f) - 1) / NF)
#define FSEQ(f)      (((f) - 1) % NF)
#define MIN(a, b)    ((a) < (b) -> (a) : (b))

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

#define COVERS(w, p)  (claim_start[w] <= (p) && (p) < claim_end[w])
#define LIVECOV(w, p) (!dead[w] && COVERS(w, p))
#define WFIN(w)       (wdone[w] || dead[w])
#if NW == 2
#define ANYLIVECOVER(p) (LIVECOV(0, p) || LIVECOV(1, p))
#define ALLWFIN         (WFIN(0) && WFIN(1))
#elif NW == 3
#define ANYLIVECOVER(p) (LIVECOV(0, p) || LIVECOV(1, p) || LIVECOV(2, p))
#define ALLWFIN         (WFIN(0) && WFIN(1) && WFIN(2))
#else
#error "NW must be 2 or 3"
#endif

mtype:act = { NOTHING, WAIT, AGAIN };

/* would step 1 find room for a frame of ln cells now? */
#define LAYOUT(t, ln)  ((t) + ((((t) % C) + (ln) > C) -> C - ((t) % C) : 0) + (ln))
#ifdef BUG_NO_HOLD
#define ROOMNOW(ln)    (LAYOUT(TAIL, ln) <= HEAD + C)
#else
#define ROOMNOW(ln)    (LAYOUT(TAIL, ln) <= MIN(HEAD, HOLD) + C)
#endif

#define HOLDER_DEAD   (HOLD != NONE && HOLD_SLOT != NONE && dead[HOLD_SLOT])

/* A writer step that the writer may not live to take: either the step, or the
 * process dies here (dead[w] = true) and takes no further step. */
#ifdef NODEATH
#define OR_DIE
#else
#define OR_DIE        :: atomic { dead[w] = true; WRESET; goto gone }
#endif
/* a dead writer's locals are forgotten (fewer distinct states) */
#define WRESET        k = 0; fid = 0; ln = 0; t = 0; pad = 0; req = 0; h = 0; hd = 0; p = 0; c = 0; ok = false

/* write step 5 (after the header): the payload; it clobbers the stamp word of
 * the frame's second cell */
#ifdef FORGE_PAYLOAD
#define CLOBBER(c)   st_pos[c] = p + 1; st_state[c] = COMMITTED; flen[c] = 1  /* reads as "p+1 | COMMITTED, len 1" */
#else
#define CLOBBER(c)   st_pos[c] = 0; st_state[c] = 0; flen[c] = 0
#endif
#define PAYLOAD \
    c = p % C; data[c] = fid; \
    if \
    :: ln == 2 -> c = (p + 1) % C; WCHK(c); data[c] = fid; CLOBBER(c) \
    :: else -> skip \
    fi; \
    c = 0

/* write step 6: commit: CAS stamp p|CLAIMED -> p|COMMITTED. Success: the write
 * returns OK. Failure: the frame was force-unblocked (REVOKED): FrameAbandoned */
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
        assert(revoked[fid]);           /* only a revoke makes the CAS fail */ \
        assert(!delivered[fid]);        /* (d) */ \
        abandoned[fid] = true; \
        ok = false \
    fi; \
    c = 0

/* ============================================================================ */
/* Writer: DESIGN-v2 "Write", steps 1-6.                                         */
/* ============================================================================ */
proctype writer(byte w)
{
    byte k = 0, fid, ln, t, pad, req, h, hd, p, c;
    bool ok;

    do
    :: k < NF ->
        /* a write call: frame fid of 1 or 2 cells */
        if
#ifdef LEN_W1_2
        :: w == 1 -> d_step { fid = w * NF + k + 1; ln = 2 }
        :: w != 1 -> d_step { fid = w * NF + k + 1; ln = 1 }
        :: w != 1 -> d_step { fid = w * NF + k + 1; ln = 2 }
#else
        :: d_step { fid = w * NF + k + 1; ln = 1 }
        :: d_step { fid = w * NF + k + 1; ln = 2 }
#endif
        fi;
retry:
        /* step 1: t = TAIL; lay out the frame (padding to the ring end if it
         * would straddle it); check room against min(HEAD, HOLD), loading HEAD
         * before HOLD. Then step 2 begins: claim_end = t + req.
         * The loads and that store are one step. This is sound: TAIL only
         * grows, so a writer whose CAS on t succeeds saw TAIL == t all along;
         * HEAD only grows, so HEAD loaded at the time of the HOLD load allows
         * at least the room that the earlier load would; and nobody can tell
         * a store made at once from one made a bit later. (Loading HOLD
         * before HEAD is not equivalent: -DBUG_HOLD_FIRST.) With no room,
         * the HOLD_SLOT and liveness loads and the HOLD CAS below are in the
         * step too: with two writers HOLD_SLOT is set with HOLD (see the
         * operator), and a holder that dies later wakes the sleeper. */
#ifdef BUG_HOLD_FIRST
        if
        :: hd = HOLD
        OR_DIE
        fi;
#endif
        if
        :: atomic {
               t = TAIL;
               pad = ((t % C) + ln > C -> C - (t % C) : 0);
               req = pad + ln;
               h = HEAD;
#ifndef BUG_HOLD_FIRST
               hd = HOLD;
#endif
#ifdef BUG_NO_HOLD
               hd = NONE;
#endif
               if
               :: t + req <= MIN(h, hd) + C ->               /* room */
                   claim_end[w] = t + req;                  /* step 2 */
                   ok = true
               :: else ->
                   /* no room: a writer waiting for room clears a dead
                    * holder's HOLD (CAS HOLD hd -> none) */
                   if
                   :: hd != NONE && HOLD_SLOT != NONE && dead[HOLD_SLOT] ->
                       HOLD = (HOLD == hd -> NONE : HOLD)
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
            /* then sleeps (WAITING_MASK) until step 1 would find room, or the
             * holder of HOLD has died (the real writer is woken by every HEAD
             * or HOLD move, and goes back to sleep if there is still no
             * room), or times out. */
            if
            :: skip
            OR_DIE          /* (dying asleep = dying before falling asleep) */
            fi;
            if
            :: (ROOMNOW(ln) || HOLDER_DEAD) -> goto retry   /* woken */
#ifndef NO_WRITE_TIMEOUT
            :: goto next            /* write timeout: Full, the frame is not written */
#endif
            fi
        fi;

        /* step 2 (cont.): claim_start = t; step 3: CAS TAIL t -> t + req (on
         * failure: back to step 1). One step: until TAIL reaches t, no reader
         * stops inside [t, t + req), and a live writer covering P only makes
         * the reader wait; a writer that dies between the two leaves the same
         * published range as one that dies after a failed CAS. */
        if
        :: atomic {
               claim_start[w] = t;
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
        :: ok -> ok = false
        :: else ->
#ifndef STALE_RANGE
            /* AMENDMENT (not in DESIGN-v2): retract the published range
             * (claim_start = claim_end, empty) before going back to step 1,
             * which may sleep. As written, the range stays published: it
             * covers the claim that won the CAS, and if that claim's writer
             * dies, the reader waits for this live writer, which may be
             * asleep waiting for room the reader never frees: deadlock
             * (-DSTALE_RANGE). */
            if
            :: claim_start[w] = t + req
            OR_DIE
            fi;
#endif
            d_step { t = 0; req = 0; pad = 0 };
            goto retry
        fi;

        /* step 4: padding: frame_len (type 0), then stamp = t|PADDING. One
         * step: frame_len is only read at a cell whose stamp names the
         * reader's position, which this cell's does not yet. */
        if
        :: pad > 0 ->
            if
            :: d_step { c = (p - pad) % C; WCHK(c); flen[c] = pad; st_pos[c] = p - pad; st_state[c] = PADDING; c = 0; pad = 0 }
            OR_DIE
            fi
        :: else -> skip
        fi;

        /* step 5: frame_len/type/flags and stamp = p|CLAIMED (one step, as
         * above); then the payload (PAYLOAD); step 6: commit (COMMIT) */
        if
        :: d_step { c = p % C; WCHK(c); flen[c] = ln; st_pos[c] = p; st_state[c] = CLAIMED; c = 0 }
        OR_DIE
        fi;
#ifdef FORGE_PAYLOAD
        if
        :: d_step { PAYLOAD }
        OR_DIE
        fi;
        if
        :: d_step { COMMIT }
        OR_DIE
        fi;
#else
        /* payload and commit in one step: nobody reads a frame's payload
         * before its commit (the stamp word clobbered in the second cell
         * never validates), and the step can be scheduled at the time of
         * the real payload stores */
        if
        :: d_step { PAYLOAD; COMMIT }
        OR_DIE
        fi;
#endif
        /* FrameAbandoned: the writer clears HOLD (CAS p -> none) */
        if
        :: ok -> skip
        :: else ->
            if
            :: HOLD = (HOLD == p -> NONE : HOLD)   /* CAS HOLD p -> none */
            OR_DIE
            fi
        fi;
        /* step 7 (wake the reader) is the reader's blocking guard */
next:
        atomic { k++; ln = 0; t = 0; pad = 0; req = 0; h = 0; hd = 0; p = 0; ok = false; fid = 0 }
    :: else -> break
    od;
    wdone[w] = true;
gone:
    skip
}

/* ============================================================================ */
/* Reader: DESIGN-v2 "Read". Local head P; its only shared store is HEAD.       */
/* ============================================================================ */
active proctype reader()
{
    byte P, i, sp, ss, ln, f, f2, t, emin, w, g;
    bool got, stuck, live, cov;
    mtype:act act;

    /* a reader takes READER_OWNER and starts at the published HEAD */
    P = HEAD;
    do
    :: /* stamp = load(P). If it is P|COMMITTED: copy frame_len ONCE,
        * validate the copy (1 <= len, fits before the ring end,
        * P + len <= TAIL), copy the payload, publish HEAD = P + len (the
        * delivery). If it is P|PADDING or P|REVOKED: validate len, skip.
        * One step: once the stamp names P in one of those states, no other
        * process can change the frame's cells (writers stay below
        * min(HEAD, HOLD) + C, the operator only CASes a CLAIMED stamp), so
        * the reader's loads commute with every other step; a crash before
        * the HEAD store is the same as a crash before the stamp load. */
        d_step {
            i = P % C;
            sp = st_pos[i]; ss = st_state[i];
            if
            :: ISCOMMITTED(sp, ss, P) ->
                ln = flen[i]; t = TAIL;
                assert(ln >= 1 && i + ln <= C && P + ln <= t);   /* else CorruptChannel */
                f = data[i];
                if
                :: ln == 2 -> f2 = data[(i + 1) % C]
                :: else -> f2 = f
                fi;
                assert(sp == P);                                     /* (c) */
                assert(f != 0 && f2 == f);                           /* (c) one frame's bytes */
                assert(gpos[f] == P);                                /* (c) the frame written at P */
                assert(committed[f] && !revoked[f] && !reclaimed[f]); /* (c) */
                assert(!abandoned[f]);                               /* (d) */
                assert(!delivered[f]);                               /* (b) at most once */
                assert(FSEQ(f) + 1 > lastdel[FWRITER(f)]);           /* (b) per-writer order */
                delivered[f] = true;
                lastdel[FWRITER(f)] = FSEQ(f) + 1;
                cowner[i] = 0;
                cowner[(i + 1) % C] = (ln == 2 -> 0 : cowner[(i + 1) % C]);
                HEAD = P + ln; P = P + ln;
                got = true
            :: ISSKIP(sp, ss, P) ->
                ln = flen[i]; t = TAIL;
                assert(ln >= 1 && i + ln <= C && P + ln <= t);
                HEAD = P + ln; P = P + ln;
                got = true
            :: else -> got = false
            fi;
            i = 0; ln = 0; f = 0; f2 = 0; t = 0;
            if
            :: got -> sp = 0; ss = 0; got = false; stuck = false
            :: else -> stuck = true     /* sp, ss kept for the next steps */
            fi
        }
        if
        :: !stuck -> skip               /* consumed or skipped one: go round */
        :: stuck ->
            /* The reader dies (say, an operator kills a reader stalled on a
             * writer) and a new one takes READER_OWNER and starts at the
             * published HEAD. The reader publishes nothing but HEAD, and the
             * HEAD store is part of the consuming step, so P == HEAD at every
             * step: the new reader is in the state the old one was in before
             * its last stamp load. Dying at any other point (while waiting,
             * say) is the same as pausing there and dying here later, which
             * interleaving covers; offering the crash only here keeps a
             * reader stalled for good visible as a deadlock. */
            d_step { assert(P == HEAD); P = HEAD; stuck = false; sp = 0; ss = 0 }
        :: stuck ->
            /* The stamp did not validate. If P == TAIL, nothing is there.
             * If P < TAIL, a claim is in flight: after stuck_timeout, look
             * at the writer slots whose [claim_start, claim_end) covers P.
             * If any has a live owner: wait. If all are dead: re-load the
             * stamp (a commit just before death wins), then skip to the
             * smallest claim_end among them (store HEAD, write nothing).
             * If none covers P: CorruptChannel.
             * The loads of TAIL, of the slots and of the stamp are one step,
             * apart from the stamp load above. This is sound: TAIL only
             * grows, so P < TAIL stays true; a dead writer's slot never
             * changes again; and the stamp at P can only change from CLAIMED
             * to COMMITTED (the writer, which then is not dead) or to REVOKED
             * (the operator; skipped either way). A slot seen live makes
             * the reader wait whenever it was seen. */
            d_step {
                stuck = false;
                t = TAIL;
                assert(P <= t);
                if
                :: P == t -> act = NOTHING
                :: else ->
                    live = false; cov = false; emin = NONE; w = 0;
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
                            :: else -> emin = MIN(claim_end[w], emin)
                            fi
#endif
                        :: else -> skip
                        fi;
                        w++
                    :: else -> break
                    od;
                    if
                    :: live -> act = WAIT
                    :: else ->
#ifdef CORRUPT_NO_RELOAD
                        assert(cov);    /* as written: no covering slot = CorruptChannel */
#endif
                        /* Re-load the stamp. AMENDMENT: DESIGN-v2 re-loads it
                         * only when all covering writers are dead; it must also
                         * re-load it before reporting CorruptChannel: the stamp
                         * loaded above may predate a commit after which its
                         * writer moved its claim range on (-DCORRUPT_NO_RELOAD). */
#ifdef BUG_NO_RELOAD
                        if
                        :: !cov -> sp = st_pos[P % C]; ss = st_state[P % C]
                        :: else -> skip     /* skips with the stamp loaded above */
                        fi;
#else
                        sp = st_pos[P % C]; ss = st_state[P % C];
#endif
                        if
                        :: ISVALID(sp, ss, P) -> skip       /* go round and read it */
                        :: else ->
                            assert(cov);                    /* else CorruptChannel */
                            g = 1;
                            do
                            :: g <= NFR ->
                                if
                                :: gpos[g] != NONE && P <= gpos[g] && gpos[g] < emin ->
                                    assert(!committed[g]);  /* (b) no committed frame skipped */
                                    reclaimed[g] = true
                                :: else -> skip
                                fi;
                                g++
                            :: else -> break
                            od;
                            g = 0;
                            HEAD = emin;
                            P = emin
                        fi;
                        act = AGAIN
                    fi
                fi;
                t = 0; live = false; cov = false; emin = 0; w = 0; sp = 0; ss = 0
            }
            if
            :: act == NOTHING ->
                /* sleep until a writer moves TAIL; the run ends here once
                 * every writer has finished or died */
                if
                :: TAIL != P -> skip
                :: atomic { (TAIL == P && ALLWFIN) -> rdone = true }; break
                fi
            :: act == WAIT ->
                /* a live writer covers P: wait (back-pressure, STALL_PID)
                 * until the stamp at P validates or no live writer covers P */
                if
                :: (ISVALID(st_pos[P % C], st_state[P % C], P) || !ANYLIVECOVER(P)) -> skip
                fi
            :: act == AGAIN -> skip
            fi;
            d_step { act = 0; sp = 0; ss = 0 }
        fi
    od;

    /* final state: every writer finished or died, the reader caught up */
    atomic {
        assert(HEAD == TAIL && P == HEAD);
        g = 1;
        do
        :: g <= NFR ->
            assert(!acked[g] || delivered[g]);          /* (b) OK => delivered */
            assert(!(abandoned[g] && delivered[g]));    /* (d) */
            g++
        :: else -> break
        od;
        g = 0
    };
}

/* ============================================================================ */
/* Operator: DESIGN-v2 "Force-unblock", MAXREV attempts at any time.            */
/* ============================================================================ */
active proctype operator()
{
    byte n = 0, p, g;

end_op:
    do
    :: /* p = HEAD; if the stamp at p is p|CLAIMED (the claim's header is
        * written): CAS HOLD none -> p, and HOLD_SLOT = the claiming writer's
        * slot. One step, taken only when it succeeds: an operator that finds
        * nothing to unblock changes nothing. (Storing HOLD_SLOT in the same
        * step as HOLD hides a window in which a third writer waiting for
        * room could see the new HOLD with an old HOLD_SLOT; with two writers
        * nobody else waits for room then.) */
        atomic {
            (n < MAXREV && HOLD == NONE &&
             st_pos[HEAD % C] == HEAD && st_state[HEAD % C] == CLAIMED) ->
            n++; p = HEAD; HOLD = p;
#ifdef HOLD_SLOT_BY_RANGE
            /* DESIGN-v2 does not say how HOLD_SLOT is found. Taken from the
             * registry like the reader does (a slot whose range covers p), it
             * can name a live writer whose range covers p for a moment (its
             * CAS is about to fail): if the real holder then dies, no writer
             * ever clears HOLD and writers wait for room for good. */
            if
            :: COVERS(0, p) -> HOLD_SLOT = 0
            :: COVERS(1, p) -> HOLD_SLOT = 1
#if NW == 3
            :: COVERS(2, p) -> HOLD_SLOT = 2
#endif
            :: else -> HOLD_SLOT = NONE
            fi
#else
            /* AMENDMENT: the writer records its slot in the frame header
             * (e.g. in flags) before the CLAIMED stamp; the operator reads it
             * there. Modelled with the ghost owner of the claim at p. */
            g = 1;
            do
            :: g <= NFR ->
                if
                :: gpos[g] == p -> HOLD_SLOT = FWRITER(g)
                :: else -> skip
                fi;
                g++
            :: else -> break
            od;
            g = 0
#endif
        }
        /* CAS stamp p|CLAIMED -> p|REVOKED. If the writer committed first,
         * give HOLD back: CAS HOLD p -> none (same step: between the two,
         * HOLD only holds writers back). */
        d_step {
            if
            :: st_pos[p % C] == p && st_state[p % C] == CLAIMED ->
                st_state[p % C] = REVOKED;
                g = 1;
                do
                :: g <= NFR ->
                    if
                    :: gpos[g] == p -> revoked[g] = true
                    :: else -> skip
                    fi;
                    g++
                :: else -> break
                od;
                g = 0
            :: else ->
                HOLD = (HOLD == p -> NONE : HOLD)
            fi;
            p = 0
        }
    od
}

init
{
    byte j = 0;
    atomic {
        do
        :: j < NW -> run writer(j); j++
        :: else -> break
        od;
        j = 0
    }
}
