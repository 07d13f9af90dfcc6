/*
 * mycelium-shm: a named POSIX shared-memory channel carrying a lock-free
 * ring of variable-length frames.  Many writers; one reader, or (a broadcast
 * channel) up to MYC_READER_SLOTS readers, each with its own named cursor.
 *
 * This header is the single source of truth of the wire format.  Every
 * offset below is also described in prose in docs/FORMAT.md; the
 * _Static_asserts in csrc/map.c tie the two together.  Nothing here depends on a
 * compiler's struct layout: shared memory is only ever addressed through the
 * named byte offsets, never through a C struct.
 *
 *   /dev/shm/mycelium.<name>
 *   +--------------------------------------------+ 0
 *   | header (MYC_HEADER_SIZE = 4096 bytes)      |
 *   |   block 0  identity (immutable once ready) | 0x000
 *   |   block 1  writer position (tail, seq),    | 0x080
 *   |            lap table (broadcast)           | 0x0C0
 *   |   block 2  head, reader owner, hold, stall | 0x100
 *   |   block 3  wait / notify futex words       | 0x180
 *   |   block 4  writer totals                   | 0x200
 *   |   block 5  reader statistics               | 0x280
 *   |   blocks 6-21  writer registry (32 x 64 B) | 0x300
 *   |   blocks 22-31 reader cursors (10 x 128 B) | 0xB00
 *   |            (broadcast channels only)       |
 *   +--------------------------------------------+ 4096
 *   | ring: capacity bytes (a power of two)      |
 *   |   frames, each 16-byte aligned:            |
 *   |   +----------+---------+------+-------+--+ |
 *   |   | stamp u64| len u32 | type | flags |..| |
 *   |   +----------+---------+------+-------+--+ |
 *   +--------------------------------------------+ 4096 + capacity
 *
 * The reader never writes the ring: a frame is recognised by its stamp
 * (its own position and a state), not by zeroed memory.
 *
 * All multi-byte integers are little-endian (the only byte order this
 * implementation builds on; ring_internal.h refuses big-endian targets).
 */
#ifndef MYCELIUM_RING_H
#define MYCELIUM_RING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Format constants                                                          */
/* ------------------------------------------------------------------------ */

/* The 8 bytes "MYCELIUM" read as a little-endian u64. */
#define MYC_MAGIC 0x4D55494C4543594DULL
#define MYC_FORMAT_VERSION 2u
/* Value of the init word once the creator has finished the header. "RDY!" */
#define MYC_INIT_READY 0x21594452u
#define MYC_HEADER_SIZE 4096u
#define MYC_BLOCK_SIZE 128u
#define MYC_DIGEST_SIZE 32u
#define MYC_FRAME_HEADER_SIZE 16u
#define MYC_FRAME_ALIGNMENT 16u
/* Type id 0 is reserved: a frame of type 0 is padding, skipped by readers. */
#define MYC_TYPE_PADDING 0u
#define MYC_TYPE_ID_MAX 65535u
#define MYC_MIN_CAPACITY 1024ull
/* A frame is at most half the ring, so frame_len (u32) never overflows. */
#define MYC_MAX_CAPACITY (1ull << 32)
#define MYC_WRITER_SLOTS 32u
/* Object name is "/mycelium." + name; NAME_MAX (255) bounds the file name. */
#define MYC_NAME_PREFIX "/mycelium."
#define MYC_NAME_MAX 245u
/* HOLD word value when no force-unblocked claim is held. */
#define MYC_NO_HOLD UINT64_MAX

/* Block 0: identity.  Written by the creator before MYC_OFF_INIT. */
#define MYC_OFF_MAGIC 0x000          /* u64 MYC_MAGIC                          */
#define MYC_OFF_VERSION 0x008        /* u32 MYC_FORMAT_VERSION                 */
#define MYC_OFF_HEADER_SIZE 0x00C    /* u32 MYC_HEADER_SIZE                    */
#define MYC_OFF_CAPACITY 0x010       /* u64 ring bytes, power of two           */
#define MYC_OFF_MAX_PAYLOAD 0x018    /* u32 largest payload a frame may carry  */
#define MYC_OFF_FEATURES 0x01C       /* u32 feature bits (MYC_FEATURE_*)       */
#define MYC_OFF_SCHEMA_DIGEST 0x020  /* u8[32] SHA-256, all zero = no schema   */
#define MYC_OFF_CREATOR_PID 0x040    /* i32 pid of the creating process        */
#define MYC_OFF_CREATOR_START 0x048  /* u64 creator start time (clock ticks)   */
#define MYC_OFF_CREATED_NS 0x050     /* u64 CLOCK_REALTIME at creation, ns     */
#define MYC_OFF_READER_SLOTS 0x058   /* u32 cursor slots: 0 = single reader,
                                        1..MYC_READER_SLOTS = broadcast     */
#define MYC_OFF_UNTETHER_MS 0x05C    /* u32 broadcast: how long a tethered
                                        reader may hold writers without
                                        reading before it is untethered     */
#define MYC_OFF_INIT 0x078           /* u32 MYC_INIT_READY, release-stored last */

/* Block 1: writer position.  Every writer CASes it; nothing else shares it.
 * In a broadcast channel TAIL and SEQ form one 16-byte word that writers
 * CAS as a whole (cmpxchg16b), so each claimed frame gets a frame index. */
#define MYC_OFF_TAIL 0x080           /* u64 bytes ever claimed by writers      */
#define MYC_OFF_SEQ 0x088            /* u64 broadcast: data frames ever claimed;
                                        0 in single-reader channels         */
/* Lap table (broadcast): position k * capacity always starts a frame (no
 * frame straddles the ring's end).  Its writer records that frame's index
 * in entry k % MYC_LAP_ENTRIES before committing it; a lapped reader that
 * resumes at a lap start learns from it exactly how many frames it lost. */
#define MYC_OFF_LAP_TABLE 0x0C0
#define MYC_LAP_ENTRIES 4u
#define MYC_LAP_ENTRY_SIZE 16u
#define MYC_LAP_OFF_LAP 0            /* u64 k + 1 (0 = never written)           */
#define MYC_LAP_OFF_SEQ 8            /* u64 index of the frame at k * capacity */

/* Block 2: reader position, ownership, hold and stall. */
#define MYC_OFF_HEAD 0x100           /* u64 bytes ever consumed by the reader  */
#define MYC_OFF_READER_OWNER 0x108   /* u64 owner identity (below), 0 = none   */
#define MYC_OFF_HOLD 0x110           /* u64 force-unblocked claim still owned
                                        by a live writer; MYC_NO_HOLD = none  */
#define MYC_OFF_HOLD_SLOT 0x118      /* u32 writer slot of that claim          */
#define MYC_OFF_STALL_PID 0x11C      /* i32 live writer the reader waits on    */
#define MYC_OFF_STALL_SINCE 0x120    /* u64 CLOCK_REALTIME ns it began, 0 none */
#define MYC_OFF_CURSOR_LOCK 0x128    /* u64 broadcast: owner identity of the
                                        process changing the cursor table,
                                        0 = none (a dead holder's is taken) */

/* Block 3: wait / notify. */
#define MYC_OFF_READER_FUTEX 0x180   /* u32 bumped by writers to wake reader   */
#define MYC_OFF_READER_SLEEPING 0x184 /* u32 1 while the reader may sleep      */
#define MYC_OFF_SPACE_FUTEX 0x188    /* u32 bumped by reader to wake writers   */
#define MYC_OFF_WAITING_MASK 0x18C   /* u32 bit i: writer slot i sleeps for room */
#define MYC_OFF_READERS_SLEEPING 0x190 /* u32 broadcast: bit i: the reader of
                                        cursor slot i may sleep on READER_FUTEX */

/* Block 4: writer totals (u64 each): what released or recycled writer slots
 * counted, plus rare events.  Live slots keep their own counters. */
#define MYC_OFF_FRAMES_WRITTEN 0x200
#define MYC_OFF_BYTES_WRITTEN 0x208  /* payload bytes                          */
#define MYC_OFF_FULL_EVENTS 0x210    /* writes that found the ring full        */
#define MYC_OFF_WRITE_TIMEOUTS 0x218 /* blocking writes that gave up (Full)    */
#define MYC_OFF_WRITER_WAKES 0x220   /* futex wakes issued by writers          */
#define MYC_OFF_ABANDONED 0x228      /* frames whose commit found them revoked */
#define MYC_OFF_UNTETHERED 0x230     /* broadcast: readers writers untethered  */

/* Block 5: reader statistics (u64 each, written by the reader only). */
#define MYC_OFF_FRAMES_READ 0x280
#define MYC_OFF_BYTES_READ 0x288     /* payload bytes                          */
#define MYC_OFF_PADDING_FRAMES 0x290 /* padding and revoked frames skipped     */
#define MYC_OFF_UNBLOCKS 0x298       /* dead writers' claims skipped           */
#define MYC_OFF_READER_WAKES 0x2A0   /* futex wakes issued by the reader       */
#define MYC_OFF_READER_SLEEPS 0x2A8  /* times the reader slept on its futex    */
#define MYC_OFF_TAKEOVERS 0x2B0      /* readers that replaced a dead reader    */
#define MYC_OFF_FORCED_UNBLOCKS 0x2B8 /* claims revoked by myc_force_unblock   */

/* Blocks 6-21: writer registry, MYC_WRITER_SLOTS slots of 64 bytes (one
 * cache line each: a slot is written by its owner thread on every write). */
#define MYC_OFF_WRITER_TABLE 0x300
#define MYC_WRITER_SLOT_SIZE 64u
#define MYC_SLOT_OFF_OWNER 0         /* u64 owner identity, 0 = free           */
#define MYC_SLOT_OFF_CLAIM_START 8   /* u64 first position of the last claim,
                                        | MYC_CLAIM_PENDING until TAIL moved  */
#define MYC_SLOT_OFF_CLAIM_END 16    /* u64 end of the last claim              */
#define MYC_SLOT_OFF_FRAMES 24       /* u64 frames written (owner only)        */
#define MYC_SLOT_OFF_BYTES 32        /* u64 payload bytes written (owner only) */
#define MYC_SLOT_OFF_FULL 40         /* u64 full events (owner only)           */
#define MYC_SLOT_OFF_TIMEOUTS 48     /* u64 write timeouts (owner only)        */

/* Low bit of CLAIM_START (positions are 16-aligned): set while the range is
 * only intended (published before the TAIL CAS), cleared once the CAS made
 * it this writer's.  A writer that dies before its CAS leaves an intended
 * range that nobody claimed; the reader never takes such a range's end for
 * a confirmed one's. */
#define MYC_CLAIM_PENDING 1ull

/* Feature bits.  A library refuses a channel with a bit it does not know. */
#define MYC_FEATURE_BROADCAST 0x1u  /* READER_SLOTS > 0: the cursor table rules */

/* Blocks 22-31: the cursor table of a broadcast channel (FORMAT.md 14):
 * MYC_READER_SLOTS slots of 128 bytes, one per reader, each on its own two
 * cache lines (POSITION is stored by its reader on every read and loaded by
 * writers only when they run short of room). */
#define MYC_OFF_READER_TABLE 0xB00
#define MYC_READER_SLOTS 10u
#define MYC_CURSOR_SLOT_SIZE 128u
#define MYC_CURSOR_OFF_STATE 0       /* u32 MYC_CURSOR_FREE/CLAIMING/READY      */
#define MYC_CURSOR_OFF_POLICY 4      /* u32 MYC_POLICY_* | MYC_CURSOR_DURABLE  */
#define MYC_CURSOR_OFF_OWNER 8       /* u64 owner identity, 0 = detached       */
#define MYC_CURSOR_OFF_POSITION 16   /* u64 everything before it is read      */
#define MYC_CURSOR_OFF_INDEX 24      /* u64 frame index at POSITION            */
#define MYC_CURSOR_OFF_TETHER 32     /* u32 1: writers wait for this reader    */
#define MYC_CURSOR_OFF_FRAMES 40     /* u64 frames read (reader only)          */
#define MYC_CURSOR_OFF_BYTES 48      /* u64 payload bytes read (reader only)   */
#define MYC_CURSOR_OFF_LOST 56       /* u64 frames lost to laps (reader only)  */
#define MYC_CURSOR_OFF_LAPS 64       /* u64 times it was lapped (reader only)  */
#define MYC_CURSOR_OFF_UNTETHERS 72  /* u64 times writers untethered it        */
#define MYC_CURSOR_OFF_ATTACHED_NS 80 /* u64 CLOCK_REALTIME of the last attach */
#define MYC_CURSOR_OFF_NAME 88       /* u8[40] NUL-terminated UTF-8 name       */
#define MYC_CURSOR_NAME_MAX 39u
#define MYC_CURSOR_FREE 0u
#define MYC_CURSOR_CLAIMING 1u       /* being set up under CURSOR_LOCK         */
#define MYC_CURSOR_READY 2u
#define MYC_POLICY_TETHERED 1u       /* writers never overwrite its unread frames */
#define MYC_POLICY_LOSSY 2u          /* never slows writers; counts what it lost */
#define MYC_POLICY_MASK 0xFFu
#define MYC_CURSOR_DURABLE 0x100u    /* named: kept (with its position) after
                                        its reader leaves or dies            */
#define MYC_DEFAULT_UNTETHER_MS 2000u

/* An owner identity (reader owner, writer slot owner): one u64 taken with
 * one CAS, pid in the low half, the low 32 bits of the process start time
 * (clock ticks since boot) in the high half. */
#define MYC_OWNER(pid, start_ticks) \
    ((uint64_t)(uint32_t)(pid) | ((uint64_t)(uint32_t)(start_ticks) << 32))
#define MYC_OWNER_PID(owner) ((int32_t)(uint32_t)(owner))
#define MYC_OWNER_START(owner) ((uint32_t)((owner) >> 32))

/* Frame header, at a 16-aligned ring offset:
 *   +---------------------------+--------------+---------+---------+---------+
 *   | stamp u64: position|state | frame_len u32| type u16| flags16 | payload |
 *   +---------------------------+--------------+---------+---------+---------+
 * A stamp is valid at position P only when it equals P | state: a header
 * left from an earlier lap names an earlier position and never matches. */
#define MYC_FRAME_OFF_STAMP 0  /* u64 position | MYC_STAMP_*                 */
#define MYC_FRAME_OFF_LEN 8    /* u32 header + payload bytes                 */
#define MYC_FRAME_OFF_TYPE 12  /* u16 type id, 0 = padding                    */
#define MYC_FRAME_OFF_FLAGS 14 /* u16 flags, 0 in version 2                   */
#define MYC_STAMP_STATE_MASK 0xFull
#define MYC_STAMP_CLAIMED 1u   /* header written, payload being copied       */
#define MYC_STAMP_COMMITTED 2u /* the frame is complete: deliver it          */
#define MYC_STAMP_PADDING 3u   /* skip frame_len bytes                       */
#define MYC_STAMP_REVOKED 4u   /* force-unblocked: skip, never deliver        */

/* ------------------------------------------------------------------------ */
/* Results                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum myc_result {
    MYC_OK = 0,
    MYC_ERR_FULL = -1,           /* no room before the timeout              */
    MYC_ERR_EMPTY = -2,          /* no frame before the timeout             */
    MYC_ERR_ARG = -3,            /* bad argument (see myc_last_error)       */
    MYC_ERR_NAME = -4,           /* invalid channel name                    */
    MYC_ERR_NOT_FOUND = -5,      /* no channel of that name                 */
    MYC_ERR_EXISTS = -6,         /* channel already exists                  */
    MYC_ERR_FORMAT = -7,         /* not a channel of this format/version    */
    MYC_ERR_CORRUPT = -8,        /* shared state violates the format        */
    MYC_ERR_READER_BUSY = -9,    /* a live reader is attached               */
    MYC_ERR_SCHEMA = -10,        /* schema digest differs                   */
    MYC_ERR_TOO_LARGE = -11,     /* payload larger than the channel maximum */
    MYC_ERR_INTERRUPTED = -12,   /* a signal arrived while waiting          */
    MYC_ERR_SYSTEM = -13,        /* OS error; myc_last_errno() has errno    */
    MYC_ERR_HANDLE_BUSY = -14,   /* reader handle used by two threads       */
    MYC_ERR_CLOSED = -15,        /* handle already closed                   */
    MYC_ERR_ABANDONED = -16,     /* an operator force-unblocked this claim;
                                    the frame was dropped, never delivered  */
    MYC_ERR_TOO_MANY_WRITERS = -17, /* all MYC_WRITER_SLOTS slots are taken  */
    MYC_ERR_FOREIGN = -18,       /* the channel is owned by another uid, or
                                    its mode is wider than the opener's;
                                    refused without MYC_TRUST_FOREIGN      */
    MYC_ERR_FORKED = -19,        /* the handle was opened by the parent of
                                    this forked process: the child must open
                                    its own (the parent's state is untouched) */
    MYC_ERR_LAPPED = -20,        /* a frame held by a lossy (or untethered)
                                    reader was overwritten while held: the
                                    bytes seen through it are not reliable */
    MYC_ERR_TOO_MANY_READERS = -21, /* every cursor slot holds a reader     */
} myc_result;

/* Flags for the open functions: one of the three ways, optionally ORed with
 * MYC_TRUST_FOREIGN. */
#define MYC_ATTACH 0         /* the channel must exist                       */
#define MYC_CREATE 1         /* the channel must not exist                   */
#define MYC_CREATE_OR_ATTACH 2
/*
 * Attaching (MYC_ATTACH, or MYC_CREATE_OR_ATTACH finding the object) refuses
 * with MYC_ERR_FOREIGN a channel whose file is owned by another uid than the
 * caller's effective uid, or whose permission bits are wider than the open's
 * `mode` (0 = 0600): any user it admits could corrupt the channel, stall it,
 * or truncate it under this process's mapping (SIGBUS).  That also refuses a
 * channel squatted by someone who created the name first with mode 0666.
 * With this bit the caller trusts such a channel and attaches anyway (a
 * shared group: mode 0660 on both sides plus this bit).  See the threat
 * model in docs/FORMAT.md.
 */
#define MYC_TRUST_FOREIGN 0x100
/* Reader open flag (broadcast): a new cursor starts at the oldest frame
 * writers still keep, not at the tail. */
#define MYC_START_OLDEST 0x200

/* Human-readable detail of the last error on this thread ("" if none). */
const char *myc_last_error(void);
/* errno of the last MYC_ERR_SYSTEM on this thread. */
int myc_last_errno(void);
/* Static name of a result code, e.g. "MYC_ERR_FULL". */
const char *myc_result_name(int result);

/*
 * Process-wide: blocking calls return MYC_ERR_INTERRUPTED at least every
 * `slice_ns` (0 = never, the default) so that a caller can service signals
 * (Python runs its Ctrl-C handler) and call again with the remaining
 * timeout.  A call resumed that way on the same thread is not counted again
 * in full_events.
 */
void myc_set_wait_slice(int64_t slice_ns);

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
/* ------------------------------------------------------------------------ */

/* MYC_OK if name is a valid channel name, else MYC_ERR_NAME with detail:
 * 1 to MYC_NAME_MAX bytes of valid UTF-8 (no overlong form, surrogate, code
 * point above U+10FFFF, stray continuation byte, 0xfe/0xff or truncated
 * sequence: the message names the byte offset), no '/', no "..", not ".",
 * no control byte (below 0x20, or 0x7f). */
int myc_name_check(const char *name);
/* Remove the channel's shared-memory object.  Open handles stay valid. */
int myc_unlink(const char *name);

/* ------------------------------------------------------------------------ */
/* Writers                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct myc_writer myc_writer;

/*
 * Open a writer.  With MYC_CREATE the channel is made with `capacity` ring
 * bytes (power of two, MYC_MIN_CAPACITY..MYC_MAX_CAPACITY), `max_payload`
 * (0 = capacity / 4 - 16; at most capacity / 2 - 16), file `mode` (0 = 0600)
 * and `schema_digest` (32 bytes or NULL for none).  When attaching,
 * capacity/max_payload/mode are ignored and a non-NULL digest must equal the
 * channel's (MYC_ERR_SCHEMA otherwise).  A writer handle may be shared by
 * threads.
 */
int myc_writer_open(const char *name, int flags, uint64_t capacity,
                    uint32_t max_payload, uint32_t mode,
                    const uint8_t *schema_digest, myc_writer **out);
void myc_writer_close(myc_writer *writer);

/*
 * Copy one frame in.  timeout_ns: 0 = do not wait, < 0 = wait forever,
 * > 0 = wait at most that long for room.  MYC_ERR_FULL on timeout.
 */
int myc_write(myc_writer *writer, uint32_t type_id, const void *payload,
              uint32_t payload_len, int64_t timeout_ns);

/*
 * Write `count` frames with one claim: frame i has type_ids[i], length
 * lens[i] and its payload follows the previous one in `payloads`.  Writes the
 * longest prefix that fits (waiting up to timeout_ns for room for the first
 * frame); returns how many were written (>= 1), or a negative myc_result
 * (then myc_last_batch_written() says how many were written before it).
 */
int64_t myc_write_batch(myc_writer *writer, uint32_t count,
                        const uint16_t *type_ids, const uint32_t *lens,
                        const void *payloads, int64_t timeout_ns);

/* A claimed, not yet committed frame (zero-copy write). */
typedef struct myc_reservation {
    uint8_t *payload;     /* payload_len writable bytes in the ring     */
    uint64_t position;    /* ring position of the frame header          */
    uint32_t payload_len;
    uint32_t type_id;
} myc_reservation;

/* Claim room for a frame; fill res->payload, then commit or abort. */
int myc_reserve(myc_writer *writer, uint32_t type_id, uint32_t payload_len,
                int64_t timeout_ns, myc_reservation *res);
int myc_commit(myc_writer *writer, myc_reservation *res);
/* Give the claim back: it becomes padding the reader skips. */
int myc_abort(myc_writer *writer, myc_reservation *res);

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct myc_reader myc_reader;

/*
 * Open the channel's single reader (same arguments as myc_writer_open).
 * MYC_ERR_READER_BUSY if a live reader holds the channel; a dead reader's
 * place is taken over, continuing from its position.  Not thread-safe: one
 * thread at a time (concurrent use returns MYC_ERR_HANDLE_BUSY).
 */
int myc_reader_open(const char *name, int flags, uint64_t capacity,
                    uint32_t max_payload, uint32_t mode,
                    const uint8_t *schema_digest, myc_reader **out);
void myc_reader_close(myc_reader *reader);

/* How long a claimed-but-uncommitted frame may hold the reader before it
 * checks whether the claiming writer is alive (default 10 ms; then again
 * every such interval).  A dead writer's claim is skipped; a live writer's
 * is waited for (back-pressure) and shown as a stall in myc_inspect. */
void myc_reader_set_stuck_timeout(myc_reader *reader, int64_t timeout_ns);
/* How long a waiting reader or writer spins before sleeping.  Default 50 us. */
void myc_reader_set_spin(myc_reader *reader, int64_t spin_ns);
void myc_writer_set_spin(myc_writer *writer, int64_t spin_ns);

/* A frame as seen by the reader (zero-copy view into the ring). */
typedef struct myc_frame {
    const uint8_t *payload;
    uint32_t payload_len;
    uint16_t type_id;
    uint16_t flags;
} myc_frame;

/*
 * Copy the next frame's payload into buf.  Returns (type_id << 32 |
 * payload_len) >= 0, or a negative myc_result (MYC_ERR_EMPTY on timeout).
 * A frame larger than buf_len is left unread: MYC_ERR_ARG.
 */
int64_t myc_read(myc_reader *reader, int64_t timeout_ns, uint8_t *buf,
                 uint64_t buf_len);

/*
 * Zero-copy: point `frame` at the next frame in the ring.  The frame stays
 * valid, and unconsumed, until myc_release() or the reader's next call; it
 * is counted in frames_read when released.  Any read call (myc_read,
 * myc_peek, myc_read_batch) made while a frame is held first releases it:
 * the held frame is consumed and its pointer is dangling from then on.  The
 * Python binding refuses such a nested read instead (ReadViewOpen).
 */
int myc_peek(myc_reader *reader, int64_t timeout_ns, myc_frame *frame);
void myc_release(myc_reader *reader);

/*
 * Copy up to max_frames frames (stopping early when buf is full), waiting up
 * to timeout_ns for the first one.  Payloads are packed back to back in buf;
 * type_ids[i] and lens[i] describe frame i.  Returns the count (>= 1; 0 only
 * if max_frames is 0), MYC_ERR_EMPTY if nothing came before the timeout, or
 * an error.  An error met after some frames is returned by the next call.
 */
int64_t myc_read_batch(myc_reader *reader, uint32_t max_frames,
                       int64_t timeout_ns, uint8_t *buf, uint64_t buf_len,
                       uint16_t *type_ids, uint32_t *lens);

/* ------------------------------------------------------------------------ */
/* Broadcast channels                                                        */
/* ------------------------------------------------------------------------ */

/*
 * As myc_writer_open / myc_reader_open, plus what a broadcast channel needs.
 * `readers` (creating only): 0 makes a single-reader channel, 1 to
 * MYC_READER_SLOTS a broadcast channel with that many cursor slots;
 * `untether_ms` (creating only; 0 = MYC_DEFAULT_UNTETHER_MS) is how long a
 * tethered reader may hold writers back without reading before a writer
 * untethers it.  When attaching, a non-zero `readers` must equal the
 * channel's (MYC_ERR_ARG otherwise).
 *
 * myc_reader_open_ex on a broadcast channel attaches a reader with its own
 * cursor: `cursor` names it (1 to MYC_CURSOR_NAME_MAX bytes of UTF-8, no
 * control byte; NULL = anonymous, freed when the reader leaves), `policy`
 * is MYC_POLICY_TETHERED (0 means this) or MYC_POLICY_LOSSY.  A named
 * cursor is durable: it keeps its position when its reader closes or dies,
 * and the next reader opening that name resumes there (MYC_ERR_READER_BUSY
 * while a live reader holds it).  A new cursor starts at the tail, or with
 * MYC_START_OLDEST in flags at the oldest frame writers still keep.
 * MYC_ERR_TOO_MANY_READERS when every slot is taken.  On a single-reader
 * channel `cursor` must be NULL and `policy` 0 or tethered (MYC_ERR_ARG).
 * Plain myc_reader_open on a broadcast channel attaches an anonymous
 * tethered cursor.
 */
int myc_writer_open_ex(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                       uint32_t mode, const uint8_t *schema_digest, uint32_t readers,
                       uint32_t untether_ms, myc_writer **out);
int myc_reader_open_ex(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                       uint32_t mode, const uint8_t *schema_digest, uint32_t readers,
                       uint32_t untether_ms, const char *cursor, uint32_t policy,
                       myc_reader **out);

/* One reader's cursor as seen in the table. */
typedef struct myc_cursor_info {
    char name[MYC_CURSOR_NAME_MAX + 1]; /* "" for an anonymous cursor      */
    uint32_t slot;
    uint32_t policy;          /* MYC_POLICY_TETHERED or MYC_POLICY_LOSSY     */
    uint32_t durable;         /* 1: named, kept after its reader leaves      */
    uint32_t tethered;        /* 1: writers currently wait for it            */
    int32_t pid;              /* its reader, 0 = detached                     */
    int32_t alive;
    uint64_t position;
    uint64_t lag;             /* TAIL - position, bytes not yet read          */
    uint64_t frames_read;
    uint64_t bytes_read;
    uint64_t lost;            /* frames it lost when writers lapped it        */
    uint64_t laps;            /* times it was lapped                          */
    uint64_t untethers;       /* times writers untethered it                  */
    uint64_t attached_ns;     /* CLOCK_REALTIME of the last attach            */
} myc_cursor_info;

/* This reader's cursor (MYC_ERR_ARG on a single-reader channel). */
int myc_reader_cursor(const myc_reader *reader, myc_cursor_info *out);
/* The cursors of channel `name` (an observer: maps read-only).  Fills up to
 * `max` entries and sets *count to the number of cursors in use. */
int myc_inspect_cursors(const char *name, myc_cursor_info *out, uint32_t max, uint32_t *count);
/* Create durable, tethered cursor `cursor` of broadcast channel `name` at
 * the tail, held by nobody (what attaching it and closing would leave, with
 * no moment where a live process holds it); MYC_OK if it exists already,
 * held or not.  MYC_ERR_TOO_MANY_READERS if no slot is free. */
int myc_cursor_register(const char *name, const char *cursor);
/* Free a durable cursor that no live reader holds (MYC_ERR_READER_BUSY if
 * one does, MYC_ERR_NOT_FOUND if there is no cursor of that name). */
int myc_cursor_forget(const char *name, const char *cursor);
/* After myc_peek on a lossy or untethered reader: MYC_OK if the held frame
 * is still intact, MYC_ERR_LAPPED if a writer may have overwritten it (its
 * bytes must not be trusted; the next read resumes past the loss).  Always
 * MYC_OK for a single-reader channel or a tethered reader. */
int myc_reader_check_held(myc_reader *reader);

/* ------------------------------------------------------------------------ */
/* Statistics and inspection                                                 */
/* ------------------------------------------------------------------------ */

typedef struct myc_stats {
    uint64_t capacity;
    uint64_t max_payload;
    uint64_t head;
    uint64_t tail;
    uint64_t frames_written;
    uint64_t bytes_written;
    uint64_t full_events;
    uint64_t write_timeouts;
    uint64_t writer_wakes;
    uint64_t frames_read;
    uint64_t bytes_read;
    uint64_t padding_frames;
    uint64_t unblocks;
    uint64_t reader_wakes;
    uint64_t reader_sleeps;
    uint64_t takeovers;
} myc_stats;

int myc_writer_stats(const myc_writer *writer, myc_stats *out);
int myc_reader_stats(const myc_reader *reader, myc_stats *out);

/* A snapshot of a channel taken without attaching as reader or writer. */
typedef struct myc_info {
    myc_stats stats;
    uint8_t schema_digest[MYC_DIGEST_SIZE];
    uint64_t created_ns;
    uint64_t file_size;
    int32_t creator_pid;
    int32_t creator_alive;
    int32_t reader_pid;       /* 0 = no reader attached */
    int32_t reader_alive;
    uint32_t format_version;
    uint32_t writer_count;    /* registered writer slots in use */
    int32_t writer_pids[MYC_WRITER_SLOTS];
    int32_t writer_alive[MYC_WRITER_SLOTS];
    int32_t stalled_pid;      /* live writer holding the reader, 0 = none */
    uint32_t reader_slots;    /* 0: single-reader; else broadcast cursor slots */
    uint64_t stalled_since_ns; /* CLOCK_REALTIME when that stall began    */
    uint64_t hold_position;   /* MYC_NO_HOLD, or a revoked claim's start  */
} myc_info;

/* Validate the channel's header and fill `out` (no side effects).  An
 * observer: maps read-only and applies no ownership rule. */
int myc_inspect(const char *name, myc_info *out);

/* The same snapshot through a writer's own mapping: no lookup by name (the
 * name may now be another object, or a header never initialised, which
 * myc_inspect waits 2 s for), no wait.  For messages about this channel,
 * such as a Full error's "is its reader alive". */
int myc_writer_inspect(const myc_writer *writer, myc_info *out);

/*
 * Operator's escape hatch (it attaches as if with MYC_TRUST_FOREIGN: the
 * operator names the channel on purpose): revoke the claim that holds the reader of
 * channel `name` (a live writer stalled mid-frame).  The reader skips it;
 * its writer's commit then fails with MYC_ERR_ABANDONED and none of its
 * bytes reach a reader; writers do not reuse its space until that writer
 * has returned or died.  *pid_out / *position_out (may be NULL) say whose
 * claim and where.  MYC_ERR_EMPTY if the reader is not held by a claim;
 * MYC_ERR_READER_BUSY if the claim cannot be revoked yet (its writer has not
 * written its frame header, or an earlier revoked claim is still held).
 */
int myc_force_unblock(const char *name, int32_t *pid_out, uint64_t *position_out);

/* Frames a failed myc_write_batch wrote (and committed) before failing, on
 * this thread. */
uint32_t myc_last_batch_written(void);

/* 1 if pid is a live process (and, if start_ticks != 0, the same one). */
int myc_pid_alive(int32_t pid, uint64_t start_ticks);

#ifdef __cplusplus
}
#endif
#endif /* MYCELIUM_RING_H */
