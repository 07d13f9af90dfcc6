/*
 * broadcast.pml: a Promela model of the broadcast channel's cursor rules
 * (docs/FORMAT.md 14; csrc/cursor.c, the broadcast branches of
 * csrc/reader.c and csrc/writer.c): writers that claim TAIL|SEQ together,
 * wait for the slowest tethered reader and untether a stopped or dead one;
 * a tethered reader that is untethered, reads on as a lossy one, and
 * re-tethers once it has caught up (the safe_from rule); a lossy reader that
 * validates each copy against TAIL, resynchronises at the oldest lap start
 * when lapped, and counts what it lost from the lap table.
 * tests/model/run.sh checks it exhaustively with spin, with broken variants
 * that must fail.  ring.pml models what this one leaves out (claim ranges,
 * dead writers' claims, force-unblock): those rules are the same for both
 * kinds of channel.
 *
 * Processes
 *   writer(w)   NF write calls of one frame each (1 or 2 cells), as
 *               myc_try_claim with myc_cursor_limit: load TAIL and SEQ;
 *               reuse the cached limit while it is a valid position for
 *               this TAIL, else scan the cursor table; room is
 *               limit + C - TAIL; short of room, scan again, and if the
 *               slowest tethered reader holds it back and that reader is
 *               stopped or dead, untether it (CAS TETHER 1 -> 0); claim
 *               with one CAS of TAIL|SEQ; write the lap table entry if the
 *               frame starts a lap; padding, header (CLAIMED), payload,
 *               commit.  Writers do not die here (ring.pml covers that) and
 *               never time out, so a writer that can never get room is a
 *               deadlock.
 *   reader(1)   the tethered reader (cursor slot 0).  It may be stopped
 *               (SIGSTOP) once and continued, or die, at any step.  While it
 *               is untethered it validates every copy as a lossy reader
 *               does; when it catches up with TAIL it re-tethers: POSITION,
 *               then TETHER = 1, then safe_from = TAIL, three steps.  Frames
 *               before safe_from are still validated (a writer that scanned
 *               the table before TETHER = 1 may still claim up to the TAIL it
 *               saw + C); frames from safe_from on are trusted while TETHER
 *               = 1.
 *   reader(0)   the lossy reader (cursor slot 1, never tethered; left out
 *               with -DNO_LOSSY): copies, then checks TAIL <= position + C;
 *               lapped, it resumes at the oldest lap start
 *               (roundup(TAIL - C)) and, at the next lap start whose lap
 *               table entry names that lap, adds entry.seq - index to its
 *               lost count.
 *   Both walk in the steps of myc_next_frame and myc_read: load the stamp;
 *   at a lap start read the lap table (a step of its own); copy; validate
 *   and deliver (or resynchronise); with nothing valid at P, load TAIL and
 *   wait for it to move (caught up: re-tether first) or for the claim at P
 *   to be committed.
 *
 * Abstraction (as ring.pml): the ring has C cells of 16 bytes; a frame takes
 * 1 or 2 cells (a header cell, at most one payload cell, whose write also
 * overwrites the stamp word there with a value that never validates);
 * positions are counters; each Promela step is atomic (sequentially
 * consistent; the orderings of the C code are not modelled: the comments
 * there say which seq_cst accesses give the orders used here).  A copy of a
 * payload is one step; the reader's tail-checks before the copy (length,
 * frame end <= TAIL) always hold for a frame whose stamp names its position,
 * so they are left out.  The lap table has L entries (C code: 4), each
 * (LAP + 1, SEQ) written in one step (a seqlock in C).  Untethering "after
 * the window" is allowed whenever the reader is stopped or dead (the window
 * can end at any moment); a running reader is never untethered here.
 *
 * Ghost state, for assertions only
 *   gat[p]       the frame id claimed at position p (0 = none, or padding)
 *   cpos[c]      position of the committed frame whose bytes are in cell c
 *                (NONE = none)
 *   untethers    how often writers untethered the tethered reader
 *   safeT        TAIL when the tethered reader last stored TETHER = 1
 *
 * Properties (assertions)
 *   (w) writers: no writer stores into a cell that holds a committed frame
 *       at a position q the tethered reader has not read, while it is
 *       tethered and q >= safeT (the writers' rule, checked at every ring
 *       store);
 *   (t) the tethered reader delivers every frame, in order, with no gap,
 *       and never resynchronises, unless it was untethered; in the final
 *       state, if never untethered (and alive), it has every frame;
 *   (v) neither reader ever delivers a frame whose copied bytes are not all
 *       the bytes of the frame committed at its position (torn or
 *       overwritten): the validation against TAIL, and safe_from;
 *   (n) lost counts are exact: whenever a reader learns a lap start's index
 *       from the lap table, delivered + lost = the number of frames claimed
 *       before that position; in the final state (caught up, not waiting
 *       for a lap start) delivered + lost = SEQ;
 *   (d) no deadlock: pan reports an invalid end state if some process can
 *       never move again before the end.
 *
 * Variants (spin -DNAME), each of which must fail:
 *   BUG_NO_SAFE_FROM  re-tethering trusts everything at once (safe_from =
 *                     0): the reader delivers a frame a writer overwrote.
 *   BUG_NO_VALIDATE   readers trust every copy (no TAIL check after it).
 *   BUG_LAP_NO_TAG    the lap table's SEQ is used without checking that the
 *                     entry is the one of this lap.
 *   BUG_SAFE_FROM_FIRST  re-tethering loads safe_from = TAIL before it
 *                     stores TETHER = 1 (the order of myc_cursor_retether
 *                     matters: a writer may scan between the two).
 *   BUG_LOST_BY_CELLS a lapped reader counts the bytes it skipped as lost
 *                     frames instead of reading the lap table.
 *   NO_UNTETHER       writers never untether: a dead tethered reader
 *                     deadlocks them.
 *   BUG_LAP_INFLIGHT  (with NW=2; the core before this model found it)
 *                     writers' limit ignores other writers' unfinished
 *                     claims: with no tethered reader holding them back, a
 *                     writer laps another writer's claim that is not yet
 *                     committed; the slow writer's late header or payload
 *                     stores then land in the newer frame, and a lossy (or
 *                     untethered) reader's check against TAIL passes: it
 *                     delivers a torn frame.  As implemented (csrc/cursor.c,
 *                     claims_limit) writers' limit is also at most the start
 *                     of every live writer's claim not yet finished.
 * Sizes: C (cells), NW (writers, 1 or 2), NF (frames per writer), L (lap
 * table entries).
 */

#ifndef C
#define C       4
#endif
#ifndef NW
#define NW      1
#endif
#ifndef NF
#define NF      5
#endif
#ifndef L
#define L       2
#endif

#define NFR     (NW*NF)
#define MAXP    (2*NFR + C)     /* positions ever claimed (frames and padding) */
#define NONE    255

#define CLAIMED   1
#define COMMITTED 2
#define PADDING   3

/* ---- shared memory ----------------------------------------------------- */
byte TAIL = 0;                  /* block 1: TAIL|SEQ, one 16-byte CAS */
byte SEQ = 0;
byte LT_LAP[L];                 /* lap table: lap + 1 (0 = never written) */
byte LT_SEQ[L];                 /*            index of the frame at lap * C */
byte st_pos[C];                 /* the ring: stamp position and state, */
byte st_state[C];
byte flen[C];                   /* frame_len in cells, */
byte data[C];                   /* payload bytes: the id of their frame */
bit TETHER = 1;                 /* cursor slot 0 (the tethered reader) */
byte POSITION = 0;              /* its POSITION (slot 1's is never loaded
                                   by writers: the lossy reader's is not
                                   modelled) */

/* ---- the tethered reader's liveness (the kernel's view) ----------------- */
bool tdead;
bool tstopped;

/* ---- ghost state --------------------------------------------------------- */
byte gat[MAXP];
byte cpos[C] = NONE;
byte untethers;
byte safeT;
byte wdone;                     /* writers that returned from their last write */
byte INFLIGHT[NW] = NONE;       /* start of writer w's claim
                                   until its commit (the registry) */

/* coverage points: run.sh builds with -DCOVER=n to show that point n is reached */
#ifdef COVER
#define REACHED(n)   assert(COVER != (n))
#else
#define REACHED(n)   skip
#endif

#define FWRITER(f)   (((f) - 1) / NF)
#define FSEQ(f)      (((f) - 1) % NF)
#define MIN(a, b)    ((a) < (b) -> (a) : (b))
#define ALLWDONE     (wdone == NW)

/* a frame of ln cells at tail t: padding to the ring's end first if it
 * would straddle it */
#define PADFOR(t, ln)   ((((t) % C) + (ln) > C) -> C - ((t) % C) : 0)
/* myc_positions_ok(pos, tail), positions being 16-aligned */
#define POSOK(p, t)     ((p) <= (t) && (t) - (p) <= C)
/* the limit a scan of the cursor table finds now (myc_cursor_limit) */
#define TLIMIT(t)       ((TETHER && POSOK(POSITION, t)) -> MIN(POSITION, t) : (t))
#ifndef BUG_LAP_INFLIGHT
/* no writer laps another live writer's unfinished claim */
#if NW > 1
#define LIMITNOW(t)     MIN(TLIMIT(t), MIN(INFLIGHT[0], INFLIGHT[1]))
#else
#define LIMITNOW(t)     MIN(TLIMIT(t), INFLIGHT[0])
#endif
#else
#define LIMITNOW(t)     TLIMIT(t)
#endif
/* oldest lap start writers keep (myc_cursor_resync) */
#define LAPSTART(t)     ((t) < C -> 0 : (((t) - C + C - 1) / C) * C)

/* (w): the cell about to be written holds no frame the tethered reader
 * still has to read and is protected from writers */
#define WCHK(c)  assert(!(TETHER && cpos[c] != NONE && cpos[c] >= POSITION && cpos[c] >= safeT))

/* ============================================================================ */
/* Writer                                                                       */
/* ============================================================================ */
proctype writer(byte w)
{
    byte k = 0, fid, ln, t, s, pad, p, c, lim = 0, fresh;
    bool cached = false;

    do
    :: k < NF ->
        if
        :: d_step { fid = w * NF + k + 1; ln = 1 }
        :: d_step { fid = w * NF + k + 1; ln = 2 }
        fi;
again:
        skip;
        /* load TAIL and SEQ (relaxed; the CAS validates them) */
        d_step { t = TAIL; s = SEQ; pad = PADFOR(t, ln) }
        if
        :: !cached || !POSOK(lim, t) ->
            /* scan: TETHER (seq_cst), then POSITION (seq_cst) */
            d_step { lim = LIMITNOW(t); cached = true }
        :: else -> skip
        fi;
        if
        :: t + pad + ln <= lim + C -> skip          /* room: claim */
        :: else ->
            /* short of room: look again (myc_cursor_limit, short_of_room);
             * a blocker that is stopped or dead is untethered */
            if
            :: d_step { fresh = LIMITNOW(t) }
            :: atomic {
#ifndef NO_UNTETHER
                   (TETHER && POSOK(POSITION, t) && POSITION < t && (tdead || tstopped)) ->
                   TETHER = 0;                     /* CAS 1 -> 0 */
                   untethers++;
                   if
                   :: tdead -> REACHED(8)
                   :: else -> REACHED(1)
                   fi;
                   fresh = LIMITNOW(t)
#else
                   false
#endif
               }
            fi;
            if
            :: fresh != lim -> d_step { lim = fresh; fresh = 0 }; goto again
            :: else ->
                /* Full: sleep until a reader moves, TAIL moves, or the
                 * blocker can be untethered (futex wake-ups, the window) */
                d_step { fresh = 0 }
#ifndef NO_UNTETHER
                (TAIL != t || t + pad + ln <= LIMITNOW(t) + C ||
                 (TETHER && (tdead || tstopped)));
#else
                (TAIL != t || t + pad + ln <= LIMITNOW(t) + C);
#endif
                cached = false;
                goto again
            fi
        fi;
        /* claim: CAS TAIL|SEQ (t, s) -> (t + pad + ln, s + 1); the lap
         * table entry if the frame starts a lap (before the commit) */
        if
        :: atomic {
               (TAIL == t && SEQ == s) ->
               TAIL = t + pad + ln;
               SEQ = s + 1;
               p = t + pad;
               gat[p] = fid;
               INFLIGHT[w] = t;
               if
               :: p % C == 0 -> LT_LAP[(p / C) % L] = p / C + 1; LT_SEQ[(p / C) % L] = s
               :: else -> skip
               fi
           }
        :: else -> goto again               /* lost the race: reload */
        fi;
        /* padding to the ring's end */
        if
        :: pad > 0 ->
            d_step {
                c = t % C; WCHK(c);
                st_pos[c] = t; st_state[c] = PADDING; flen[c] = pad; cpos[c] = NONE;
                c = 0
            }
        :: else -> skip
        fi;
        /* header: stamp p|CLAIMED */
        d_step {
            c = p % C; WCHK(c);
            st_pos[c] = p; st_state[c] = CLAIMED; flen[c] = ln; cpos[c] = NONE;
            c = 0
        }
        /* payload (in a 2-cell frame it overwrites the second cell's
         * stamp word) */
        d_step {
            c = p % C; data[c] = fid;
            if
            :: ln == 2 ->
                c = (p + 1) % C; WCHK(c);
                data[c] = fid; st_pos[c] = 0; st_state[c] = 0; flen[c] = 0; cpos[c] = NONE
            :: else -> skip
            fi;
            c = 0
        }
        /* commit */
        d_step {
            c = p % C;
            st_state[c] = COMMITTED;
            INFLIGHT[w] = NONE;
            cpos[c] = p;
            cpos[(p + 1) % C] = (ln == 2 -> p : cpos[(p + 1) % C]);
            c = 0; k++; fid = 0; ln = 0; t = 0; s = 0; pad = 0; p = 0
        }
    :: else -> break
    od;
    wdone++
}

/* ============================================================================ */
/* Readers                                                                      */
/* ============================================================================ */

/* The lap table entry of the lap starting at P (myc_cursor_lap_start): if it
 * is this lap's, a resynchronising reader adds what it lost, and the reader
 * takes its index from it. */
#ifdef BUG_LAP_NO_TAG
#define LAPTAG_OK(P)   (LT_LAP[((P) / C) % L] != 0)
#else
#define LAPTAG_OK(P)   (LT_LAP[((P) / C) % L] == (P) / C + 1)
#endif

/* n = frames claimed at positions before p (ghost) */
#define NBEFORE(p) \
    n = 0; g = 0; \
    do \
    :: g < (p) -> n = (gat[g] != 0 -> n + 1 : n); g++ \
    :: else -> break \
    od; \
    g = 0

#define LAP_START(P) \
    if \
    :: (P) % C == 0 && LAPTAG_OK(P) -> \
        g = LT_SEQ[((P) / C) % L]; \
        assert(resyncing || idx == g);          /* (n) the index agrees */ \
        if \
        :: resyncing && g > idx -> lost = lost + g - idx \
        :: else -> skip \
        fi; \
        resyncing = false; \
        idx = g; \
        NBEFORE(P); \
        assert(delivered + lost == n);          /* (n) exact at this lap start */ \
        n = 0 \
    :: else -> skip \
    fi

#define VALIDAT(p)     (st_pos[(p) % C] == (p) && (st_state[(p) % C] == COMMITTED || st_state[(p) % C] == PADDING))
#define CLAIMEDAT(p)   (st_pos[(p) % C] == (p) && st_state[(p) % C] == CLAIMED)
/* the tethered reader's cursor words; the lossy reader's are not modelled */
#define PUBLISH        POSITION = (teth -> P : POSITION)
#define MYTETHER       (teth && TETHER)
/* the tethered reader moves only while it is neither stopped nor dead */
#define RUN            (!teth || (!tstopped && !tdead))

/* phases of the walk (myc_next_frame and the copy in myc_read) */
#define LOOK     0      /* load the stamp at P */
#define COPY     1      /* copy the payload */
#define CHECK    2      /* myc_cursor_intact, then deliver */
#define EMPTY    3      /* nothing valid at P: load TAIL */
#define SAFE     4      /* re-tethered: safe_from = TAIL */
#define TETHER1  8      /* caught up, untethered: store TETHER = 1 */
#define LAPREAD  9      /* a frame at a lap start: read the lap table */
#define IDLE     5      /* caught up: wait for TAIL to move */
#define PENDING  6      /* a claim in flight at P: wait for its commit */
#define LAPPED   7      /* resynchronise */

proctype reader(bool teth)
{
    byte P = 0, idx = 0, lost = 0, delivered = 0, ln = 0, f = 0, f2 = 0, t = 0, g = 0, n = 0;
    byte last[NW];                      /* 1 + sequence number of each writer's last frame delivered */
    byte safe = (teth -> 0 : NONE);     /* lossy: validate everything */
    byte ph = LOOK, nstops = 0;
    bool resyncing = false, ok = false;

    do
    :: atomic { (teth && nstops < 1 && !tstopped && !tdead) -> tstopped = true; nstops++ }  /* SIGSTOP */
    :: atomic { (teth && tstopped) -> tstopped = false }                                     /* SIGCONT */
    :: atomic { (teth && !tstopped && !tdead) -> tdead = true }; break                       /* SIGKILL */

    :: d_step {
           (RUN && ph == LOOK) ->
           if
           :: st_pos[P % C] == P && st_state[P % C] == COMMITTED ->
               ln = flen[P % C];
               ph = (P % C == 0 -> LAPREAD : COPY)
           :: st_pos[P % C] == P && st_state[P % C] == PADDING ->
               /* skip only what was really there: validated as a copy */
               ln = flen[P % C];
#ifdef BUG_NO_VALIDATE
               ok = true;
#else
               ok = (P >= safe && MYTETHER) || TAIL <= P + C;
#endif
               if
               :: ok -> P = P + ln; PUBLISH; ph = LOOK; REACHED(9)
               :: else -> ph = LAPPED
               fi;
               ln = 0; ok = false
           :: else -> ph = EMPTY
           fi
       }

    :: d_step {
           (RUN && ph == LAPREAD) ->
           /* myc_cursor_lap_start, after the stamp load (a seqlock read
            * of the entry: one step here) */
           g = lost;
           LAP_START(P);
           if
           :: !teth && lost > g -> REACHED(3)  /* the lossy reader counts a loss */
           :: else -> skip
           fi;
           g = 0;
           ph = COPY
       }

    :: d_step {
           (RUN && ph == COPY) ->
           f = data[P % C];
           f2 = (ln == 2 -> data[(P + 1) % C] : f);
           ph = CHECK
       }

    :: d_step {
           (RUN && ph == CHECK) ->
           /* myc_cursor_intact: trusted from safe_from on while tethered,
            * else TAIL <= P + C */
#ifdef BUG_NO_VALIDATE
           ok = true;
#else
           ok = (P >= safe && MYTETHER) || TAIL <= P + C;
#endif
           if
           :: ok ->
               assert(f != 0 && gat[P] == f && f2 == f);    /* (v) not torn, not overwritten */
               assert(FSEQ(f) + 1 > last[FWRITER(f)]);       /* per-writer order */
               if
               :: teth -> assert(untethers > 0 || FSEQ(f) == last[FWRITER(f)])  /* (t) no gap */
               :: else -> skip
               fi;
               if
               :: teth && P < safe -> REACHED(7)  /* re-tethered: a frame before safe_from, validated */
               :: else -> skip
               fi;
               last[FWRITER(f)] = FSEQ(f) + 1;
               delivered++; idx++;
               P = P + ln; PUBLISH;
               ph = LOOK
           :: else -> ph = LAPPED; REACHED(5)      /* a copy found overwritten */
           fi;
           f = 0; f2 = 0; ln = 0; ok = false
       }

    :: d_step {
           (RUN && ph == EMPTY) ->
           t = TAIL;
           if
           :: P == t && teth && !TETHER ->
               /* caught up, untethered: re-tether (myc_cursor_retether):
                * POSITION (already P), then TETHER = 1 (next step), then
                * safe_from = TAIL (the step after) */
               ph = TETHER1
           :: P == t && !(teth && !TETHER) -> ph = IDLE
           :: P != t && !CLAIMEDAT(P) && t > P + C -> ph = LAPPED
           :: P != t && !(!CLAIMEDAT(P) && t > P + C) -> ph = PENDING
           fi;
           t = 0
       }

    :: d_step {
           (RUN && ph == TETHER1) ->
#ifdef BUG_SAFE_FROM_FIRST
           safe = TAIL;                 /* TAIL loaded before the TETHER store */
#else
           TETHER = 1; safeT = TAIL;
#endif
           ph = SAFE
       }

    :: d_step {
           (RUN && ph == SAFE) ->
#if defined(BUG_SAFE_FROM_FIRST)
           TETHER = 1; safeT = safe;
#elif defined(BUG_NO_SAFE_FROM)
           safe = 0;
#else
           safe = TAIL;
#endif
           REACHED(2);                  /* re-tethered */
           ph = IDLE
       }

    :: atomic { (RUN && ph == IDLE && P != TAIL) -> ph = LOOK }
    :: atomic { (RUN && ph == IDLE && P == TAIL && ALLWDONE) -> break }
    :: atomic { (RUN && ph == PENDING && (VALIDAT(P) || (!CLAIMEDAT(P) && TAIL > P + C))) -> ph = LOOK }

    :: d_step {
           (RUN && ph == LAPPED) ->
           /* lapped: resume at the oldest lap start (myc_cursor_resync) */
           if
           :: teth -> assert(untethers > 0); REACHED(4)  /* (t) only an untethered reader is lapped */
           :: else -> skip
           fi;
           t = TAIL;
           if
#ifdef BUG_LOST_BY_CELLS
           :: LAPSTART(t) > P -> lost = lost + LAPSTART(t) - P; idx = idx + LAPSTART(t) - P;
                                 P = LAPSTART(t); PUBLISH
#else
           :: LAPSTART(t) > P -> P = LAPSTART(t); PUBLISH; resyncing = true
#endif
           :: else -> skip
           fi;
           t = 0;
           ph = LOOK
       }
    od;

    /* the final state: every writer is done, the reader is at TAIL */
    atomic {
        if
        :: !(teth && tdead) ->
            assert(P == TAIL);
            assert(!teth || untethers > 0 || (delivered == NFR && lost == 0));  /* (t) */
            assert(resyncing || (idx == SEQ && delivered + lost == SEQ));       /* (n) */
            assert(delivered + lost <= SEQ);
            if
            :: teth && untethers == 0 && P >= 2 * C -> REACHED(6)  /* two laps, nothing lost */
            :: else -> skip
            fi
        :: else -> skip
        fi
    }
}

init
{
    atomic {
        run reader(true);
#ifndef NO_LOSSY
        run reader(false);
#endif
        run writer(0);
#if NW > 1
        run writer(1)
#endif
    }
}
