/* A monotonic nanosecond clock for bench.ml (OCaml 4.13's Unix has none). */
#include <time.h>
#include <caml/mlvalues.h>

intnat mycelium_bench_now_ns(value unit) {
    (void)unit;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (intnat)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

value mycelium_bench_now_ns_byte(value unit) {
    return Val_long(mycelium_bench_now_ns(unit));
}
