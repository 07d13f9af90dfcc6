"""cffi (API mode) build script for the ring core: ``mycelium_shm._ring``.

The declarations mirror ``csrc/ring.h``; constants and enum values use ``...``
so the C compiler fills them in and they can never drift from the header.
"""

from __future__ import annotations

import glob

from cffi import FFI

# Relative to the repository root, where setup.py runs (setuptools wants
# relative source paths).
_CSRC = "csrc"

CDEF = """
#define MYC_FORMAT_VERSION ...
#define MYC_HEADER_SIZE ...
#define MYC_DIGEST_SIZE ...
#define MYC_FRAME_HEADER_SIZE ...
#define MYC_FRAME_ALIGNMENT ...
#define MYC_TYPE_ID_MAX ...
#define MYC_MIN_CAPACITY ...
#define MYC_MAX_CAPACITY ...
#define MYC_NAME_MAX ...
#define MYC_WRITER_SLOTS ...
#define MYC_ATTACH ...
#define MYC_CREATE ...
#define MYC_CREATE_OR_ATTACH ...
#define MYC_TRUST_FOREIGN ...
#define MYC_START_OLDEST ...
#define MYC_READER_SLOTS ...
#define MYC_CURSOR_NAME_MAX ...
#define MYC_POLICY_TETHERED ...
#define MYC_POLICY_LOSSY ...
#define MYC_DEFAULT_UNTETHER_MS ...

typedef enum myc_result {
    MYC_OK, MYC_ERR_FULL, MYC_ERR_EMPTY, MYC_ERR_ARG, MYC_ERR_NAME,
    MYC_ERR_NOT_FOUND, MYC_ERR_EXISTS, MYC_ERR_FORMAT, MYC_ERR_CORRUPT,
    MYC_ERR_READER_BUSY, MYC_ERR_SCHEMA, MYC_ERR_TOO_LARGE,
    MYC_ERR_INTERRUPTED, MYC_ERR_SYSTEM, MYC_ERR_HANDLE_BUSY, MYC_ERR_CLOSED,
    MYC_ERR_ABANDONED, MYC_ERR_TOO_MANY_WRITERS, MYC_ERR_FOREIGN, MYC_ERR_FORKED,
    MYC_ERR_LAPPED, MYC_ERR_TOO_MANY_READERS, ...
} myc_result;

const char *myc_last_error(void);
int myc_last_errno(void);
void myc_set_wait_slice(int64_t slice_ns);
int myc_name_check(const char *name);
int myc_unlink(const char *name);

typedef struct myc_writer myc_writer;
typedef struct myc_reader myc_reader;

typedef struct myc_reservation {
    uint8_t *payload;
    uint64_t position;
    uint32_t payload_len;
    uint32_t type_id;
} myc_reservation;

typedef struct myc_frame {
    const uint8_t *payload;
    uint32_t payload_len;
    uint16_t type_id;
    uint16_t flags;
} myc_frame;

typedef struct myc_stats {
    uint64_t capacity; uint64_t max_payload; uint64_t head; uint64_t tail;
    uint64_t frames_written; uint64_t bytes_written; uint64_t full_events;
    uint64_t write_timeouts; uint64_t writer_wakes; uint64_t frames_read;
    uint64_t bytes_read; uint64_t padding_frames; uint64_t unblocks;
    uint64_t reader_wakes; uint64_t reader_sleeps; uint64_t takeovers;
} myc_stats;

typedef struct myc_info {
    myc_stats stats;
    uint8_t schema_digest[32];
    uint64_t created_ns;
    uint64_t file_size;
    int32_t creator_pid;
    int32_t creator_alive;
    int32_t reader_pid;
    int32_t reader_alive;
    uint32_t format_version;
    uint32_t writer_count;
    int32_t writer_pids[32];
    int32_t writer_alive[32];
    int32_t stalled_pid;
    uint32_t reader_slots;
    uint64_t stalled_since_ns;
    uint64_t hold_position;
} myc_info;

int myc_writer_open(const char *name, int flags, uint64_t capacity,
                    uint32_t max_payload, uint32_t mode,
                    const uint8_t *schema_digest, myc_writer **out);
void myc_writer_close(myc_writer *writer);
void myc_writer_set_spin(myc_writer *writer, int64_t spin_ns);
int myc_write(myc_writer *writer, uint32_t type_id, const char *payload,
              uint32_t payload_len, int64_t timeout_ns);
int64_t myc_write_batch(myc_writer *writer, uint32_t count,
                        const uint16_t *type_ids, const uint32_t *lens,
                        const char *payloads, int64_t timeout_ns);
int myc_reserve(myc_writer *writer, uint32_t type_id, uint32_t payload_len,
                int64_t timeout_ns, myc_reservation *res);
int myc_commit(myc_writer *writer, myc_reservation *res);
int myc_abort(myc_writer *writer, myc_reservation *res);
int myc_writer_stats(const myc_writer *writer, myc_stats *out);

int myc_reader_open(const char *name, int flags, uint64_t capacity,
                    uint32_t max_payload, uint32_t mode,
                    const uint8_t *schema_digest, myc_reader **out);
void myc_reader_close(myc_reader *reader);
void myc_reader_set_stuck_timeout(myc_reader *reader, int64_t timeout_ns);
void myc_reader_set_spin(myc_reader *reader, int64_t spin_ns);
int64_t myc_read(myc_reader *reader, int64_t timeout_ns, uint8_t *buf,
                 uint64_t buf_len);
int myc_peek(myc_reader *reader, int64_t timeout_ns, myc_frame *frame);
void myc_release(myc_reader *reader);
int64_t myc_read_batch(myc_reader *reader, uint32_t max_frames,
                       int64_t timeout_ns, uint8_t *buf, uint64_t buf_len,
                       uint16_t *type_ids, uint32_t *lens);
int myc_reader_stats(const myc_reader *reader, myc_stats *out);

int myc_inspect(const char *name, myc_info *out);
int myc_writer_inspect(const myc_writer *writer, myc_info *out);
int myc_pid_alive(int32_t pid, uint64_t start_ticks);
int myc_force_unblock(const char *name, int32_t *pid_out, uint64_t *position_out);
uint32_t myc_last_batch_written(void);

int myc_writer_open_ex(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                       uint32_t mode, const uint8_t *schema_digest, uint32_t readers,
                       uint32_t untether_ms, myc_writer **out);
int myc_reader_open_ex(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                       uint32_t mode, const uint8_t *schema_digest, uint32_t readers,
                       uint32_t untether_ms, const char *cursor, uint32_t policy,
                       myc_reader **out);
typedef struct myc_cursor_info {
    char name[40];
    uint32_t slot; uint32_t policy; uint32_t durable; uint32_t tethered;
    int32_t pid; int32_t alive;
    uint64_t position; uint64_t lag; uint64_t frames_read; uint64_t bytes_read;
    uint64_t lost; uint64_t laps; uint64_t untethers; uint64_t attached_ns;
} myc_cursor_info;
int myc_reader_cursor(const myc_reader *reader, myc_cursor_info *out);
int myc_inspect_cursors(const char *name, myc_cursor_info *out, uint32_t max, uint32_t *count);
int myc_cursor_forget(const char *name, const char *cursor);
int myc_cursor_register(const char *name, const char *cursor);
int myc_reader_check_held(myc_reader *reader);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "mycelium_shm._ring",
    '#include "ring.h"',
    sources=sorted(glob.glob(f"{_CSRC}/*.c")),
    include_dirs=[_CSRC],
    depends=sorted(glob.glob(f"{_CSRC}/*.h")),
    # -Werror is for the core's own build (Makefile): cffi's generated
    # wrapper is not ours to keep warning-free across cffi versions.
    extra_compile_args=["-std=c11", "-O2"],
)
