/*
 * A complete frame from the relay's C chain (see `_relay_lane.c`): what `Feed.publish` (and
 * `GatedFeed.publish` with its gate open) does with it, then what each recorder does
 * (`recorder.RecordingTap.offer` -> `ParticipantRecorder.write` -> `PacketLogWriter.write`:
 * one record appended to the segment's packet log), on the same Python objects. The usual
 * case is checked first without changing anything: the feed's current segment, forwarding
 * open, an SSRC known, for video no keyframe awaited, and every frame subscriber a recording
 * tap whose recorder writes this segment already. Anything else goes to `Feed.publish` with an
 * `EncodedFrame`, as Python's assembler hands it.
 */
#include "_relay_lane.h"

/* EncodedFrame(kind, data, rtp_timestamp, keyframe, ssrc, arrival, after_loss) */
static PyObject *
encoded_frame(Frame *f)
{
    PyObject *ts = PyLong_FromUnsignedLong(f->timestamp);
    PyObject *source = PyLong_FromUnsignedLong(f->ssrc);
    PyObject *frame = NULL;
    if (ts != NULL && source != NULL) {
        PyObject *args[7] = {f->video ? str_video : str_audio,
                             f->data,
                             ts,
                             f->keyframe ? Py_True : Py_False,
                             source,
                             f->arrival,
                             f->after_loss ? Py_True : Py_False};
        frame = PyObject_Vectorcall(encoded_frame_type, args, 7, NULL);
    }
    Py_XDECREF(ts);
    Py_XDECREF(source);
    return frame;
}

static int
publish_in_python(PyObject *feed, PyObject *segment, Frame *f)
{
    PyObject *frame = encoded_frame(f);
    if (frame == NULL)
        return -1;
    PyObject *args[2] = {frame, segment};
    int result = call_method(feed, NAME(publish), args, 2);
    Py_DECREF(frame);
    return result;
}

/* 1 when the recorder behind `tap` takes the frame as usual (its writer for this segment is
 * open), 0 when Python decides, -1 on an error. */
static int
recorder_usual(PyObject *tap, PyObject *segment, Frame *f)
{
    if ((PyObject *)Py_TYPE(tap) != recording_tap_type ||
        PyBytes_GET_SIZE(f->data) > max_frame_bytes)
        return 0;
    int result = -1;
    PyObject *own_segment = NULL, *writer = NULL, *file = NULL;
    PyObject *recorder = GET_ATTR(tap, NAME(_recorder));
    if (recorder == NULL)
        return -1;
    int closed = get_truth(recorder, NAME(_closed));
    if (closed != 0) {
        result = closed < 0 ? -1 : 0;
        goto done;
    }
    if ((own_segment = GET_ATTR(recorder, NAME(_segment))) == NULL ||
        (writer = GET_ATTR(recorder, NAME(_writer))) == NULL)
        goto done;
    int same = PyObject_RichCompareBool(own_segment, segment, Py_EQ);
    if (same <= 0 || writer == Py_None) {
        result = same < 0 ? -1 : 0;
        goto done;
    }
    if ((file = GET_ATTR(writer, NAME(_file))) == NULL)
        goto done;
    result = file != Py_None;
done:
    Py_DECREF(recorder);
    Py_XDECREF(own_segment);
    Py_XDECREF(writer);
    Py_XDECREF(file);
    return result;
}

/* 1 when Feed.publish would count the frame and hand it to its recorders, and nothing else. */
static int
frame_usual(PyObject *feed, PyObject *segment, Frame *f, PyObject *subscribers)
{
    PyObject *own_segment = GET_ATTR(feed, NAME(_segment));
    if (own_segment == NULL)
        return -1;
    int usual = PyObject_RichCompareBool(own_segment, segment, Py_EQ);
    Py_DECREF(own_segment);
    if (usual <= 0)
        return usual;
    PyObject *gate = GET_ATTR(feed, NAME(forwarding_gate));
    if (gate == NULL)
        return -1;
    usual = gate == Py_None ? 1 : get_truth(gate, NAME(is_open)); /* GatedFeed's waiting room */
    Py_DECREF(gate);
    if (usual <= 0)
        return usual;
    PyObject *last_ssrc = GET_ATTR(feed, NAME(_last_ssrc));
    if (last_ssrc == NULL)
        return -1;
    usual = last_ssrc != Py_None;
    Py_DECREF(last_ssrc);
    if (usual && f->video && !f->keyframe) {
        /* a delta frame after a loss, or while a keyframe is needed or wanted: Python's */
        if (f->after_loss)
            return 0;
        int needed = get_truth(feed, NAME(_needs_keyframe));
        int wanted = needed == 0 ? get_truth(feed, NAME(_keyframe_wanted)) : 0;
        if (needed < 0 || wanted < 0)
            return -1;
        usual = !needed && !wanted;
    }
    if (!usual)
        return 0;
    if (!PyList_Check(subscribers))
        return 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(subscribers); i++) {
        /* held: reading the recorder's attributes may run Python that changes the list */
        PyObject *tap = Py_NewRef(PyList_GET_ITEM(subscribers, i));
        usual = recorder_usual(tap, segment, f);
        Py_DECREF(tap);
        if (usual <= 0)
            return usual;
    }
    return 1;
}

static void
put_u32(unsigned char *at, uint32_t value)
{
    at[0] = (unsigned char)(value >> 24);
    at[1] = (unsigned char)(value >> 16);
    at[2] = (unsigned char)(value >> 8);
    at[3] = (unsigned char)value;
}

/* PacketLogWriter.write: one record (kind, flags, RTP timestamp, arrival in us since the
 * segment's origin, length; packet_log._RECORD) and the data, in one buffered write; a flush
 * at most every flush interval. -1 with an exception set (an OSError: the disk). */
static int
write_record(PyObject *writer, Frame *f)
{
    double origin, last_flush, interval, arrival = PyFloat_AsDouble(f->arrival);
    if ((arrival == -1.0 && PyErr_Occurred()) || get_double(writer, NAME(_origin), &origin) < 0)
        return -1;
    Py_ssize_t length = PyBytes_GET_SIZE(f->data);
    PyObject *record = PyBytes_FromStringAndSize(NULL, 18 + length);
    if (record == NULL)
        return -1;
    unsigned char *at = (unsigned char *)PyBytes_AS_STRING(record);
    /* Python's round(): to the nearest, ties to even (the default rounding mode) */
    long long arrival_us = (long long)nearbyint((arrival - origin) * 1000000.0);
    at[0] = f->video ? 1 : 0;
    at[1] = f->keyframe ? 1 : 0;
    put_u32(at + 2, f->timestamp);
    put_u32(at + 6, (uint32_t)((unsigned long long)arrival_us >> 32));
    put_u32(at + 10, (uint32_t)arrival_us);
    put_u32(at + 14, (uint32_t)length);
    memcpy(at + 18, PyBytes_AS_STRING(f->data), (size_t)length);
    PyObject *file = GET_ATTR(writer, NAME(_file));
    if (file == NULL) {
        Py_DECREF(record);
        return -1;
    }
    PyObject *args[1] = {record};
    int result = call_method(file, NAME(write), args, 1);
    Py_DECREF(record);
    if (result == 0 && (add_ll(writer, NAME(frames), 1) < 0 ||
                        add_ll(writer, NAME(bytes), length) < 0 ||
                        get_double(writer, NAME(_last_flush), &last_flush) < 0 ||
                        get_double(writer, NAME(_flush_interval), &interval) < 0))
        result = -1;
    if (result == 0 && arrival - last_flush >= interval) {
        result = call_method(file, NAME(flush), NULL, 0);
        if (result == 0)
            result = set_owned(writer, NAME(_last_flush), Py_NewRef(f->arrival));
    }
    Py_DECREF(file);
    return result;
}

/* ParticipantRecorder.write for a tap recorder_usual() accepted: an OSError goes to the
 * recorder's _write_failed (the call goes on without a recording), as in Python. */
static int
record(PyObject *tap, Frame *f)
{
    PyObject *recorder = GET_ATTR(tap, NAME(_recorder));
    if (recorder == NULL)
        return -1;
    PyObject *writer = GET_ATTR(recorder, NAME(_writer));
    int result = writer == NULL ? -1 : write_record(writer, f);
    Py_XDECREF(writer);
    if (result < 0 && PyErr_ExceptionMatches(PyExc_OSError)) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        PyObject *args[1] = {value != NULL ? value : Py_None};
        result = call_method(recorder, NAME(_write_failed), args, 1);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
    }
    Py_DECREF(recorder);
    return result;
}

int
publish_frame(PyObject *feed, PyObject *segment, Frame *f)
{
    PyObject *subscribers = GET_ATTR(feed, NAME(_frame_subscribers));
    if (subscribers == NULL)
        return -1;
    int result = frame_usual(feed, segment, f, subscribers);
    if (result <= 0) {
        Py_DECREF(subscribers);
        return result < 0 ? -1 : publish_in_python(feed, segment, f);
    }
    /* Feed.publish's counting */
    if (add_ll(feed, NAME(frames_in), 1) < 0 ||
        add_ll(feed, NAME(bytes_in), PyBytes_GET_SIZE(f->data)) < 0 ||
        (f->video && f->keyframe &&
         (add_ll(feed, NAME(keyframes_in), 1) < 0 ||
          set_owned(feed, NAME(_needs_keyframe), Py_NewRef(Py_False)) < 0 ||
          set_owned(feed, NAME(_keyframe_wanted), Py_NewRef(Py_False)) < 0))) {
        Py_DECREF(subscribers);
        return -1;
    }
    for (Py_ssize_t i = 0; result >= 0 && i < PyList_GET_SIZE(subscribers); i++) {
        PyObject *tap = Py_NewRef(PyList_GET_ITEM(subscribers, i));
        result = record(tap, f);
        Py_DECREF(tap);
    }
    Py_DECREF(subscribers);
    return result < 0 ? -1 : 0;
}
