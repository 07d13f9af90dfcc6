/*
 * The whole core as one translation unit, for a module that must carry its
 * own copy and call the internal functions inline (Python's fast path).
 * Every other build compiles csrc/ *.c separately.
 */
#include "errors.c"
#include "proc.c"
#include "map.c"
#include "registry.c"
#include "writer.c"
#include "reader.c"
#include "cursor.c"
#include "admin.c"
