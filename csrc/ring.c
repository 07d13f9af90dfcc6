/*
 * mycelium-shm ring: see ring.h for the layout and docs/FORMAT.md for the
 * protocol in prose.
 *
 * Positions (head, tail) are byte counts that only grow; the ring index of a
 * position is `position & (capacity - 1)`.  Invariants, checked whenever a
 * value is read from shared memory, since another process wrote it:
 *     head <= tail <= head + capacity
 *     a frame never straddles the end of the ring (padding fills the gap)
 *     8 <= align8(frame length) <= capacity - index
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ring.h"
#include "myc_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mycelium-shm's format is little-endian; this target is not"
#endif

/* ------------------------------------------------------------------------ */
/* The layout, pinned                                                        */
/* ------------------------------------------------------------------------ */

#define MYC_BLOCK_OF(off) ((off) / MYC_BLOCK_SIZE)
_Static_assert(MYC_HEADER_SIZE % MYC_BLOCK_SIZE == 0, "header is whole blocks");
_Static_assert(MYC_HEADER_SIZE % 4096 == 0, "ring starts page-aligned");
_Static_assert(MYC_OFF_MAGIC == 0 && MYC_OFF_VERSION == 8 &&
                   MYC_OFF_HEADER_SIZE == 12 && MYC_OFF_CAPACITY == 16 &&
                   MYC_OFF_MAX_PAYLOAD == 24 && MYC_OFF_FEATURES == 28 &&
                   MYC_OFF_SCHEMA_DIGEST == 32 && MYC_OFF_CREATOR_PID == 64 &&
                   MYC_OFF_CREATOR_START == 72 && MYC_OFF_CREATED_NS == 80 &&
                   MYC_OFF_READER_SLOTS == 88 && MYC_OFF_INIT == 120,
               "block 0 offsets match docs/FORMAT.md");
_Static_assert(MYC_OFF_SCHEMA_DIGEST + MYC_DIGEST_SIZE <= MYC_OFF_CREATOR_PID,
               "digest does not overlap");
_Static_assert(MYC_BLOCK_OF(MYC_OFF_INIT) == 0, "init word in block 0");
_Static_assert(MYC_OFF_TAIL == 1 * MYC_BLOCK_SIZE, "tail owns block 1");
_Static_assert(MYC_OFF_HEAD == 2 * MYC_BLOCK_SIZE &&
                   MYC_OFF_READER_PID == MYC_OFF_HEAD + 8 &&
                   MYC_OFF_READER_START == MYC_OFF_HEAD + 16,
               "head and reader ownership in block 2");
_Static_assert(MYC_OFF_READER_FUTEX == 3 * MYC_BLOCK_SIZE &&
                   MYC_OFF_READER_SLEEPING == MYC_OFF_READER_FUTEX + 4 &&
                   MYC_OFF_SPACE_FUTEX == MYC_OFF_READER_FUTEX + 8 &&
                   MYC_OFF_WRITERS_WAITING == MYC_OFF_READER_FUTEX + 12,
               "wait/notify words in block 3");
_Static_assert(MYC_OFF_FRAMES_WRITTEN == 4 * MYC_BLOCK_SIZE &&
                   MYC_OFF_WRITER_WAKES == MYC_OFF_FRAMES_WRITTEN + 32,
               "writer statistics in block 4");
_Static_assert(MYC_OFF_FRAMES_READ == 5 * MYC_BLOCK_SIZE &&
                   MYC_OFF_TAKEOVERS == MYC_OFF_FRAMES_READ + 48,
               "reader statistics in block 5");
_Static_assert(MYC_OFF_WRITER_TABLE == 6 * MYC_BLOCK_SIZE &&
                   MYC_OFF_WRITER_TABLE + MYC_WRITER_SLOTS * MYC_WRITER_SLOT_SIZE ==
                       MYC_OFF_READER_TABLE,
               "writer registry fills blocks 6-9");
_Static_assert(MYC_OFF_READER_TABLE == 10 * MYC_BLOCK_SIZE &&
                   MYC_OFF_READER_TABLE < MYC_HEADER_SIZE,
               "reader cursor table reserved in blocks 10-31");
_Static_assert(MYC_FRAME_OFF_LEN == 0 && MYC_FRAME_OFF_TYPE == 4 &&
                   MYC_FRAME_OFF_FLAGS == 6 && MYC_FRAME_HEADER_SIZE == 8,
               "frame header layout");
_Static_assert(sizeof(MYC_NAME_PREFIX) - 1 + MYC_NAME_MAX == NAME_MAX,
               "prefixed name fits NAME_MAX");

#define MYC_ALIGN8(x) (((x) + (MYC_FRAME_ALIGNMENT - 1)) & ~(uint64_t)(MYC_FRAME_ALIGNMENT - 1))
#define MYC_DEFAULT_SPIN_NS 50000
#define MYC_DEFAULT_STUCK_NS 2000000000LL
#define MYC_ATTACH_WAIT_NS 2000000000LL
#define NS_PER_S 1000000000LL

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

static _Thread_local char g_error[512];
static _Thread_local int g_errno;

const char *myc_last_error(void) { return g_error; }
int myc_last_errno(void) { return g_errno; }

__attribute__((format(printf, 2, 3))) static int fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    g_errno = 0;
    return code;
}

__attribute__((format(printf, 2, 3))) static int fail_sys(int err, const char *fmt, ...) {
    va_list ap;
    char what[384];
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(g_error, sizeof g_error, "%s: %s", what, strerror(err));
    g_errno = err;
    return MYC_ERR_SYSTEM;
}

const char *myc_result_name(int result) {
    switch (result) {
    case MYC_OK: return "MYC_OK";
    case MYC_ERR_FULL: return "MYC_ERR_FULL";
    case MYC_ERR_EMPTY: return "MYC_ERR_EMPTY";
    case MYC_ERR_ARG: return "MYC_ERR_ARG";
    case MYC_ERR_NAME: return "MYC_ERR_NAME";
    case MYC_ERR_NOT_FOUND: return "MYC_ERR_NOT_FOUND";
    case MYC_ERR_EXISTS: return "MYC_ERR_EXISTS";
    case MYC_ERR_FORMAT: return "MYC_ERR_FORMAT";
    case MYC_ERR_CORRUPT: return "MYC_ERR_CORRUPT";
    case MYC_ERR_READER_BUSY: return "MYC_ERR_READER_BUSY";
    case MYC_ERR_SCHEMA: return "MYC_ERR_SCHEMA";
    case MYC_ERR_TOO_LARGE: return "MYC_ERR_TOO_LARGE";
    case MYC_ERR_INTERRUPTED: return "MYC_ERR_INTERRUPTED";
    case MYC_ERR_SYSTEM: return "MYC_ERR_SYSTEM";
    case MYC_ERR_HANDLE_BUSY: return "MYC_ERR_HANDLE_BUSY";
    case MYC_ERR_CLOSED: return "MYC_ERR_CLOSED";
    case MYC_ERR_ABANDONED: return "MYC_ERR_ABANDONED";
    default: return "MYC_ERR_UNKNOWN";
    }
}

/* ------------------------------------------------------------------------ */
/* Wait slicing (for callers that must service signals)                     */
/* ------------------------------------------------------------------------ */

static int64_t g_wait_slice_ns;       /* relaxed atomic: a setting, orders nothing */
static _Thread_local int tl_resuming; /* the last call returned for its slice */

void myc_set_wait_slice(int64_t slice_ns) {
    __atomic_store_n(&g_wait_slice_ns, slice_ns < 0 ? 0 : slice_ns, __ATOMIC_RELAXED);
}

/* Deadline for this call's own wait: the caller's, or the end of the slice. */
static int64_t slice_deadline(int64_t start, int64_t deadline) {
    int64_t slice = __atomic_load_n(&g_wait_slice_ns, __ATOMIC_RELAXED);
    return slice > 0 && deadline - start > slice ? start + slice : deadline;
}

/* ------------------------------------------------------------------------ */
/* Small OS helpers                                                          */
/* ------------------------------------------------------------------------ */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static uint64_t realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Returns 0, or ETIMEDOUT / EAGAIN (word changed) / EINTR (signal). */
static int futex_wait(void *base, uint64_t off, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / NS_PER_S;
        ts.tv_nsec = timeout_ns % NS_PER_S;
        tsp = &ts;
    }
    /* Not FUTEX_PRIVATE: the word lives in memory shared between processes. */
    long rc = syscall(SYS_futex, MYC_AT(base, off, uint32_t), FUTEX_WAIT, expected, tsp, NULL, 0);
    return rc == 0 ? 0 : errno;
}

static void futex_wake_all(void *base, uint64_t off) {
    syscall(SYS_futex, MYC_AT(base, off, uint32_t), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Process start time in clock ticks since boot (field 22 of /proc/PID/stat),
 * which tells a live process from a later one that reused its pid. */
static uint64_t proc_start_ticks(int32_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got <= 0) return 0;
    buf[got] = '\0';
    /* The command name (field 2) may hold spaces and ')': skip to the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    int field = 2;
    for (; *p && field < 22; p++)
        if (*p == ' ') field++;
    return strtoull(p, NULL, 10);
}

static uint64_t self_start_ticks(void) {
    static _Thread_local int32_t cached_pid;
    static _Thread_local uint64_t cached_start;
    int32_t pid = (int32_t)getpid();
    if (pid != cached_pid) { /* recomputed after fork */
        cached_start = proc_start_ticks(pid);
        cached_pid = pid;
    }
    return cached_start;
}

int myc_pid_alive(int32_t pid, uint64_t start_ticks) {
    if (pid <= 0) return 0;
    if (kill(pid, 0) != 0 && errno != EPERM) return 0;
    if (start_ticks == 0) return 1;
    uint64_t now_start = proc_start_ticks(pid);
    /* Unreadable /proc entry: trust kill(). */
    return now_start == 0 || now_start == start_ticks;
}

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
/* ------------------------------------------------------------------------ */

int myc_name_check(const char *name) {
    if (name == NULL || name[0] == '\0') return fail(MYC_ERR_NAME, "channel name is empty");
    size_t len = strlen(name);
    if (len > MYC_NAME_MAX)
        return fail(MYC_ERR_NAME, "channel name is %zu bytes, the limit is %u", len, MYC_NAME_MAX);
    if (strcmp(name, ".") == 0 || strstr(name, "..") != NULL)
        return fail(MYC_ERR_NAME, "channel name '%s' contains '..' or is '.'", name);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/') return fail(MYC_ERR_NAME, "channel name '%s' contains '/'", name);
        if (c < 0x20 || c == 0x7f)
            return fail(MYC_ERR_NAME, "channel name contains control character 0x%02x at byte %zu", c, i);
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
        if (errno == ENOENT) return fail(MYC_ERR_NOT_FOUND, "no channel named '%s'", name);
        return fail_sys(errno, "cannot remove channel '%s'", name);
    }
    return MYC_OK;
}

/* ------------------------------------------------------------------------ */
/* Mapping a channel                                                         */
/* ------------------------------------------------------------------------ */

typedef struct myc_map {
    uint8_t *base;        /* header; shared */
    uint8_t *ring;        /* base + MYC_HEADER_SIZE; shared */
    uint64_t capacity;    /* validated copies of immutable header fields */
    uint64_t mask;
    uint32_t max_payload;
    size_t map_size;
} myc_map;

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
static int validate_header(const uint8_t *base, uint64_t file_size, const char *name) {
    uint64_t magic;
    memcpy(&magic, base + MYC_OFF_MAGIC, 8);
    if (magic != MYC_MAGIC)
        return fail(MYC_ERR_FORMAT, "'%s' is not a mycelium channel (magic 0x%016llx)", name,
                    (unsigned long long)magic);
    uint32_t version, header_size, max_payload, features;
    uint64_t capacity;
    memcpy(&version, base + MYC_OFF_VERSION, 4);
    memcpy(&header_size, base + MYC_OFF_HEADER_SIZE, 4);
    memcpy(&capacity, base + MYC_OFF_CAPACITY, 8);
    memcpy(&max_payload, base + MYC_OFF_MAX_PAYLOAD, 4);
    memcpy(&features, base + MYC_OFF_FEATURES, 4);
    if (version != MYC_FORMAT_VERSION)
        return fail(MYC_ERR_FORMAT, "channel '%s' has format version %u; this library reads %u",
                    name, version, MYC_FORMAT_VERSION);
    if (header_size != MYC_HEADER_SIZE)
        return fail(MYC_ERR_FORMAT, "channel '%s' header size %u, expected %u", name,
                    header_size, MYC_HEADER_SIZE);
    if (features != 0)
        return fail(MYC_ERR_FORMAT, "channel '%s' uses unknown features 0x%x", name, features);
    if (!is_pow2(capacity) || capacity < MYC_MIN_CAPACITY || capacity > MYC_MAX_CAPACITY)
        return fail(MYC_ERR_FORMAT, "channel '%s' capacity %llu is not a power of two in [%llu, %llu]",
                    name, (unsigned long long)capacity, MYC_MIN_CAPACITY, MYC_MAX_CAPACITY);
    if (max_payload == 0 || (uint64_t)max_payload > capacity / 2 - MYC_FRAME_HEADER_SIZE)
        return fail(MYC_ERR_FORMAT, "channel '%s' max payload %u is out of range for capacity %llu",
                    name, max_payload, (unsigned long long)capacity);
    if (file_size != MYC_HEADER_SIZE + capacity)
        return fail(MYC_ERR_FORMAT, "channel '%s' file is %llu bytes, its header says %llu",
                    name, (unsigned long long)file_size,
                    (unsigned long long)(MYC_HEADER_SIZE + capacity));
    return MYC_OK;
}

static int create_object(const char *name, const char *obj, uint64_t capacity,
                         uint32_t max_payload, uint32_t mode, const uint8_t *digest,
                         myc_map *map, int *fd_out) {
    int fd = shm_open(obj, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST) return fail(MYC_ERR_EXISTS, "channel '%s' already exists", name);
        return fail_sys(errno, "cannot create channel '%s'", name);
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
        return fail_sys(frc, "cannot reserve %llu bytes for channel '%s' in /dev/shm",
                        (unsigned long long)size, name);
    }
    void *base = map_shared(fd, size);
    if (base == MAP_FAILED) goto sys_fail;
    uint8_t *b = base;
    uint64_t magic = MYC_MAGIC, created = realtime_ns(), start = self_start_ticks();
    uint32_t version = MYC_FORMAT_VERSION, header_size = MYC_HEADER_SIZE;
    int32_t pid = (int32_t)getpid();
    /* The object is fresh and zero-filled; plain stores suffice until the
     * init word publishes them. */
    memcpy(b + MYC_OFF_MAGIC, &magic, 8);
    memcpy(b + MYC_OFF_VERSION, &version, 4);
    memcpy(b + MYC_OFF_HEADER_SIZE, &header_size, 4);
    memcpy(b + MYC_OFF_CAPACITY, &capacity, 8);
    memcpy(b + MYC_OFF_MAX_PAYLOAD, &max_payload, 4);
    if (digest) memcpy(b + MYC_OFF_SCHEMA_DIGEST, digest, MYC_DIGEST_SIZE);
    memcpy(b + MYC_OFF_CREATOR_PID, &pid, 4);
    memcpy(b + MYC_OFF_CREATOR_START, &start, 8);
    memcpy(b + MYC_OFF_CREATED_NS, &created, 8);
    /* release: pairs with the attacher's acquire load of the init word, so an
     * attacher that sees READY sees every header field above. */
    myc_store_release_u32(b, MYC_OFF_INIT, MYC_INIT_READY);
    map->base = b;
    map->map_size = size;
    *fd_out = fd;
    return MYC_OK;
sys_fail: {
    int err = errno;
    shm_unlink(obj);
    close(fd);
    return fail_sys(err, "cannot set up channel '%s'", name);
}
}

static int attach_object(const char *name, const char *obj, int writable, myc_map *map,
                         int *fd_out) {
    int fd = shm_open(obj, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == ENOENT) return fail(MYC_ERR_NOT_FOUND, "no channel named '%s'", name);
        return fail_sys(errno, "cannot open channel '%s'", name);
    }
    int64_t deadline = now_ns() + MYC_ATTACH_WAIT_NS;
    struct stat st;
    /* A creator may be between shm_open and posix_fallocate, or still writing
     * the header: wait (bounded) for the init word. */
    for (;;) {
        if (fstat(fd, &st) != 0) {
            int err = errno;
            close(fd);
            return fail_sys(err, "cannot stat channel '%s'", name);
        }
        if ((uint64_t)st.st_size >= MYC_HEADER_SIZE) {
            void *hdr = mmap(NULL, MYC_HEADER_SIZE, PROT_READ, MAP_SHARED, fd, 0);
            if (hdr == MAP_FAILED) {
                int err = errno;
                close(fd);
                return fail_sys(err, "cannot map channel '%s'", name);
            }
            /* acquire: pairs with the creator's release store of READY. */
            uint32_t init = myc_load_acquire_u32(hdr, MYC_OFF_INIT);
            uint64_t magic;
            memcpy(&magic, (uint8_t *)hdr + MYC_OFF_MAGIC, 8);
            /* A foreign object fails at once; only a zero magic may be a
             * header still being written. */
            int decided = init == MYC_INIT_READY || (magic != 0 && magic != MYC_MAGIC);
            int rc = decided ? validate_header(hdr, (uint64_t)st.st_size, name) : MYC_OK;
            munmap(hdr, MYC_HEADER_SIZE);
            if (decided) {
                if (rc != MYC_OK) {
                    close(fd);
                    return rc;
                }
                break;
            }
        }
        if (now_ns() > deadline) {
            close(fd);
            return fail(MYC_ERR_FORMAT, "channel '%s' was never initialised (%lld bytes)", name,
                        (long long)st.st_size);
        }
        usleep(1000);
    }
    void *base = writable ? map_shared(fd, (size_t)st.st_size)
                          : mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        int err = errno;
        close(fd);
        return fail_sys(err, "cannot map channel '%s'", name);
    }
    map->base = base;
    map->map_size = (size_t)st.st_size;
    *fd_out = fd;
    return MYC_OK;
}

static void fill_map(myc_map *map) {
    /* Validated by validate_header or chosen by us; immutable afterwards. */
    memcpy(&map->capacity, map->base + MYC_OFF_CAPACITY, 8);
    memcpy(&map->max_payload, map->base + MYC_OFF_MAX_PAYLOAD, 4);
    map->mask = map->capacity - 1;
    map->ring = map->base + MYC_HEADER_SIZE;
}

static int check_digest(const myc_map *map, const uint8_t *digest, const char *name) {
    if (digest == NULL) return MYC_OK; /* raw access: any schema */
    const uint8_t *mine = map->base + MYC_OFF_SCHEMA_DIGEST;
    if (memcmp(mine, digest, MYC_DIGEST_SIZE) == 0) return MYC_OK;
    char have[17], want[17];
    hex_prefix(mine, have);
    hex_prefix(digest, want);
    return fail(MYC_ERR_SCHEMA, "channel '%s' has schema digest %s..., this process uses %s...",
                name, have, want);
}

static int open_map(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                    uint32_t mode, const uint8_t *digest, myc_map *map) {
    char obj[NAME_MAX + 2];
    int rc = object_name(name, obj);
    if (rc != MYC_OK) return rc;
    if (flags != MYC_ATTACH && flags != MYC_CREATE && flags != MYC_CREATE_OR_ATTACH)
        return fail(MYC_ERR_ARG, "open flags must be MYC_ATTACH, MYC_CREATE or MYC_CREATE_OR_ATTACH");
    if (mode == 0) mode = 0600;
    if (mode & ~0777u) return fail(MYC_ERR_ARG, "mode 0%o has bits outside 0777", mode);
    if (flags != MYC_ATTACH) {
        if (!is_pow2(capacity) || capacity < MYC_MIN_CAPACITY || capacity > MYC_MAX_CAPACITY)
            return fail(MYC_ERR_ARG, "capacity %llu must be a power of two from %llu to %llu",
                        (unsigned long long)capacity, MYC_MIN_CAPACITY, MYC_MAX_CAPACITY);
        uint64_t limit = capacity / 2 - MYC_FRAME_HEADER_SIZE;
        if (max_payload == 0) max_payload = (uint32_t)(capacity / 4 - MYC_FRAME_HEADER_SIZE);
        if (max_payload > limit)
            return fail(MYC_ERR_ARG, "max_payload %u exceeds the limit %llu for capacity %llu",
                        max_payload, (unsigned long long)limit, (unsigned long long)capacity);
    }
    int fd = -1;
    memset(map, 0, sizeof *map);
    if (flags != MYC_ATTACH) {
        rc = create_object(name, obj, capacity, max_payload, mode, digest, map, &fd);
        if (rc == MYC_ERR_EXISTS && flags == MYC_CREATE_OR_ATTACH)
            rc = attach_object(name, obj, 1, map, &fd);
    } else {
        rc = attach_object(name, obj, 1, map, &fd);
    }
    if (rc != MYC_OK) return rc;
    close(fd); /* the mapping keeps the object alive */
    fill_map(map);
    rc = check_digest(map, digest, name);
    if (rc != MYC_OK) unmap_shared(map->base);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Writers                                                                   */
/* ------------------------------------------------------------------------ */

/* head <= tail <= head + capacity, for positions loaded in that order. */
static int check_positions(const myc_map *m, const char *name, uint64_t *head_out) {
    /* acquire: what the reader zeroed before storing head is visible. */
    uint64_t head = myc_load_acquire_u64(m->base, MYC_OFF_HEAD);
    uint64_t tail = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
    if (tail < head || tail - head > m->capacity)
        return fail(MYC_ERR_CORRUPT, "channel '%s' positions are inconsistent (head %llu, tail %llu, capacity %llu)",
                    name, (unsigned long long)head, (unsigned long long)tail,
                    (unsigned long long)m->capacity);
    *head_out = head;
    return MYC_OK;
}

struct myc_writer {
    myc_map map;
    uint64_t head_cache; /* last head seen; atomic: the handle is shared by threads */
    int64_t spin_ns;
    int slot;            /* writer registry slot, -1 if the table was full */
};

static int registry_take(myc_map *map) {
    int32_t me = (int32_t)getpid();
    uint64_t start = self_start_ticks();
    for (uint32_t i = 0; i < MYC_WRITER_SLOTS; i++) {
        uint64_t off = MYC_OFF_WRITER_TABLE + (uint64_t)i * MYC_WRITER_SLOT_SIZE;
        int32_t pid = myc_load_relaxed_i32(map->base, off);
        if (pid != 0) {
            uint64_t pstart = myc_load_relaxed_u64(map->base, off + 8);
            if (myc_pid_alive(pid, pstart)) continue;
        }
        /* acq_rel CAS: the slot is informational (tools), only its
         * atomicity matters; one winner per slot. */
        if (myc_cas_acq_rel_i32(map->base, off, &pid, me)) {
            myc_store_relaxed_u64(map->base, off + 8, start);
            return (int)i;
        }
    }
    return -1;
}

static void registry_drop(myc_map *map, int slot) {
    if (slot < 0) return;
    uint64_t off = MYC_OFF_WRITER_TABLE + (uint64_t)slot * MYC_WRITER_SLOT_SIZE;
    int32_t me = (int32_t)getpid();
    myc_cas_acq_rel_i32(map->base, off, &me, 0);
}

int myc_writer_open(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                    uint32_t mode, const uint8_t *schema_digest, myc_writer **out) {
    if (out == NULL) return fail(MYC_ERR_ARG, "out must not be NULL");
    *out = NULL;
    myc_writer *w = calloc(1, sizeof *w);
    if (w == NULL) return fail_sys(ENOMEM, "cannot allocate a writer");
    int rc = open_map(name, flags, capacity, max_payload, mode, schema_digest, &w->map);
    if (rc != MYC_OK) {
        free(w);
        return rc;
    }
    w->spin_ns = MYC_DEFAULT_SPIN_NS;
    rc = check_positions(&w->map, name, &w->head_cache);
    if (rc != MYC_OK) {
        unmap_shared(w->map.base);
        free(w);
        return rc;
    }
    w->slot = registry_take(&w->map);
    *out = w;
    return MYC_OK;
}

void myc_writer_close(myc_writer *w) {
    if (w == NULL) return;
    registry_drop(&w->map, w->slot);
    unmap_shared(w->map.base);
    free(w);
}

void myc_writer_set_spin(myc_writer *w, int64_t spin_ns) {
    if (w != NULL) w->spin_ns = spin_ns < 0 ? 0 : spin_ns;
}

/*
 * Claim `frames_bytes` contiguous bytes (already laid out by the caller from
 * `tail`) plus any padding needed before them.  The layout depends on the
 * tail, so the caller's `plan` callback lays it out again on each retry.
 */
typedef struct claim_plan {
    uint32_t count;          /* frames wanted */
    const uint32_t *lens;    /* payload lengths (NULL: single frame of len0) */
    uint32_t len0;
    /* out */
    uint32_t planned;        /* frames that fit */
    uint64_t tail;           /* position claimed from */
    uint64_t required;       /* bytes claimed, padding included */
} claim_plan;

static uint64_t frame_bytes(const claim_plan *p, uint32_t i) {
    return MYC_ALIGN8(MYC_FRAME_HEADER_SIZE + (uint64_t)(p->lens ? p->lens[i] : p->len0));
}

/* How many of the plan's frames fit in `free_bytes` starting at `tail`, and
 * how many bytes that takes (a frame that would straddle the end is preceded
 * by padding to the end). */
static void lay_out(const myc_map *m, claim_plan *p, uint64_t tail, uint64_t free_bytes) {
    uint64_t used = 0, pos = tail;
    uint32_t n = 0;
    while (n < p->count) {
        uint64_t fb = frame_bytes(p, n);
        uint64_t to_end = m->capacity - (pos & m->mask);
        uint64_t need = fb > to_end ? to_end + fb : fb;
        if (used + need > free_bytes) break;
        used += need;
        pos += need;
        n++;
    }
    p->planned = n;
    p->required = used;
}

/* MYC_OK with p->planned >= 1 frames claimed, MYC_ERR_FULL, or CORRUPT. */
static int try_claim(myc_writer *w, claim_plan *p, int fresh_head) {
    myc_map *m = &w->map;
    /* relaxed: the CAS below validates the value; no data hangs off it. */
    uint64_t tail = myc_load_relaxed_u64(m->base, MYC_OFF_TAIL);
    for (;;) {
        /* acquire: pairs with the release store below by whichever thread
         * of this handle loaded head, extending its synchronisation with
         * the reader to us. */
        uint64_t head = __atomic_load_n(&w->head_cache, __ATOMIC_ACQUIRE);
        if (fresh_head || tail < head || tail - head > m->capacity) {
            /* seq_cst (acquire at least): pairs with the reader's store of
             * head after it zeroed the consumed bytes, so the space we reuse
             * reads as zero.  seq_cst so a writer about to sleep cannot miss
             * the reader's head update (Dekker with WRITERS_WAITING). */
            head = __atomic_load_n(MYC_AT(m->base, MYC_OFF_HEAD, uint64_t), __ATOMIC_SEQ_CST);
            __atomic_store_n(&w->head_cache, head, __ATOMIC_RELEASE);
            fresh_head = 0;
            /* head and tail are only comparable if tail did not move while
             * we loaded head; otherwise look again (no CAS could succeed). */
            uint64_t tail_now = myc_load_relaxed_u64(m->base, MYC_OFF_TAIL);
            if (tail_now != tail) {
                tail = tail_now;
                continue;
            }
            if (tail < head || tail - head > m->capacity)
                return fail(MYC_ERR_CORRUPT, "positions are inconsistent (head %llu, tail %llu, capacity %llu)",
                            (unsigned long long)head, (unsigned long long)tail,
                            (unsigned long long)m->capacity);
        }
        lay_out(m, p, tail, m->capacity - (tail - head));
        if (p->planned < p->count) {
            /* Maybe only our cached head is stale: look before giving up
             * (none fit) or claiming less than asked (some fit).
             * acquire: as above, pairs with the reader's head store. */
            uint64_t fresh = myc_load_acquire_u64(m->base, MYC_OFF_HEAD);
            if (fresh != head) {
                __atomic_store_n(&w->head_cache, fresh, __ATOMIC_RELEASE);
                continue;
            }
            if (p->planned == 0) return MYC_ERR_FULL;
        }
        /* acq_rel: one writer wins each byte range; on failure `tail` is
         * reloaded and we lay out again. */
        if (myc_cas_acq_rel_u64(m->base, MYC_OFF_TAIL, &tail, tail + p->required)) break;
    }
    p->tail = tail;
    return MYC_OK;
}

static int claim_wait(myc_writer *w, claim_plan *p, int64_t timeout_ns) {
    myc_map *m = &w->map;
    int resumed = tl_resuming;
    tl_resuming = 0;
    int rc = try_claim(w, p, 0);
    if (rc != MYC_ERR_FULL) return rc;
    /* relaxed: statistics only. */
    if (!resumed) myc_add_relaxed_u64(m->base, MYC_OFF_FULL_EVENTS, 1);
    if (timeout_ns == 0) {
        if (resumed) myc_add_relaxed_u64(m->base, MYC_OFF_WRITE_TIMEOUTS, 1);
        return MYC_ERR_FULL;
    }
    int64_t start = now_ns();
    int64_t deadline = timeout_ns < 0 ? INT64_MAX : start + timeout_ns;
    int64_t until = slice_deadline(start, deadline);
    for (uint32_t spins = 1;; spins++) {
        myc_cpu_relax();
        rc = try_claim(w, p, 1);
        if (rc != MYC_ERR_FULL) return rc;
        if ((spins & 63) == 0 && now_ns() - start >= w->spin_ns) break;
    }
    for (;;) {
        /* seq_cst: announce the sleep before re-checking head; the reader
         * stores head (seq_cst) then loads WRITERS_WAITING, so one of us
         * sees the other. */
        myc_add_seq_cst_u32(m->base, MYC_OFF_WRITERS_WAITING, 1);
        uint32_t seq = myc_load_seq_cst_u32(m->base, MYC_OFF_SPACE_FUTEX);
        rc = try_claim(w, p, 1);
        int64_t now = now_ns();
        if (rc != MYC_ERR_FULL || now >= until) {
            myc_sub_seq_cst_u32(m->base, MYC_OFF_WRITERS_WAITING, 1);
            if (rc != MYC_ERR_FULL) return rc;
            if (now < deadline) {
                tl_resuming = 1;
                return fail(MYC_ERR_INTERRUPTED, "wait slice over; call again");
            }
            myc_add_relaxed_u64(m->base, MYC_OFF_WRITE_TIMEOUTS, 1);
            return rc;
        }
        int err = futex_wait(m->base, MYC_OFF_SPACE_FUTEX, seq,
                             until == INT64_MAX ? -1 : until - now);
        myc_sub_seq_cst_u32(m->base, MYC_OFF_WRITERS_WAITING, 1);
        if (err == EINTR) {
            tl_resuming = 1;
            return fail(MYC_ERR_INTERRUPTED, "interrupted while waiting for room");
        }
    }
}

static void wake_reader_if_sleeping(myc_map *m) {
    /* seq_cst: ordered after our seq_cst commit; pairs with the reader's
     * seq_cst store of READER_SLEEPING before its last check for frames. */
    if (myc_load_seq_cst_u32(m->base, MYC_OFF_READER_SLEEPING) != 0) {
        /* release: the reader's futex_wait compares this word. */
        myc_add_release_u32(m->base, MYC_OFF_READER_FUTEX, 1);
        futex_wake_all(m->base, MYC_OFF_READER_FUTEX);
        myc_add_relaxed_u64(m->base, MYC_OFF_WRITER_WAKES, 1);
    }
}

/* Writes a padding frame (if the plan starts with one) and returns the
 * position of the first real frame. */
static uint64_t place_padding(myc_map *m, uint64_t pos, uint64_t first_frame_bytes) {
    uint64_t to_end = m->capacity - (pos & m->mask);
    if (first_frame_bytes <= to_end) return pos;
    uint8_t *hdr = m->ring + (pos & m->mask);
    uint16_t zero = 0;
    memcpy(hdr + MYC_FRAME_OFF_TYPE, &zero, 2);
    memcpy(hdr + MYC_FRAME_OFF_FLAGS, &zero, 2);
    /* release: the type above is visible before the reader acts on the
     * length (pairs with its acquire load). */
    myc_store_release_i32(hdr, MYC_FRAME_OFF_LEN, (int32_t)to_end);
    return pos + to_end;
}

/* Header of a claimed frame: the negative length marks "claimed, not
 * committed" and tells the reader its extent should its writer die. */
static uint8_t *begin_frame(myc_map *m, uint64_t pos, uint32_t type_id, uint32_t payload_len) {
    uint8_t *hdr = m->ring + (pos & m->mask);
    uint16_t type = (uint16_t)type_id, flags = 0;
    /* relaxed: no one reads it as data; the reader only reads it to skip a
     * dead writer's frame after the stuck timeout. */
    myc_store_relaxed_i32(hdr, MYC_FRAME_OFF_LEN, -(int32_t)(MYC_FRAME_HEADER_SIZE + payload_len));
    memcpy(hdr + MYC_FRAME_OFF_TYPE, &type, 2);
    memcpy(hdr + MYC_FRAME_OFF_FLAGS, &flags, 2);
    return hdr;
}

static int commit_frame(uint8_t *hdr, uint32_t payload_len) {
    int32_t claimed = -(int32_t)(MYC_FRAME_HEADER_SIZE + payload_len);
    /* seq_cst CAS: release publishes the payload to the reader's acquire
     * load of the length; seq_cst orders the following load of
     * READER_SLEEPING; the CAS fails only if the reader reclaimed the frame
     * after the stuck timeout. */
    if (!__atomic_compare_exchange_n(MYC_AT(hdr, MYC_FRAME_OFF_LEN, int32_t), &claimed,
                                     (int32_t)(MYC_FRAME_HEADER_SIZE + payload_len), 0,
                                     __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
        return fail(MYC_ERR_ABANDONED, "the reader dropped this frame after the stuck timeout");
    return MYC_OK;
}

static int check_frame_args(const myc_map *m, uint32_t type_id, uint32_t payload_len) {
    if (type_id == MYC_TYPE_PADDING || type_id > MYC_TYPE_ID_MAX)
        return fail(MYC_ERR_ARG, "type id %u is out of range 1..%u", type_id, MYC_TYPE_ID_MAX);
    if (payload_len > m->max_payload)
        return fail(MYC_ERR_TOO_LARGE, "payload of %u bytes exceeds the channel maximum of %u",
                    payload_len, m->max_payload);
    return MYC_OK;
}

/* Steps 2-6 of a write (FORMAT.md section 4), once the claim succeeded. */
static int write_claimed(myc_map *m, const claim_plan *p, uint32_t type_id, const void *payload,
                         uint32_t payload_len) {
    uint64_t pos = place_padding(m, p->tail, frame_bytes(p, 0));
    uint8_t *hdr = begin_frame(m, pos, type_id, payload_len);
    memcpy(hdr + MYC_FRAME_HEADER_SIZE, payload, payload_len);
    int rc = commit_frame(hdr, payload_len);
    /* relaxed: statistics only. */
    myc_add_relaxed_u64(m->base, MYC_OFF_FRAMES_WRITTEN, 1);
    myc_add_relaxed_u64(m->base, MYC_OFF_BYTES_WRITTEN, payload_len);
    wake_reader_if_sleeping(m);
    return rc;
}

int myc_write(myc_writer *w, uint32_t type_id, const void *payload, uint32_t payload_len,
              int64_t timeout_ns) {
    if (w == NULL) return fail(MYC_ERR_CLOSED, "the writer is closed");
    myc_map *m = &w->map;
    int rc = check_frame_args(m, type_id, payload_len);
    if (rc != MYC_OK) return rc;
    claim_plan p = {.count = 1, .len0 = payload_len};
    rc = claim_wait(w, &p, timeout_ns);
    if (rc != MYC_OK) return rc;
    return write_claimed(m, &p, type_id, payload, payload_len);
}

int64_t myc_write_batch(myc_writer *w, uint32_t count, const uint16_t *type_ids,
                        const uint32_t *lens, const void *payloads, int64_t timeout_ns) {
    if (w == NULL) return fail(MYC_ERR_CLOSED, "the writer is closed");
    myc_map *m = &w->map;
    if (count == 0) return 0;
    for (uint32_t i = 0; i < count; i++) {
        int rc = check_frame_args(m, type_ids[i], lens[i]);
        if (rc != MYC_OK) return rc;
    }
    claim_plan p = {.count = count, .lens = lens};
    int rc = claim_wait(w, &p, timeout_ns);
    if (rc != MYC_OK) return rc;
    uint64_t pos = p.tail, payload_bytes = 0;
    const uint8_t *src = (const uint8_t *)payloads;
    int result = MYC_OK;
    for (uint32_t i = 0; i < p.planned; i++) {
        pos = place_padding(m, pos, frame_bytes(&p, i));
        uint8_t *hdr = begin_frame(m, pos, type_ids[i], lens[i]);
        memcpy(hdr + MYC_FRAME_HEADER_SIZE, src, lens[i]);
        int crc = commit_frame(hdr, lens[i]);
        if (crc != MYC_OK) result = crc;
        src += lens[i];
        payload_bytes += lens[i];
        pos += frame_bytes(&p, i);
    }
    myc_add_relaxed_u64(m->base, MYC_OFF_FRAMES_WRITTEN, p.planned);
    myc_add_relaxed_u64(m->base, MYC_OFF_BYTES_WRITTEN, payload_bytes);
    wake_reader_if_sleeping(m);
    return result == MYC_OK ? (int64_t)p.planned : result;
}

int myc_reserve(myc_writer *w, uint32_t type_id, uint32_t payload_len, int64_t timeout_ns,
                myc_reservation *res) {
    if (w == NULL) return fail(MYC_ERR_CLOSED, "the writer is closed");
    myc_map *m = &w->map;
    int rc = check_frame_args(m, type_id, payload_len);
    if (rc != MYC_OK) return rc;
    claim_plan p = {.count = 1, .len0 = payload_len};
    rc = claim_wait(w, &p, timeout_ns);
    if (rc != MYC_OK) return rc;
    uint64_t pos = place_padding(m, p.tail, frame_bytes(&p, 0));
    uint8_t *hdr = begin_frame(m, pos, type_id, payload_len);
    res->payload = hdr + MYC_FRAME_HEADER_SIZE;
    res->position = pos;
    res->payload_len = payload_len;
    res->type_id = type_id;
    return MYC_OK;
}

int myc_commit(myc_writer *w, myc_reservation *res) {
    if (w == NULL) return fail(MYC_ERR_CLOSED, "the writer is closed");
    myc_map *m = &w->map;
    if (res->payload == NULL) return fail(MYC_ERR_ARG, "reservation already committed or aborted");
    int rc = commit_frame(m->ring + (res->position & m->mask), res->payload_len);
    myc_add_relaxed_u64(m->base, MYC_OFF_FRAMES_WRITTEN, 1);
    myc_add_relaxed_u64(m->base, MYC_OFF_BYTES_WRITTEN, res->payload_len);
    res->payload = NULL;
    wake_reader_if_sleeping(m);
    return rc;
}

int myc_abort(myc_writer *w, myc_reservation *res) {
    if (w == NULL) return fail(MYC_ERR_CLOSED, "the writer is closed");
    myc_map *m = &w->map;
    if (res->payload == NULL) return fail(MYC_ERR_ARG, "reservation already committed or aborted");
    uint8_t *hdr = m->ring + (res->position & m->mask);
    uint16_t zero = 0;
    memcpy(hdr + MYC_FRAME_OFF_TYPE, &zero, 2); /* published by the CAS below */
    int rc = commit_frame(hdr, res->payload_len);
    res->payload = NULL;
    wake_reader_if_sleeping(m);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */
/* ------------------------------------------------------------------------ */

struct myc_reader {
    myc_map map;
    uint64_t head;            /* our position; mirrored to shared HEAD on release */
    uint64_t tail_cache;      /* last tail seen */
    uint64_t held_bytes;      /* bytes of the frame handed out by myc_peek */
    uint64_t frames_read, bytes_read, padding_frames, unblocks, sleeps, wakes;
    uint64_t stuck_position;  /* head position first seen stuck */
    int64_t stuck_since;      /* when; 0 = not stuck */
    int64_t stuck_timeout_ns;
    int64_t spin_ns;
    int busy;                 /* handle-local: one thread at a time */
};

static int reader_take_ownership(myc_map *m, const char *name, int *took_over) {
    int32_t me = (int32_t)getpid();
    uint64_t start = self_start_ticks();
    *took_over = 0;
    for (;;) {
        /* acquire: pairs with the previous owner's CAS, so its head store
         * (made before it released ownership) is visible to us. */
        int32_t cur = myc_load_acquire_i32(m->base, MYC_OFF_READER_PID);
        if (cur != 0) {
            uint64_t cur_start = myc_load_relaxed_u64(m->base, MYC_OFF_READER_START);
            if (myc_pid_alive(cur, cur_start))
                return fail(MYC_ERR_READER_BUSY, "channel '%s' already has a live reader (pid %d)",
                            name, cur);
        }
        /* acq_rel CAS: exactly one process becomes the reader. */
        if (myc_cas_acq_rel_i32(m->base, MYC_OFF_READER_PID, &cur, me)) {
            myc_store_relaxed_u64(m->base, MYC_OFF_READER_START, start);
            *took_over = cur != 0;
            return MYC_OK;
        }
    }
}

int myc_reader_open(const char *name, int flags, uint64_t capacity, uint32_t max_payload,
                    uint32_t mode, const uint8_t *schema_digest, myc_reader **out) {
    if (out == NULL) return fail(MYC_ERR_ARG, "out must not be NULL");
    *out = NULL;
    myc_reader *r = calloc(1, sizeof *r);
    if (r == NULL) return fail_sys(ENOMEM, "cannot allocate a reader");
    int rc = open_map(name, flags, capacity, max_payload, mode, schema_digest, &r->map);
    if (rc != MYC_OK) {
        free(r);
        return rc;
    }
    myc_map *m = &r->map;
    int took_over;
    uint64_t head;
    rc = check_positions(m, name, &head);
    if (rc == MYC_OK) rc = reader_take_ownership(m, name, &took_over);
    if (rc != MYC_OK) {
        unmap_shared(m->base);
        free(r);
        return rc;
    }
    /* acquire: everything the previous reader zeroed before its last head
     * store is visible. */
    r->head = myc_load_acquire_u64(m->base, MYC_OFF_HEAD);
    r->tail_cache = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
    /* relaxed: only this reader writes its counters; continue the totals. */
    r->frames_read = myc_load_relaxed_u64(m->base, MYC_OFF_FRAMES_READ);
    r->bytes_read = myc_load_relaxed_u64(m->base, MYC_OFF_BYTES_READ);
    r->padding_frames = myc_load_relaxed_u64(m->base, MYC_OFF_PADDING_FRAMES);
    r->unblocks = myc_load_relaxed_u64(m->base, MYC_OFF_UNBLOCKS);
    r->sleeps = myc_load_relaxed_u64(m->base, MYC_OFF_READER_SLEEPS);
    r->wakes = myc_load_relaxed_u64(m->base, MYC_OFF_READER_WAKES);
    if (took_over) myc_add_relaxed_u64(m->base, MYC_OFF_TAKEOVERS, 1);
    r->stuck_timeout_ns = MYC_DEFAULT_STUCK_NS;
    r->spin_ns = MYC_DEFAULT_SPIN_NS;
    *out = r;
    return MYC_OK;
}

void myc_reader_set_stuck_timeout(myc_reader *r, int64_t timeout_ns) {
    if (r != NULL) r->stuck_timeout_ns = timeout_ns < 0 ? 0 : timeout_ns;
}
void myc_reader_set_spin(myc_reader *r, int64_t spin_ns) {
    if (r != NULL) r->spin_ns = spin_ns < 0 ? 0 : spin_ns;
}

/* Publish consumption: the bytes before r->head are zero, hand them back. */
static void publish_head(myc_reader *r) {
    myc_map *m = &r->map;
    /* seq_cst store (release at least): writers that acquire head see the
     * zeroed bytes; seq_cst orders the WRITERS_WAITING load after it (Dekker
     * with claim_wait). */
    myc_store_seq_cst_u64(m->base, MYC_OFF_HEAD, r->head);
    if (myc_load_seq_cst_u32(m->base, MYC_OFF_WRITERS_WAITING) != 0) {
        /* release: writers' futex_wait compares this word. */
        myc_add_release_u32(m->base, MYC_OFF_SPACE_FUTEX, 1);
        futex_wake_all(m->base, MYC_OFF_SPACE_FUTEX);
        myc_store_relaxed_u64(m->base, MYC_OFF_READER_WAKES, ++r->wakes);
    }
}

static void consume(myc_reader *r, uint8_t *hdr, uint64_t frame_bytes) {
    /* Zero the whole frame: a later frame header may land anywhere in it,
     * and "length 0" must mean "not yet written".  The length word goes
     * first: an observer that copies a frame and then finds its length
     * still intact (acquire) knows no byte of the copy was zeroed under it
     * (a seqlock; tools' `tail` relies on it, docs/FORMAT.md section 5).
     * acq_rel exchange: its acquire half keeps the zeroing stores below
     * from moving before it (a release fence would too, but
     * ThreadSanitizer does not model fences). */
    __atomic_exchange_n(MYC_AT(hdr, MYC_FRAME_OFF_LEN, int32_t), 0, __ATOMIC_ACQ_REL);
    memset(hdr + 4, 0, frame_bytes - 4);
    r->head += frame_bytes;
}

static void publish_counters(myc_reader *r) {
    myc_map *m = &r->map;
    /* relaxed: statistics, written only by this reader. */
    myc_store_relaxed_u64(m->base, MYC_OFF_FRAMES_READ, r->frames_read);
    myc_store_relaxed_u64(m->base, MYC_OFF_BYTES_READ, r->bytes_read);
}

enum { NEXT_FRAME = 1, NEXT_NONE = 2, NEXT_PENDING = 3 };

/* Turn a claim whose writer seems dead into padding (Agrona's unblock). */
static int unblock(myc_reader *r, uint8_t *hdr, uint64_t to_end) {
    myc_map *m = &r->map;
    int32_t len = myc_load_acquire_i32(hdr, MYC_FRAME_OFF_LEN);
    uint64_t extent;
    if (len < 0) {
        extent = MYC_ALIGN8((uint64_t)(-(int64_t)len));
        if (extent < MYC_FRAME_HEADER_SIZE || extent > to_end || r->head + extent > r->tail_cache)
            return fail(MYC_ERR_CORRUPT, "claimed frame at %llu has impossible length %d",
                        (unsigned long long)r->head, len);
    } else if (len == 0) {
        /* The writer died before writing its header, so nothing of its
         * frame was written: its extent ends at the next non-zero word. */
        uint64_t limit = r->tail_cache - r->head < to_end ? r->tail_cache - r->head : to_end;
        extent = MYC_FRAME_HEADER_SIZE;
        while (extent < limit && myc_load_acquire_i32(hdr + extent, 0) == 0)
            extent += MYC_FRAME_ALIGNMENT;
    } else {
        return MYC_OK; /* committed meanwhile */
    }
    uint16_t zero = 0;
    memcpy(hdr + MYC_FRAME_OFF_TYPE, &zero, 2);
    /* CAS (release): a writer committing at this very moment wins, and then
     * its frame is delivered; otherwise the claim is padding from now on. */
    if (__atomic_compare_exchange_n(MYC_AT(hdr, MYC_FRAME_OFF_LEN, int32_t), &len,
                                    (int32_t)extent, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
        r->unblocks++;
        myc_store_relaxed_u64(m->base, MYC_OFF_UNBLOCKS, r->unblocks);
    }
    return MYC_OK;
}

/*
 * Find the next data frame at r->head, skipping (and consuming) padding.
 * NEXT_FRAME: *hdr_out / *bytes_out describe it.  NEXT_NONE: nothing claimed.
 * NEXT_PENDING: a writer has claimed the next frame but not committed it.
 */
static int next_frame(myc_reader *r, int64_t now, uint8_t **hdr_out, uint64_t *bytes_out) {
    myc_map *m = &r->map;
    for (;;) {
        uint64_t idx = r->head & m->mask;
        uint64_t to_end = m->capacity - idx;
        uint8_t *hdr = m->ring + idx;
        /* acquire: pairs with the writer's commit (CAS) of the length, so the
         * payload it wrote before is visible. */
        int32_t len = myc_load_acquire_i32(hdr, MYC_FRAME_OFF_LEN);
        if (len <= 0) {
            if (r->head == r->tail_cache) {
                /* acquire: not for data (the frame length is), but cheap and
                 * keeps the tail we validate against fresh. */
                r->tail_cache = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
                if (r->head == r->tail_cache) return NEXT_NONE;
                continue; /* a claim appeared: look at its length again */
            }
            if (r->tail_cache < r->head || r->tail_cache - r->head > m->capacity)
                return fail(MYC_ERR_CORRUPT, "positions are inconsistent (head %llu, tail %llu)",
                            (unsigned long long)r->head, (unsigned long long)r->tail_cache);
            if (now == 0) return NEXT_PENDING;
            if (r->stuck_since == 0 || r->stuck_position != r->head) {
                r->stuck_position = r->head;
                r->stuck_since = now;
                return NEXT_PENDING;
            }
            if (now - r->stuck_since < r->stuck_timeout_ns) return NEXT_PENDING;
            r->stuck_since = 0;
            int rc = unblock(r, hdr, to_end);
            if (rc != MYC_OK) return rc;
            continue;
        }
        uint64_t bytes = MYC_ALIGN8((uint64_t)len);
        if ((uint64_t)len < MYC_FRAME_HEADER_SIZE || bytes > to_end)
            return fail(MYC_ERR_CORRUPT, "frame at position %llu has length %d (ring offset %llu, %llu bytes to the end)",
                        (unsigned long long)r->head, len, (unsigned long long)idx,
                        (unsigned long long)to_end);
        if (r->head + bytes > r->tail_cache) {
            r->tail_cache = myc_load_acquire_u64(m->base, MYC_OFF_TAIL);
            if (r->head + bytes > r->tail_cache)
                return fail(MYC_ERR_CORRUPT, "frame at position %llu (%llu bytes) runs past the tail %llu",
                            (unsigned long long)r->head, (unsigned long long)bytes,
                            (unsigned long long)r->tail_cache);
        }
        uint16_t type;
        memcpy(&type, hdr + MYC_FRAME_OFF_TYPE, 2);
        if (type == MYC_TYPE_PADDING) {
            consume(r, hdr, bytes);
            r->padding_frames++;
            myc_store_relaxed_u64(m->base, MYC_OFF_PADDING_FRAMES, r->padding_frames);
            publish_head(r);
            continue;
        }
        if ((uint64_t)len - MYC_FRAME_HEADER_SIZE > m->max_payload)
            return fail(MYC_ERR_CORRUPT, "frame at position %llu carries %llu bytes, the maximum is %u",
                        (unsigned long long)r->head,
                        (unsigned long long)(len - MYC_FRAME_HEADER_SIZE), m->max_payload);
        r->stuck_since = 0;
        *hdr_out = hdr;
        *bytes_out = bytes;
        return NEXT_FRAME;
    }
}

/* Wait up to timeout_ns for a data frame.  MYC_OK, MYC_ERR_EMPTY or error. */
static int wait_frame(myc_reader *r, int64_t timeout_ns, uint8_t **hdr, uint64_t *bytes) {
    myc_map *m = &r->map;
    int rc = next_frame(r, 0, hdr, bytes);
    if (rc == NEXT_FRAME) return MYC_OK;
    if (rc < 0) return rc;
    int64_t start = now_ns();
    int64_t deadline = timeout_ns < 0 ? INT64_MAX : start + timeout_ns;
    int64_t until = slice_deadline(start, deadline);
    if (rc == NEXT_PENDING) { /* start the stuck clock */
        rc = next_frame(r, start, hdr, bytes);
        if (rc == NEXT_FRAME) return MYC_OK;
        if (rc < 0) return rc;
    }
    if (timeout_ns == 0) return MYC_ERR_EMPTY;
    for (uint32_t spins = 1;; spins++) {
        myc_cpu_relax();
        int64_t now = (spins & 63) == 0 ? now_ns() : 0;
        rc = next_frame(r, now, hdr, bytes);
        if (rc == NEXT_FRAME) return MYC_OK;
        if (rc < 0) return rc;
        if (now != 0 && (now - start >= r->spin_ns || now >= until)) break;
    }
    for (;;) {
        /* seq_cst: announce the sleep before the last look; a writer commits
         * (seq_cst) then loads READER_SLEEPING (seq_cst), so either we see
         * its frame or it sees us and wakes us. */
        myc_store_seq_cst_u32(m->base, MYC_OFF_READER_SLEEPING, 1);
        uint32_t seq = myc_load_seq_cst_u32(m->base, MYC_OFF_READER_FUTEX);
        int64_t now = now_ns();
        rc = next_frame(r, now, hdr, bytes);
        if (rc == NEXT_FRAME || rc < 0 || now >= until) {
            myc_store_seq_cst_u32(m->base, MYC_OFF_READER_SLEEPING, 0);
            if (rc == NEXT_FRAME) return MYC_OK;
            if (rc < 0) return rc;
            if (now < deadline) return fail(MYC_ERR_INTERRUPTED, "wait slice over; call again");
            return MYC_ERR_EMPTY;
        }
        int64_t wait = until == INT64_MAX ? -1 : until - now;
        if (rc == NEXT_PENDING) { /* wake up in time to unblock a dead writer */
            int64_t stuck_left = r->stuck_since + r->stuck_timeout_ns - now + 1000000;
            if (wait < 0 || stuck_left < wait) wait = stuck_left;
        }
        r->sleeps++;
        myc_store_relaxed_u64(m->base, MYC_OFF_READER_SLEEPS, r->sleeps);
        int err = futex_wait(m->base, MYC_OFF_READER_FUTEX, seq, wait);
        myc_store_seq_cst_u32(m->base, MYC_OFF_READER_SLEEPING, 0);
        if (err == EINTR) return fail(MYC_ERR_INTERRUPTED, "interrupted while waiting for a frame");
    }
}

/* Consume the frame handed out by myc_peek. */
static void release_held(myc_reader *r) {
    uint8_t *hdr = r->map.ring + (r->head & r->map.mask);
    int32_t len;
    memcpy(&len, hdr + MYC_FRAME_OFF_LEN, 4);
    consume(r, hdr, r->held_bytes);
    r->held_bytes = 0;
    r->frames_read++;
    r->bytes_read += (uint64_t)len - MYC_FRAME_HEADER_SIZE;
    publish_counters(r);
    publish_head(r);
}

static int reader_enter(myc_reader *r) {
    if (r == NULL) return fail(MYC_ERR_CLOSED, "the reader is closed");
    if (!myc_flag_try_take(&r->busy))
        return fail(MYC_ERR_HANDLE_BUSY, "the reader is in use by another thread");
    if (r->held_bytes != 0) release_held(r); /* the frame of the last myc_peek is done */
    return MYC_OK;
}

static void reader_leave(myc_reader *r) { myc_flag_release(&r->busy); }

int64_t myc_read(myc_reader *r, int64_t timeout_ns, uint8_t *buf, uint64_t buf_len) {
    int rc = reader_enter(r);
    if (rc != MYC_OK) return rc;
    uint8_t *hdr;
    uint64_t bytes;
    rc = wait_frame(r, timeout_ns, &hdr, &bytes);
    if (rc != MYC_OK) {
        reader_leave(r);
        return rc;
    }
    int32_t len;
    uint16_t type;
    memcpy(&len, hdr + MYC_FRAME_OFF_LEN, 4);
    memcpy(&type, hdr + MYC_FRAME_OFF_TYPE, 2);
    uint64_t payload_len = (uint64_t)len - MYC_FRAME_HEADER_SIZE;
    if (payload_len > buf_len) {
        reader_leave(r);
        return fail(MYC_ERR_ARG, "frame of %llu bytes does not fit the %llu-byte buffer",
                    (unsigned long long)payload_len, (unsigned long long)buf_len);
    }
    memcpy(buf, hdr + MYC_FRAME_HEADER_SIZE, payload_len);
    consume(r, hdr, bytes);
    r->frames_read++;
    r->bytes_read += payload_len;
    publish_counters(r);
    publish_head(r);
    reader_leave(r);
    return ((int64_t)type << 32) | (int64_t)payload_len;
}

int myc_peek(myc_reader *r, int64_t timeout_ns, myc_frame *frame) {
    int rc = reader_enter(r);
    if (rc != MYC_OK) return rc;
    uint8_t *hdr;
    uint64_t bytes;
    rc = wait_frame(r, timeout_ns, &hdr, &bytes);
    if (rc == MYC_OK) {
        int32_t len;
        memcpy(&len, hdr + MYC_FRAME_OFF_LEN, 4);
        memcpy(&frame->type_id, hdr + MYC_FRAME_OFF_TYPE, 2);
        memcpy(&frame->flags, hdr + MYC_FRAME_OFF_FLAGS, 2);
        frame->payload = hdr + MYC_FRAME_HEADER_SIZE;
        frame->payload_len = (uint32_t)len - MYC_FRAME_HEADER_SIZE;
        r->held_bytes = bytes; /* counted as read when released */
    }
    reader_leave(r);
    return rc;
}

void myc_release(myc_reader *r) {
    if (reader_enter(r) == MYC_OK) reader_leave(r);
}

int64_t myc_read_batch(myc_reader *r, uint32_t max_frames, int64_t timeout_ns, uint8_t *buf,
                       uint64_t buf_len, uint16_t *type_ids, uint32_t *lens) {
    int rc = reader_enter(r);
    if (rc != MYC_OK) return rc;
    uint8_t *hdr;
    uint64_t bytes, used = 0;
    uint32_t n = 0;
    if (max_frames == 0) {
        reader_leave(r);
        return 0;
    }
    rc = wait_frame(r, timeout_ns, &hdr, &bytes);
    while (rc == MYC_OK) {
        int32_t len;
        memcpy(&len, hdr + MYC_FRAME_OFF_LEN, 4);
        uint64_t payload_len = (uint64_t)len - MYC_FRAME_HEADER_SIZE;
        if (used + payload_len > buf_len) {
            if (n == 0)
                rc = fail(MYC_ERR_ARG, "frame of %llu bytes does not fit the %llu-byte buffer",
                          (unsigned long long)payload_len, (unsigned long long)buf_len);
            break;
        }
        memcpy(&type_ids[n], hdr + MYC_FRAME_OFF_TYPE, 2);
        lens[n] = (uint32_t)payload_len;
        memcpy(buf + used, hdr + MYC_FRAME_HEADER_SIZE, payload_len);
        used += payload_len;
        consume(r, hdr, bytes);
        r->frames_read++;
        r->bytes_read += payload_len;
        if (++n == max_frames) break;
        int nrc = next_frame(r, 0, &hdr, &bytes);
        if (nrc < 0) rc = nrc;
        else if (nrc != NEXT_FRAME) break;
    }
    if (n > 0) {
        publish_counters(r);
        publish_head(r);
    }
    reader_leave(r);
    if (n > 0) return n; /* an error after some frames surfaces on the next call */
    return rc;
}

void myc_reader_close(myc_reader *r) {
    if (r == NULL) return;
    myc_map *m = &r->map;
    if (r->held_bytes != 0) release_held(r);
    int32_t me = (int32_t)getpid();
    /* acq_rel: our head store above happens-before the next owner's
     * acquire of READER_PID. */
    myc_cas_acq_rel_i32(m->base, MYC_OFF_READER_PID, &me, 0);
    unmap_shared(m->base);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* Statistics and inspection                                                 */
/* ------------------------------------------------------------------------ */

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
    s->writer_wakes = myc_load_relaxed_u64(b, MYC_OFF_WRITER_WAKES);
    s->frames_read = myc_load_relaxed_u64(b, MYC_OFF_FRAMES_READ);
    s->bytes_read = myc_load_relaxed_u64(b, MYC_OFF_BYTES_READ);
    s->padding_frames = myc_load_relaxed_u64(b, MYC_OFF_PADDING_FRAMES);
    s->unblocks = myc_load_relaxed_u64(b, MYC_OFF_UNBLOCKS);
    s->reader_wakes = myc_load_relaxed_u64(b, MYC_OFF_READER_WAKES);
    s->reader_sleeps = myc_load_relaxed_u64(b, MYC_OFF_READER_SLEEPS);
    s->takeovers = myc_load_relaxed_u64(b, MYC_OFF_TAKEOVERS);
}

int myc_writer_stats(const myc_writer *w, myc_stats *out) {
    if (w == NULL) return fail(MYC_ERR_CLOSED, "the writer is closed");
    read_stats(&w->map, out);
    return MYC_OK;
}

int myc_reader_stats(const myc_reader *r, myc_stats *out) {
    if (r == NULL) return fail(MYC_ERR_CLOSED, "the reader is closed");
    read_stats(&r->map, out);
    return MYC_OK;
}

int myc_inspect(const char *name, myc_info *out) {
    char obj[NAME_MAX + 2];
    int rc = object_name(name, obj);
    if (rc != MYC_OK) return rc;
    myc_map map;
    int fd;
    memset(&map, 0, sizeof map);
    rc = attach_object(name, obj, 0, &map, &fd);
    if (rc != MYC_OK) return rc;
    close(fd);
    fill_map(&map);
    memset(out, 0, sizeof *out);
    read_stats(&map, &out->stats);
    const uint8_t *b = map.base;
    memcpy(out->schema_digest, b + MYC_OFF_SCHEMA_DIGEST, MYC_DIGEST_SIZE);
    memcpy(&out->created_ns, b + MYC_OFF_CREATED_NS, 8);
    memcpy(&out->format_version, b + MYC_OFF_VERSION, 4);
    out->file_size = map.map_size;
    uint64_t start;
    memcpy(&out->creator_pid, b + MYC_OFF_CREATOR_PID, 4);
    memcpy(&start, b + MYC_OFF_CREATOR_START, 8);
    out->creator_alive = myc_pid_alive(out->creator_pid, start);
    /* relaxed: ownership words read for display only. */
    out->reader_pid = myc_load_relaxed_i32(b, MYC_OFF_READER_PID);
    start = myc_load_relaxed_u64(b, MYC_OFF_READER_START);
    out->reader_alive = myc_pid_alive(out->reader_pid, start);
    for (uint32_t i = 0; i < MYC_WRITER_SLOTS; i++) {
        uint64_t off = MYC_OFF_WRITER_TABLE + (uint64_t)i * MYC_WRITER_SLOT_SIZE;
        int32_t pid = myc_load_relaxed_i32(b, off);
        if (pid == 0) continue;
        out->writer_pids[out->writer_count] = pid;
        out->writer_alive[out->writer_count] = myc_pid_alive(pid, myc_load_relaxed_u64(b, off + 8));
        out->writer_count++;
    }
    munmap(map.base, map.map_size);
    return MYC_OK;
}
