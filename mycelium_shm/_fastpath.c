/*
 * mycelium_shm._fastpath: the non-blocking hot calls, without cffi's per-call
 * cost.
 *
 * cffi (mycelium_shm._ring) is the binding: it opens, closes, waits, reports
 * errors.  But every cffi call releases and retakes the GIL and unpacks an
 * argument tuple, about 150-250 ns, against 20-40 ns for the ring operation
 * itself, and building a Frame in Python costs as much again.  This module
 * is the base class of ShmWriter and ShmReader and implements only the
 * common case of write, try_write, write_many, read, try_read and
 * read_many: the frame fits, or is there.  Anything else (the ring is full,
 * nothing to read, a bad argument, a corrupt frame) is handed, unchanged, to
 * the Python slow path (`_write_slow`, `_read_slow`, ...), which goes through
 * cffi and raises the proper exception.  Nothing here waits, so the GIL is
 * held throughout.
 *
 * The core is compiled into this module too (csrc/amalgamation.h), so the
 * fast path calls the very functions of the C API: the same claim, the same
 * commit, and the same validated frame walk (myc_next_frame), whose copies
 * of a frame's length and type are the only ones used here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "amalgamation.h"

static PyObject *g_abandoned;      /* mycelium_shm.errors.FrameAbandoned */
static PyObject *g_batch_failed;   /* mycelium_shm.errors.batch_failed */
static PyObject *g_view_open;      /* mycelium_shm.errors.ReadViewOpen */
static PyObject *g_handle_busy;    /* mycelium_shm.errors.HandleBusy */
static PyObject *g_closed;         /* mycelium_shm.errors.ChannelClosed */
static PyObject *g_forked;         /* mycelium_shm.errors.ForkedHandle */
static PyObject *g_myc_error;      /* mycelium_shm.errors.MyceliumError */
static PyObject *g_str_release;    /* "release", interned: memoryview.release */
/* The Python halves of the with-blocks (set_reserve_support, set_view_support): the slow paths
 * (waiting, timeouts, views still in use) and what the blocks hand out. */
static PyObject *g_reservation_type; /* mycelium_shm.writer.Reservation */
static PyObject *g_view_context_type; /* mycelium_shm.reader._ViewContext */
static PyObject *g_frame_view_type;  /* mycelium_shm.frame.FrameView */
static PyObject *g_view_exit;        /* mycelium_shm.reader._view_exit */
static PyObject *g_views_in_use;     /* mycelium_shm.reader._views_in_use (a dict) */

/* A Frame(type_id, payload) built directly: the payload bytes are copied
 * once, from the ring. */
/* ------------------------------------------------------------------------ */
/* Frame: what the copying reads hand out                                    */
/* ------------------------------------------------------------------------ */

/* mycelium_shm.frame.Frame is this type: a tuple (type_id, payload) with
 * two named fields.  Defined here rather than as a Python tuple subclass so
 * that a frame costs what a tuple does: a Python subclass is allocated and
 * freed through the generic heap-type paths, about a fifth of read_many's
 * time per frame.  Freed frames of two items are kept on a free list (GC
 * untracked, ob_item[0] links them), as CPython does for tuples. */
#define FRAME_FREE_MAX 256

static PyTypeObject FrameType;
static PyTupleObject *g_free_frames;
static int g_free_frame_count;

static PyObject *frame_alloc2(PyObject *type_id, PyObject *payload) {
    PyTupleObject *op = g_free_frames;
    if (op != NULL) {
        g_free_frames = (PyTupleObject *)op->ob_item[0];
        g_free_frame_count--;
        _Py_NewReference((PyObject *)op);
    } else {
        op = (PyTupleObject *)PyType_GenericAlloc(&FrameType, 2); /* tracked */
        if (op == NULL) return NULL;
        PyObject_GC_UnTrack(op); /* tracked below, once filled, like the free list's */
    }
    op->ob_item[0] = type_id; /* references stolen */
    op->ob_item[1] = payload;
    PyObject_GC_Track(op);
    return (PyObject *)op;
}

static void frame_dealloc(PyTupleObject *op) {
    PyObject_GC_UnTrack(op);
    Py_ssize_t n = Py_SIZE(op);
    for (Py_ssize_t i = 0; i < n; i++) Py_CLEAR(op->ob_item[i]);
    /* Only exact Frames go on the list (a Python subclass of Frame ends here
     * too, from subtype_dealloc, and must keep its own type and free). */
    if (n == 2 && Py_IS_TYPE(op, &FrameType) && g_free_frame_count < FRAME_FREE_MAX) {
        op->ob_item[0] = (PyObject *)g_free_frames;
        g_free_frames = op;
        g_free_frame_count++;
        return;
    }
    Py_TYPE(op)->tp_free((PyObject *)op);
}

static PyObject *frame_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"type_id", "payload", NULL};
    PyObject *type_id, *payload;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:Frame", kwlist, &type_id, &payload))
        return NULL;
    if (type != &FrameType) { /* a subclass: the generic path */
        PyObject *items = PyTuple_Pack(2, type_id, payload);
        if (items == NULL) return NULL;
        PyObject *args2 = PyTuple_Pack(1, items);
        Py_DECREF(items);
        if (args2 == NULL) return NULL;
        PyObject *made = PyTuple_Type.tp_new(type, args2, NULL);
        Py_DECREF(args2);
        return made;
    }
    Py_INCREF(type_id);
    Py_INCREF(payload);
    PyObject *frame = frame_alloc2(type_id, payload);
    if (frame == NULL) {
        Py_DECREF(type_id);
        Py_DECREF(payload);
    }
    return frame;
}

static PyObject *frame_item(PyObject *self, Py_ssize_t i) {
    if (PyTuple_GET_SIZE(self) <= i) {
        PyErr_SetString(PyExc_AttributeError, "this Frame has no such field");
        return NULL;
    }
    PyObject *item = PyTuple_GET_ITEM(self, i);
    Py_INCREF(item);
    return item;
}

static PyObject *frame_get_type_id(PyObject *self, void *closure) {
    (void)closure;
    return frame_item(self, 0);
}

static PyObject *frame_get_payload(PyObject *self, void *closure) {
    (void)closure;
    return frame_item(self, 1);
}

static PyObject *frame_getnewargs(PyObject *self, PyObject *unused) {
    (void)unused;
    return PyTuple_GetSlice(self, 0, PyTuple_GET_SIZE(self));
}

static PyObject *frame_reduce(PyObject *self, PyObject *unused) {
    /* (type, (type_id, payload)): every pickle protocol and copy. */
    (void)unused;
    PyObject *args = frame_getnewargs(self, NULL);
    if (args == NULL) return NULL;
    PyObject *reduced = PyTuple_Pack(2, (PyObject *)Py_TYPE(self), args);
    Py_DECREF(args);
    return reduced;
}

static PyObject *frame_repr(PyObject *self) {
    if (PyTuple_GET_SIZE(self) != 2) return PyTuple_Type.tp_repr(self);
    PyObject *payload = PyTuple_GET_ITEM(self, 1);
    Py_ssize_t len = PyObject_Length(payload);
    if (len < 0) return NULL;
    PyObject *shown;
    if (len <= 32) {
        shown = payload;
        Py_INCREF(shown);
    } else {
        PyObject *head = PySequence_GetSlice(payload, 0, 32);
        PyObject *dots = head ? PyBytes_FromString("...") : NULL;
        shown = dots ? PySequence_Concat(head, dots) : NULL;
        Py_XDECREF(head);
        Py_XDECREF(dots);
        if (shown == NULL) return NULL;
    }
    PyObject *text = PyUnicode_FromFormat("Frame(type_id=%S, payload=%R [%zd bytes])",
                                          PyTuple_GET_ITEM(self, 0), shown, len);
    Py_DECREF(shown);
    return text;
}

static PyGetSetDef frame_getset[] = {
    {"type_id", frame_get_type_id, NULL, "The frame's type id, 1..65535.", NULL},
    {"payload", frame_get_payload, NULL, "The payload (bytes).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef frame_methods[] = {
    {"__getnewargs__", frame_getnewargs, METH_NOARGS, "(type_id, payload): for pickle and copy."},
    {"__reduce__", frame_reduce, METH_NOARGS, "(Frame, (type_id, payload)): for pickle and copy."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FrameType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mycelium_shm.frame.Frame",
    /* GC support (and tuple's traverse), the tuple-subclass flag, the item
     * size and tp_free come from tuple (PyType_Ready). */
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Frame(type_id, payload)\n--\n\n"
              "One frame: ``type_id`` (1..65535) and ``payload`` (bytes).\n\n"
              "A tuple underneath, so building one costs what a tuple does; unpack it as\n"
              "``type_id, payload = frame``.",
    .tp_dealloc = (destructor)frame_dealloc,
    .tp_repr = frame_repr,
    .tp_new = frame_new,
    .tp_getset = frame_getset,
    .tp_methods = frame_methods,
};

static PyObject *new_frame(uint16_t type_id, const uint8_t *payload, uint32_t len) {
    PyObject *data = PyBytes_FromStringAndSize((const char *)payload, len);
    if (data == NULL) return NULL;
    PyObject *type = PyLong_FromLong(type_id);
    if (type == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    PyObject *frame = frame_alloc2(type, data);
    if (frame == NULL) {
        Py_DECREF(data);
        Py_DECREF(type);
    }
    return frame;
}

/* The exception being raised by a write_many that had written `done` of
 * `total` frames before the part that failed: errors.batch_failed() makes
 * its `written` (and message) count them all. */
static void batch_failed(Py_ssize_t done, Py_ssize_t total) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && g_batch_failed != NULL) {
        Py_ssize_t more = 0;
        PyObject *written = PyObject_GetAttrString(value, "written");
        if (written != NULL) {
            more = PyLong_AsSsize_t(written);
            Py_DECREF(written);
        }
        if (more < 0) more = 0;
        PyErr_Clear();
        PyObject *r = PyObject_CallFunction(g_batch_failed, "Onn", value, done + more, total);
        if (r == NULL) PyErr_Clear();
        Py_XDECREF(r);
    }
    PyErr_Restore(type, value, tb);
}

/* A timeout the fast path may ignore (it never waits): None or a finite
 * number >= 0.  Anything else goes to the slow path, which rejects it. */
static int timeout_ok(PyObject *timeout) {
    if (timeout == NULL || timeout == Py_None) return 1;
    if (PyLong_CheckExact(timeout)) {
        /* Beyond long long (or beyond float range): the slow path decides. */
        long long t = PyLong_AsLongLong(timeout);
        if (t == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        return t >= 0;
    }
    if (PyFloat_CheckExact(timeout)) {
        double t = PyFloat_AS_DOUBLE(timeout);
        return t >= 0.0 && t <= 1e18;
    }
    return 0;
}

/* The timeout argument at `position` (or passed by keyword), NULL if none. */
static PyObject *timeout_arg(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                             Py_ssize_t position) {
    if (nargs > position) return args[position];
    Py_ssize_t kw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < kw; i++)
        if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), "timeout") == 0)
            return args[nargs + i];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    myc_writer *writer; /* owned by the cffi handle; NULL once detached */
} FastWriter;

static PyObject *fw_attach(FastWriter *self, PyObject *address) {
    void *ptr = PyLong_AsVoidPtr(address);
    if (ptr == NULL && PyErr_Occurred()) return NULL;
    self->writer = ptr;
    Py_RETURN_NONE;
}

static PyObject *fw_detach(FastWriter *self, PyObject *unused) {
    (void)unused;
    self->writer = NULL;
    Py_RETURN_NONE;
}

enum { FAST_WRITTEN = 1, FAST_NO = 0, FAST_ERROR = -1, FAST_FULL = 2 };

/* FAST_WRITTEN; FAST_FULL (nothing counted yet); FAST_NO when the slow
 * path must answer (an argument it will reject, a corrupt ring); FAST_ERROR
 * with an exception set when the frame was claimed but then dropped. */
static int fast_write(myc_writer *w, PyObject *type_obj, PyObject *payload) {
    if (w == NULL || !PyBytes_CheckExact(payload) || !PyLong_CheckExact(type_obj)) return FAST_NO;
    long type_id = PyLong_AsLong(type_obj);
    Py_ssize_t len = PyBytes_GET_SIZE(payload);
    myc_map *m = &w->map;
    if (type_id < 1 || type_id > (long)MYC_TYPE_ID_MAX || (uint64_t)len > m->max_payload) {
        PyErr_Clear(); /* an overflowing int: the slow path says so */
        return FAST_NO;
    }
    if (myc_map_is_truncated(m)) return FAST_NO; /* refused: the slow path says why */
    myc_thread_slot *ts = myc_writer_thread_slot(w);
    if (ts == NULL || ts->reserved_open) return FAST_NO;
    claim_plan p = {.count = 1, .len0 = (uint32_t)len};
    int rc = myc_try_claim(w, ts, &p, 0);
    if (rc == MYC_ERR_FULL) {
        myc_count_full(m, ts);
        return FAST_FULL;
    }
    if (rc != MYC_OK) return FAST_NO;
    if (myc_write_claimed(w, ts, &p, (uint32_t)type_id, PyBytes_AS_STRING(payload), (uint32_t)len) != MYC_OK) {
        /* Claimed, so never retried: an operator revoked it. */
        PyErr_SetString(g_abandoned, myc_last_error());
        return FAST_ERROR;
    }
    return FAST_WRITTEN;
}

static PyObject *fw_write(FastWriter *self, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames) {
    /* write(type_id, payload, timeout=None): the timeout only matters when full. */
    if (nargs >= 2 && timeout_ok(timeout_arg(args, nargs, kwnames, 2))) {
        int rc = fast_write(self->writer, args[0], args[1]);
        if (rc == FAST_WRITTEN) Py_RETURN_NONE;
        if (rc == FAST_ERROR) return NULL;
    }
    PyObject *slow = PyObject_GetAttrString((PyObject *)self, "_write_slow");
    if (slow == NULL) return NULL;
    PyObject *result = PyObject_Vectorcall(slow, args, (size_t)nargs, kwnames);
    Py_DECREF(slow);
    return result;
}

static PyObject *fw_try_write(FastWriter *self, PyObject *const *args, Py_ssize_t nargs) {
    /* try_write(type_id, payload) -> bool */
    if (nargs == 2) {
        int rc = fast_write(self->writer, args[0], args[1]);
        if (rc == FAST_WRITTEN) Py_RETURN_TRUE;
        if (rc == FAST_ERROR) return NULL;
        if (rc == FAST_FULL) Py_RETURN_FALSE; /* answered here: a spinning caller costs no cffi call */
    }
    PyObject *slow = PyObject_GetAttrString((PyObject *)self, "_try_write_slow");
    if (slow == NULL) return NULL;
    PyObject *result = PyObject_Vectorcall(slow, args, (size_t)nargs, NULL);
    Py_DECREF(slow);
    return result;
}

#define FAST_BATCH_MAX 1024

/* Write the longest prefix of `items` (a list of (type_id, bytes) tuples)
 * that fits now, with one claim.  Returns how many, 0 if none fit or the
 * items need the slow path. */
static Py_ssize_t fast_write_many(myc_writer *w, PyObject *items) {
    Py_ssize_t n = PyList_GET_SIZE(items);
    if (w == NULL || n == 0) return 0;
    if (n > FAST_BATCH_MAX) n = FAST_BATCH_MAX;
    myc_map *m = &w->map;
    uint32_t lens[FAST_BATCH_MAX];
    uint16_t types[FAST_BATCH_MAX];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2) return 0;
        PyObject *type_obj = PyTuple_GET_ITEM(item, 0), *payload = PyTuple_GET_ITEM(item, 1);
        if (!PyLong_CheckExact(type_obj) || !PyBytes_CheckExact(payload)) return 0;
        long type_id = PyLong_AsLong(type_obj);
        Py_ssize_t len = PyBytes_GET_SIZE(payload);
        if (type_id < 1 || type_id > (long)MYC_TYPE_ID_MAX || (uint64_t)len > m->max_payload) {
            PyErr_Clear();
            return 0;
        }
        types[i] = (uint16_t)type_id;
        lens[i] = (uint32_t)len;
    }
    myc_thread_slot *ts = myc_writer_thread_slot(w);
    if (ts == NULL || ts->reserved_open) return 0;
    claim_plan p = {.count = (uint32_t)n, .lens = lens};
    if (myc_map_is_truncated(m) || myc_try_claim(w, ts, &p, 0) != MYC_OK) return 0;
    uint64_t pos = p.tail, payload_bytes = 0;
    uint32_t done = 0;
    int rc = MYC_OK;
    for (; done < p.planned; done++) {
        uint64_t fb = myc_plan_frame_bytes(&p, done);
        pos = myc_place_padding(m, pos, fb);
        rc = myc_put_frame(m, &p, done, pos, types[done],
                           PyBytes_AS_STRING(PyTuple_GET_ITEM(PyList_GET_ITEM(items, done), 1)),
                           lens[done]);
        pos += fb;
        if (rc != MYC_OK) break;
        payload_bytes += lens[done];
    }
    if (rc != MYC_OK) myc_pad_rest(m, &p, pos, done + 1);
    myc_claim_finished(m, ts->slot, p.tail + p.required);
    myc_count_written(m, ts, done, payload_bytes);
    myc_wake_reader_if_sleeping(m);
    if (rc != MYC_OK) {
        PyObject *exc = PyObject_CallFunction(g_abandoned, "s", myc_last_error());
        if (exc != NULL) {
            PyObject *written = PyLong_FromUnsignedLong(done);
            if (written != NULL) PyObject_SetAttrString(exc, "written", written);
            Py_XDECREF(written);
            PyErr_SetObject(g_abandoned, exc);
            Py_DECREF(exc);
        }
        return -1;
    }
    return (Py_ssize_t)p.planned;
}

static PyObject *fw_write_many(FastWriter *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames) {
    /* write_many(frames, timeout=None) -> int */
    Py_ssize_t done = 0;
    if (nargs >= 1 && PyList_CheckExact(args[0]) &&
        timeout_ok(timeout_arg(args, nargs, kwnames, 1))) {
        done = fast_write_many(self->writer, args[0]);
        if (done < 0) {
            batch_failed(0, PyList_GET_SIZE(args[0]));
            return NULL;
        }
        if (done == PyList_GET_SIZE(args[0])) return PyLong_FromSsize_t(done);
    }
    /* The rest (all, if nothing went fast) through the slow path. */
    PyObject *slow = PyObject_GetAttrString((PyObject *)self, "_write_many_slow");
    if (slow == NULL) return NULL;
    PyObject *call_args[3];
    Py_ssize_t kw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs < 1 || nargs + kw > 2) {
        PyObject *result = PyObject_Vectorcall(slow, args, (size_t)nargs, kwnames);
        Py_DECREF(slow);
        return result;
    }
    PyObject *rest;
    if (done) {
        rest = PyList_GetSlice(args[0], done, PyList_GET_SIZE(args[0]));
    } else {
        rest = args[0];
        Py_INCREF(rest);
    }
    if (rest == NULL) {
        Py_DECREF(slow);
        return NULL;
    }
    call_args[0] = rest;
    for (Py_ssize_t i = 1; i < nargs + kw; i++) call_args[i] = args[i];
    PyObject *result = PyObject_Vectorcall(slow, call_args, (size_t)nargs, kwnames);
    Py_DECREF(rest);
    Py_DECREF(slow);
    if (result == NULL && done > 0) batch_failed(done, PyList_GET_SIZE(args[0]));
    if (result == NULL || done == 0) return result;
    Py_ssize_t more = PyLong_AsSsize_t(result);
    Py_DECREF(result);
    if (more == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromSsize_t(done + more);
}

/* A claimed frame being filled in place: `view` is a writable memoryview of
 * its payload; commit() or abort() exactly once.  Holds its writer, so the
 * handle outlives it; if the writer is closed first, the claim is left to
 * the reader's stuck timeout. */
typedef struct {
    PyObject_HEAD
    PyObject *owner;   /* the FastWriter */
    uint64_t position; /* ring position of the frame header */
    uint32_t payload_len;
    int done;
    PyObject *view;
} FastReservation;

static void fres_dealloc(FastReservation *self) {
    Py_XDECREF(self->owner);
    Py_XDECREF(self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *fres_finish(FastReservation *self, int commit) {
    myc_writer *w = ((FastWriter *)self->owner)->writer;
    if (self->done) {
        PyErr_SetString(PyExc_ValueError, "the reservation is already committed or aborted");
        return NULL;
    }
    self->done = 1;
    if (self->view != NULL) {
        PyObject *released = PyObject_CallMethodNoArgs(self->view, g_str_release);
        if (released == NULL) return NULL;
        Py_DECREF(released);
    }
    if (w == NULL) {
        PyErr_SetString(g_closed, "the writer is closed; the claim will be skipped");
        return NULL;
    }
    myc_map *m = &w->map;
    myc_reservation res = {
        .payload = m->ring + (self->position & m->mask) + MYC_FRAME_HEADER_SIZE,
        .position = self->position,
        .payload_len = self->payload_len,
    };
    int rc = commit ? myc_commit(w, &res) : myc_abort(w, &res);
    if (rc != MYC_OK) {
        /* A forked child's copy of the parent's claim, or a revoked frame. */
        PyErr_SetString(rc == MYC_ERR_FORKED ? g_forked : g_abandoned, myc_last_error());
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *fres_commit(FastReservation *self, PyObject *unused) {
    (void)unused;
    return fres_finish(self, 1);
}

static PyObject *fres_abort(FastReservation *self, PyObject *unused) {
    (void)unused;
    return fres_finish(self, 0);
}

static PyObject *fres_get_view(FastReservation *self, void *closure) {
    (void)closure;
    Py_INCREF(self->view);
    return self->view;
}

static PyMethodDef fres_methods[] = {
    {"commit", (PyCFunction)fres_commit, METH_NOARGS, "Publish the frame to the reader."},
    {"abort", (PyCFunction)fres_abort, METH_NOARGS, "Give the room back (the reader skips it)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef fres_getset[] = {
    {"view", (getter)fres_get_view, NULL, "Writable memoryview of the payload.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FastReservationType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mycelium_shm._fastpath.FastReservation",
    .tp_basicsize = sizeof(FastReservation),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A claimed frame being filled in place.",
    .tp_dealloc = (destructor)fres_dealloc,
    .tp_methods = fres_methods,
    .tp_getset = fres_getset,
};

static PyObject *new_reservation(FastWriter *owner, uint64_t position, uint32_t payload_len) {
    myc_map *m = &owner->writer->map;
    uint8_t *payload = m->ring + (position & m->mask) + MYC_FRAME_HEADER_SIZE;
    FastReservation *res = PyObject_New(FastReservation, &FastReservationType);
    if (res == NULL) return NULL;
    res->owner = (PyObject *)owner;
    Py_INCREF(owner);
    res->position = position;
    res->payload_len = payload_len;
    res->done = 0;
    res->view = PyMemoryView_FromMemory((char *)payload, payload_len, PyBUF_WRITE);
    if (res->view == NULL) {
        Py_DECREF(res);
        return NULL;
    }
    return (PyObject *)res;
}

static PyObject *fw_reserve(FastWriter *self, PyObject *const *args, Py_ssize_t nargs) {
    /* _reserve(type_id, size) -> FastReservation | None (no room now, or an
     * argument for the slow path to reject) */
    myc_writer *w = self->writer;
    if (nargs != 2 || w == NULL || !PyLong_CheckExact(args[0]) || !PyLong_CheckExact(args[1]))
        Py_RETURN_NONE;
    long type_id = PyLong_AsLong(args[0]);
    long size = PyLong_AsLong(args[1]);
    if (type_id < 1 || type_id > (long)MYC_TYPE_ID_MAX || size < 0 ||
        (uint64_t)size > w->map.max_payload) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    myc_thread_slot *ts = myc_writer_thread_slot(w);
    if (ts == NULL || ts->reserved_open) Py_RETURN_NONE;
    claim_plan p = {.count = 1, .len0 = (uint32_t)size};
    if (myc_map_is_truncated(&w->map) || myc_try_claim(w, ts, &p, 0) != MYC_OK) Py_RETURN_NONE;
    uint64_t pos = myc_place_padding(&w->map, p.tail, myc_plan_frame_bytes(&p, 0));
    uint8_t *hdr = myc_begin_frame(&w->map, pos, (uint32_t)type_id, (uint32_t)size);
    ts->reserved_open = 1;
    PyObject *res = new_reservation(self, pos, (uint32_t)size);
    if (res == NULL) { /* keep the ring flowing: the claim becomes padding */
        myc_reservation claimed = {.payload = hdr + MYC_FRAME_HEADER_SIZE, .position = pos,
                                   .payload_len = (uint32_t)size, .type_id = (uint32_t)type_id};
        myc_abort(w, &claimed);
    }
    return res;
}

static PyObject *fw_adopt(FastWriter *self, PyObject *const *args, Py_ssize_t nargs) {
    /* _adopt(position, size) -> FastReservation for a frame the cffi path
     * (myc_reserve) just claimed for this writer. */
    if (nargs != 2 || self->writer == NULL) {
        PyErr_SetString(PyExc_ValueError, "_adopt(position, size) on an open writer");
        return NULL;
    }
    unsigned long long position = PyLong_AsUnsignedLongLong(args[0]);
    unsigned long size = PyLong_AsUnsignedLong(args[1]);
    if (PyErr_Occurred()) return NULL;
    return new_reservation(self, position, (uint32_t)size);
}

/* ------------------------------------------------------------------------ */
/* with w.reserve(type_id, size, timeout) as buf: a claim, then commit/abort  */
/* ------------------------------------------------------------------------ */

/* What the two with-blocks below share: each is entered once, and a block
 * its C path could not take is done by a Python object (`slow`). */
static int enter_once(int *entered, const char *what) {
    if (*entered) {
        PyErr_Format(PyExc_ValueError, "a %s block can be entered only once", what);
        return 0;
    }
    *entered = 1;
    return 1;
}

static PyObject *enter_slow(PyObject **slow, PyObject *made) {
    *slow = made;
    return made == NULL ? NULL : PyObject_CallMethod(made, "__enter__", NULL);
}

/* __exit__(exc_type, exc, tb) of the Python object doing the block, if any:
 * 1 with *result set (NULL on error), else 0. */
static int exit_slow(PyObject **slow, PyObject *const *args, Py_ssize_t nargs, PyObject **result) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "__exit__(exc_type, exc, tb)");
        *result = NULL;
        return 1;
    }
    if (*slow == NULL) return 0;
    PyObject *made = *slow;
    *slow = NULL;
    *result = PyObject_CallMethod(made, "__exit__", "OOO", args[0], args[1], args[2]);
    Py_DECREF(made);
    return 1;
}

/* The block claims in __enter__ (never before: a block never entered must
 * not hold the reader).  Room now and no timeout: claimed here, in C;
 * otherwise a mycelium_shm.writer.Reservation does the whole block. */
typedef struct {
    PyObject_HEAD
    PyObject *writer, *type_id, *size, *timeout;
    PyObject *claim; /* FastReservation claimed in __enter__ */
    PyObject *slow;  /* or the Reservation doing the block */
    int entered;
} ReserveBlock;

static void rblock_dealloc(ReserveBlock *self) {
    Py_XDECREF(self->writer);
    Py_XDECREF(self->type_id);
    Py_XDECREF(self->size);
    Py_XDECREF(self->timeout);
    Py_XDECREF(self->claim);
    Py_XDECREF(self->slow);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *rblock_enter(ReserveBlock *self, PyObject *unused) {
    (void)unused;
    if (!enter_once(&self->entered, "reserve()")) return NULL;
    if (self->timeout == Py_None) {
        PyObject *args[2] = {self->type_id, self->size};
        PyObject *claim = fw_reserve((FastWriter *)self->writer, args, 2);
        if (claim == NULL) return NULL;
        if (claim != Py_None) {
            self->claim = claim;
            return fres_get_view((FastReservation *)claim, NULL);
        }
        Py_DECREF(claim);
    }
    return enter_slow(&self->slow, PyObject_CallFunctionObjArgs(g_reservation_type, self->writer,
                                                                self->type_id, self->size,
                                                                self->timeout, NULL));
}

static PyObject *rblock_exit(ReserveBlock *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *result;
    if (exit_slow(&self->slow, args, nargs, &result)) return result;
    FastReservation *claim = (FastReservation *)self->claim;
    if (claim == NULL) Py_RETURN_NONE;
    self->claim = NULL;
    int commit = args[0] == Py_None;
    result = fres_finish(claim, commit); /* FrameAbandoned if revoked */
    Py_DECREF(claim);
    if (result == NULL && !commit && PyErr_ExceptionMatches(g_myc_error)) {
        PyErr_Clear(); /* the block's own exception is the one to see */
        Py_RETURN_NONE;
    }
    if (result == NULL) return NULL;
    Py_DECREF(result);
    Py_RETURN_NONE; /* falsy: the block's exception, if any, propagates */
}

static PyMethodDef rblock_methods[] = {
    {"__enter__", (PyCFunction)rblock_enter, METH_NOARGS, "Claim the frame: its payload, writable."},
    {"__exit__", (PyCFunction)(void (*)(void))rblock_exit, METH_FASTCALL,
     "Commit the frame, or abort it if the block raised."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReserveBlockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mycelium_shm._fastpath.ReserveBlock",
    .tp_basicsize = sizeof(ReserveBlock),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "with w.reserve(type_id, size) as buf: fill buf; commits on exit.",
    .tp_dealloc = (destructor)rblock_dealloc,
    .tp_methods = rblock_methods,
};

static PyObject *fw_reserve_block(FastWriter *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames) {
    /* reserve(type_id, size, timeout=None) -> ReserveBlock */
    Py_ssize_t given = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *timeout = Py_None;
    if (nargs == 3 && given == 3)
        timeout = args[2];
    else if (nargs == 2 && given == 3 && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "timeout") == 0)
        timeout = args[2];
    else if (nargs != 2 || given != 2) {
        PyErr_SetString(PyExc_TypeError, "reserve(type_id, size, timeout=None)");
        return NULL;
    }
    if (g_reservation_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "mycelium_shm.writer is not initialised");
        return NULL;
    }
    ReserveBlock *block = PyObject_New(ReserveBlock, &ReserveBlockType);
    if (block == NULL) return NULL;
    Py_INCREF(self);
    Py_INCREF(args[0]);
    Py_INCREF(args[1]);
    Py_INCREF(timeout);
    block->writer = (PyObject *)self;
    block->type_id = args[0];
    block->size = args[1];
    block->timeout = timeout;
    block->claim = NULL;
    block->slow = NULL;
    block->entered = 0;
    return (PyObject *)block;
}

static PyObject *fw_try_write_many(FastWriter *self, PyObject *items) {
    /* _try_write_many(list) -> how many of its first frames went in now */
    if (!PyList_CheckExact(items)) return PyLong_FromLong(0);
    Py_ssize_t done = fast_write_many(self->writer, items);
    return done < 0 ? NULL : PyLong_FromSsize_t(done);
}

static PyMethodDef fw_methods[] = {
    {"_reserve", (PyCFunction)(void (*)(void))fw_reserve, METH_FASTCALL,
     "Claim a frame now if there is room: a FastReservation, else None."},
    {"_adopt", (PyCFunction)(void (*)(void))fw_adopt, METH_FASTCALL,
     "Wrap a frame claimed by myc_reserve in a FastReservation."},
    {"reserve", (PyCFunction)(void (*)(void))fw_reserve_block, METH_FASTCALL | METH_KEYWORDS,
     "reserve(type_id, size, timeout=None)\n--\n\n"
     "Zero-copy write: ``with w.reserve(t, n) as buf: buf[:] = ...`` fills\n"
     "``n`` bytes in the ring and commits on exit (aborts on an exception)."},
    {"_try_write_many", (PyCFunction)fw_try_write_many, METH_O,
     "Write the longest prefix of a list of (type_id, bytes) that fits now."},
    {"_attach", (PyCFunction)fw_attach, METH_O, "Point the fast path at a myc_writer* (an int)."},
    {"_detach", (PyCFunction)fw_detach, METH_NOARGS, "Forget the handle (before it is closed)."},
    {"write", (PyCFunction)(void (*)(void))fw_write, METH_FASTCALL | METH_KEYWORDS,
     "write(type_id, payload, timeout=None)\n--\n\n"
     "Copy one frame in; wait while the ring is full (Full after timeout s)."},
    {"try_write", (PyCFunction)(void (*)(void))fw_try_write, METH_FASTCALL,
     "try_write(type_id, payload)\n--\n\n"
     "Copy one frame in if there is room now; False if the ring is full."},
    {"write_many", (PyCFunction)(void (*)(void))fw_write_many, METH_FASTCALL | METH_KEYWORDS,
     "write_many(frames, timeout=None)\n--\n\n"
     "Write (type_id, payload) pairs, claiming room for as many as fit at once;\n"
     "waits for room like write(); returns how many were written."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FastWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mycelium_shm._fastpath.FastWriter",
    .tp_basicsize = sizeof(FastWriter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Base of ShmWriter: the non-blocking hot calls in C.",
    .tp_methods = fw_methods,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    myc_reader *reader; /* owned by the cffi handle; NULL once detached */
} FastReader;

static PyObject *fr_attach(FastReader *self, PyObject *address) {
    void *ptr = PyLong_AsVoidPtr(address);
    if (ptr == NULL && PyErr_Occurred()) return NULL;
    self->reader = ptr;
    Py_RETURN_NONE;
}

static PyObject *fr_detach(FastReader *self, PyObject *unused) {
    (void)unused;
    self->reader = NULL;
    Py_RETURN_NONE;
}

static void view_open_error(void) {
    PyErr_SetString(g_view_open,
                    "a read_view() block of this reader is still open: its frame is held, and "
                    "this read would consume it; leave the block first");
}

/* Take the reader for the fast path: not closed, not in use by a blocked
 * call of another thread, no zero-copy view outstanding.  1: taken; 0: the
 * slow path must answer; -1: a read_view() holds a frame (ReadViewOpen set).
 * The C API would release the held frame on the next read (ring.h); the
 * Python API refuses instead, so a view never shows a consumed frame. */
static int fast_enter(myc_reader *r) {
    if (r == NULL) return 0;
    /* A forked child's copy: the slow path says why it cannot be used. */
    if (__atomic_load_n(r->fork_counter, __ATOMIC_RELAXED) != r->fork_generation) return 0;
    /* Found truncated (the ring may be gone): the slow path says so. */
    if (myc_map_is_truncated(&r->map)) return 0;
    if (!myc_flag_try_take(&r->busy)) return 0;
    if (r->held_bytes != 0) {
        reader_leave(r);
        view_open_error();
        return -1;
    }
    return 1;
}

/* Up to max_frames frames committed now, as a list; NULL with no error set
 * when the slow path must answer (nothing there, or a problem). */
static PyObject *fast_read_list(myc_reader *r, Py_ssize_t max_frames, int *empty) {
    *empty = 0;
    if (fast_enter(r) <= 0) return NULL;
    myc_found f;
    PyObject *list = NULL;
    Py_ssize_t n = 0;
    int rc = MYC_NEXT_NONE;
    while (n < max_frames && (rc = myc_next_frame(r, 0, &f)) == MYC_NEXT_FRAME) {
        PyObject *frame = new_frame(f.type_id, f.hdr + MYC_FRAME_HEADER_SIZE, f.payload_len);
        if (frame == NULL) break; /* MemoryError: the frame stays unread */
        if (!myc_found_intact(r, &f)) { /* broadcast: lapped while copying */
            Py_DECREF(frame);
            continue;
        }
        if (list == NULL && (list = PyList_New(0)) == NULL) {
            Py_DECREF(frame);
            break;
        }
        if (PyList_Append(list, frame) != 0) {
            Py_DECREF(frame);
            break;
        }
        Py_DECREF(frame);
        myc_reader_consume(r, &f);
        n++;
    }
    if (n > 0) {
        myc_reader_publish(r);
    } else {
        *empty = rc == MYC_NEXT_NONE;
    }
    reader_leave(r);
    if (PyErr_Occurred()) {
        Py_XDECREF(list);
        return NULL;
    }
    return list;
}

/* The next frame if committed now.  NULL with no error set when the slow
 * path must answer; then *empty says whether the ring simply had nothing
 * (no claim at all, which a non-waiting caller can be told at once). */
static PyObject *fast_read_one(myc_reader *r, int *empty) {
    *empty = 0;
    if (fast_enter(r) <= 0) return NULL;
    myc_found f;
    PyObject *frame = NULL;
    int rc = myc_next_frame(r, 0, &f);
    *empty = rc == MYC_NEXT_NONE;
    if (rc == MYC_NEXT_FRAME) {
        frame = new_frame(f.type_id, f.hdr + MYC_FRAME_HEADER_SIZE, f.payload_len);
        if (frame != NULL && !myc_found_intact(r, &f)) { /* broadcast: lapped while copying */
            Py_DECREF(frame);
            frame = NULL; /* the slow path reads on from where the reader resumed */
            *empty = 0;
        } else if (frame != NULL) {
            myc_reader_consume(r, &f);
            myc_reader_publish(r);
        }
    }
    reader_leave(r);
    return frame;
}

static PyObject *call_slow(PyObject *self, const char *name, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *slow = PyObject_GetAttrString(self, name);
    if (slow == NULL) return NULL;
    PyObject *result = PyObject_Vectorcall(slow, args, (size_t)nargs, kwnames);
    Py_DECREF(slow);
    return result;
}

/* Whether a timeout argument is exactly zero (0 or 0.0): do not wait. */
static int is_zero(PyObject *timeout) {
    if (PyLong_CheckExact(timeout)) return PyLong_AsLong(timeout) == 0 && !PyErr_Occurred();
    return PyFloat_CheckExact(timeout) && PyFloat_AS_DOUBLE(timeout) == 0.0;
}

static PyObject *fr_read(FastReader *self, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames) {
    /* read(timeout=None) -> Frame | None */
    Py_ssize_t given = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    if (given <= 1 && timeout_ok(timeout_arg(args, nargs, kwnames, 0))) {
        int empty;
        PyObject *frame = fast_read_one(self->reader, &empty);
        if (frame != NULL || PyErr_Occurred()) return frame;
        if (empty && given == 1 && is_zero(args[0])) Py_RETURN_NONE;
    }
    return call_slow((PyObject *)self, "_read_slow", args, nargs, kwnames);
}

static PyObject *fr_try_read(FastReader *self, PyObject *unused) {
    (void)unused;
    int empty;
    PyObject *frame = fast_read_one(self->reader, &empty);
    if (frame != NULL || PyErr_Occurred()) return frame;
    if (empty) Py_RETURN_NONE; /* answered here: a spinning caller costs no cffi call */
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL) return NULL;
    PyObject *result = call_slow((PyObject *)self, "_read_slow", &zero, 1, NULL);
    Py_DECREF(zero);
    return result;
}

static PyObject *fr_read_many(FastReader *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames) {
    /* read_many(max_frames, timeout=0) -> list[Frame] */
    if (nargs >= 1 && PyLong_CheckExact(args[0]) &&
        timeout_ok(timeout_arg(args, nargs, kwnames, 1))) {
        Py_ssize_t max_frames = PyLong_AsSsize_t(args[0]);
        if (max_frames > 0 && (uint64_t)max_frames <= UINT32_MAX) { /* else: the slow path says why */
            int empty;
            PyObject *list = fast_read_list(self->reader, max_frames, &empty);
            if (list != NULL || PyErr_Occurred()) return list;
            Py_ssize_t given = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
            /* timeout defaults to 0: nothing there is answered here */
            if (empty && (given == 1 || (given == 2 && is_zero(args[1])))) return PyList_New(0);
        } else if (max_frames == -1) {
            PyErr_Clear();
        }
    }
    return call_slow((PyObject *)self, "_read_many_slow", args, nargs, kwnames);
}

/* (type_id, read-only memoryview) of the frame myc_peek holds. */
static PyObject *held_view(myc_reader *r) {
    /* The walk's validated copies, never the ring's words again. */
    uint8_t *hdr = r->map.ring + (r->head & r->map.mask);
    PyObject *view = PyMemoryView_FromMemory((char *)hdr + MYC_FRAME_HEADER_SIZE,
                                             (Py_ssize_t)r->held_payload, PyBUF_READ);
    if (view == NULL) return NULL;
    PyObject *type = PyLong_FromLong(r->held_type);
    if (type == NULL) {
        Py_DECREF(view);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(view);
        Py_DECREF(type);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, type);
    PyTuple_SET_ITEM(pair, 1, view);
    return pair;
}

static PyObject *fr_peek_now(FastReader *self, PyObject *unused) {
    /* _peek_now() -> (type_id, view) holding the next frame, or None */
    (void)unused;
    myc_reader *r = self->reader;
    int entered = fast_enter(r);
    if (entered < 0) return NULL;
    if (entered == 0) Py_RETURN_NONE;
    myc_found f;
    PyObject *result = NULL;
    if (myc_next_frame(r, 0, &f) == MYC_NEXT_FRAME) {
        r->held_position = f.position;
        r->held_bytes = f.bytes;
        r->held_payload = f.payload_len;
        r->held_type = f.type_id;
        result = held_view(r);
        if (result == NULL) r->held_bytes = 0; /* MemoryError: leave it unread */
    } else {
        result = Py_None;
        Py_INCREF(result);
    }
    reader_leave(r);
    return result;
}

static PyObject *fr_held_view(FastReader *self, PyObject *unused) {
    /* _held_view() -> (type_id, view) of the frame a cffi myc_peek holds */
    (void)unused;
    myc_reader *r = self->reader;
    if (r == NULL || r->held_bytes == 0) {
        PyErr_SetString(PyExc_ValueError, "no frame is held");
        return NULL;
    }
    return held_view(r);
}

static PyObject *fr_release_held(FastReader *self, PyObject *unused) {
    /* _release_held(): consume the held frame */
    (void)unused;
    myc_reader *r = self->reader;
    if (r == NULL) Py_RETURN_NONE; /* closed: close() consumed it */
    if (__atomic_load_n(r->fork_counter, __ATOMIC_RELAXED) != r->fork_generation) {
        /* A forked child leaving a view the parent opened: the frame is the
         * parent's to consume; forget it in this copy only. */
        r->held_bytes = 0;
        Py_RETURN_NONE;
    }
    if (!myc_flag_try_take(&r->busy)) {
        PyErr_SetString(g_handle_busy, "the reader is in use by another thread");
        return NULL;
    }
    if (r->held_bytes != 0) release_held(r);
    reader_leave(r);
    Py_RETURN_NONE;
}

static PyObject *fr_check_no_view(FastReader *self, PyObject *unused) {
    /* _check_no_view(): ReadViewOpen if a read_view() holds a frame */
    (void)unused;
    myc_reader *r = self->reader;
    /* Closed, a forked child's copy, or in use by another thread: the C
     * call that follows says so. */
    if (r == NULL || __atomic_load_n(r->fork_counter, __ATOMIC_RELAXED) != r->fork_generation ||
        !myc_flag_try_take(&r->busy))
        Py_RETURN_NONE;
    int held = r->held_bytes != 0;
    reader_leave(r);
    if (held) {
        view_open_error();
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* with r.read_view(timeout) as frame: a held frame, consumed on exit         */
/* ------------------------------------------------------------------------ */

/* A frame there now, no timeout and no view still in use: held and handed
 * out here, in C; otherwise a mycelium_shm.reader._ViewContext does the
 * whole block.  The exit of a single-reader view is done here too unless
 * the payload is still referenced (then _view_exit raises FrameViewInUse);
 * a broadcast reader's exit, which checks for a lap, is _view_exit's. */
typedef struct {
    PyObject_HEAD
    PyObject *reader, *timeout;
    PyObject *base, *view; /* the ring view and the guarded payload handed out */
    PyObject *slow;        /* or the _ViewContext doing the block */
    int entered;
} ViewBlock;

static void vblock_dealloc(ViewBlock *self) {
    Py_XDECREF(self->reader);
    Py_XDECREF(self->timeout);
    Py_XDECREF(self->base);
    Py_XDECREF(self->view);
    Py_XDECREF(self->slow);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A memoryview over base's bytes whose buffer is an export of base, so
 * base.release() fails while anything derived from it lives (frame.py,
 * guarded_payload). */
static PyObject *guarded_payload(PyObject *base) {
    PyObject *pickle_buffer = PyPickleBuffer_FromObject(base);
    if (pickle_buffer == NULL) return NULL;
    PyObject *view = PyMemoryView_FromObject(pickle_buffer);
    if (PyPickleBuffer_Release(pickle_buffer) < 0) Py_CLEAR(view);
    Py_DECREF(pickle_buffer);
    return view;
}

static PyObject *vblock_enter(ViewBlock *self, PyObject *unused) {
    (void)unused;
    if (!enter_once(&self->entered, "read_view()")) return NULL;
    if (self->timeout == Py_None && PyDict_GET_SIZE(g_views_in_use) == 0) {
        PyObject *held = fr_peek_now((FastReader *)self->reader, NULL);
        if (held == NULL) return NULL;
        if (held != Py_None) {
            PyObject *view = guarded_payload(PyTuple_GET_ITEM(held, 1));
            PyObject *frame = NULL;
            if (view != NULL) {
                PyObject *call_args[2] = {PyTuple_GET_ITEM(held, 0), view};
                frame = PyObject_Vectorcall(g_frame_view_type, call_args, 2, NULL);
            }
            if (frame == NULL) { /* leave the frame unread */
                Py_XDECREF(view);
                Py_DECREF(held);
                PyObject *type, *value, *tb;
                PyErr_Fetch(&type, &value, &tb);
                myc_reader *r = ((FastReader *)self->reader)->reader;
                if (r != NULL) r->held_bytes = 0;
                PyErr_Restore(type, value, tb);
                return NULL;
            }
            self->base = PyTuple_GET_ITEM(held, 1);
            Py_INCREF(self->base);
            self->view = view;
            Py_DECREF(held);
            return frame;
        }
        Py_DECREF(held);
    }
    return enter_slow(&self->slow, PyObject_CallFunctionObjArgs(g_view_context_type, self->reader,
                                                                self->timeout, NULL));
}

/* Release a memoryview; 0 if it is still exported (BufferError). */
static int release_view(PyObject *view) {
    PyObject *done = PyObject_CallMethodNoArgs(view, g_str_release);
    if (done != NULL) {
        Py_DECREF(done);
        return 1;
    }
    if (PyErr_ExceptionMatches(PyExc_BufferError)) PyErr_Clear();
    return 0;
}

static PyObject *vblock_exit(ViewBlock *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *result;
    if (exit_slow(&self->slow, args, nargs, &result)) return result;
    PyObject *view = self->view, *base = self->base;
    if (view == NULL || base == NULL) Py_RETURN_NONE;
    self->view = self->base = NULL;
    myc_reader *r = ((FastReader *)self->reader)->reader;
    if (r != NULL && r->cursor_slot < 0 && release_view(view) && release_view(base)) {
        result = fr_release_held((FastReader *)self->reader, NULL);
    } else if (PyErr_Occurred()) {
        result = NULL;
    } else {
        PyObject *call_args[4] = {self->reader, view, base, args[0]};
        result = PyObject_Vectorcall(g_view_exit, call_args, 4, NULL);
    }
    Py_DECREF(view);
    Py_DECREF(base);
    if (result == NULL) return NULL;
    Py_DECREF(result);
    Py_RETURN_NONE;
}

static PyMethodDef vblock_methods[] = {
    {"__enter__", (PyCFunction)vblock_enter, METH_NOARGS,
     "Hold the next frame: a FrameView (None on timeout)."},
    {"__exit__", (PyCFunction)(void (*)(void))vblock_exit, METH_FASTCALL,
     "Release the payload and consume the frame."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ViewBlockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mycelium_shm._fastpath.ViewBlock",
    .tp_basicsize = sizeof(ViewBlock),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "with r.read_view() as frame: frame.payload stays in the ring until the block ends.",
    .tp_dealloc = (destructor)vblock_dealloc,
    .tp_methods = vblock_methods,
};

static PyObject *fr_read_view(FastReader *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames) {
    /* read_view(timeout=None) -> ViewBlock */
    Py_ssize_t given = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    if (given > 1 || (kwnames && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "timeout") != 0)) {
        PyErr_SetString(PyExc_TypeError, "read_view(timeout=None)");
        return NULL;
    }
    if (g_view_context_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "mycelium_shm.reader is not initialised");
        return NULL;
    }
    PyObject *timeout = given == 1 ? args[0] : Py_None;
    ViewBlock *block = PyObject_New(ViewBlock, &ViewBlockType);
    if (block == NULL) return NULL;
    Py_INCREF(self);
    Py_INCREF(timeout);
    block->reader = (PyObject *)self;
    block->timeout = timeout;
    block->base = block->view = block->slow = NULL;
    block->entered = 0;
    return (PyObject *)block;
}

static PyMethodDef fr_methods[] = {
    {"read_view", (PyCFunction)(void (*)(void))fr_read_view, METH_FASTCALL | METH_KEYWORDS,
     "read_view(timeout=None)\n--\n\n"
     "Zero-copy: ``with r.read_view() as frame:`` gives a FrameView (None on\n"
     "timeout) whose payload stays in the ring until the block ends."},
    {"_peek_now", (PyCFunction)fr_peek_now, METH_NOARGS,
     "Hold the next frame if one is there now: (type_id, view), else None."},
    {"_held_view", (PyCFunction)fr_held_view, METH_NOARGS,
     "(type_id, view) of the frame held by myc_peek."},
    {"_release_held", (PyCFunction)fr_release_held, METH_NOARGS, "Consume the held frame."},
    {"_check_no_view", (PyCFunction)fr_check_no_view, METH_NOARGS,
     "Raise ReadViewOpen if a read_view() block holds a frame (slow paths)."},
    {"_attach", (PyCFunction)fr_attach, METH_O, "Point the fast path at a myc_reader* (an int)."},
    {"_detach", (PyCFunction)fr_detach, METH_NOARGS, "Forget the handle (before it is closed)."},
    {"read", (PyCFunction)(void (*)(void))fr_read, METH_FASTCALL | METH_KEYWORDS,
     "read(timeout=None)\n--\n\n"
     "The next frame, waiting up to timeout s (None: forever); None on timeout."},
    {"try_read", (PyCFunction)fr_try_read, METH_NOARGS,
     "try_read()\n--\n\nThe next frame if one is committed now, else None."},
    {"read_many", (PyCFunction)(void (*)(void))fr_read_many, METH_FASTCALL | METH_KEYWORDS,
     "read_many(max_frames, timeout=0)\n--\n\n"
     "Up to max_frames frames at once, waiting up to timeout s for the first; [] on timeout."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FastReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mycelium_shm._fastpath.FastReader",
    .tp_basicsize = sizeof(FastReader),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Base of ShmReader: the non-blocking hot calls in C.",
    .tp_methods = fr_methods,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------------ */
/* Module                                                                    */
/* ------------------------------------------------------------------------ */

static PyObject *set_reserve_support(PyObject *module, PyObject *reservation_type) {
    (void)module;
    Py_INCREF(reservation_type);
    Py_XSETREF(g_reservation_type, reservation_type);
    Py_RETURN_NONE;
}

static PyObject *set_view_support(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 4 || !PyDict_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "set_view_support(_ViewContext, FrameView, _view_exit, _views_in_use)");
        return NULL;
    }
    PyObject **slots[4] = {&g_view_context_type, &g_frame_view_type, &g_view_exit, &g_views_in_use};
    for (int i = 0; i < 4; i++) {
        Py_INCREF(args[i]);
        Py_XSETREF(*slots[i], args[i]);
    }
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"set_reserve_support", set_reserve_support, METH_O,
     "Register the Reservation class that does a reserve() block the C path cannot."},
    {"set_view_support", (PyCFunction)(void (*)(void))set_view_support, METH_FASTCALL,
     "Register the Python halves of the read_view() block."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastpath_module = {
    PyModuleDef_HEAD_INIT, "mycelium_shm._fastpath",
    "Non-blocking hot paths of ShmWriter and ShmReader (see _fastpath.c).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    FrameType.tp_base = &PyTuple_Type;
    if (PyType_Ready(&FrameType) < 0 || PyType_Ready(&FastWriterType) < 0 ||
        PyType_Ready(&FastReaderType) < 0 ||
        PyType_Ready(&FastReservationType) < 0 || PyType_Ready(&ReserveBlockType) < 0 ||
        PyType_Ready(&ViewBlockType) < 0)
        return NULL;
    PyObject *errors = PyImport_ImportModule("mycelium_shm.errors");
    if (errors == NULL) return NULL;
    g_abandoned = PyObject_GetAttrString(errors, "FrameAbandoned");
    g_batch_failed = PyObject_GetAttrString(errors, "batch_failed");
    g_view_open = PyObject_GetAttrString(errors, "ReadViewOpen");
    g_handle_busy = PyObject_GetAttrString(errors, "HandleBusy");
    g_closed = PyObject_GetAttrString(errors, "ChannelClosed");
    g_forked = PyObject_GetAttrString(errors, "ForkedHandle");
    g_myc_error = PyObject_GetAttrString(errors, "MyceliumError");
    g_str_release = PyUnicode_InternFromString("release");
    Py_DECREF(errors);
    if (g_abandoned == NULL || g_batch_failed == NULL || g_view_open == NULL ||
        g_handle_busy == NULL || g_closed == NULL || g_forked == NULL || g_myc_error == NULL ||
        g_str_release == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&fastpath_module);
    if (module == NULL) return NULL;
    Py_INCREF(&FrameType);
    if (PyModule_AddObject(module, "Frame", (PyObject *)&FrameType) < 0) {
        Py_DECREF(&FrameType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&FastWriterType);
    if (PyModule_AddObject(module, "FastWriter", (PyObject *)&FastWriterType) < 0) {
        Py_DECREF(&FastWriterType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&FastReaderType);
    if (PyModule_AddObject(module, "FastReader", (PyObject *)&FastReaderType) < 0) {
        Py_DECREF(&FastReaderType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
