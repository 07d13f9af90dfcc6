/*
 * Channels as objects: names, creating and attaching, and the header
 * fields every handle relies on, validated once and kept as local copies.
 */
#include "ring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* The layout, pinned: ring.h and docs/FORMAT.md must agree                 */
/* ------------------------------------------------------------------------ */

#define MYC_BLOCK_OF(off) ((off) / MYC_BLOCK_SIZE)
_Static_assert(MYC_HEADER_SIZE % MYC_BLOCK_SIZE == 0, "header is whole blocks");
_Static_assert(MYC_HEADER_SIZE % 4096 == 0, "ring starts page-aligned");
_Static_assert(MYC_OFF_MAGIC == 0 && MYC_OFF_VERSION == 8 && MYC_OFF_HEADER_SIZE == 12 &&
                   MYC_OFF_CAPACITY == 16 && MYC_OFF_MAX_PAYLOAD == 24 && MYC_OFF_FEATURES == 28 &&
                   MYC_OFF_SCHEMA_DIGEST == 32 && MYC_OFF_CREATOR_PID == 64 &&
                   MYC_OFF_CREATOR_START == 72 && MYC_OFF_CREATED_NS == 80 &&
                   MYC_OFF_READER_SLOTS == 88 && MYC_OFF_INIT == 120,
               "block 0 offsets match docs/FORMAT.md");
_Static_assert(MYC_OFF_SCHEMA_DIGEST + MYC_DIGEST_SIZE <= MYC_OFF_CREATOR_PID, "digest does not overlap");
_Static_assert(MYC_BLOCK_OF(MYC_OFF_INIT) == 0, "init word in block 0");
_Static_assert(MYC_OFF_TAIL == 1 * MYC_BLOCK_SIZE, "tail owns block 1");
_Static_assert(MYC_OFF_HEAD == 2 * MYC_BLOCK_SIZE && MYC_OFF_READER_OWNER == MYC_OFF_HEAD + 8 &&
                   MYC_OFF_HOLD == MYC_OFF_HEAD + 16 && MYC_OFF_HOLD_SLOT == MYC_OFF_HEAD + 24 &&
                   MYC_OFF_STALL_PID == MYC_OFF_HEAD + 28 && MYC_OFF_STALL_SINCE == MYC_OFF_HEAD + 32,
               "head, owner, hold and stall in block 2");
_Static_assert(MYC_OFF_READER_FUTEX == 3 * MYC_BLOCK_SIZE &&
                   MYC_OFF_READER_SLEEPING == MYC_OFF_READER_FUTEX + 4 &&
                   MYC_OFF_SPACE_FUTEX == MYC_OFF_READER_FUTEX + 8 &&
                   MYC_OFF_WAITING_MASK == MYC_OFF_READER_FUTEX + 12,
               "wait/notify words in block 3");
_Static_assert(MYC_WRITER_SLOTS <= 32, "one waiting bit per writer slot in a u32");
_Static_assert(MYC_OFF_FRAMES_WRITTEN == 4 * MYC_BLOCK_SIZE &&
                   MYC_OFF_ABANDONED == MYC_OFF_FRAMES_WRITTEN + 40,
               "writer totals in block 4");
_Static_assert(MYC_OFF_FRAMES_READ == 5 * MYC_BLOCK_SIZE &&
                   MYC_OFF_FORCED_UNBLOCKS == MYC_OFF_FRAMES_READ + 56,
               "reader statistics in block 5");
_Static_assert(MYC_OFF_WRITER_TABLE == 6 * MYC_BLOCK_SIZE &&
                   MYC_OFF_WRITER_TABLE + MYC_WRITER_SLOTS * MYC_WRITER_SLOT_SIZE ==
                       MYC_OFF_READER_TABLE,
               "writer registry fills blocks 6-21");
_Static_assert(MYC_SLOT_OFF_TIMEOUTS + 8 <= MYC_WRITER_SLOT_SIZE, "slot words fit the slot");
_Static_assert(MYC_OFF_READER_TABLE == 22 * MYC_BLOCK_SIZE &&
                   MYC_OFF_READER_TABLE + MYC_READER_SLOTS * MYC_CURSOR_SLOT_SIZE == MYC_HEADER_SIZE,
               "reader cursor table fills blocks 22-31");
_Static_assert(MYC_OFF_UNTETHER_MS == MYC_OFF_READER_SLOTS + 4 && MYC_OFF_UNTETHER_MS + 4 <= MYC_OFF_INIT,
               "broadcast words in block 0");
_Static_assert(MYC_OFF_SEQ == MYC_OFF_TAIL + 8 && MYC_OFF_TAIL % 16 == 0,
               "TAIL | SEQ is one 16-aligned word");
_Static_assert(MYC_OFF_LAP_TABLE == MYC_OFF_TAIL + 64 &&
                   MYC_OFF_LAP_TABLE + MYC_LAP_ENTRIES * MYC_LAP_ENTRY_SIZE == 2 * MYC_BLOCK_SIZE,
               "lap table on the second cache line of block 1");
_Static_assert(MYC_OFF_CURSOR_LOCK == MYC_OFF_HEAD + 40 && MYC_OFF_READERS_SLEEPING == MYC_OFF_READER_FUTEX + 16 &&
                   MYC_OFF_UNTETHERED == MYC_OFF_FRAMES_WRITTEN + 48,
               "broadcast words in blocks 2, 3 and 4");
_Static_assert(MYC_READER_SLOTS <= 32, "one sleeping bit per cursor slot in a u32");
_Static_assert(MYC_CURSOR_OFF_NAME + MYC_CURSOR_NAME_MAX + 1 == MYC_CURSOR_SLOT_SIZE &&
                   MYC_CURSOR_OFF_ATTACHED_NS + 8 == MYC_CURSOR_OFF_NAME && MYC_CURSOR_OFF_POSITION % 8 == 0,
               "cursor slot layout");
_Static_assert(MYC_FRAME_OFF_STAMP == 0 && MYC_FRAME_OFF_LEN == 8 && MYC_FRAME_OFF_TYPE == 12 &&
                   MYC_FRAME_OFF_FLAGS == 14 && MYC_FRAME_HEADER_SIZE == 16,
               "frame header layout");
_Static_assert(MYC_FRAME_ALIGNMENT == MYC_FRAME_HEADER_SIZE,
               "a padding header fits wherever a frame may start");
_Static_assert(MYC_STAMP_STATE_MASK < MYC_FRAME_ALIGNMENT, "the state fits a position's low bits");
_Static_assert(MYC_MAX_CAPACITY / 2 <= UINT32_MAX, "a frame's length fits its u32 word");
_Static_assert(sizeof(MYC_NAME_PREFIX) - 1 + MYC_NAME_MAX == NAME_MAX, "prefixed name fits NAME_MAX");

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
/* ------------------------------------------------------------------------ */

/* Length of the UTF-8 sequence at s[0..len) (1 to 4), or 0 with `why` set:
 * RFC 3629 exactly (no overlong form, no surrogate, nothing above
 * U+10FFFF). */
static size_t utf8_sequence(const unsigned char *s, size_t len, const char **why) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0xC0) {
        *why = "a continuation byte without a lead byte";
        return 0;
    } else if (c < 0xC2) {
        *why = "an overlong encoding";
        return 0;
    } else if (c < 0xE0) {
        need = 2;
    } else if (c < 0xF0) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;      /* below: overlong */
        else if (c == 0xED) hi = 0x9F; /* above: a UTF-16 surrogate */
    } else if (c < 0xF5) {
        need = 4;
        if (c == 0xF0) lo = 0x90;      /* below: overlong */
        else if (c == 0xF4) hi = 0x8F; /* above: beyond U+10FFFF */
    } else {
        *why = c >= 0xFE ? "a byte that never occurs in UTF-8" : "a code point beyond U+10FFFF";
        return 0;
    }
    if (len < need) {
        *why = "a truncated sequence";
        return 0;
    }
    if (s[1] < lo || s[1] > hi) {
        if (s[1] < 0x80 || s[1] > 0xBF) *why = "a truncated sequence";
        else if (c == 0xED) *why = "a UTF-16 surrogate";
        else if (c == 0xF4) *why = "a code point beyond U+10FFFF";
        else *why = "an overlong encoding";
        return 0;
    }
    for (size_t i = 2; i < need; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            *why = "a truncated sequence";
            return 0;
        }
    }
    return need;
}

int myc_name_check(const char *name) {
    if (name == NULL || name[0] == '\0') return myc_fail(MYC_ERR_NAME, "channel name is empty");
    size_t len = strlen(name);
    if (len > MYC_NAME_MAX)
        return myc_fail(MYC_ERR_NAME, "channel name is %zu bytes, the limit is %u", len, MYC_NAME_MAX);
    /* UTF-8 first: the messages below quote the name, which must be text. */
    const unsigned char *u = (const unsigned char *)name;
    for (size_t i = 0; i < len;) {
        const char *why = "";
        size_t n = utf8_sequence(u + i, len - i, &why);
        if (n == 0)
            return myc_fail(MYC_ERR_NAME,
                            "channel name is not valid UTF-8: %s (byte 0x%02x) at byte offset %zu",
                            why, u[i], i);
        i += n;
    }
    if (strcmp(name, ".") == 0 || strstr(name, "..") != NULL)
        return myc_fail(MYC_ERR_NAME, "channel name '%s' contains '..' or is '.'", name);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = u[i];
        if (c == '/') return myc_fail(MYC_ERR_NAME, "channel name '%s' contains '/'", name);
        if (c < 0x20 || c == 0x7f)
            return myc_fail(MYC_ERR_NAME, "channel name contains control character 0x%02x at byte %zu", c, i);
    }
    return MYC_OK;
}

static int object_name(const char *name, char out[NAME_MAX + 2]) {
    int rc = myc_name_check(name);
    if (rc != MYC_OK) return rc;
    snprintf(out, NAME_MAX + 2, "%s%s", MYC_NAME_PREFIX, name);
    return MYC_OK;
}

int myc_unlink(const char *name) {
    char obj[NAME_MAX + 2];
    int rc = object_name(name, obj);
    if (rc != MYC_OK) return rc;
    if (shm_unlink(obj) != 0) {
        if (errno == ENOENT) return myc_fail(MYC_ERR_NOT_FOUND, "no channel named '%s'", name);
        return myc_fail_sys(errno, "cannot remove channel '%s'", name);
    }
    return MYC_OK;
}

/* ------------------------------------------------------------------------ */
/* Mapping a channel                                                         */
/* ------------------------------------------------------------------------ */


static int is_pow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

/*
 * One mapping per channel object per process, shared by every handle on it
 * (refcounted, keyed by device and inode).  Besides saving address space,
 * this gives each shared word a single address in the process, which is
 * what ThreadSanitizer needs to see the release/acquire pairs between a
 * process's writers and its reader.
 */
typedef struct shared_mapping {
    dev_t dev;
    ino_t ino;
    uint8_t *base;
    size_t size;
    int refs;
    struct shared_mapping *next;
} shared_mapping;

static pthread_mutex_t g_mappings_lock = PTHREAD_MUTEX_INITIALIZER;
static shared_mapping *g_mappings;

/* Map `fd` read-write (MAP_FAILED on failure, errno set). */
static void *map_shared(int fd, size_t size) {
    struct stat st;
    if (fstat(fd, &st) != 0) return MAP_FAILED;
    pthread_mutex_lock(&g_mappings_lock);
    for (shared_mapping *m = g_mappings; m; m = m->next) {
        if (m->dev == st.st_dev && m->ino == st.st_ino && m->size == size) {
            m->refs++;
            pthread_mutex_unlock(&g_mappings_lock);
            return m->base;
        }
    }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    shared_mapping *entry = base == MAP_FAILED ? NULL : malloc(sizeof *entry);
    if (base != MAP_FAILED && entry == NULL) {
        munmap(base, size);
        base = MAP_FAILED;
        errno = ENOMEM;
    }
    if (entry) {
        *entry = (shared_mapping){st.st_dev, st.st_ino, base, size, 1, g_mappings};
        g_mappings = entry;
    }
    pthread_mutex_unlock(&g_mappings_lock);
    return base;
}

static void unmap_shared(void *base) {
    pthread_mutex_lock(&g_mappings_lock);
    for (shared_mapping **link = &g_mappings; *link; link = &(*link)->next) {
        shared_mapping *m = *link;
        if (m->base != base) continue;
        if (--m->refs == 0) {
            *link = m->next;
            munmap(m->base, m->size);
            free(m);
        }
        break;
    }
    pthread_mutex_unlock(&g_mappings_lock);
}

static void hex_prefix(const uint8_t *digest, char out[17]) {
    for (int i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* Checks every header field an attacher relies on; `file_size` from fstat. */
static int validate_header(const uint8_t *base, uint64_t file_size, const char *name,
                           myc_map *out) {
    uint64_t magic;
    memcpy(&magic, base + MYC_OFF_MAGIC, 8);
    if (magic != MYC_MAGIC)
        return myc_fail(MYC_ERR_FORMAT, "'%s' is not a mycelium channel (magic 0x%016llx)", name,
                    (unsigned long long)magic);
    uint32_t version, header_size, max_payload, features;
    uint64_t capacity;
    memcpy(&version, base + MYC_OFF_VERSION, 4);
    memcpy(&header_size, base + MYC_OFF_HEADER_SIZE, 4);
    memcpy(&capacity, base + MYC_OFF_CAPACITY, 8);
    memcpy(&max_payload, base + MYC_OFF_MAX_PAYLOAD, 4);
    memcpy(&features, base + MYC_OFF_FEATURES, 4);
    if (version != MYC_FORMAT_VERSION)
        return myc_fail(MYC_ERR_FORMAT,
                        "channel '%s' has format version %u; this library reads version %u only%s",
                        name, version, MYC_FORMAT_VERSION,
                        version < MYC_FORMAT_VERSION
                            ? " (recreate the channel: remove it and open it again with create=True)"
                            : " (upgrade this library)");
    if (header_size != MYC_HEADER_SIZE)
        return myc_fail(MYC_ERR_FORMAT, "channel '%s' header size %u, expected %u", name,
                    header_size, MYC_HEADER_SIZE);
    if (features & ~MYC_FEATURE_BROADCAST)
        return myc_fail(MYC_ERR_FORMAT, "channel '%s' uses unknown features 0x%x", name, features);
    uint32_t readers, untether_ms;
    memcpy(&readers, base + MYC_OFF_READER_SLOTS, 4);
    memcpy(&untether_ms, base + MYC_OFF_UNTETHER_MS, 4);
    if ((features & MYC_FEATURE_BROADCAST) ? readers == 0 || readers > MYC_READER_SLOTS || untether_ms == 0
                                           : readers != 0 || untether_ms != 0)
        return myc_fail(MYC_ERR_FORMAT,
                        "channel '%s' has features 0x%x with %u reader slots (untether %u ms): a "
                        "broadcast channel has 1 to %u slots and a non-zero untether time, any "
                        "other neither",
                        name, features, readers, untether_ms, MYC_READER_SLOTS);
    if (!is_pow2(capacity) || capacity < MYC_MIN_CAPACITY || capacity > MYC_MAX_CAPACITY)
        return myc_fail(MYC_ERR_FORMAT, "channel '%s' capacity %llu is not a power of two in [%llu, %llu]",
                    name, (unsigned long long)capacity, MYC_MIN_CAPACITY, MYC_MAX_CAPACITY);
    if (max_payload == 0 || (uint64_t)max_payload > capacity / 2 - MYC_FRAME_HEADER_SIZE)
        return myc_fail(MYC_ERR_FORMAT, "channel '%s' max payload %u is out of range for capacity %llu",
                    name, max_payload, (unsigned long long)capacity);
    if (file_size != MYC_HEADER_SIZE + capacity)
        return myc_fail(MYC_ERR_FORMAT, "channel '%s' file is %llu bytes, its header says %llu",
                    name, (unsigned long long)file_size,
                    (unsigned long long)(MYC_HEADER_SIZE + capacity));
    out->capacity = capacity;
    out->max_payload = max_payload;
    out->readers = readers;
    out->untether_ms = untether_ms;
    return MYC_OK;
}

static int create_object(const char *name, const char *obj, uint64_t capacity,
                         uint32_t max_payload, uint32_t mode, const uint8_t *digest,
                         uint32_t readers, uint32_t untether_ms, myc_map *map, int *fd_out) {
    int fd = shm_open(obj, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST) return myc_fail(MYC_ERR_EXISTS, "channel '%s' already exists", name);
        return myc_fail_sys(errno, "cannot create channel '%s'", name);
    }
    /* shm_open applies the umask; the caller asked for exactly `mode`. */
    if (fchmod(fd, mode) != 0) goto sys_fail;
    uint64_t size = MYC_HEADER_SIZE + capacity;
    /* Reserve the pages now: a full /dev/shm must fail here with ENOSPC, not
     * later as SIGBUS on first touch. */
    int frc = posix_fallocate(fd, 0, (off_t)size);
    if (frc != 0) {
        shm_unlink(obj);
        close(fd);
        return myc_fail_sys(frc, "cannot reserve %llu bytes for channel '%s' in /dev/shm",
                        (unsigned long long)size, name);
    }
    void *base = map_shared(fd, size);
    if (base == MAP_FAILED) goto sys_fail;
    uint8_t *b = base;
    uint64_t magic = MYC_MAGIC, created = myc_realtime_ns(), hold = MYC_NO_HOLD;
    uint64_t start = MYC_OWNER_START(myc_self_owner());
    uint32_t version = MYC_FORMAT_VERSION, header_size = MYC_HEADER_SIZE;
    uint32_t features = readers ? MYC_FEATURE_BROADCAST : 0;
    int32_t pid = (int32_t)getpid();
    /* The object is fresh and zero-filled; plain stores suffice until the
     * init word publishes them. */
    memcpy(b + MYC_OFF_MAGIC, &magic, 8);
    memcpy(b + MYC_OFF_VERSION, &version, 4);
    memcpy(b + MYC_OFF_HEADER_SIZE, &header_size, 4);
    memcpy(b + MYC_OFF_CAPACITY, &capacity, 8);
    memcpy(b + MYC_OFF_MAX_PAYLOAD, &max_payload, 4);
    memcpy(b + MYC_OFF_FEATURES, &features, 4);
    memcpy(b + MYC_OFF_READER_SLOTS, &readers, 4);
    if (readers) memcpy(b + MYC_OFF_UNTETHER_MS, &untether_ms, 4);
    if (digest) memcpy(b + MYC_OFF_SCHEMA_DIGEST, digest, MYC_DIGEST_SIZE);
    memcpy(b + MYC_OFF_CREATOR_PID, &pid, 4);
    memcpy(b + MYC_OFF_CREATOR_START, &start, 8);
    memcpy(b + MYC_OFF_CREATED_NS, &created, 8);
    memcpy(b + MYC_OFF_HOLD, &hold, 8);
    /* release: pairs with the attacher's acquire load of the init word, so an
     * attacher that sees READY sees every header field above. */
    myc_store_release_u32(b, MYC_OFF_INIT, MYC_INIT_READY);
    map->base = b;
    map->map_size = size;
    map->capacity = capacity;
    map->max_payload = max_payload;
    map->readers = readers;
    map->untether_ms = readers ? untether_ms : 0;
    *fd_out = fd;
    return MYC_OK;
sys_fail: {
    int err = errno;
    shm_unlink(obj);
    close(fd);
    return myc_fail_sys(err, "cannot set up channel '%s'", name);
}
}

/* What a file of mode `st_mode` is, for a message; NULL for a regular file. */
static const char *odd_kind(mode_t st_mode) {
    if (S_ISREG(st_mode)) return NULL;
    if (S_ISDIR(st_mode)) return "a directory";
    if (S_ISLNK(st_mode)) return "a symbolic link";
    if (S_ISFIFO(st_mode)) return "a FIFO";
    if (S_ISSOCK(st_mode)) return "a socket";
    if (S_ISCHR(st_mode)) return "a character device";
    if (S_ISBLK(st_mode)) return "a block device";
    return "not a regular file";
}

/* shm_open failed with `err`: say what lies at the object's path. */
static int open_failure(const char *name, const char *obj, int err) {
    if (err == ENOENT) return myc_fail(MYC_ERR_NOT_FOUND, "no channel named '%s'", name);
    char path[NAME_MAX + 16];
    snprintf(path, sizeof path, "/dev/shm%s", obj);
    struct stat st;
    const char *kind = lstat(path, &st) == 0 ? odd_kind(st.st_mode) : NULL;
    /* glibc's shm_open opens with O_NOFOLLOW (a symlink is ELOOP) and turns
     * EISDIR into EINVAL. */
    if (kind != NULL)
        return myc_fail(MYC_ERR_FORMAT, "%s is %s, not a channel (refusing to use it)", path, kind);
    if (err == ELOOP)
        return myc_fail(MYC_ERR_FORMAT, "%s is a symbolic link, not a channel (refusing to follow it)",
                        path);
    return myc_fail_sys(err, "cannot open channel '%s'", name);
}

/* The ownership rule of MYC_TRUST_FOREIGN (ring.h). */
static int check_owner(const char *name, const struct stat *st, uint32_t mode) {
    uid_t me = geteuid();
    if (st->st_uid != me)
        return myc_fail(MYC_ERR_FOREIGN,
                        "channel '%s' is owned by uid %u, not by this process's uid %u: its owner "
                        "can corrupt, stall or truncate it; attach only if you trust that user "
                        "(trust_foreign=True / MYC_TRUST_FOREIGN)",
                        name, (unsigned)st->st_uid, (unsigned)me);
    uint32_t have = (uint32_t)st->st_mode & 0777u;
    if (have & ~mode)
        return myc_fail(MYC_ERR_FOREIGN,
                        "channel '%s' has mode 0%03o, wider than the 0%03o this open allows: the "
                        "other users it admits can corrupt, stall or truncate it (a name squatted "
                        "with a permissive mode looks like this); pass that mode, or attach only if "
                        "you trust them (trust_foreign=True / MYC_TRUST_FOREIGN)",
                        name, have, mode);
    return MYC_OK;
}

/* A copy of the header, read with pread rather than through a mapping: a
 * file shrunk meanwhile (by a hostile peer, say) gives a short read, never
 * SIGBUS.  1 if all of it came. */
static int read_header(int fd, uint8_t *copy) {
    return pread(fd, copy, MYC_HEADER_SIZE, 0) == (ssize_t)MYC_HEADER_SIZE;
}

/* `mode` and `trust`: the ownership rule, for writable attaches only (an
 * observer writes nothing).  `snapshot` (observers: 4096 bytes): no
 * mapping at all; map->base is then the validated copy of the header. */
static int attach_object(const char *name, const char *obj, int writable, uint32_t mode,
                         int trust, myc_map *map, int *fd_out, uint8_t *snapshot) {
    /* The header as read by the last look (8-aligned for the field loads). */
    uint64_t header_words[MYC_HEADER_SIZE / sizeof(uint64_t)];
    uint8_t *copy = (uint8_t *)header_words;
    /* O_NONBLOCK: a FIFO planted at the path must not block the open. */
    int fd = shm_open(obj, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK, 0);
    if (fd < 0) return open_failure(name, obj, errno);
    int64_t deadline = myc_now_ns() + MYC_ATTACH_WAIT_NS;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return myc_fail_sys(err, "cannot stat channel '%s'", name);
    }
    const char *kind = odd_kind(st.st_mode);
    if (kind != NULL) {
        close(fd);
        return myc_fail(MYC_ERR_FORMAT, "/dev/shm%s is %s, not a channel (refusing to use it)", obj,
                        kind);
    }
    /* A creator may be between shm_open and posix_fallocate, or still writing
     * the header: wait (bounded) for the init word. */
    for (;;) {
        if (fstat(fd, &st) != 0) {
            int err = errno;
            close(fd);
            return myc_fail_sys(err, "cannot stat channel '%s'", name);
        }
        if ((uint64_t)st.st_size >= MYC_HEADER_SIZE && read_header(fd, copy)) {
            uint32_t init;
            uint64_t magic;
            memcpy(&init, copy + MYC_OFF_INIT, 4);
            memcpy(&magic, copy + MYC_OFF_MAGIC, 8);
            if (init == MYC_INIT_READY) {
                /* The copy may hold fields read before READY was: read it
                 * again.  acquire fence: pairs with the creator's release
                 * store of READY, so what it stored before is visible to
                 * the reads that follow (a system call's copy). */
#ifndef __SANITIZE_THREAD__ /* ThreadSanitizer does not model fences (and rejects them) */
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
                if (!read_header(fd, copy)) init = 0, magic = 0; /* shrunk meanwhile: look again */
                else memcpy(&magic, copy + MYC_OFF_MAGIC, 8);
            }
            /* A foreign object fails at once; only a zero magic may be a
             * header still being written. */
            int decided = init == MYC_INIT_READY || (magic != 0 && magic != MYC_MAGIC);
            int rc = decided ? validate_header(copy, (uint64_t)st.st_size, name, map) : MYC_OK;
            if (decided) {
                if (rc != MYC_OK) {
                    close(fd);
                    return rc;
                }
                break;
            }
        }
        if (myc_now_ns() > deadline) {
            close(fd);
            return myc_fail(MYC_ERR_FORMAT, "channel '%s' was never initialised (%lld bytes)", name,
                        (long long)st.st_size);
        }
        usleep(1000);
    }
    /* After the header: a file that is no channel at all says so first. */
    if (writable && !trust) {
        int rc = check_owner(name, &st, mode);
        if (rc != MYC_OK) {
            close(fd);
            return rc;
        }
    }
    if (snapshot != NULL) {
        memcpy(snapshot, copy, MYC_HEADER_SIZE);
        map->base = snapshot;
        map->map_size = (size_t)st.st_size;
        *fd_out = fd;
        return MYC_OK;
    }
    void *base = writable ? map_shared(fd, (size_t)st.st_size)
                          : mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        int err = errno;
        close(fd);
        return myc_fail_sys(err, "cannot map channel '%s'", name);
    }
    map->base = base;
    map->map_size = (size_t)st.st_size;
    *fd_out = fd;
    return MYC_OK;
}

/* Finish the handle's view from the copies validate_header (or the creator)
 * made: the shared header is never read again for these fields. */
static void fill_map(myc_map *map, const char *name) {
    map->mask = map->capacity - 1;
    map->ring = map->base + MYC_HEADER_SIZE;
    snprintf(map->name, sizeof map->name, "%s", name);
}

static int check_digest(const myc_map *map, const uint8_t *digest, const char *name) {
    if (digest == NULL) return MYC_OK; /* raw access: any schema */
    const uint8_t *mine = map->base + MYC_OFF_SCHEMA_DIGEST;
    if (memcmp(mine, digest, MYC_DIGEST_SIZE) == 0) return MYC_OK;
    char have[17], want[17];
    hex_prefix(mine, have);
    hex_prefix(digest, want);
    return myc_fail(MYC_ERR_SCHEMA, "channel '%s' has schema digest %s..., this process uses %s...",
                name, have, want);
}

int myc_open_map(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                 uint32_t mode, const uint8_t *digest, uint32_t readers, uint32_t untether_ms,
                 myc_map *map) {
    char obj[NAME_MAX + 2];
    int rc = object_name(name, obj);
    if (rc != MYC_OK) return rc;
    int trust = (flags & MYC_TRUST_FOREIGN) != 0;
    flags &= ~MYC_TRUST_FOREIGN;
    if (flags != MYC_ATTACH && flags != MYC_CREATE && flags != MYC_CREATE_OR_ATTACH)
        return myc_fail(MYC_ERR_ARG, "open flags must be MYC_ATTACH, MYC_CREATE or MYC_CREATE_OR_ATTACH, "
                                     "optionally with MYC_TRUST_FOREIGN");
    if (mode == 0) mode = 0600;
    if (mode & ~0777u) return myc_fail(MYC_ERR_ARG, "mode 0%o has bits outside 0777", mode);
    if (readers > MYC_READER_SLOTS)
        return myc_fail(MYC_ERR_TOO_MANY_READERS,
                        "readers=%u: a broadcast channel has at most %u reader slots (the cursor "
                        "table in the header)",
                        readers, MYC_READER_SLOTS);
    if (untether_ms == 0) untether_ms = MYC_DEFAULT_UNTETHER_MS;
    if (flags != MYC_ATTACH) {
        if (!is_pow2(capacity) || capacity < MYC_MIN_CAPACITY || capacity > MYC_MAX_CAPACITY)
            return myc_fail(MYC_ERR_ARG, "capacity %llu must be a power of two from %llu to %llu",
                        (unsigned long long)capacity, MYC_MIN_CAPACITY, MYC_MAX_CAPACITY);
        uint64_t limit = capacity / 2 - MYC_FRAME_HEADER_SIZE;
        if (max_payload == 0) max_payload = (uint32_t)(capacity / 4 - MYC_FRAME_HEADER_SIZE);
        if (max_payload > limit)
            return myc_fail(MYC_ERR_ARG, "max_payload %u exceeds the limit %llu for capacity %llu",
                        max_payload, (unsigned long long)limit, (unsigned long long)capacity);
    }
    int fd = -1;
    memset(map, 0, sizeof *map);
    if (flags != MYC_ATTACH) {
        rc = create_object(name, obj, capacity, max_payload, mode, digest, readers, untether_ms, map,
                           &fd);
        if (rc == MYC_ERR_EXISTS && flags == MYC_CREATE_OR_ATTACH)
            rc = attach_object(name, obj, 1, mode, trust, map, &fd, NULL);
    } else {
        rc = attach_object(name, obj, 1, mode, trust, map, &fd, NULL);
    }
    if (rc != MYC_OK) return rc;
    /* The mapping keeps the object alive; the descriptor is kept so that
     * slow paths can notice a truncation (myc_map_check_size). */
    map->fd = fd;
    fill_map(map, name);
    rc = check_digest(map, digest, name);
    if (rc == MYC_OK && readers != 0 && map->readers != readers)
        rc = map->readers == 0
                 ? myc_fail(MYC_ERR_ARG, "channel '%s' is a single-reader channel, not a broadcast one with %u readers",
                            name, readers)
                 : myc_fail(MYC_ERR_ARG, "channel '%s' has %u reader slots, not %u", name, map->readers,
                            readers);
    if (rc != MYC_OK) myc_close_map(map);
    return rc;
}

int myc_open_header_snapshot(const char *name, myc_map *map) {
    char obj[NAME_MAX + 2];
    int rc = object_name(name, obj);
    if (rc != MYC_OK) return rc;
    memset(map, 0, sizeof *map);
    uint8_t *snapshot = malloc(MYC_HEADER_SIZE);
    if (snapshot == NULL) return myc_fail_sys(ENOMEM, "cannot allocate a header snapshot");
    int fd;
    rc = attach_object(name, obj, 0, 0, 1, map, &fd, snapshot);
    if (rc != MYC_OK) {
        free(snapshot);
        return rc;
    }
    close(fd);
    map->fd = -1;
    fill_map(map, name);
    map->ring = NULL; /* the header only */
    return MYC_OK;
}

void myc_close_header_snapshot(myc_map *map) {
    free(map->base);
    map->base = NULL;
}

void myc_close_map(myc_map *map) {
    unmap_shared(map->base);
    if (map->fd >= 0) close(map->fd);
    map->fd = -1;
}

int myc_map_check_size(myc_map *map) {
    struct stat st;
    /* relaxed: a handle-local flag (a writer handle is shared by threads);
     * it orders nothing, the fstat is what each caller relies on. */
    if (!__atomic_load_n(&map->truncated, __ATOMIC_RELAXED)) {
        if (map->fd < 0 || fstat(map->fd, &st) != 0) return MYC_OK; /* cannot tell */
        if ((uint64_t)st.st_size >= map->map_size) return MYC_OK;
        __atomic_store_n(&map->truncated, 1, __ATOMIC_RELAXED);
    }
    return myc_fail(MYC_ERR_CORRUPT,
                    "channel '%s' was truncated under this handle's %zu-byte mapping (another "
                    "process shrank its file): the handle cannot be used any more; close it",
                    map->name, map->map_size);
}

