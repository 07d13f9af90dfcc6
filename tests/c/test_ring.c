/*
 * Unit tests of the ring core, format 2 (docs/FORMAT.md): the raw bytes
 * of the 16-byte stamped frame header, 16-byte alignment, padding at the
 * ring's end, a reader that never writes the ring, exact-capacity fill,
 * reserve/peek, corrupt frames and headers, the schema digest, reader
 * ownership (busy, takeover of a dead or zombie reader), blocking reads,
 * closed handles, the largest capacity and the writer-slot limit.
 *
 * Positions are reached by writing and reading, not set by hand; raw
 * writes to the channel are used only to play a hostile or dead peer.
 * Built plain and under ASan+UBSan.  `test_ring [substring]` runs the
 * tests whose name contains the substring.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <pthread.h>
#include <sys/statvfs.h>

#define STAMP(pos, state) ((uint64_t)(pos) | (uint64_t)(state))
#define FRAME_BYTES(payload) (((uint64_t)(payload) + MYC_FRAME_HEADER_SIZE + 15) & ~(uint64_t)15)

static myc_writer *create_writer(const char *name, uint64_t capacity, uint32_t max_payload) {
    myc_writer *w = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, capacity, max_payload, 0, NULL, &w), MYC_OK);
    return w;
}
static myc_writer *attach_writer(const char *name) {
    myc_writer *w = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &w), MYC_OK);
    return w;
}
static myc_reader *attach_reader(const char *name) {
    myc_reader *r = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_OK);
    return r;
}

static myc_stats reader_stats(myc_reader *r) {
    myc_stats s;
    memset(&s, 0, sizeof s);
    CHECK_EQ(myc_reader_stats(r, &s), MYC_OK);
    return s;
}

/* Write and read empty frames (16 bytes each) until the ring index of TAIL
 * is `index` (16-aligned); HEAD == TAIL afterwards. */
static void advance_to_index(myc_writer *w, myc_reader *r, raw_map raw, uint64_t capacity,
                             uint64_t index) {
    uint8_t buf[16];
    for (int guard = 0; (raw_u64(raw, MYC_OFF_TAIL) & (capacity - 1)) != index; guard++) {
        if (guard > (int)(capacity / 16) + 1) {
            CHECK(!"advance_to_index did not reach its index");
            return;
        }
        CHECK_EQ(myc_write(w, 1, "", 0, 0), MYC_OK);
        CHECK_EQ(myc_read(r, 0, buf, sizeof buf), (int64_t)1 << 32);
    }
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), raw_u64(raw, MYC_OFF_TAIL));
}

/* An owner identity that names this pid with another start time: a process
 * that has died (its pid since reused by us). */
static uint64_t dead_owner(void) {
    return MYC_OWNER(getpid(), proc_start_ticks(getpid()) + 1);
}

/* ------------------------------------------------------------------------ */

static void test_names(void) {
    CHECK_EQ(myc_name_check("ticks"), MYC_OK);
    CHECK_EQ(myc_name_check("a.b-c_d"), MYC_OK);
    CHECK_EQ(myc_name_check(""), MYC_ERR_NAME);
    CHECK_EQ(myc_name_check(NULL), MYC_ERR_NAME);
    CHECK_EQ(myc_name_check("a/b"), MYC_ERR_NAME);
    CHECK_EQ(myc_name_check(".."), MYC_ERR_NAME);
    CHECK_EQ(myc_name_check("x..y"), MYC_ERR_NAME);
    CHECK_EQ(myc_name_check("."), MYC_ERR_NAME);
    CHECK_EQ(myc_name_check("bell\a"), MYC_ERR_NAME);
    CHECK_EQ(myc_name_check("del\x7f"), MYC_ERR_NAME);
    /* UTF-8 only (FORMAT.md section 1): valid multi-byte text passes ... */
    CHECK_EQ(myc_name_check("caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80"), MYC_OK);
    /* ... overlong forms, surrogates, 0xfe/0xff, stray continuation bytes,
     * code points above U+10FFFF and truncated sequences do not, and the
     * message names the byte offset. */
    static const struct {
        const char *name, *why;
    } bad_utf8[] = {
        {"a\xc0\xaf", "overlong encoding (byte 0xc0) at byte offset 1"},
        {"ab\xe0\x80\xaf", "overlong encoding (byte 0xe0) at byte offset 2"},
        {"\xf0\x80\x80\xaf", "overlong encoding (byte 0xf0) at byte offset 0"},
        {"a\xed\xa0\x80", "UTF-16 surrogate (byte 0xed) at byte offset 1"},
        {"a\xed\xbf\xbf", "UTF-16 surrogate (byte 0xed) at byte offset 1"},
        {"x\xff", "never occurs in UTF-8 (byte 0xff) at byte offset 1"},
        {"x\xfe", "never occurs in UTF-8 (byte 0xfe) at byte offset 1"},
        {"\x80" "abc", "continuation byte without a lead byte (byte 0x80) at byte offset 0"},
        {"\xf4\x90\x80\x80", "beyond U+10FFFF (byte 0xf4) at byte offset 0"},
        {"\xf5\x80\x80\x80", "beyond U+10FFFF (byte 0xf5) at byte offset 0"},
        {"abc\xe2\x82", "truncated sequence (byte 0xe2) at byte offset 3"},
        {"abc\xc3", "truncated sequence (byte 0xc3) at byte offset 3"},
        {"a\xc3" "b", "truncated sequence (byte 0xc3) at byte offset 1"},
    };
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        CHECK_EQ(myc_name_check(bad_utf8[i].name), MYC_ERR_NAME);
        CHECK(strstr(myc_last_error(), "not valid UTF-8") != NULL);
        CHECK(strstr(myc_last_error(), bad_utf8[i].why) != NULL);
    }
    char longname[MYC_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname);
    longname[MYC_NAME_MAX] = '\0';
    CHECK_EQ(myc_name_check(longname), MYC_OK);
    longname[MYC_NAME_MAX] = 'n';
    longname[MYC_NAME_MAX + 1] = '\0';
    CHECK_EQ(myc_name_check(longname), MYC_ERR_NAME);
    myc_writer *w = NULL;
    CHECK_EQ(myc_writer_open("bad/name", MYC_CREATE, 4096, 0, 0, NULL, &w), MYC_ERR_NAME);
    CHECK(w == NULL);
}

/* Attaching refuses a channel whose mode is wider than the opener's (or
 * whose owner is another uid: tests/test_permissions.py) unless
 * MYC_TRUST_FOREIGN; an odd object at the path is MYC_ERR_FORMAT saying what
 * it is; a file truncated while a reader sleeps is noticed on waking. */
static void test_foreign_and_odd_objects(void) {
    const char *name = fresh_name("foreign");
    myc_writer *w = NULL, *w2 = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 4096, 0, 0666, NULL, &w), MYC_OK);
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &w2), MYC_ERR_FOREIGN);
    CHECK(strstr(myc_last_error(), "mode 0666, wider than the 0600") != NULL);
    CHECK(w2 == NULL);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE_OR_ATTACH, 4096, 0, 0640, NULL, &w2), MYC_ERR_FOREIGN);
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0666, NULL, &w2), MYC_OK);
    myc_writer_close(w2);
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH | MYC_TRUST_FOREIGN, 0, 0, 0, NULL, &w2), MYC_OK);
    myc_writer_close(w2);
    CHECK_EQ(myc_writer_open(name, 4 | MYC_TRUST_FOREIGN, 0, 0, 0, NULL, &w2), MYC_ERR_ARG);
    myc_writer_close(w);
    myc_unlink(name);

    char path[300];
    name = fresh_name("symlink");
    snprintf(path, sizeof path, "/dev/shm/mycelium.%s", name);
    CHECK_EQ(symlink("/etc/passwd", path), 0);
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &w), MYC_ERR_FORMAT);
    CHECK(strstr(myc_last_error(), "is a symbolic link, not a channel") != NULL);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE_OR_ATTACH, 4096, 0, 0, NULL, &w), MYC_ERR_FORMAT);
    myc_info info;
    CHECK_EQ(myc_inspect(name, &info), MYC_ERR_FORMAT);
    unlink(path);
    name = fresh_name("dir");
    snprintf(path, sizeof path, "/dev/shm/mycelium.%s", name);
    CHECK_EQ(mkdir(path, 0700), 0);
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &w), MYC_ERR_FORMAT);
    CHECK(strstr(myc_last_error(), "is a directory, not a channel") != NULL);
    CHECK_EQ(myc_inspect(name, &info), MYC_ERR_FORMAT);
    CHECK(strstr(myc_last_error(), "is a directory, not a channel") != NULL);
    rmdir(path);

    /* truncated under a sleeping reader: CORRUPT, not SIGBUS, and the handle
     * stays refused */
    name = fresh_name("truncated");
    snprintf(path, sizeof path, "/dev/shm/mycelium.%s", name);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 4096, 0, 0, NULL, &w), MYC_OK);
    myc_reader *r = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_OK);
    uint8_t buf[64];
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY);
    myc_writer_close(w);
    pid_t child = fork();
    if (child == 0) {
        /* Truncate once the parent sleeps in the read (state S), not before
         * it maps the ring: a condition with a deadline, not a fixed delay. */
        if (!wait_process_state(getppid(), 'S', 5000)) _exit(2);
        _exit(truncate(path, MYC_HEADER_SIZE) == 0 ? 0 : 1);
    }
    CHECK_EQ(myc_read(r, 2000 * MS, buf, sizeof buf), MYC_ERR_CORRUPT);
    CHECK(strstr(myc_last_error(), "was truncated") != NULL);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_CORRUPT);
    int status = 0;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    myc_reader_close(r);
    myc_unlink(name);
}

static void test_create_attach_and_header(void) {
    const char *name = fresh_name("create");
    myc_writer *w = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &w), MYC_ERR_NOT_FOUND);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 3000, 0, 0, NULL, &w), MYC_ERR_ARG);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 512, 0, 0, NULL, &w), MYC_ERR_ARG);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, MYC_MAX_CAPACITY * 2, 0, 0, NULL, &w), MYC_ERR_ARG);
    /* max_payload at most capacity/2 - 16 (a frame is at most half the ring) */
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 4096, 4096 / 2 - 15, 0, NULL, &w), MYC_ERR_ARG);
    CHECK_EQ(myc_writer_open(name, 7, 4096, 0, 0, NULL, &w), MYC_ERR_ARG);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 4096, 0, 01000, NULL, &w), MYC_ERR_ARG);
    CHECK(w == NULL);
    w = create_writer(name, 4096, 0);
    myc_writer *w2 = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 4096, 0, 0, NULL, &w2), MYC_ERR_EXISTS);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE_OR_ATTACH, 8192, 0, 0, NULL, &w2), MYC_OK);
    myc_stats s;
    CHECK_EQ(myc_writer_stats(w2, &s), MYC_OK);
    CHECK_EQ(s.capacity, 4096); /* the existing channel's, not the 8192 asked */
    CHECK_EQ(s.max_payload, 4096 / 4 - 16);

    /* block 0 and the initial words, byte by byte */
    raw_map raw = raw_open(name);
    CHECK_EQ(raw.size, MYC_HEADER_SIZE + 4096);
    CHECK_EQ(memcmp(raw.base + MYC_OFF_MAGIC, "MYCELIUM", 8), 0);
    CHECK_EQ(raw_u32(raw, MYC_OFF_VERSION), 2);
    CHECK_EQ(raw_u32(raw, MYC_OFF_HEADER_SIZE), 4096);
    CHECK_EQ(raw_u64(raw, MYC_OFF_CAPACITY), 4096);
    CHECK_EQ(raw_u32(raw, MYC_OFF_MAX_PAYLOAD), 4096 / 4 - 16);
    CHECK_EQ(raw_u32(raw, MYC_OFF_FEATURES), 0);
    CHECK_EQ((int32_t)raw_u32(raw, MYC_OFF_CREATOR_PID), getpid());
    CHECK_EQ(raw_u64(raw, MYC_OFF_CREATOR_START), proc_start_ticks(getpid()) & 0xffffffffull);
    CHECK(raw_u64(raw, MYC_OFF_CREATED_NS) != 0);
    CHECK_EQ(raw_u32(raw, MYC_OFF_READER_SLOTS), 0);
    CHECK_EQ(raw_u32(raw, MYC_OFF_INIT), MYC_INIT_READY);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 0);
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), 0);
    CHECK_EQ(raw_u64(raw, MYC_OFF_READER_OWNER), 0);
    CHECK_EQ(raw_u64(raw, MYC_OFF_HOLD), MYC_NO_HOLD);
    CHECK_EQ(raw_u32(raw, MYC_OFF_STALL_PID), 0);
    /* two writer handles in one thread: two registry slots, owned by us */
    uint64_t me = MYC_OWNER(getpid(), proc_start_ticks(getpid()));
    CHECK_EQ(raw_u64(raw, MYC_OFF_WRITER_TABLE + 0 * MYC_WRITER_SLOT_SIZE), me);
    CHECK_EQ(raw_u64(raw, MYC_OFF_WRITER_TABLE + 1 * MYC_WRITER_SLOT_SIZE), me);
    CHECK_EQ(raw_u64(raw, MYC_OFF_WRITER_TABLE + 2 * MYC_WRITER_SLOT_SIZE), 0);
    myc_writer_close(w2);
    CHECK_EQ(raw_u64(raw, MYC_OFF_WRITER_TABLE + 1 * MYC_WRITER_SLOT_SIZE), 0);
    raw_close(raw);

    struct stat st;
    char path[320];
    shm_path(name, path, sizeof path);
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(st.st_size, MYC_HEADER_SIZE + 4096);
    myc_writer_close(w);
    CHECK_EQ(myc_unlink(name), MYC_OK);
    CHECK_EQ(myc_unlink(name), MYC_ERR_NOT_FOUND);
    /* a mode is honoured exactly, whatever the umask */
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 4096, 0, 0640, NULL, &w), MYC_OK);
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0640);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_frame_header_bytes(void) {
    const char *name = fresh_name("frame");
    myc_writer *w = create_writer(name, 4096, 0);
    myc_reader *r = attach_reader(name);
    raw_map raw = raw_open(name);
    uint8_t buf[2048];
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY);

    CHECK_EQ(myc_write(w, 7, "hello", 5, 0), MYC_OK);
    /* stamp = position 0 | COMMITTED; frame_len = 16 + 5 (not aligned);
     * type 7; flags 0; payload right after the 16-byte header */
    CHECK_EQ(frame_stamp(raw, 0), STAMP(0, MYC_STAMP_COMMITTED));
    CHECK_EQ(raw_ring(raw)[0], 0x02); /* little-endian: the state is byte 0 */
    CHECK_EQ(frame_len(raw, 0), 21);
    CHECK_EQ(frame_type(raw, 0), 7);
    CHECK_EQ(frame_flags(raw, 0), 0);
    CHECK_EQ(memcmp(raw_ring(raw) + 16, "hello", 5), 0);
    /* the frame occupies align16(21) = 32 bytes */
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 32);
    /* the writer published its claim in its registry slot */
    CHECK_EQ(raw_u64(raw, MYC_OFF_WRITER_TABLE + MYC_SLOT_OFF_CLAIM_START), 0);
    CHECK_EQ(raw_u64(raw, MYC_OFF_WRITER_TABLE + MYC_SLOT_OFF_CLAIM_END), 32);

    CHECK_EQ(myc_write(w, 1, "", 0, 0), MYC_OK); /* an empty payload: header only */
    CHECK_EQ(frame_stamp(raw, 32), STAMP(32, MYC_STAMP_COMMITTED));
    CHECK_EQ(frame_len(raw, 32), 16);
    CHECK_EQ(frame_type(raw, 32), 1);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 48);

    /* the largest payload and type */
    memset(buf, 0x5a, sizeof buf);
    CHECK_EQ(myc_write(w, 65535, buf, 1008, 0), MYC_OK);
    CHECK_EQ(frame_stamp(raw, 48), STAMP(48, MYC_STAMP_COMMITTED));
    CHECK_EQ(frame_len(raw, 48), 1024);
    CHECK_EQ(frame_type(raw, 48), 65535);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 48 + 1024);
    /* refused before claiming anything */
    CHECK_EQ(myc_write(w, 0, "x", 1, 0), MYC_ERR_ARG);
    CHECK_EQ(myc_write(w, 65536, "x", 1, 0), MYC_ERR_ARG);
    CHECK_EQ(myc_write(w, 1, buf, 1009, 0), MYC_ERR_TOO_LARGE);
    CHECK(strstr(myc_last_error(), "1008") != NULL);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 48 + 1024);

    int64_t got = myc_read(r, 0, buf, sizeof buf);
    CHECK_EQ(READ_TYPE(got), 7);
    CHECK_EQ(READ_LEN(got), 5);
    CHECK_EQ(memcmp(buf, "hello", 5), 0);
    /* the reader publishes HEAD and leaves the frame's bytes as they were */
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), 32);
    CHECK_EQ(frame_stamp(raw, 0), STAMP(0, MYC_STAMP_COMMITTED));
    CHECK_EQ(frame_len(raw, 0), 21);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), (int64_t)1 << 32);
    got = myc_read(r, 0, buf, sizeof buf);
    CHECK_EQ(READ_TYPE(got), 65535);
    CHECK_EQ(READ_LEN(got), 1008);
    CHECK_EQ(buf[0], 0x5a);
    CHECK_EQ(buf[1007], 0x5a);
    myc_stats s = reader_stats(r);
    CHECK_EQ(s.frames_read, 3);
    CHECK_EQ(s.bytes_read, 5 + 0 + 1008);
    CHECK_EQ(s.frames_written, 3);
    CHECK_EQ(s.bytes_written, 5 + 0 + 1008);
    CHECK_EQ(s.head, 1072);
    CHECK_EQ(s.tail, 1072);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_alignment_16(void) {
    const char *name = fresh_name("align");
    myc_writer *w = create_writer(name, 4096, 0);
    myc_reader *r = attach_reader(name);
    raw_map raw = raw_open(name);
    uint8_t payload[64], buf[64];
    for (uint32_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 7 + 1);
    /* payloads of 0..40 bytes: each frame starts 16-aligned, occupies
     * align16(16 + len) bytes and carries frame_len = 16 + len */
    uint64_t pos = 0;
    for (uint32_t len = 0; len <= 40; len++) {
        CHECK_EQ(myc_write(w, 100 + len, payload, len, 0), MYC_OK);
        CHECK_EQ(pos % 16, 0);
        CHECK_EQ(frame_stamp(raw, pos), STAMP(pos, MYC_STAMP_COMMITTED));
        CHECK_EQ(frame_len(raw, pos), 16 + len);
        CHECK_EQ(frame_type(raw, pos), 100 + len);
        pos += FRAME_BYTES(len);
        CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), pos);
    }
    for (uint32_t len = 0; len <= 40; len++) {
        int64_t got = myc_read(r, 0, buf, sizeof buf);
        CHECK_EQ(READ_TYPE(got), 100 + len);
        CHECK_EQ(READ_LEN(got), len);
        CHECK_EQ(memcmp(buf, payload, len), 0);
    }
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), pos);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_padding_at_ring_end(void) {
    const char *name = fresh_name("wrap");
    myc_writer *w = create_writer(name, 1024, 0);
    myc_reader *r = attach_reader(name);
    raw_map raw = raw_open(name);
    uint8_t payload[64], buf[256];
    memset(payload, 0xab, sizeof payload);

    /* 32 bytes before the end, a 64-byte frame does not fit: padding of 32
     * at index 992 (stamp 992|PADDING, type 0), the frame at index 0 with
     * the stamp of position 1024 */
    advance_to_index(w, r, raw, 1024, 992);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 992);
    CHECK_EQ(myc_write(w, 3, payload, 40, 0), MYC_OK);
    CHECK_EQ(frame_stamp(raw, 992), STAMP(992, MYC_STAMP_PADDING));
    CHECK_EQ(frame_len(raw, 992), 32);
    CHECK_EQ(frame_type(raw, 992), MYC_TYPE_PADDING);
    CHECK_EQ(frame_flags(raw, 992), 0);
    CHECK_EQ(frame_stamp(raw, 0), STAMP(1024, MYC_STAMP_COMMITTED));
    CHECK_EQ(frame_len(raw, 0), 56);
    CHECK_EQ(frame_type(raw, 0), 3);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 1024 + 64);
    uint64_t pad_before = reader_stats(r).padding_frames;
    int64_t got = myc_read(r, 0, buf, sizeof buf);
    CHECK_EQ(READ_TYPE(got), 3);
    CHECK_EQ(READ_LEN(got), 40);
    CHECK_EQ(memcmp(buf, payload, 40), 0);
    myc_stats s = reader_stats(r);
    CHECK_EQ(s.padding_frames, pad_before + 1);
    CHECK_EQ(s.head, 1024 + 64);

    /* a frame that ends exactly at the ring's end needs no padding */
    advance_to_index(w, r, raw, 1024, 1024 - 32);
    uint64_t p = raw_u64(raw, MYC_OFF_TAIL);
    CHECK_EQ(myc_write(w, 4, payload, 16, 0), MYC_OK);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), p + 32);
    CHECK_EQ(frame_stamp(raw, 1024 - 32), STAMP(p, MYC_STAMP_COMMITTED));
    got = myc_read(r, 0, buf, sizeof buf);
    CHECK_EQ(READ_TYPE(got), 4);
    CHECK_EQ(reader_stats(r).padding_frames, pad_before + 1);

    /* padding inside a batch: frame 0 fills 960..992, frame 1 (64 bytes)
     * goes to index 0 of the next lap after 32 bytes of padding */
    advance_to_index(w, r, raw, 1024, 960);
    p = raw_u64(raw, MYC_OFF_TAIL);
    uint16_t types[2] = {5, 6};
    uint32_t lens[2] = {16, 48};
    uint8_t blob[64];
    memset(blob, 0x11, 16);
    memset(blob + 16, 0x22, 48);
    CHECK_EQ(myc_write_batch(w, 2, types, lens, blob, 0), 2);
    CHECK_EQ(frame_stamp(raw, 960), STAMP(p, MYC_STAMP_COMMITTED));
    CHECK_EQ(frame_stamp(raw, 992), STAMP(p + 32, MYC_STAMP_PADDING));
    CHECK_EQ(frame_len(raw, 992), 32);
    CHECK_EQ(frame_stamp(raw, 0), STAMP(p + 64, MYC_STAMP_COMMITTED));
    CHECK_EQ(frame_len(raw, 0), 64);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), p + 64 + 64);
    uint16_t out_types[4];
    uint32_t out_lens[4];
    CHECK_EQ(myc_read_batch(r, 4, 0, buf, sizeof buf, out_types, out_lens), 2);
    CHECK_EQ(out_types[0], 5);
    CHECK_EQ(out_lens[0], 16);
    CHECK_EQ(out_types[1], 6);
    CHECK_EQ(out_lens[1], 48);
    CHECK_EQ(buf[0], 0x11);
    CHECK_EQ(buf[16], 0x22);
    CHECK_EQ(buf[63], 0x22);
    CHECK_EQ(reader_stats(r).padding_frames, pad_before + 2);
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), p + 128);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

/* The reader recognises frames by their stamps and never writes the ring:
 * after copying reads, batch reads, peeks, padding, an aborted reservation,
 * a revoked claim and a dead writer's skipped claim, the ring's bytes are
 * the bytes the writers left. */
static void test_reader_never_writes_ring(void) {
    const char *name = fresh_name("readonly");
    myc_writer *w = create_writer(name, 1024, 0);
    myc_writer *w2 = attach_writer(name);
    myc_reader *r = attach_reader(name);
    myc_reader_set_stuck_timeout(r, 5 * MS);
    raw_map raw = raw_open(name);
    uint8_t payload[200], buf[1024];
    for (int i = 0; i < (int)sizeof payload; i++) payload[i] = (uint8_t)(i + 3);
    advance_to_index(w, r, raw, 1024, 512);
    uint8_t *snapshot = malloc(1024);

    /* lay out: a frame, an aborted reservation, a revoked claim, a dead
     * writer's claim (no header), frames that wrap with padding */
    CHECK_EQ(myc_write(w, 1, payload, 100, 0), MYC_OK);
    myc_reservation res;
    CHECK_EQ(myc_reserve(w, 2, 30, 0, &res), MYC_OK);
    CHECK_EQ(myc_abort(w, &res), MYC_OK);
    myc_reservation held;
    CHECK_EQ(myc_reserve(w2, 3, 40, 0, &held), MYC_OK); /* revoked below */
    uint64_t dead_at = raw_u64(raw, MYC_OFF_TAIL);
    /* a writer that died right after moving TAIL: its slot (31) names a dead
     * process and covers the claim; no header was written */
    uint64_t slot31 = MYC_OFF_WRITER_TABLE + 31 * MYC_WRITER_SLOT_SIZE;
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_CLAIM_END, dead_at + 64);
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_CLAIM_START, dead_at);
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_OWNER, dead_owner());
    raw_set_u64(raw, MYC_OFF_TAIL, dead_at + 64);
    CHECK_EQ(myc_write(w, 4, payload, 150, 0), MYC_OK);
    CHECK_EQ(myc_write(w, 5, payload, 100, 0), MYC_OK); /* wraps: padding first */
    myc_stats before = reader_stats(r);

    /* the copying read: frame 1 */
    memcpy(snapshot, raw_ring(raw), 1024);
    int64_t got = myc_read(r, 0, buf, sizeof buf);
    CHECK_EQ(READ_TYPE(got), 1);
    CHECK_EQ(memcmp(snapshot, raw_ring(raw), 1024), 0);
    /* revoke the reservation at the reader's position (the aborted one is
     * padding and is consumed on the way) */
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY);
    int32_t pid = 0;
    uint64_t position = 0;
    CHECK_EQ(myc_force_unblock(name, &pid, &position), MYC_OK);
    CHECK_EQ(pid, getpid());
    CHECK_EQ(position, held.position);
    CHECK_EQ(frame_stamp(raw, held.position & 1023), STAMP(held.position, MYC_STAMP_REVOKED));
    /* from here on the reader alone runs: the ring must not change */
    memcpy(snapshot, raw_ring(raw), 1024);
    /* peek: skips the revoked claim, then waits out the dead claim */
    myc_frame f;
    CHECK_EQ(myc_peek(r, 500 * MS, &f), MYC_OK);
    CHECK_EQ(f.type_id, 4);
    CHECK_EQ(f.payload_len, 150);
    CHECK_EQ(memcmp(f.payload, payload, 150), 0);
    myc_release(r);
    uint16_t types[4];
    uint32_t lens[4];
    CHECK_EQ(myc_read_batch(r, 4, 0, buf, sizeof buf, types, lens), 1);
    CHECK_EQ(types[0], 5);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY);
    CHECK_EQ(memcmp(snapshot, raw_ring(raw), 1024), 0);
    myc_stats after = reader_stats(r);
    CHECK_EQ(after.frames_read - before.frames_read, 3);
    CHECK_EQ(after.padding_frames - before.padding_frames, 3); /* aborted, revoked, wrap */
    CHECK_EQ(after.unblocks - before.unblocks, 1);
    CHECK_EQ(after.head, after.tail);
    CHECK_EQ(myc_commit(w2, &held), MYC_ERR_ABANDONED);
    free(snapshot);
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_OWNER, 0);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w2);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_exact_capacity_fill(void) {
    const char *name = fresh_name("full");
    myc_writer *w = create_writer(name, 1024, 0);
    myc_reader *r = attach_reader(name);
    raw_map raw = raw_open(name);
    uint8_t payload[112] = {0}, buf[256];
    /* 8 frames of 16 + 112 = 128 bytes fill 1024 exactly */
    for (int i = 0; i < 8; i++) {
        payload[0] = (uint8_t)i;
        CHECK_EQ(myc_write(w, 1, payload, 112, 0), MYC_OK);
    }
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 1024);
    CHECK_EQ(myc_write(w, 1, payload, 0, 0), MYC_ERR_FULL); /* not even 16 bytes */
    CHECK(strstr(myc_last_error(), "full") != NULL);
    CHECK(strstr(myc_last_error(), "1024 of 1024") != NULL);
    int64_t t0 = mono_ns();
    CHECK_EQ(myc_write(w, 1, payload, 0, 20 * MS), MYC_ERR_FULL);
    CHECK(mono_ns() - t0 >= 20 * MS);
    myc_stats s;
    CHECK_EQ(myc_writer_stats(w, &s), MYC_OK);
    CHECK_EQ(s.full_events, 2);
    CHECK_EQ(s.write_timeouts, 1);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 1024);
    /* one frame read: exactly one 128-byte frame fits again, at index 0
     * with the next lap's stamp; then full again */
    int64_t got = myc_read(r, 0, buf, sizeof buf);
    CHECK_EQ(READ_LEN(got), 112);
    CHECK_EQ(buf[0], 0);
    payload[0] = 8;
    CHECK_EQ(myc_write(w, 1, payload, 113, 0), MYC_ERR_FULL); /* 144 bytes */
    CHECK_EQ(myc_write(w, 1, payload, 112, 0), MYC_OK);
    CHECK_EQ(frame_stamp(raw, 0), STAMP(1024, MYC_STAMP_COMMITTED));
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 1024 + 128);
    CHECK_EQ(myc_write(w, 1, payload, 0, 0), MYC_ERR_FULL);
    for (int i = 1; i <= 8; i++) {
        got = myc_read(r, 0, buf, sizeof buf);
        CHECK_EQ(READ_LEN(got), 112);
        CHECK_EQ(buf[0], i);
    }
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY);
    /* a batch writes the prefix that fits */
    uint16_t types[10];
    uint32_t lens[10];
    uint8_t blob[10 * 112];
    for (int i = 0; i < 10; i++) {
        types[i] = (uint16_t)(i + 1);
        lens[i] = 112;
        blob[i * 112] = (uint8_t)i;
    }
    CHECK_EQ(myc_write_batch(w, 10, types, lens, blob, 0), 8);
    CHECK_EQ(myc_write_batch(w, 1, types, lens, blob, 0), MYC_ERR_FULL);
    uint32_t out_lens[16];
    uint16_t out_types[16];
    uint8_t big[4096];
    CHECK_EQ(myc_read_batch(r, 16, 0, big, sizeof big, out_types, out_lens), 8);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(out_types[i], i + 1);
        CHECK_EQ(out_lens[i], 112);
        CHECK_EQ(big[i * 112], i);
    }
    /* a read buffer too small for the next frame leaves it unread */
    CHECK_EQ(myc_write(w, 9, payload, 100, 0), MYC_OK);
    CHECK_EQ(myc_read(r, 0, buf, 10), MYC_ERR_ARG);
    CHECK_EQ(READ_LEN(myc_read(r, 0, buf, sizeof buf)), 100);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_reserve_peek(void) {
    const char *name = fresh_name("reserve");
    myc_writer *w = create_writer(name, 4096, 0);
    myc_reader *r = attach_reader(name);
    raw_map raw = raw_open(name);
    myc_reservation res;
    myc_frame f;
    CHECK_EQ(myc_reserve(w, 5, 2000, 0, &res), MYC_ERR_TOO_LARGE);
    CHECK_EQ(myc_reserve(w, 0, 16, 0, &res), MYC_ERR_ARG);
    CHECK_EQ(myc_reserve(w, 5, 16, 0, &res), MYC_OK);
    CHECK_EQ(res.position, 0);
    CHECK_EQ(res.payload_len, 16);
    CHECK_EQ(res.type_id, 5);
    /* claimed: header written with state CLAIMED; not delivered */
    CHECK_EQ(frame_stamp(raw, 0), STAMP(0, MYC_STAMP_CLAIMED));
    CHECK_EQ(frame_len(raw, 0), 32);
    CHECK_EQ(frame_type(raw, 0), 5);
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), 32);
    CHECK_EQ(myc_peek(r, 0, &f), MYC_ERR_EMPTY);
    /* one claim in flight per thread and handle */
    CHECK_EQ(myc_write(w, 1, "x", 1, 0), MYC_ERR_ARG);
    CHECK(strstr(myc_last_error(), "open reservation") != NULL);
    memcpy(res.payload, "0123456789abcdef", 16);
    CHECK_EQ(myc_commit(w, &res), MYC_OK);
    CHECK_EQ(frame_stamp(raw, 0), STAMP(0, MYC_STAMP_COMMITTED));
    CHECK_EQ(myc_commit(w, &res), MYC_ERR_ARG);
    CHECK_EQ(myc_peek(r, 0, &f), MYC_OK);
    CHECK_EQ(f.type_id, 5);
    CHECK_EQ(f.flags, 0);
    CHECK_EQ(f.payload_len, 16);
    CHECK_EQ(memcmp(f.payload, "0123456789abcdef", 16), 0);
    /* held until release: HEAD not published, frames_read not counted */
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), 0);
    CHECK_EQ(reader_stats(r).frames_read, 0);
    myc_release(r);
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), 32);
    CHECK_EQ(reader_stats(r).frames_read, 1);
    myc_release(r); /* nothing held: no effect */
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), 32);
    /* an aborted reservation becomes padding: committed with type 0 */
    CHECK_EQ(myc_reserve(w, 6, 8, 0, &res), MYC_OK);
    CHECK_EQ(myc_abort(w, &res), MYC_OK);
    CHECK_EQ(frame_stamp(raw, 32), STAMP(32, MYC_STAMP_COMMITTED));
    CHECK_EQ(frame_type(raw, 32), MYC_TYPE_PADDING);
    CHECK_EQ(myc_abort(w, &res), MYC_ERR_ARG);
    CHECK_EQ(myc_write(w, 7, "z", 1, 0), MYC_OK);
    CHECK_EQ(myc_peek(r, 0, &f), MYC_OK);
    CHECK_EQ(f.type_id, 7);
    CHECK_EQ(reader_stats(r).padding_frames, 1);
    /* the next call releases the held frame */
    uint8_t buf[16];
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY);
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), raw_u64(raw, MYC_OFF_TAIL));
    CHECK_EQ(myc_write(w, 8, "held", 4, 0), MYC_OK);
    CHECK_EQ(myc_peek(r, 0, &f), MYC_OK);
    myc_reader_close(r); /* releases the held frame */
    r = attach_reader(name);
    CHECK_EQ(myc_peek(r, 0, &f), MYC_ERR_EMPTY);
    CHECK_EQ(reader_stats(r).frames_read, 3);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

/* A claim whose writer died: skipped after the stuck timeout, to the end of
 * the dead writer's published claim; a claim nobody published is corrupt. */
static void test_dead_claims(void) {
    const char *name = fresh_name("deadclaim");
    myc_writer *w = create_writer(name, 4096, 0);
    myc_reader *r = attach_reader(name);
    myc_reader_set_stuck_timeout(r, 10 * MS);
    raw_map raw = raw_open(name);
    uint8_t buf[64];
    uint64_t slot31 = MYC_OFF_WRITER_TABLE + 31 * MYC_WRITER_SLOT_SIZE;
    CHECK_EQ(myc_write(w, 1, "first", 5, 0), MYC_OK);
    CHECK_EQ(READ_TYPE(myc_read(r, 0, buf, sizeof buf)), 1);

    /* a dead writer claimed 64 bytes and wrote nothing */
    uint64_t t = raw_u64(raw, MYC_OFF_TAIL);
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_CLAIM_END, t + 64);
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_CLAIM_START, t);
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_OWNER, dead_owner());
    raw_set_u64(raw, MYC_OFF_TAIL, t + 64);
    CHECK_EQ(myc_write(w, 2, "after", 5, 0), MYC_OK);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY); /* no waiting: no skip */
    int64_t got = myc_read(r, 500 * MS, buf, sizeof buf);
    CHECK_EQ(READ_TYPE(got), 2);
    CHECK_EQ(memcmp(buf, "after", 5), 0);
    myc_stats s = reader_stats(r);
    CHECK_EQ(s.unblocks, 1);
    CHECK_EQ(s.head, t + 64 + 32);

    /* the same, but the dead writer committed before dying: delivered */
    t = raw_u64(raw, MYC_OFF_TAIL);
    uint8_t *hdr = raw_ring(raw) + (t & 4095);
    raw_set_u32(raw, MYC_HEADER_SIZE + (t & 4095) + MYC_FRAME_OFF_LEN, 16 + 4);
    raw_set_u16(raw, MYC_HEADER_SIZE + (t & 4095) + MYC_FRAME_OFF_TYPE, 3);
    memcpy(hdr + 16, "dead", 4);
    raw_set_u64(raw, MYC_HEADER_SIZE + (t & 4095), STAMP(t, MYC_STAMP_COMMITTED));
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_CLAIM_END, t + 32);
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_CLAIM_START, t);
    raw_set_u64(raw, MYC_OFF_TAIL, t + 32);
    got = myc_read(r, 0, buf, sizeof buf);
    CHECK_EQ(READ_TYPE(got), 3);
    CHECK_EQ(memcmp(buf, "dead", 4), 0);
    CHECK_EQ(reader_stats(r).unblocks, 1);

    /* a claim that no writer slot covers: corrupt */
    t = raw_u64(raw, MYC_OFF_TAIL);
    raw_set_u64(raw, MYC_OFF_TAIL, t + 32);
    CHECK_EQ(myc_read(r, 200 * MS, buf, sizeof buf), MYC_ERR_CORRUPT);
    CHECK(strstr(myc_last_error(), "no writer slot covers") != NULL);
    /* a dead writer's claim that ends past the tail: corrupt */
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_CLAIM_END, t + 64);
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_CLAIM_START, t);
    CHECK_EQ(myc_read(r, 200 * MS, buf, sizeof buf), MYC_ERR_CORRUPT);
    CHECK(strstr(myc_last_error(), "past the tail") != NULL);
    /* ... or at a misaligned end */
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_CLAIM_END, t + 24);
    CHECK_EQ(myc_read(r, 200 * MS, buf, sizeof buf), MYC_ERR_CORRUPT);
    CHECK_EQ(reader_stats(r).head, t); /* nothing skipped */
    /* ... and a claim that ends right: skipped */
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_CLAIM_END, t + 32);
    CHECK_EQ(myc_write(w, 4, "ok", 2, 0), MYC_OK);
    CHECK_EQ(READ_TYPE(myc_read(r, 500 * MS, buf, sizeof buf)), 4);
    CHECK_EQ(reader_stats(r).unblocks, 2);
    raw_set_u64(raw, slot31 + MYC_SLOT_OFF_OWNER, 0);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_corrupt_frames(void) {
    const char *name = fresh_name("corrupt");
    myc_writer *w = create_writer(name, 4096, 0); /* max_payload 1008 */
    myc_reader *r = attach_reader(name);
    raw_map raw = raw_open(name);
    uint8_t buf[4096];
    const uint64_t len_off = MYC_HEADER_SIZE + MYC_FRAME_OFF_LEN;
    CHECK_EQ(myc_write(w, 1, "abc", 3, 0), MYC_OK); /* position 0, 32 bytes */
    CHECK_EQ(frame_len(raw, 0), 19);

    /* each corruption is refused, and the frame reads fine once it is undone
     * (the reader consumed nothing on the way) */
    struct {
        const char *what;
        uint32_t len;
    } lens[] = {
        {"length far outside the ring", 0x7ffffff0u},
        {"length one aligned unit past the ring end", 4096 + 16 + 1},
        {"length below the header size", 15},
        {"length zero", 0},
        {"length past the tail", 64},
        {"length one byte past the tail (aligns to 48)", 33},
    };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        raw_set_u32(raw, len_off, lens[i].len);
        int64_t rc = myc_read(r, 0, buf, sizeof buf);
        if (rc != MYC_ERR_CORRUPT) fprintf(stderr, "  case: %s\n", lens[i].what);
        CHECK_EQ(rc, MYC_ERR_CORRUPT);
        myc_frame f;
        CHECK_EQ(myc_peek(r, 0, &f), MYC_ERR_CORRUPT);
        raw_set_u32(raw, len_off, 19);
    }
    /* a payload over the channel's maximum, inside the tail */
    raw_set_u64(raw, MYC_OFF_TAIL, 2048);
    raw_set_u32(raw, len_off, 16 + 1009);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_CORRUPT);
    CHECK(strstr(myc_last_error(), "maximum") != NULL);
    raw_set_u32(raw, len_off, 16 + 1008); /* at the maximum: accepted */
    CHECK_EQ(READ_LEN(myc_read(r, 0, buf, sizeof buf)), 1008);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);

    /* a length that runs past the ring's end while staying inside the tail
     * (the next frame wrapped): only the ring-end check stops a view that
     * reaches past the mapping */
    name = fresh_name("corrupt-end");
    w = create_writer(name, 4096, 0);
    r = attach_reader(name);
    raw = raw_open(name);
    advance_to_index(w, r, raw, 4096, 4096 - 32);
    CHECK_EQ(myc_write(w, 1, "0123456789abcdef", 16, 0), MYC_OK); /* 32 bytes, to the end */
    CHECK_EQ(myc_write(w, 2, "0123456789abcdef", 16, 0), MYC_OK); /* at index 0 */
    raw_set_u32(raw, MYC_HEADER_SIZE + 4096 - 32 + MYC_FRAME_OFF_LEN, 16 + 32);
    myc_frame f;
    CHECK_EQ(myc_peek(r, 0, &f), MYC_ERR_CORRUPT);
    CHECK(strstr(myc_last_error(), "to the end") != NULL);
    raw_set_u32(raw, MYC_HEADER_SIZE + 4096 - 32 + MYC_FRAME_OFF_LEN, 16 + 16);
    CHECK_EQ(READ_TYPE(myc_read(r, 0, buf, sizeof buf)), 1);
    CHECK_EQ(READ_TYPE(myc_read(r, 0, buf, sizeof buf)), 2);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);

    /* stamps: a wrong state or another position is not a frame */
    name = fresh_name("corrupt-stamp");
    w = create_writer(name, 4096, 0);
    r = attach_reader(name);
    raw = raw_open(name);
    CHECK_EQ(myc_write(w, 1, "abc", 3, 0), MYC_OK);
    uint64_t bad_stamps[] = {STAMP(0, 0), STAMP(0, 5), STAMP(0, 15), STAMP(16, 2),
                             STAMP(4096, 2), STAMP(0, MYC_STAMP_CLAIMED)};
    for (size_t i = 0; i < sizeof bad_stamps / sizeof bad_stamps[0]; i++) {
        raw_set_u64(raw, MYC_HEADER_SIZE, bad_stamps[i]);
        CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY);
        CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), 0);
    }
    raw_set_u64(raw, MYC_HEADER_SIZE, STAMP(0, MYC_STAMP_COMMITTED));
    CHECK_EQ(READ_TYPE(myc_read(r, 0, buf, sizeof buf)), 1);

    /* a misaligned TAIL, seen by the reader and by a writer */
    raw_set_u64(raw, MYC_OFF_TAIL, 40);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_CORRUPT);
    CHECK(strstr(myc_last_error(), "inconsistent") != NULL);
    CHECK_EQ(myc_write(w, 1, "x", 1, 0), MYC_ERR_CORRUPT);
    raw_set_u64(raw, MYC_OFF_TAIL, 32);
    myc_reader_close(r);
    myc_writer_close(w);
    /* positions refused when a reader attaches */
    struct {
        uint64_t head, tail;
    } positions[] = {
        {8, 32},         /* HEAD misaligned */
        {32, 40},        /* TAIL misaligned */
        {64, 32},        /* HEAD beyond TAIL */
        {0, 4096 + 16},  /* TAIL more than a ring ahead */
    };
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
        raw_set_u64(raw, MYC_OFF_HEAD, positions[i].head);
        raw_set_u64(raw, MYC_OFF_TAIL, positions[i].tail);
        CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_ERR_CORRUPT);
        CHECK(r == NULL);
        /* the failed open gave the reader word back */
        CHECK_EQ(raw_u64(raw, MYC_OFF_READER_OWNER), 0);
        /* a writer checks TAIL on every claim (a bad HEAD it may not see
         * until it needs room: its cached HEAD only errs low, i.e. safe) */
        if (positions[i].tail % 16 != 0 ||
            (positions[i].tail > positions[i].head && positions[i].tail - positions[i].head > 4096)) {
            w = attach_writer(name);
            CHECK_EQ(myc_write(w, 1, "x", 1, 0), MYC_ERR_CORRUPT);
            myc_writer_close(w);
        }
    }
    raw_set_u64(raw, MYC_OFF_HEAD, 32);
    raw_set_u64(raw, MYC_OFF_TAIL, 32 + 4096); /* exactly full: fine */
    r = attach_reader(name);
    myc_reader_close(r);
    raw_close(raw);
    myc_unlink(name);
}

/* A header left from an earlier lap names an earlier position: a frame at
 * position P that carries the stamp of P - capacity is not delivered (nor
 * skipped as padding); the same bytes with P's stamp are. */
static void test_stale_lap_stamp(void) {
    const char *name = fresh_name("stale");
    myc_writer *w = create_writer(name, 1024, 0);
    myc_reader *r = attach_reader(name);
    myc_reader_set_stuck_timeout(r, 10 * MS);
    raw_map raw = raw_open(name);
    uint8_t buf[64];
    advance_to_index(w, r, raw, 1024, 512);
    advance_to_index(w, r, raw, 1024, 0); /* one lap: HEAD = TAIL = 1024 */
    advance_to_index(w, r, raw, 1024, 256);
    uint64_t p = raw_u64(raw, MYC_OFF_TAIL);
    CHECK_EQ(p, 1024 + 256);
    /* a live writer (ours) claimed 32 bytes at P; what lies at index 256 is
     * a complete-looking frame stamped for P - capacity */
    uint64_t idx = p & 1023;
    raw_set_u32(raw, MYC_HEADER_SIZE + idx + MYC_FRAME_OFF_LEN, 16 + 5);
    raw_set_u16(raw, MYC_HEADER_SIZE + idx + MYC_FRAME_OFF_TYPE, 9);
    raw_set_u16(raw, MYC_HEADER_SIZE + idx + MYC_FRAME_OFF_FLAGS, 0);
    memcpy(raw_ring(raw) + idx + 16, "stale", 5);
    raw_set_u64(raw, MYC_HEADER_SIZE + idx, STAMP(p - 1024, MYC_STAMP_COMMITTED));
    uint64_t slot0 = MYC_OFF_WRITER_TABLE;
    raw_set_u64(raw, slot0 + MYC_SLOT_OFF_CLAIM_END, p + 32);
    raw_set_u64(raw, slot0 + MYC_SLOT_OFF_CLAIM_START, p);
    raw_set_u64(raw, MYC_OFF_TAIL, p + 32);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY);
    CHECK_EQ(myc_read(r, 100 * MS, buf, sizeof buf), MYC_ERR_EMPTY);
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), p);
    myc_info info;
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.stalled_pid, getpid()); /* waiting on the live claimer */
    /* an earlier lap's padding stamp is not skipped either */
    raw_set_u64(raw, MYC_HEADER_SIZE + idx, STAMP(p - 1024, MYC_STAMP_PADDING));
    CHECK_EQ(myc_read(r, 50 * MS, buf, sizeof buf), MYC_ERR_EMPTY);
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), p);
    /* two laps back, or one lap ahead: no */
    raw_set_u64(raw, MYC_HEADER_SIZE + idx, STAMP(p + 1024, MYC_STAMP_COMMITTED));
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY);
    /* control: the same bytes with the stamp of P are the frame */
    raw_set_u64(raw, MYC_HEADER_SIZE + idx, STAMP(p, MYC_STAMP_COMMITTED));
    int64_t got = myc_read(r, 0, buf, sizeof buf);
    CHECK_EQ(READ_TYPE(got), 9);
    CHECK_EQ(READ_LEN(got), 5);
    CHECK_EQ(memcmp(buf, "stale", 5), 0);
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.stalled_pid, 0); /* the stall ended */
    CHECK_EQ(info.stalled_since_ns, 0);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_corrupt_headers(void) {
    const char *name = fresh_name("header");
    myc_writer *w = create_writer(name, 4096, 0);
    myc_writer_close(w);
    raw_map raw = raw_open(name);
    myc_reader *r = NULL;
    myc_info info;
    struct {
        const char *what;
        size_t off;
        uint64_t value;
        int width;
        const char *message; /* a part of the error message */
    } cases[] = {
        {"format 1", MYC_OFF_VERSION, 1, 4, "format version 1; this library reads version 2 only"},
        {"format 3", MYC_OFF_VERSION, 3, 4, "upgrade"},
        {"foreign magic", MYC_OFF_MAGIC, 0x1122334455667788ULL, 8, "not a mycelium channel"},
        {"header size", MYC_OFF_HEADER_SIZE, 8192, 4, "header size"},
        {"capacity not a power of two", MYC_OFF_CAPACITY, 3000, 8, "capacity"},
        {"capacity too small", MYC_OFF_CAPACITY, 512, 8, "capacity"},
        {"capacity too large", MYC_OFF_CAPACITY, MYC_MAX_CAPACITY * 2, 8, "capacity"},
        {"capacity not the file's", MYC_OFF_CAPACITY, 8192, 8, "file is"},
        {"max payload 0", MYC_OFF_MAX_PAYLOAD, 0, 4, "max payload"},
        {"max payload over capacity/2 - 16", MYC_OFF_MAX_PAYLOAD, 4096 / 2 - 15, 4, "max payload"},
        {"unknown features", MYC_OFF_FEATURES, 1, 4, "features"},
        {"reader slots without the broadcast bit", MYC_OFF_READER_SLOTS, 3, 4, "3 reader slots"},
        {"untether time without the broadcast bit", MYC_OFF_UNTETHER_MS, 5, 4, "untether 5 ms"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int before = g_failed_checks;
        uint8_t saved[8];
        memcpy(saved, raw.base + cases[i].off, 8);
        if (cases[i].width == 8) raw_set_u64(raw, cases[i].off, cases[i].value);
        else raw_set_u32(raw, cases[i].off, (uint32_t)cases[i].value);
        CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_ERR_FORMAT);
        CHECK(strstr(myc_last_error(), cases[i].message) != NULL);
        CHECK(r == NULL);
        CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &w), MYC_ERR_FORMAT);
        CHECK_EQ(myc_writer_open(name, MYC_CREATE_OR_ATTACH, 4096, 0, 0, NULL, &w), MYC_ERR_FORMAT);
        CHECK_EQ(myc_inspect(name, &info), MYC_ERR_FORMAT);
        CHECK_EQ(myc_force_unblock(name, NULL, NULL), MYC_ERR_FORMAT);
        memcpy(raw.base + cases[i].off, saved, 8);
        if (g_failed_checks != before) fprintf(stderr, "  case: %s\n", cases[i].what);
    }
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.format_version, 2);
    CHECK_EQ(info.file_size, MYC_HEADER_SIZE + 4096);
    CHECK_EQ(info.creator_pid, getpid());
    CHECK_EQ(info.creator_alive, 1);
    CHECK_EQ(info.hold_position, MYC_NO_HOLD);
    r = attach_reader(name);
    myc_reader_close(r);

    /* a foreign object with a header never completed is refused at once */
    raw_set_u32(raw, MYC_OFF_INIT, 0);
    raw_set_u64(raw, MYC_OFF_MAGIC, 0x1122334455667788ULL);
    int64_t t0 = mono_ns();
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_ERR_FORMAT);
    CHECK(mono_ns() - t0 < 1000 * MS);
    /* a zero header (a creator that never finished) is waited for, 2 s */
    raw_set_u64(raw, MYC_OFF_MAGIC, 0);
    t0 = mono_ns();
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_ERR_FORMAT);
    CHECK(strstr(myc_last_error(), "never initialised") != NULL);
    CHECK(mono_ns() - t0 >= 1500 * MS);
    raw_close(raw);
    /* a truncated file */
    myc_unlink(name);
    w = create_writer(name, 4096, 0);
    myc_writer_close(w);
    char path[320];
    shm_path(name, path, sizeof path);
    CHECK_EQ(truncate(path, MYC_HEADER_SIZE + 1024), 0);
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_ERR_FORMAT);
    CHECK(strstr(myc_last_error(), "file is") != NULL);
    myc_unlink(name);
}

static void test_schema_digest(void) {
    const char *name = fresh_name("schema");
    uint8_t d1[32], d2[32];
    memset(d1, 0x11, 32);
    memset(d2, 0x22, 32);
    myc_writer *w = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, 4096, 0, 0, d1, &w), MYC_OK);
    raw_map raw = raw_open(name);
    CHECK_EQ(memcmp(raw.base + MYC_OFF_SCHEMA_DIGEST, d1, 32), 0);
    raw_close(raw);
    myc_reader *r = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, d2, &r), MYC_ERR_SCHEMA);
    CHECK(strstr(myc_last_error(), "1111111111111111") != NULL);
    CHECK(strstr(myc_last_error(), "2222222222222222") != NULL);
    CHECK(r == NULL);
    /* the refused reader did not keep the reader word */
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, d1, &r), MYC_OK);
    myc_reader_close(r);
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_OK); /* raw access */
    myc_reader_close(r);
    myc_writer *w2 = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, d2, &w2), MYC_ERR_SCHEMA);
    CHECK_EQ(myc_writer_open(name, MYC_CREATE_OR_ATTACH, 4096, 0, 0, d2, &w2), MYC_ERR_SCHEMA);
    CHECK(w2 == NULL);
    myc_info info;
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(memcmp(info.schema_digest, d1, 32), 0);
    myc_writer_close(w);
    myc_unlink(name);
    /* no digest: all zero */
    w = create_writer(name, 4096, 0);
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    uint8_t zero[32] = {0};
    CHECK_EQ(memcmp(info.schema_digest, zero, 32), 0);
    myc_writer_close(w);
    myc_unlink(name);
}

/* children for the ownership tests */
static const char *g_child_channel;
static int g_child_pipe[2];

static int child_reads_one_and_dies(void *arg) {
    (void)arg;
    myc_reader *cr = NULL;
    uint8_t buf[16];
    if (myc_reader_open(g_child_channel, MYC_ATTACH, 0, 0, 0, NULL, &cr) != MYC_OK) return 2;
    if (READ_TYPE(myc_read(cr, 0, buf, sizeof buf)) != 1) return 3;
    return 0; /* no close: the reader word still names this process */
}

static int child_opens_reader_and_exits(void *arg) {
    (void)arg;
    myc_reader *cr = NULL;
    return myc_reader_open(g_child_channel, MYC_ATTACH, 0, 0, 0, NULL, &cr) == MYC_OK ? 0 : 2;
}

static int child_holds_reader(void *arg) {
    (void)arg;
    close(g_child_pipe[1]);
    myc_reader *cr = NULL;
    if (myc_reader_open(g_child_channel, MYC_ATTACH, 0, 0, 0, NULL, &cr) != MYC_OK) return 2;
    char c;
    /* the parent closes its end when done: read returns 0 */
    while (read(g_child_pipe[0], &c, 1) > 0) {
    }
    myc_reader_close(cr);
    return 0;
}

static void test_reader_busy_and_takeover(void) {
    const char *name = fresh_name("takeover");
    g_child_channel = name;
    myc_writer *w = create_writer(name, 4096, 0);
    raw_map raw = raw_open(name);
    myc_reader *r = attach_reader(name);
    /* the owner word: pid | (start ticks & 0xffffffff) << 32, one u64 */
    uint64_t me = MYC_OWNER(getpid(), proc_start_ticks(getpid()));
    CHECK_EQ(raw_u64(raw, MYC_OFF_READER_OWNER), me);
    CHECK_EQ((uint32_t)raw_u64(raw, MYC_OFF_READER_OWNER), (uint32_t)getpid());
    CHECK_EQ(raw_u64(raw, MYC_OFF_READER_OWNER) >> 32, proc_start_ticks(getpid()) & 0xffffffffull);
    myc_reader *r2 = NULL;
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r2), MYC_ERR_READER_BUSY);
    CHECK(strstr(myc_last_error(), "this process") != NULL);
    CHECK(r2 == NULL);
    myc_reader_close(r);
    CHECK_EQ(raw_u64(raw, MYC_OFF_READER_OWNER), 0); /* close gives it back */

    /* a live reader in another process: busy, named in the message */
    CHECK_EQ(pipe(g_child_pipe), 0);
    pid_t holder = spawn(child_holds_reader, NULL);
    close(g_child_pipe[0]);
    int64_t deadline = mono_ns() + 5000 * MS;
    while ((uint32_t)raw_u64(raw, MYC_OFF_READER_OWNER) != (uint32_t)holder && mono_ns() < deadline)
        sleep_ms(1);
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r2), MYC_ERR_READER_BUSY);
    char pidtext[32];
    snprintf(pidtext, sizeof pidtext, "pid %d", (int)holder);
    CHECK(strstr(myc_last_error(), pidtext) != NULL);
    myc_info info;
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.reader_pid, holder);
    CHECK_EQ(info.reader_alive, 1);
    close(g_child_pipe[1]);
    CHECK_EQ(reap(holder, 5000), 0);
    CHECK_EQ(raw_u64(raw, MYC_OFF_READER_OWNER), 0);

    /* a reader that dies without closing: taken over, its position kept */
    CHECK_EQ(myc_write(w, 1, "one", 3, 0), MYC_OK);
    CHECK_EQ(myc_write(w, 2, "two", 3, 0), MYC_OK);
    pid_t child = spawn(child_reads_one_and_dies, NULL);
    CHECK_EQ(reap(child, 5000), 0);
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.reader_pid, child);
    CHECK_EQ(info.reader_alive, 0);
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_OK);
    uint8_t buf[16];
    CHECK_EQ(READ_TYPE(myc_read(r, 0, buf, sizeof buf)), 2); /* continues after "one" */
    myc_stats s = reader_stats(r);
    CHECK_EQ(s.takeovers, 1);
    CHECK_EQ(s.frames_read, 2);
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.writer_count, 1);
    CHECK_EQ(info.writer_pids[0], getpid());
    CHECK_EQ(info.writer_alive[0], 1);
    myc_reader_close(r);

    /* a zombie reader (exited, not yet waited for) is dead: taken over */
    child = spawn(child_opens_reader_and_exits, NULL);
    CHECK(wait_zombie(child));
    CHECK_EQ((uint32_t)raw_u64(raw, MYC_OFF_READER_OWNER), (uint32_t)child);
    CHECK_EQ(kill(child, 0), 0); /* the pid still exists: only its state says dead */
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.reader_alive, 0);
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_OK);
    CHECK_EQ(reader_stats(r).takeovers, 2);
    CHECK_EQ(raw_u64(raw, MYC_OFF_READER_OWNER), me);
    myc_reader_close(r);
    CHECK_EQ(reap(child, 5000), 0);

    /* a reused pid: the owner word names this pid with another start time */
    raw_set_u64(raw, MYC_OFF_READER_OWNER, dead_owner());
    CHECK_EQ(myc_reader_open(name, MYC_ATTACH, 0, 0, 0, NULL, &r), MYC_OK);
    CHECK_EQ(reader_stats(r).takeovers, 3);
    myc_reader_close(r);
    raw_close(raw);
    myc_writer_close(w);
    myc_unlink(name);
}

typedef struct wake_arg {
    myc_writer *w;
    int delay_ms;
} wake_arg;

static void *delayed_writer(void *p) {
    wake_arg *a = p;
    sleep_ms(a->delay_ms);
    myc_write(a->w, 9, "wake", 4, 0);
    return NULL;
}

typedef struct blocked_arg {
    myc_writer *w;
    int rc;
    int done;
} blocked_arg;

static void *blocked_writer(void *p) {
    blocked_arg *a = p;
    a->rc = myc_write(a->w, 2, "waited", 6, 5000 * MS);
    __atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_blocking_read_sleeps_and_wakes(void) {
    const char *name = fresh_name("wake");
    myc_writer *w = create_writer(name, 4096, 0);
    myc_reader *r = attach_reader(name);
    raw_map raw = raw_open(name);
    uint8_t buf[16];
    int64_t t0 = mono_ns();
    CHECK_EQ(myc_read(r, 30 * MS, buf, sizeof buf), MYC_ERR_EMPTY);
    CHECK(mono_ns() - t0 >= 30 * MS);
    CHECK(reader_stats(r).reader_sleeps >= 1);
    CHECK_EQ(raw_u32(raw, MYC_OFF_READER_SLEEPING), 0); /* cleared on return */
    wake_arg arg = {w, 50};
    pthread_t t;
    pthread_create(&t, NULL, delayed_writer, &arg);
    t0 = mono_ns();
    int64_t got = myc_read(r, 5000 * MS, buf, sizeof buf);
    int64_t waited = mono_ns() - t0;
    pthread_join(t, NULL);
    CHECK_EQ(READ_TYPE(got), 9);
    CHECK(waited < 2000 * MS); /* woken, not timed out */
    myc_stats s = reader_stats(r);
    CHECK(s.reader_sleeps >= 2);
    CHECK(s.writer_wakes >= 1); /* the writer saw the sleeping reader */
    /* no reader asleep: a write issues no wake */
    uint64_t wakes = s.writer_wakes;
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(myc_write(w, 1, "", 0, 0), MYC_OK);
        CHECK_EQ(myc_read(r, 0, buf, sizeof buf), (int64_t)1 << 32);
    }
    CHECK_EQ(reader_stats(r).writer_wakes, wakes);
    /* a dead reader's sleep flag is cleared by the first writer that finds
     * nobody to wake */
    raw_set_u32(raw, MYC_OFF_READER_SLEEPING, 7);
    CHECK_EQ(myc_write(w, 1, "", 0, 0), MYC_OK);
    CHECK_EQ(raw_u32(raw, MYC_OFF_READER_SLEEPING), 0);
    CHECK_EQ(reader_stats(r).writer_wakes, wakes + 1);
    for (int i = 0; i < 10; i++) CHECK_EQ(myc_write(w, 1, "", 0, 0), MYC_OK);
    CHECK_EQ(reader_stats(r).writer_wakes, wakes + 1);
    while (myc_read(r, 0, buf, sizeof buf) >= 0) {
    }

    /* a blocking write sleeps (its waiting bit set) until the reader makes
     * room, and the reader wakes it */
    int filled = 0;
    while (myc_write(w, 1, "full", 4, 0) == MYC_OK) filled++;
    CHECK(filled > 0);
    uint64_t reader_wakes = reader_stats(r).reader_wakes;
    blocked_arg barg = {w, 99, 0};
    pthread_create(&t, NULL, blocked_writer, &barg);
    int64_t deadline = mono_ns() + 5000 * MS;
    while (raw_u32(raw, MYC_OFF_WAITING_MASK) == 0 && mono_ns() < deadline) sleep_ms(1);
    CHECK(raw_u32(raw, MYC_OFF_WAITING_MASK) != 0);
    sleep_ms(20);
    CHECK_EQ(__atomic_load_n(&barg.done, __ATOMIC_SEQ_CST), 0);
    CHECK_EQ(READ_TYPE(myc_read(r, 0, buf, sizeof buf)), 1);
    pthread_join(t, NULL);
    CHECK_EQ(barg.rc, MYC_OK);
    CHECK(reader_stats(r).reader_wakes > reader_wakes);
    CHECK_EQ(raw_u32(raw, MYC_OFF_WAITING_MASK), 0);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static void test_closed_handles(void) {
    uint8_t buf[4];
    myc_reservation res;
    memset(&res, 0, sizeof res);
    myc_frame f;
    myc_stats s;
    uint16_t types[1] = {1};
    uint32_t lens[1] = {1};
    CHECK_EQ(myc_write(NULL, 1, "x", 1, 0), MYC_ERR_CLOSED);
    CHECK_EQ(myc_write_batch(NULL, 1, types, lens, "x", 0), MYC_ERR_CLOSED);
    CHECK_EQ(myc_reserve(NULL, 1, 1, 0, &res), MYC_ERR_CLOSED);
    CHECK_EQ(myc_commit(NULL, &res), MYC_ERR_CLOSED);
    CHECK_EQ(myc_abort(NULL, &res), MYC_ERR_CLOSED);
    CHECK_EQ(myc_read(NULL, 0, buf, 4), MYC_ERR_CLOSED);
    CHECK_EQ(myc_peek(NULL, 0, &f), MYC_ERR_CLOSED);
    CHECK_EQ(myc_read_batch(NULL, 1, 0, buf, 4, types, lens), MYC_ERR_CLOSED);
    CHECK_EQ(myc_writer_stats(NULL, &s), MYC_ERR_CLOSED);
    CHECK_EQ(myc_reader_stats(NULL, &s), MYC_ERR_CLOSED);
    CHECK(strstr(myc_last_error(), "closed") != NULL);
    myc_release(NULL);
    myc_reader_set_stuck_timeout(NULL, 1);
    myc_reader_set_spin(NULL, 1);
    myc_writer_set_spin(NULL, 1);
    myc_writer_close(NULL);
    myc_reader_close(NULL);
    CHECK_EQ(myc_writer_open("x", MYC_ATTACH, 0, 0, 0, NULL, NULL), MYC_ERR_ARG);
    CHECK_EQ(myc_reader_open("x", MYC_ATTACH, 0, 0, 0, NULL, NULL), MYC_ERR_ARG);
    CHECK(strcmp(myc_result_name(MYC_ERR_ABANDONED), "MYC_ERR_ABANDONED") == 0);
    CHECK(strcmp(myc_result_name(MYC_ERR_TOO_MANY_WRITERS), "MYC_ERR_TOO_MANY_WRITERS") == 0);
    CHECK(strcmp(myc_result_name(12345), "MYC_ERR_UNKNOWN") == 0);
}

/* ------------------------------------------------------------------------ */
/* The largest frames and the largest ring                                   */
/* ------------------------------------------------------------------------ */

/* max_payload at its limit (capacity/2 - 16): a frame is half the ring. */
static void max_payload_arithmetic(const char *name, uint64_t capacity) {
    uint32_t max = (uint32_t)(capacity / 2 - MYC_FRAME_HEADER_SIZE);
    myc_writer *w = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_CREATE, capacity, max + 1, 0, NULL, &w), MYC_ERR_ARG);
    int rc = myc_writer_open(name, MYC_CREATE, capacity, max, 0, NULL, &w);
    if (rc == MYC_ERR_SYSTEM && capacity > (1ull << 30)) {
        printf("  SKIP %llu-byte ring: %s\n", (unsigned long long)capacity, myc_last_error());
        return;
    }
    CHECK_EQ(rc, MYC_OK);
    if (rc != MYC_OK) return;
    myc_reader *r = attach_reader(name);
    raw_map raw = raw_open(name);
    uint64_t mask = capacity - 1;
    CHECK_EQ(raw_u32(raw, MYC_OFF_MAX_PAYLOAD), max);
    myc_reservation res;
    CHECK_EQ(myc_reserve(w, 1, max + 1, 0, &res), MYC_ERR_TOO_LARGE);
    /* two half-ring frames fill the ring exactly; frame_len = capacity/2
     * fits its u32 even at capacity 2^32 */
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(myc_reserve(w, (uint32_t)(10 + i), max, 0, &res), MYC_OK);
        CHECK_EQ(res.payload_len, max);
        res.payload[0] = (uint8_t)(0xa0 + i);
        res.payload[max - 1] = (uint8_t)(0xb0 + i);
        CHECK_EQ(myc_commit(w, &res), MYC_OK);
        uint64_t at = (uint64_t)i * (capacity / 2);
        CHECK_EQ(frame_stamp(raw, at), STAMP(at, MYC_STAMP_COMMITTED));
        CHECK_EQ(frame_len(raw, at), capacity / 2);
    }
    CHECK_EQ(raw_u64(raw, MYC_OFF_TAIL), capacity);
    CHECK_EQ(myc_write(w, 1, "", 0, 0), MYC_ERR_FULL);
    myc_frame f;
    CHECK_EQ(myc_peek(r, 0, &f), MYC_OK);
    CHECK_EQ(f.type_id, 10);
    CHECK_EQ(f.payload_len, max);
    CHECK_EQ(f.payload[0], 0xa0);
    CHECK_EQ(f.payload[max - 1], 0xb0);
    myc_release(r);
    /* the second lap: index 0 carries the stamp of position `capacity`
     * (above 2^32 when the ring is 2^32) */
    CHECK_EQ(myc_reserve(w, 12, max, 0, &res), MYC_OK);
    CHECK_EQ(res.position, capacity);
    res.payload[0] = 0xa2;
    CHECK_EQ(myc_commit(w, &res), MYC_OK);
    CHECK_EQ(frame_stamp(raw, 0), STAMP(capacity, MYC_STAMP_COMMITTED));
    CHECK_EQ(myc_peek(r, 0, &f), MYC_OK);
    CHECK_EQ(f.type_id, 11);
    CHECK_EQ(f.payload[max - 1], 0xb1);
    CHECK_EQ(myc_peek(r, 0, &f), MYC_OK); /* releases 11 */
    CHECK_EQ(f.type_id, 12);
    CHECK_EQ(f.payload[0], 0xa2);
    myc_release(r);
    /* a small frame, then a half-ring frame that must wrap: padding of the
     * rest of the ring (capacity/2 - 16 bytes), then the frame at index 0 */
    CHECK_EQ(myc_write(w, 2, "", 0, 0), MYC_OK);
    uint64_t p = raw_u64(raw, MYC_OFF_TAIL);
    CHECK_EQ(p & mask, capacity / 2 + 16);
    CHECK_EQ(myc_reserve(w, 13, max, 0, &res), MYC_OK);
    CHECK_EQ(res.position, p + capacity / 2 - 16);
    CHECK_EQ(res.position & mask, 0);
    CHECK_EQ(myc_commit(w, &res), MYC_OK);
    CHECK_EQ(frame_stamp(raw, p & mask), STAMP(p, MYC_STAMP_PADDING));
    CHECK_EQ(frame_len(raw, p & mask), capacity / 2 - 16);
    uint8_t small[16];
    CHECK_EQ(myc_read(r, 0, small, sizeof small), (int64_t)2 << 32);
    CHECK_EQ(myc_peek(r, 0, &f), MYC_OK);
    CHECK_EQ(f.type_id, 13);
    CHECK_EQ(f.payload_len, max);
    myc_release(r);
    CHECK_EQ(raw_u64(raw, MYC_OFF_HEAD), raw_u64(raw, MYC_OFF_TAIL));
    myc_info info;
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.stats.capacity, capacity);
    CHECK_EQ(info.stats.max_payload, max);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w);
    myc_unlink(name);
}

static uint64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (f == NULL) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

static void test_max_capacity(void) {
    /* the arithmetic at the limit, on a ring every /dev/shm can hold */
    max_payload_arithmetic(fresh_name("maxpayload"), 1024);
    max_payload_arithmetic(fresh_name("maxpayload64k"), 65536);
    /* the ring at 2^32 itself, where /dev/shm and memory allow (the whole
     * ring is reserved and mapped: 4 GiB of memory) */
    const uint64_t cap = MYC_MAX_CAPACITY;
    const uint64_t margin = 2ull << 30;
    struct statvfs vfs;
    if (statvfs("/dev/shm", &vfs) != 0) {
        printf("  SKIP 2^32-byte ring: cannot statvfs /dev/shm: %s\n", strerror(errno));
        return;
    }
    uint64_t shm_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    uint64_t mem = mem_available();
    if (shm_free < cap + MYC_HEADER_SIZE) {
        printf("  SKIP 2^32-byte ring: /dev/shm has %.2f GiB free, the ring needs 4 GiB "
               "(tested at capacity 1024 and 65536 instead)\n",
               (double)shm_free / (1 << 30));
        return;
    }
    if (mem < cap + margin) {
        printf("  SKIP 2^32-byte ring: %.2f GiB of memory available, the ring needs 4 GiB "
               "plus 2 GiB to spare (tested at capacity 1024 and 65536 instead)\n",
               (double)mem / (1 << 30));
        return;
    }
    int64_t t0 = mono_ns();
    max_payload_arithmetic(fresh_name("maxcap"), cap);
    printf("  2^32-byte ring tested (%.1f s)\n", (double)(mono_ns() - t0) / 1e9);
}

/* ------------------------------------------------------------------------ */
/* The writer-slot limit                                                     */
/* ------------------------------------------------------------------------ */

typedef struct slot_thread {
    myc_writer *w;
    pthread_barrier_t *barrier;
    int rc;
} slot_thread;

static void *write_then_wait(void *p) {
    slot_thread *t = p;
    t->rc = myc_write(t->w, 1, "t", 1, 0);
    /* stay alive until every thread has written: a thread id is not reused
     * while its thread lives, so each thread needs its own slot */
    pthread_barrier_wait(t->barrier);
    return NULL;
}

static void test_too_many_writers(void) {
    /* 32 handles take the 32 slots; the 33rd is refused */
    const char *name = fresh_name("slots");
    myc_writer *w[MYC_WRITER_SLOTS + 1];
    w[0] = create_writer(name, 65536, 0);
    for (uint32_t i = 1; i < MYC_WRITER_SLOTS; i++) w[i] = attach_writer(name);
    myc_writer *extra = NULL;
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &extra), MYC_ERR_TOO_MANY_WRITERS);
    CHECK(strstr(myc_last_error(), "32 writer slots") != NULL);
    CHECK(extra == NULL);
    myc_writer_close(w[5]); /* a slot comes free */
    w[5] = attach_writer(name);
    CHECK_EQ(myc_writer_open(name, MYC_ATTACH, 0, 0, 0, NULL, &extra), MYC_ERR_TOO_MANY_WRITERS);
    myc_info info;
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.writer_count, 1); /* one process */
    for (uint32_t i = 0; i < MYC_WRITER_SLOTS; i++) myc_writer_close(w[i]);
    myc_unlink(name);

    /* one handle shared by 33 threads (the opener and 32 more): one slot
     * per thread, so exactly one thread is refused */
    name = fresh_name("slots-threads");
    myc_writer *shared = create_writer(name, 65536, 0);
    myc_reader *r = attach_reader(name);
    enum { THREADS = MYC_WRITER_SLOTS };
    pthread_t threads[THREADS];
    slot_thread args[THREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (slot_thread){shared, &barrier, 99};
        pthread_create(&threads[i], NULL, write_then_wait, &args[i]);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        ok += args[i].rc == MYC_OK;
        refused += args[i].rc == MYC_ERR_TOO_MANY_WRITERS;
    }
    pthread_barrier_destroy(&barrier);
    CHECK_EQ(ok, THREADS - 1);
    CHECK_EQ(refused, 1);
    /* the opener still writes through its own slot */
    CHECK_EQ(myc_write(shared, 2, "main", 4, 0), MYC_OK);
    uint8_t buf[16];
    int frames = 0;
    while (myc_read(r, 0, buf, sizeof buf) >= 0) frames++;
    CHECK_EQ(frames, THREADS);
    myc_reader_close(r);
    myc_writer_close(shared);
    /* closing released every slot the threads took */
    myc_writer *again = attach_writer(name);
    raw_map raw = raw_open(name);
    int used = 0;
    for (uint32_t i = 0; i < MYC_WRITER_SLOTS; i++)
        used += raw_u64(raw, MYC_OFF_WRITER_TABLE + i * MYC_WRITER_SLOT_SIZE) != 0;
    CHECK_EQ(used, 1);
    raw_close(raw);
    myc_writer_close(again);
    myc_unlink(name);
}

/* The operator's force-unblock, in one process: a reservation whose header
 * is written holds the reader; revoking it lets the reader pass, keeps
 * writers off its space until its writer returns, and fails its commit. */
static void test_force_unblock_in_process(void) {
    const char *name = fresh_name("revoke");
    myc_writer *w = create_writer(name, 1024, 0);
    myc_writer *w2 = attach_writer(name);
    myc_reader *r = attach_reader(name);
    raw_map raw = raw_open(name);
    uint8_t buf[256];
    int32_t pid = -1;
    uint64_t position = 1;
    CHECK_EQ(myc_force_unblock(name, &pid, &position), MYC_ERR_EMPTY); /* nothing held */
    CHECK_EQ(pid, 0);
    advance_to_index(w2, r, raw, 1024, 512);
    myc_reservation res;
    CHECK_EQ(myc_reserve(w, 5, 100, 0, &res), MYC_OK);
    CHECK_EQ(myc_write(w2, 6, "after", 5, 0), MYC_OK);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY);
    CHECK_EQ(myc_force_unblock(name, &pid, &position), MYC_OK);
    CHECK_EQ(pid, getpid());
    CHECK_EQ(position, res.position);
    CHECK_EQ(frame_stamp(raw, res.position & 1023), STAMP(res.position, MYC_STAMP_REVOKED));
    myc_info info;
    CHECK_EQ(myc_inspect(name, &info), MYC_OK);
    CHECK_EQ(info.hold_position, res.position);
    CHECK_EQ(raw_u64(raw, MYC_OFF_FORCED_UNBLOCKS), 1);
    CHECK_EQ(myc_force_unblock(name, &pid, &position), MYC_ERR_EMPTY); /* already revoked */
    /* the reader passes it */
    int64_t got = myc_read(r, 0, buf, sizeof buf);
    CHECK_EQ(READ_TYPE(got), 6);
    /* writers may not lap the held claim's space */
    uint64_t hold = res.position;
    int written = 0;
    while (myc_write(w2, 7, buf, 48, 0) == MYC_OK) written++;
    CHECK(written > 0);
    CHECK(raw_u64(raw, MYC_OFF_TAIL) <= hold + 1024);
    CHECK(raw_u64(raw, MYC_OFF_TAIL) - raw_u64(raw, MYC_OFF_HEAD) < 1024 - 64);
    /* its writer's commit fails and frees the space */
    res.payload[0] = 1;
    CHECK_EQ(myc_commit(w, &res), MYC_ERR_ABANDONED);
    CHECK(strstr(myc_last_error(), "force-unblocked") != NULL);
    CHECK_EQ(raw_u64(raw, MYC_OFF_HOLD), MYC_NO_HOLD);
    CHECK_EQ(raw_u64(raw, MYC_OFF_ABANDONED), 1);
    CHECK_EQ(myc_write(w2, 7, buf, 48, 0), MYC_OK);
    int read = 0;
    while ((got = myc_read(r, 0, buf, sizeof buf)) >= 0) {
        CHECK_EQ(READ_TYPE(got), 7);
        read++;
    }
    CHECK_EQ(got, MYC_ERR_EMPTY);
    CHECK_EQ(read, written + 1);
    /* an aborted-after-revoke reservation is dropped quietly */
    CHECK_EQ(myc_reserve(w, 5, 10, 0, &res), MYC_OK);
    CHECK_EQ(myc_force_unblock(name, NULL, NULL), MYC_OK);
    CHECK_EQ(myc_abort(w, &res), MYC_OK);
    CHECK_EQ(raw_u64(raw, MYC_OFF_HOLD), MYC_NO_HOLD);
    CHECK_EQ(myc_read(r, 0, buf, sizeof buf), MYC_ERR_EMPTY);
    raw_close(raw);
    myc_reader_close(r);
    myc_writer_close(w2);
    myc_writer_close(w);
    myc_unlink(name);
    CHECK_EQ(myc_force_unblock(name, NULL, NULL), MYC_ERR_NOT_FOUND);
}

int main(int argc, char **argv) {
    static const test_case tests[] = {
        {"names", test_names, NULL},
        {"foreign", test_foreign_and_odd_objects, NULL},
        {"create_attach_and_header", test_create_attach_and_header, NULL},
        {"frame_header_bytes", test_frame_header_bytes, NULL},
        {"alignment_16", test_alignment_16, NULL},
        {"padding_at_ring_end", test_padding_at_ring_end, NULL},
        {"reader_never_writes_ring", test_reader_never_writes_ring, NULL},
        {"exact_capacity_fill", test_exact_capacity_fill, NULL},
        {"reserve_peek", test_reserve_peek, NULL},
        {"dead_claims", test_dead_claims, NULL},
        {"corrupt_frames", test_corrupt_frames, NULL},
        {"stale_lap_stamp", test_stale_lap_stamp, NULL},
        {"corrupt_headers", test_corrupt_headers, NULL},
        {"schema_digest", test_schema_digest, NULL},
        {"reader_busy_and_takeover", test_reader_busy_and_takeover, NULL},
        {"blocking_read_sleeps_and_wakes", test_blocking_read_sleeps_and_wakes, NULL},
        {"closed_handles", test_closed_handles, NULL},
        {"max_capacity", test_max_capacity, NULL},
        {"too_many_writers", test_too_many_writers, NULL},
        {"force_unblock_in_process", test_force_unblock_in_process, NULL},
    };
    return run_tests("test_ring", tests, sizeof tests / sizeof tests[0], argc, argv, 120);
}
