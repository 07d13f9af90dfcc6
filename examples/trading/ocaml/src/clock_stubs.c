/* CLOCK_MONOTONIC in nanoseconds for the OCaml node (OCaml 4.13's Unix has
   no monotonic clock): the clock market data stamps ticks with, one clock
   for every process of the machine. */
#include <time.h>

#include <caml/mlvalues.h>

value trading_monotonic_ns(value unit)
{
    struct timespec ts;
    (void)unit;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return Val_long((long)ts.tv_sec * 1000000000L + ts.tv_nsec);
}
