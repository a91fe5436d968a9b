/*
 * In-order frame assembly for the relay's C chain (see `_relay_lane.c`): what
 * `assembly.VideoFrameAssembler.add` does for a video packet that continues the frame being
 * received, in order, while the Python assembler holds nothing (the packets wait in a
 * FrameLane until the frame is complete), and what `assembly.AudioPacketGate.add` does for
 * the next audio packet in order. Anything else goes to `Feed._assemble` (Python), and the
 * Python assembler takes a lane's packets back before it does anything.
 */
#include "_relay_lane.h"

/* --- FrameLane: the packets of one video frame, in order, not yet complete -------------- */

typedef struct {
    PyObject_HEAD
    int count;
    uint32_t timestamp;
    PyObject *payloads[LANE_MAX];
    Py_ssize_t descriptors[LANE_MAX];
    double arrivals[LANE_MAX];
    unsigned int seqs[LANE_MAX];
    uint32_t ssrcs[LANE_MAX];
    unsigned char seconds[LANE_MAX];
} FrameLane;

static void
FrameLane_drop(FrameLane *self)
{
    int count = self->count;
    self->count = 0;
    for (int i = 0; i < count; i++)
        Py_CLEAR(self->payloads[i]);
}

static int
FrameLane_traverse(FrameLane *self, visitproc visit, void *arg)
{
    for (int i = 0; i < self->count; i++)
        Py_VISIT(self->payloads[i]);
    return 0;
}

static int
FrameLane_clear(FrameLane *self)
{
    FrameLane_drop(self);
    return 0;
}

static void
FrameLane_dealloc(FrameLane *self)
{
    PyObject_GC_UnTrack(self);
    FrameLane_drop(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
FrameLane_get_pending(FrameLane *self, void *closure)
{
    return PyLong_FromLong(self->count);
}

/* take() -> [(RtpSlice, arrival), ...]: the held packets, oldest first; the lane is empty */
static PyObject *
FrameLane_take(FrameLane *self, PyObject *unused)
{
    PyObject *taken = PyList_New(0);
    if (taken == NULL)
        return NULL;
    for (int i = 0; i < self->count; i++) {
        Relayed r = {0};
        r.h.seq = self->seqs[i];
        r.h.timestamp = self->timestamp;
        r.h.second = self->seconds[i];
        r.h.pos = 0;
        r.h.end = PyBytes_GET_SIZE(self->payloads[i]);
        r.payload = Py_NewRef(self->payloads[i]);
        r.descriptor = self->descriptors[i];
        r.video = 1;
        r.ssrc = PyLong_FromUnsignedLong(self->ssrcs[i]);
        PyObject *slice = r.ssrc == NULL ? NULL : slice_of(&r);
        PyObject *item = slice == NULL ? NULL : Py_BuildValue("(Od)", slice, self->arrivals[i]);
        relayed_clear(&r);
        if (item == NULL || PyList_Append(taken, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(taken);
            return NULL;
        }
        Py_DECREF(item);
    }
    FrameLane_drop(self);
    return taken;
}

static PyMethodDef FrameLane_methods[] = {
    {"take", (PyCFunction)FrameLane_take, METH_NOARGS,
     "take() -> [(RtpSlice, arrival), ...]: the held packets, oldest first"},
    {NULL},
};

static PyGetSetDef FrameLane_getset[] = {
    {"pending", (getter)FrameLane_get_pending, NULL, "packets held", NULL},
    {NULL},
};

static PyTypeObject FrameLaneType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vvserver.media._rtp_native.FrameLane",
    .tp_basicsize = sizeof(FrameLane),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The packets of the video frame a VideoFrameAssembler is receiving in order, "
              "held by the relay's C chain until the frame is complete.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)FrameLane_dealloc,
    .tp_traverse = (traverseproc)FrameLane_traverse,
    .tp_clear = (inquiry)FrameLane_clear,
    .tp_methods = FrameLane_methods,
    .tp_getset = FrameLane_getset,
};

/* Feed._assemble(rtp, segment, now): Python's assembly of a packet C does not take. */
static int
assemble_in_python(PyObject *feed, PyObject *segment, Relayed *r, PyObject *now)
{
    PyObject *slice = slice_of(r);
    if (slice == NULL)
        return -1;
    PyObject *args[3] = {slice, segment, now};
    return call_method(feed, NAME(_assemble), args, 3);
}

/*
 * The lane's frame is complete (`end`: the sequence number after it): 1 and `frame` filled in
 * (its data a new reference), 0 when its first packet does not start a frame (dropped, as the
 * Python assembler drops it), -1 on an error. The lane is empty afterwards.
 */
static int
release_frame(FrameLane *lane, PyObject *assembler, unsigned int end, PyObject *now,
              Frame *frame)
{
    const unsigned char *first = (const unsigned char *)PyBytes_AS_STRING(lane->payloads[0]);
    int starts = PyBytes_GET_SIZE(lane->payloads[0]) > 0 && (first[0] & 0x10) &&
                 (first[0] & 0x07) == 0;
    if (set_ll(assembler, NAME(_next), end & 0xFFFF) < 0)
        return -1;
    if (!starts) {
        FrameLane_drop(lane);
        return set_owned(assembler, NAME(_loss), Py_NewRef(Py_True)) < 0 ? -1 : 0;
    }
    Py_ssize_t total = 0;
    for (int i = 0; i < lane->count; i++)
        total += PyBytes_GET_SIZE(lane->payloads[i]) - lane->descriptors[i];
    PyObject *data = PyBytes_FromStringAndSize(NULL, total);
    if (data == NULL)
        return -1;
    char *at = PyBytes_AS_STRING(data);
    for (int i = 0; i < lane->count; i++) {
        Py_ssize_t size = PyBytes_GET_SIZE(lane->payloads[i]) - lane->descriptors[i];
        memcpy(at, PyBytes_AS_STRING(lane->payloads[i]) + lane->descriptors[i], (size_t)size);
        at += size;
    }
    int after_loss = get_truth(assembler, NAME(_loss));
    if (after_loss < 0 || set_owned(assembler, NAME(_loss), Py_NewRef(Py_False)) < 0) {
        Py_DECREF(data);
        return -1;
    }
    frame->video = 1;
    frame->data = data;
    frame->timestamp = lane->timestamp;
    frame->keyframe = vp8_is_keyframe((const unsigned char *)PyBytes_AS_STRING(data), total);
    frame->ssrc = lane->ssrcs[0];
    frame->arrival = now;
    frame->after_loss = after_loss;
    FrameLane_drop(lane);
    return 1;
}

/* Feed.publish for each frame made, then drops their data. */
static int
publish_frames(PyObject *feed, PyObject *segment, Frame *frames, int count)
{
    int status = 0;
    for (int i = 0; i < count; i++) {
        if (status == 0)
            status = publish_frame(feed, segment, &frames[i]);
        Py_DECREF(frames[i].data);
    }
    return status;
}

/* VideoFrameAssembler.add for a packet that continues the frame in order (C's FrameLane),
 * else the Python assembler. */
int
assemble_video(PyObject *feed, PyObject *assembler, PyObject *segment, Relayed *r,
               PyObject *now_obj, double now)
{
    PyObject *lane_object = GET_ATTR(assembler, NAME(_lane));
    if (lane_object == NULL)
        return -1;
    if (lane_object == Py_None) {
        Py_DECREF(lane_object);
        PyObject *starts = GET_ATTR(assembler, NAME(_starts_frame));
        PyObject *keyframe = starts == NULL ? NULL : GET_ATTR(assembler, NAME(_is_keyframe));
        int defaults = starts == default_starts_frame && keyframe == default_is_keyframe;
        Py_XDECREF(starts);
        Py_XDECREF(keyframe);
        if (starts == NULL || keyframe == NULL)
            return -1;
        if (!defaults) /* an assembler with other codec rules: Python's */
            return assemble_in_python(feed, segment, r, now_obj);
        lane_object = PyObject_CallNoArgs((PyObject *)&FrameLaneType);
        if (lane_object == NULL || set_owned(assembler, NAME(_lane), Py_NewRef(lane_object)) < 0) {
            Py_XDECREF(lane_object);
            return -1;
        }
    }
    if (Py_TYPE(lane_object) != &FrameLaneType) {
        Py_DECREF(lane_object);
        PyErr_SetString(PyExc_TypeError, "VideoFrameAssembler._lane is not a FrameLane");
        return -1;
    }
    FrameLane *lane = (FrameLane *)lane_object;
    int usual = 0;
    /* each read only after the one before it worked (no lookup with an exception set) */
    PyObject *slots = GET_ATTR(assembler, NAME(_slots));
    PyObject *next = slots == NULL ? NULL : GET_ATTR(assembler, NAME(_next));
    PyObject *ssrc = next == NULL ? NULL : GET_ATTR(assembler, NAME(_ssrc));
    PyObject *behind = ssrc == NULL ? NULL : GET_ATTR(assembler, NAME(_behind_since));
    double last_arrival = 0, max_wait = 0;
    if (slots == NULL || next == NULL || ssrc == NULL || behind == NULL ||
        get_double(assembler, NAME(_last_arrival), &last_arrival) < 0 ||
        get_double(assembler, NAME(_max_wait), &max_wait) < 0)
        goto error;
    if (PyDict_Check(slots) && PyDict_GET_SIZE(slots) == 0 && PyLong_Check(next) &&
        behind == Py_None) {
        int same = PyObject_RichCompareBool(ssrc, r->ssrc, Py_EQ);
        if (same < 0)
            goto error;
        long long expected = PyLong_AsLongLong(next);
        if (expected == -1 && PyErr_Occurred())
            goto error;
        expected = (expected + lane->count) & 0xFFFF;
        usual = same && expected == (long long)r->h.seq;
        if (usual && lane->count > 0)
            usual = now - last_arrival <= outage_gap && now - lane->arrivals[0] <= max_wait &&
                    lane->count < LANE_MAX;
    }
    Py_CLEAR(slots);
    Py_CLEAR(next);
    Py_CLEAR(ssrc);
    Py_CLEAR(behind);
    if (!usual) {
        Py_DECREF(lane_object);
        return assemble_in_python(feed, segment, r, now_obj);
    }

    if (set_owned(assembler, NAME(_last_arrival), Py_NewRef(now_obj)) < 0)
        goto error;
    Frame frames[2];
    int made = 0, released;
    if (lane->count > 0 && lane->timestamp != r->h.timestamp) {
        /* the held frame ended without a marker bit: released at this packet */
        released = release_frame(lane, assembler, r->h.seq, now_obj, &frames[made]);
        if (released < 0)
            goto error;
        made += released;
    }
    int i = lane->count;
    lane->payloads[i] = Py_NewRef(r->payload);
    lane->descriptors[i] = r->descriptor;
    lane->arrivals[i] = now;
    lane->seqs[i] = r->h.seq;
    lane->ssrcs[i] = r->h.ssrc;
    lane->seconds[i] = (unsigned char)r->h.second;
    lane->timestamp = r->h.timestamp;
    lane->count = i + 1;
    if (marker_of(r)) {
        released = release_frame(lane, assembler, r->h.seq + 1, now_obj, &frames[made]);
        if (released < 0) {
            publish_frames(feed, segment, frames, made);
            goto error;
        }
        made += released;
    }
    Py_DECREF(lane_object);
    return publish_frames(feed, segment, frames, made);

error:
    Py_XDECREF(slots);
    Py_XDECREF(next);
    Py_XDECREF(ssrc);
    Py_XDECREF(behind);
    Py_DECREF(lane_object);
    return -1;
}

/* AudioPacketGate.add for the next packet in order with nothing held, else Python's. */
int
assemble_audio(PyObject *feed, PyObject *gate, PyObject *segment, Relayed *r, PyObject *now_obj)
{
    PyObject *held = GET_ATTR(gate, NAME(_held));
    if (held == NULL)
        return -1;
    int empty = PyDict_Check(held) && PyDict_GET_SIZE(held) == 0;
    Py_DECREF(held);
    long long next;
    int usual = 0;
    if (empty) {
        PyObject *ssrc = GET_ATTR(gate, NAME(_ssrc));
        if (ssrc == NULL)
            return -1;
        usual = PyObject_RichCompareBool(ssrc, r->ssrc, Py_EQ);
        Py_DECREF(ssrc);
        if (usual < 0 || (usual && get_ll(gate, NAME(_next), &next) < 0))
            return -1;
        usual = usual && next == (long long)r->h.seq;
    }
    if (!usual)
        return assemble_in_python(feed, segment, r, now_obj);
    if (set_ll(gate, NAME(_next), (r->h.seq + 1) & 0xFFFF) < 0)
        return -1;
    Frame frame = {.video = 0,
                   .data = Py_NewRef(r->payload),
                   .timestamp = r->h.timestamp,
                   .keyframe = 1,
                   .ssrc = r->h.ssrc,
                   .arrival = now_obj,
                   .after_loss = 0};
    return publish_frames(feed, segment, &frame, 1);
}

int
frame_lane_init(PyObject *module)
{
    if (PyType_Ready(&FrameLaneType) < 0)
        return -1;
    Py_INCREF(&FrameLaneType);
    if (PyModule_AddObject(module, "FrameLane", (PyObject *)&FrameLaneType) < 0) {
        Py_DECREF(&FrameLaneType);
        return -1;
    }
    return 0;
}
