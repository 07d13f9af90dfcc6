/*
 * The only place ring.c touches atomics.  Every helper names its ordering, so
 * a reader of ring.c sees at each call site whether an access is relaxed,
 * acquire, release or sequentially consistent, and the comment beside the
 * call says why and which access it pairs with.
 *
 * Shared memory is addressed by byte offset (see ring.h); these helpers take
 * a base pointer and an offset so no C struct layout is ever involved.
 */
#ifndef MYCELIUM_MYC_ATOMIC_H
#define MYCELIUM_MYC_ATOMIC_H

#include <stdint.h>

#define MYC_AT(base, off, type) ((type *)((uint8_t *)(base) + (off)))

/* 64-bit words ----------------------------------------------------------- */

static inline uint64_t myc_load_relaxed_u64(const void *base, uint64_t off) {
    return __atomic_load_n(MYC_AT(base, off, uint64_t), __ATOMIC_RELAXED);
}
static inline uint64_t myc_load_acquire_u64(const void *base, uint64_t off) {
    return __atomic_load_n(MYC_AT(base, off, uint64_t), __ATOMIC_ACQUIRE);
}
static inline uint64_t myc_load_seq_cst_u64(const void *base, uint64_t off) {
    return __atomic_load_n(MYC_AT(base, off, uint64_t), __ATOMIC_SEQ_CST);
}
static inline void myc_store_relaxed_u64(void *base, uint64_t off, uint64_t v) {
    __atomic_store_n(MYC_AT(base, off, uint64_t), v, __ATOMIC_RELAXED);
}
static inline void myc_store_release_u64(void *base, uint64_t off, uint64_t v) {
    __atomic_store_n(MYC_AT(base, off, uint64_t), v, __ATOMIC_RELEASE);
}
static inline void myc_store_seq_cst_u64(void *base, uint64_t off, uint64_t v) {
    __atomic_store_n(MYC_AT(base, off, uint64_t), v, __ATOMIC_SEQ_CST);
}
/* Statistics counters: nobody orders anything against them. */
static inline void myc_add_relaxed_u64(void *base, uint64_t off, uint64_t v) {
    __atomic_fetch_add(MYC_AT(base, off, uint64_t), v, __ATOMIC_RELAXED);
}
/* Strong CAS; on failure *expected holds the current value (relaxed). */
static inline int myc_cas_acq_rel_u64(void *base, uint64_t off,
                                      uint64_t *expected, uint64_t desired) {
    return __atomic_compare_exchange_n(MYC_AT(base, off, uint64_t), expected,
                                       desired, 0, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED);
}

/* 16-byte words (broadcast TAIL | SEQ) ----------------------------------- */

/* Strong CAS of the 16-byte word at base + off (16-aligned): low half
 * `*lo`, high half `*hi`.  Sequentially consistent (a locked instruction).
 * On failure *lo / *hi hold the current value.  x86-64: cmpxchg16b, inline
 * so no libatomic lock can stand in for it across processes. */
static inline int myc_cas_seq_cst_u128(void *base, uint64_t off, uint64_t *lo, uint64_t *hi,
                                       uint64_t new_lo, uint64_t new_hi) {
#if defined(__x86_64__)
    unsigned char ok;
    __asm__ __volatile__("lock cmpxchg16b %1\n\tsetz %0"
                         : "=q"(ok), "+m"(*MYC_AT(base, off, unsigned __int128)), "+a"(*lo), "+d"(*hi)
                         : "b"(new_lo), "c"(new_hi)
                         : "memory", "cc");
    return ok;
#elif defined(__SIZEOF_INT128__)
    unsigned __int128 expected = ((unsigned __int128)*hi << 64) | *lo;
    unsigned __int128 desired = ((unsigned __int128)new_hi << 64) | new_lo;
    int ok = __atomic_compare_exchange_n(MYC_AT(base, off, unsigned __int128), &expected, desired, 0,
                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    *lo = (uint64_t)expected;
    *hi = (uint64_t)(expected >> 64);
    return ok;
#else
#error "broadcast channels need a 16-byte compare-and-swap"
#endif
}

/* 32-bit words ----------------------------------------------------------- */

static inline int32_t myc_load_relaxed_i32(const void *base, uint64_t off) {
    return __atomic_load_n(MYC_AT(base, off, int32_t), __ATOMIC_RELAXED);
}
static inline int32_t myc_load_acquire_i32(const void *base, uint64_t off) {
    return __atomic_load_n(MYC_AT(base, off, int32_t), __ATOMIC_ACQUIRE);
}
static inline int32_t myc_load_seq_cst_i32(const void *base, uint64_t off) {
    return __atomic_load_n(MYC_AT(base, off, int32_t), __ATOMIC_SEQ_CST);
}
static inline void myc_store_relaxed_i32(void *base, uint64_t off, int32_t v) {
    __atomic_store_n(MYC_AT(base, off, int32_t), v, __ATOMIC_RELAXED);
}
static inline void myc_store_release_i32(void *base, uint64_t off, int32_t v) {
    __atomic_store_n(MYC_AT(base, off, int32_t), v, __ATOMIC_RELEASE);
}
static inline void myc_store_seq_cst_i32(void *base, uint64_t off, int32_t v) {
    __atomic_store_n(MYC_AT(base, off, int32_t), v, __ATOMIC_SEQ_CST);
}
static inline int myc_cas_acq_rel_i32(void *base, uint64_t off,
                                      int32_t *expected, int32_t desired) {
    return __atomic_compare_exchange_n(MYC_AT(base, off, int32_t), expected,
                                       desired, 0, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED);
}

static inline uint32_t myc_load_relaxed_u32(const void *base, uint64_t off) {
    return __atomic_load_n(MYC_AT(base, off, uint32_t), __ATOMIC_RELAXED);
}
static inline uint32_t myc_load_acquire_u32(const void *base, uint64_t off) {
    return __atomic_load_n(MYC_AT(base, off, uint32_t), __ATOMIC_ACQUIRE);
}
static inline uint32_t myc_load_seq_cst_u32(const void *base, uint64_t off) {
    return __atomic_load_n(MYC_AT(base, off, uint32_t), __ATOMIC_SEQ_CST);
}
static inline void myc_store_release_u32(void *base, uint64_t off, uint32_t v) {
    __atomic_store_n(MYC_AT(base, off, uint32_t), v, __ATOMIC_RELEASE);
}
static inline void myc_store_seq_cst_u32(void *base, uint64_t off, uint32_t v) {
    __atomic_store_n(MYC_AT(base, off, uint32_t), v, __ATOMIC_SEQ_CST);
}
static inline void myc_store_relaxed_u32(void *base, uint64_t off, uint32_t v) {
    __atomic_store_n(MYC_AT(base, off, uint32_t), v, __ATOMIC_RELAXED);
}
static inline uint32_t myc_add_seq_cst_u32(void *base, uint64_t off, uint32_t v) {
    return __atomic_fetch_add(MYC_AT(base, off, uint32_t), v, __ATOMIC_SEQ_CST);
}
static inline uint32_t myc_sub_seq_cst_u32(void *base, uint64_t off, uint32_t v) {
    return __atomic_fetch_sub(MYC_AT(base, off, uint32_t), v, __ATOMIC_SEQ_CST);
}
static inline uint32_t myc_add_release_u32(void *base, uint64_t off, uint32_t v) {
    return __atomic_fetch_add(MYC_AT(base, off, uint32_t), v, __ATOMIC_RELEASE);
}
static inline uint32_t myc_or_seq_cst_u32(void *base, uint64_t off, uint32_t v) {
    return __atomic_fetch_or(MYC_AT(base, off, uint32_t), v, __ATOMIC_SEQ_CST);
}
static inline uint32_t myc_and_seq_cst_u32(void *base, uint64_t off, uint32_t v) {
    return __atomic_fetch_and(MYC_AT(base, off, uint32_t), v, __ATOMIC_SEQ_CST);
}
static inline int myc_cas_seq_cst_u32(void *base, uint64_t off, uint32_t *expected, uint32_t desired) {
    return __atomic_compare_exchange_n(MYC_AT(base, off, uint32_t), expected, desired, 0,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* Handle-local flags (not in shared memory) ------------------------------ */

static inline int myc_flag_try_take(int *flag) {
    /* acquire: the taker must see everything the last releaser did. */
    return __atomic_exchange_n(flag, 1, __ATOMIC_ACQUIRE) == 0;
}
static inline void myc_flag_release(int *flag) {
    __atomic_store_n(flag, 0, __ATOMIC_RELEASE);
}

static inline void myc_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif /* MYCELIUM_MYC_ATOMIC_H */
