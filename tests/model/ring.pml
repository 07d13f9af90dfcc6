/*
 * ring.pml: a Promela model of the format-2 ring protocol (docs/DESIGN-v2.md):
 * claim / commit (writers), consume / reclaim (reader), force-unblock (operator),
 * with writers that can die at any step and a reader that can crash and be
 * replaced. Checked exhaustively by spin; tests/model/run.sh builds and runs it.
 *
 * Abstraction
 *   - The ring has C cells; a cell stands for one 16-byte unit. A frame takes
 *     1 or 2 cells (header cell + optional payload cell), so "16-aligned
 *     positions" become plain counters and ring index = position % C.
 *   - Each cell holds what the real header word at that offset holds:
 *       st_pos/st_state  the u64 stamp (position | state), read and written as
 *                        one word (one Promela statement);
 *       flen             the frame_len field (in cells);
 *       data             payload bytes, modelled as a tag: the id of the frame
 *                        whose writer put them there.
 *     A frame's second cell is payload: writing it clobbers whatever stamp was
 *     there (state 0, which never validates), just as payload bytes overwrite
 *     an old header in the real ring.
 *   - Sequential consistency: every Promela statement is one atomic access.
 *     Weak-memory orderings (the relaxed/release/acquire annotations in the
 *     design) are not modelled; stores that the design makes separately are
 *     separate statements here, so torn multi-word views are explored.
 *   - Futex sleeps/wakes (write step 7, READER_SLEEPING, WAITING_MASK) are
 *     abstracted as blocking guards: a sleeper blocks until the thing it waits
 *     for has changed. Timeouts are nondeterministic choices.
 *   - Death: a `killer` process may set dead[w] at any moment; every writer
 *     runs inside `unless { dead[w] }`, so it takes no further step. A dead
 *     writer is dead for good (the design's pid + start-time check). The
 *     reader can crash (rcrash) at any step; the replacement reader starts
 *     from the published HEAD, the only thing a reader publishes.
 *
 * Ghost state (never read by the protocol, only by assertions)
 *   Frame ids f = w*NF + k + 1 (writer w, its k-th frame).
 *   gpos[f]      position of f's header, set with f's successful tail CAS
 *   committed[f] f's commit CAS succeeded      acked[f]     f's write returned OK
 *   abandoned[f] f's writer was told FrameAbandoned
 *   revoked[f]   force-unblocked by the operator
 *   reclaimed[f] skipped by the reader as a dead writer's claim
 *   delivered[f] consumed by the reader (the HEAD store that passes it; the
 *                frame's bytes are in the reader's hands at that point)
 *   lastdel[w]   1 + sequence number of w's last delivered frame
 *   cowner[c]    the last committed frame whose bytes occupy cell c
 *
 * Properties (assertions)
 *   (a) a writer never writes a cell holding a committed, undelivered frame
 *       (checked at every ring store: WCHK);
 *   (b) delivered at most once (checked at delivery), in per-writer order
 *       (checked at delivery), a write that returned OK is never reclaimed
 *       (checked at the ack) and is delivered (checked in the reader's final
 *       state, when every writer has finished or died and the reader has
 *       caught up with TAIL);
 *   (c) no stale frame: the reader delivers only a frame whose stamp names its
 *       position, whose bytes all come from that one frame, which was
 *       committed and neither revoked nor reclaimed;
 *   (d) a frame whose writer was told FrameAbandoned is never delivered
 *       (checked at delivery, at the abandonment, and in the final state).
 *   Deadlocks (every process blocked, not at an end) are reported by pan as
 *   invalid end states.
 *
 * Variants (spin -D...):
 *   BUG_RECLAIM_LIVE  the reader skips a stuck claim after its timeout even if
 *                     the claiming writer is alive (format 1 behaviour).
 *   BUG_NO_STAMP      the reader accepts any stamp whose state is COMMITTED,
 *                     whatever position it names.
 *   BUG_NO_RELOAD     the reader does not re-load the stamp before skipping a
 *                     dead writer's claim (loses a commit made just before death).
 *   BUG_NO_HOLD       writers check room against HEAD only, ignoring HOLD.
 *   BUG_HOLD_FIRST    writers load HOLD before HEAD in the room check.
 *   STALE_RANGE       the design as written: a writer whose tail CAS failed
 *                     goes back to step 1 leaving its claim range published
 *                     (the default model retracts it, see write step 3).
 *   FORGE_PAYLOAD     payload bytes may happen to equal a valid COMMITTED
 *                     stamp for the position they sit at.
 *   NW (2 or 3), NF, C, MAXREV, MAXRC: sizes, see below.
 */

#ifndef C
#define C       4       /* ring capacity, in cells (power of two not needed) */
#endif
#ifndef NW
#define NW      2       /* writer processes (= writer slots) */
#endif
#ifndef NF
#define NF      2       /* frames per writer */
#endif
#ifndef MAXREV
#define MAXREV  1       /* operator force-unblock attempts */
#endif
#ifndef MAXRC
#define MAXRC   1       /* reader crashes (each followed by a replacement) */
#endif

#define NFR     (NW*NF)
#define NONE    255     /* UINT64_MAX: HOLD = none, no slot, no position */

/* stamp states (DESIGN-v2 "Frame header"); 0 = never written / payload bytes */
#define CLAIMED   1
#define COMMITTED 2
#define PADDING   3
#define REVOKED   4

/* ---- the shared memory ------------------------------------------------- */
byte TAIL = 0;                  /* block 1 */
byte HEAD = 0;                  /* block 2 */
byte HOLD = NONE;               /* block 2: force-unblocked position, or none */
byte HOLD_SLOT = NONE;          /* block 2 */

byte st_pos[C];                 /* ring cells: stamp = st_pos | st_state */
byte st_state[C];
byte flen[C];                   /* frame_len, in cells */
byte data[C];                   /* payload tag */

byte claim_start[NW];           /* writer registry: slot w belongs to writer w */
byte claim_end[NW];

/* ---- liveness (the kernel's view: pid exists or not) ---------------------- */
bool dead[NW];
bool rcrash = false;            /* the current reader process has died */

/* ---- ghost state --------------------------------------------------------- */
byte gpos[NFR+1] = NONE;
bool committed[NFR+1];
bool acked[NFR+1];
bool abandoned[NFR+1];
bool revoked[NFR+1];
bool reclaimed[NFR+1];
bool delivered[NFR+1];
byte lastdel[NW];
byte cowner[C];
bool wdone[NW];                 /* writer finished all its frames (alive) */
bool rdone = false;             /* reader reached its final state */
byte rcrashes = 0;

#define FWRITER(f)   (((f) - 1) / NF)
#define FSEQ(f)      (((f) - 1) % NF)
#define MIN(a, b)    ((a) < (b) -> (a) : (b))

/* (a): the cell about to be written holds no committed, undelivered frame */
#define WCHK(c)      assert(cowner[c] == 0 || delivered[cowner[c]])

/* the reader's stamp check at position p (stamp == p | state) */
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

#define HOLDER_DEAD   (HOLD != NONE && HOLD_SLOT != NONE && dead[HOLD_SLOT])

/* ========================================================================= */
/* Writer: DESIGN-v2 "Write", steps 1-6, one frame per write call.          */
/* ========================================================================= */
proctype writer(byte w)
{
    byte k = 0, fid, ln, t, pad, req, h, hd, p, c;
    bool ok;

    {
        do
        :: k < NF ->
            d_step { fid = w * NF + k + 1; }
            if
            :: ln = 1
            :: ln = 2
            fi;
retry:
            /* step 1: t = TAIL; lay out the frame (padding to the ring end if
             * it would straddle it); room against min(HEAD, HOLD), HEAD loaded
             * before HOLD (see BUG_HOLD_FIRST). TAIL and HEAD are loaded in one
             * step: TAIL only grows, so a claim whose CAS succeeds saw
             * TAIL == t all along and the two loads commute. */
            atomic {
                t = TAIL;
                pad = ((t % C) + ln > C -> C - (t % C) : 0);
                req = pad + ln;
#ifndef BUG_HOLD_FIRST
                h = HEAD
#endif
            }
            hd = HOLD;
#ifdef BUG_HOLD_FIRST
            h = HEAD;
#endif
#ifdef BUG_NO_HOLD
            hd = NONE;
#endif
            if
            :: t + req <= MIN(h, hd) + C -> skip         /* room */
            :: else ->
                /* no room: a writer waiting for room clears a dead holder's
                 * HOLD (CAS HOLD hd -> none), then sleeps (WAITING_MASK) until
                 * HEAD or HOLD moves or the holder dies, or times out (Full) */
                if
                :: hd != NONE && HOLD_SLOT != NONE && dead[HOLD_SLOT] ->
                    atomic { if :: HOLD == hd -> HOLD = NONE :: else -> skip fi }
                :: else -> skip
                fi;
                if
                :: (HEAD != h || HOLD != hd || HOLDER_DEAD) -> goto retry   /* woken */
                :: goto next                                    /* write timeout */
                fi
            fi;

            /* step 2: publish the claim range, claim_end first then claim_start */
            claim_end[w] = t + req;
            claim_start[w] = t;

            /* step 3: CAS TAIL t -> t + req */
            atomic {
                if
                :: TAIL == t -> TAIL = t + req; gpos[fid] = t + pad; ok = true
                :: else -> ok = false
                fi
            }
            if
            :: !ok ->
#ifndef STALE_RANGE
                /* Amendment (not in DESIGN-v2): retract the published range
                 * (claim_start = claim_end: empty) before going back to step 1,
                 * which may sleep or time out. Without it, a live writer's
                 * stale range covers the claim that beat it; if that claim's
                 * writer dies, the reader waits for the live writer, which may
                 * be asleep waiting for room: deadlock (-DSTALE_RANGE). */
                claim_start[w] = t + req;
#endif
                goto retry
            :: else -> p = t + pad
            fi;

            /* step 4: padding: frame_len (type 0), then stamp = t|PADDING.
             * Merged into one step: nobody reads frame_len at a cell whose
             * stamp does not name the reader's position. */
            if
            :: pad > 0 ->
                d_step { c = t % C; WCHK(c); flen[c] = pad; st_pos[c] = t; st_state[c] = PADDING; c = 0 }
            :: else -> skip
            fi;

            /* step 5: frame_len/type/flags and stamp = p|CLAIMED (one step, as
             * above); then the payload, which clobbers the stamp word of the
             * frame's second cell. */
            d_step { c = p % C; WCHK(c); flen[c] = ln; st_pos[c] = p; st_state[c] = CLAIMED; c = 0 }
            d_step {
                c = p % C; data[c] = fid;
                if
                :: ln == 2 ->
                    c = (p + 1) % C; WCHK(c);
                    data[c] = fid;
#ifdef FORGE_PAYLOAD
                    /* payload bytes that read as "p+1 | COMMITTED, len 1" */
                    st_pos[c] = p + 1; st_state[c] = COMMITTED; flen[c] = 1;
#else
                    st_pos[c] = 0; st_state[c] = 0; flen[c] = 0;
#endif
                :: else -> skip
                fi;
                c = 0
            }

            /* step 6: commit: CAS stamp p|CLAIMED -> p|COMMITTED. Success: the
             * write returns OK (acked). Failure: the frame was force-unblocked,
             * FrameAbandoned. */
            d_step {
                c = p % C;
                if
                :: st_pos[c] == p && st_state[c] == CLAIMED ->
                    st_state[c] = COMMITTED;
                    assert(!reclaimed[fid]);        /* (b) an OK write was not skipped */
                    committed[fid] = true;
                    acked[fid] = true;
                    cowner[c] = fid;
                    if
                    :: ln == 2 -> cowner[(p + 1) % C] = fid
                    :: else -> skip
                    fi;
                    ok = true
                :: else ->
                    assert(revoked[fid] && !delivered[fid]);    /* (d) */
                    abandoned[fid] = true;
                    ok = false
                fi;
                c = 0
            }
            if
            :: ok -> skip
            :: else ->
                /* the abandoned writer clears HOLD: CAS p -> none */
                atomic { if :: HOLD == p -> HOLD = NONE :: else -> skip fi }
            fi;
            /* step 7 (wake the reader) is the reader's blocking guard */
next:
            atomic { k++; ln = 0; t = 0; pad = 0; req = 0; h = 0; hd = 0; p = 0; c = 0; ok = false }
        :: else -> break
        od;
        wdone[w] = true
    } unless { dead[w] }
}

/* ========================================================================= */
/* Reader: DESIGN-v2 "Read". Local head P; the only shared store is HEAD.   */
/* ========================================================================= */
active proctype reader()
{
    byte P, i, sp, ss, ln, f, f2, t, emin, w, cs, ce, g;
    bool got, live, cov;

restart:
    /* a (replacement) reader takes READER_OWNER and starts at HEAD */
    atomic {
        rcrash = false;
        P = HEAD;
        i = 0; sp = 0; ss = 0; ln = 0; f = 0; f2 = 0; t = 0;
        emin = 0; w = 0; cs = 0; ce = 0; g = 0; got = false; live = false; cov = false
    }
    {
        do
        :: /* stamp = load(P) (acquire). If it is P|COMMITTED: copy frame_len
            * ONCE, validate the copy (1 <= len, fits before the ring end,
            * P + len <= TAIL), copy the payload, publish HEAD = P + len. If it
            * is P|PADDING or P|REVOKED: validate len, skip. One atomic step:
            * once the stamp names P with one of those states, nothing the
            * others do can change the frame's cells (writers stay behind
            * min(HEAD, HOLD) + C, the operator only CASes a CLAIMED stamp),
            * so the reader's loads commute with every other step, and a crash
            * before the HEAD store is a crash before the stamp load. */
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
                    /* the HEAD store = delivery: (c), (d), (b) */
                    assert(sp == P);                                    /* (c) */
                    assert(f != 0 && f2 == f);                          /* (c) one frame's bytes */
                    assert(gpos[f] == P);                               /* (c) */
                    assert(committed[f] && !revoked[f] && !reclaimed[f]); /* (c) */
                    assert(!abandoned[f]);                              /* (d) */
                    assert(!delivered[f]);                              /* (b) exactly once */
                    assert(FSEQ(f) + 1 > lastdel[FWRITER(f)]);          /* (b) per-writer order */
                    delivered[f] = true;
                    lastdel[FWRITER(f)] = FSEQ(f) + 1;
                    HEAD = P + ln; P = P + ln;
                    got = true
                :: ISSKIP(sp, ss, P) ->
                    ln = flen[i]; t = TAIL;
                    assert(ln >= 1 && i + ln <= C && P + ln <= t);
                    HEAD = P + ln; P = P + ln;
                    got = true
                :: else -> skip
                fi;
                ln = 0; f = 0; f2 = 0; t = 0
            }
            if
            :: got -> d_step { got = false; sp = 0; ss = 0 }
            :: else ->
                t = TAIL;
                assert(P <= t);
                if
                :: P == t ->
                    /* nothing there: sleep until a writer moves TAIL, or stop
                     * when every writer has finished or died (end of run) */
                    if
                    :: TAIL != P -> skip
                    :: atomic { (TAIL == P && ALLWFIN) -> rdone = true }; break
                    fi
                :: P < t ->
                    /* a claim is in flight; after stuck_timeout, look at the
                     * writer slots whose [claim_start, claim_end) covers P */
                    live = false; cov = false; emin = NONE; w = 0;
                    do
                    :: w < NW ->
                        cs = claim_start[w];
                        ce = claim_end[w];
                        if
                        :: cs <= P && P < ce ->
                            cov = true;
                            if
#ifdef BUG_RECLAIM_LIVE
                            :: true ->  /* format 1: reclaim after the timeout, live or not */
                                emin = MIN(ce, emin)
#else
                            :: !dead[w] -> live = true
                            :: else -> emin = MIN(ce, emin)
#endif
                            fi
                        :: else -> skip
                        fi;
                        d_step { w++; cs = 0; ce = 0 }
                    :: else -> break
                    od;
                    if
                    :: live ->
                        /* back-pressure: wait (STALL_PID) until the stamp at P
                         * changes or no live writer covers P any more */
                        ((st_pos[i] != sp || st_state[i] != ss) || !ANYLIVECOVER(P))
                    :: !live ->
#ifdef CORRUPT_NO_RELOAD
                        /* the design as written: no covering slot means
                         * CorruptChannel, without looking at the stamp again */
                        assert(cov);
#endif
                        /* re-load the stamp: a commit just before death wins.
                         * Amendment: also before concluding CorruptChannel
                         * (DESIGN-v2 re-loads only in the all-dead case): the
                         * stamp loaded above may predate a commit after which
                         * the writer moved its range on (-DCORRUPT_NO_RELOAD). */
#ifdef BUG_NO_RELOAD
                        if
                        :: !cov -> d_step { sp = st_pos[i]; ss = st_state[i]; }
                        :: else -> skip
                        fi;
#else
                        d_step { sp = st_pos[i]; ss = st_state[i]; }
#endif
                        if
                        :: ISVALID(sp, ss, P) -> skip     /* go round, read it */
                        :: else ->
                            /* no slot covers P: the claim has no owner */
                            assert(cov);                  /* else CorruptChannel */
                            /* all covering writers are dead: skip to the
                             * smallest claim_end (advance HEAD, write nothing) */
                            d_step {
                                g = 1;
                                do
                                :: g <= NFR ->
                                    if
                                    :: gpos[g] != NONE && P <= gpos[g] && gpos[g] < emin ->
                                        assert(!committed[g]);   /* (b): no committed frame skipped */
                                        reclaimed[g] = true
                                    :: else -> skip
                                    fi;
                                    g++
                                :: else -> break
                                od;
                                g = 0;
                                HEAD = emin;
                                P = emin
                            }
                        fi
                    fi;
                    d_step { live = false; cov = false; emin = 0; w = 0; t = 0; sp = 0; ss = 0 }
                fi
            fi
        od
    } unless { rcrash };
    if
    :: rcrash -> goto restart   /* reader died: a new one starts from HEAD */
    :: else -> skip
    fi;

    /* final state: every writer finished or died, reader caught up with TAIL */
    d_step {
        assert(HEAD == TAIL);
        g = 1;
        do
        :: g <= NFR ->
            assert(!acked[g] || delivered[g]);          /* (b) OK => delivered */
            assert(!(abandoned[g] && delivered[g]));    /* (d) */
            g++
        :: else -> break
        od
    }
}

/* ========================================================================= */
/* Operator: DESIGN-v2 "Force-unblock" (the HOLD protocol).                  */
/* ========================================================================= */
active proctype operator()
{
    byte n = 0, p, sp, ss, g;

    do
    :: n < MAXREV ->
        n++;
        p = HEAD;
        d_step { sp = st_pos[p % C]; ss = st_state[p % C]; }
        if
        :: sp == p && ss == CLAIMED ->
            /* the claim's header is written and it is at HEAD */
            if
            :: atomic { HOLD == NONE -> HOLD = p } ->       /* CAS HOLD none -> p */
                /* HOLD_SLOT = a slot whose claim range covers p (the
                 * registry scan and the store in one step) */
                atomic {
                    if
                    :: COVERS(0, p) -> HOLD_SLOT = 0
                    :: COVERS(1, p) -> HOLD_SLOT = 1
#if NW == 3
                    :: COVERS(2, p) -> HOLD_SLOT = 2
#endif
                    :: else -> HOLD_SLOT = NONE
                    fi
                }
                /* CAS stamp p|CLAIMED -> p|REVOKED */
                atomic {
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
                        g = 0;
                        ss = REVOKED
                    :: else -> skip
                    fi
                }
                if
                :: ss != REVOKED ->
                    /* the writer committed first: give HOLD back (CAS p -> none) */
                    atomic { if :: HOLD == p -> HOLD = NONE :: else -> skip fi }
                :: else -> skip
                fi
            :: else -> skip      /* another force-unblock holds HOLD */
            fi
        :: else -> skip
        fi;
        d_step { p = 0; sp = 0; ss = 0 }
    :: break
    od
}

/* ========================================================================= */
/* Deaths: any writer may die at any moment; the reader may crash MAXRC times. */
/* ========================================================================= */
active proctype killer()
{
    do
    :: atomic { !dead[0] && !wdone[0] -> dead[0] = true }
    :: atomic { !dead[1] && !wdone[1] -> dead[1] = true }
#if NW == 3
    :: atomic { !dead[2] && !wdone[2] -> dead[2] = true }
#endif
    :: atomic { rcrashes < MAXRC && !rcrash && !rdone -> rcrash = true; rcrashes++ }
    :: break
    od
}

init
{
    byte j;
    atomic {
        j = 0;
        do
        :: j < NW -> run writer(j); j++
        :: else -> break
        od
    }
}
