/*
 * The relay's per-packet chain in C (issue 15): one call per received datagram does what
 * these Python functions do, on the same Python objects, for the packets that need nothing
 * unusual:
 *
 *   datagram_demux.demux_datagram       RFC 7983's first byte: RTP/RTCP past aioice's STUN parse
 *   fast_receive.FastReceive._datagram  SRTP on the transport's current session
 *   fast_receive.FastReceive._handle    statistics, NACK window, estimator bytes, the sink
 *   feed_sink.FeedSink.__call__         the participant's media presence
 *   forwarding.Feed.publish_packet      byte budget, counters, fan-out, frame assembly
 *   forwarded_track.ForwardedTrack.forward  sequence/timestamp rewriting, counters
 *   rtp_send_path.RtpSendPath.send      the send guards, then RtpSender's C send
 *   assembly.VideoFrameAssembler.add    in-order frames (held in a FrameLane), released whole
 *   assembly.AudioPacketGate.add        the next packet in order
 *   forwarding.Feed.publish             a complete frame counted and recorded (_frame_publish.c)
 *
 * The Python objects stay the only state: this code reads and writes their attributes, so
 * Python and C can take turns packet by packet. Each step first checks, without changing
 * anything, that its packet is the usual case; anything else (a new SSRC, RTX, a missing
 * packet, a restart, a cut, a slow socket, a new nominated pair, a stalled frame, ...) is
 * handed to the Python function of that step, which stays the reference for what is done.
 * Python is also called for what happens per video frame (the bitrate estimator) or per
 * event (NACKs, PLIs, a frame that needs a decision). In-order assembly is in
 * `_frame_lane.c`, a complete frame's counting and recording in `_frame_publish.c`.
 *
 * Everything runs on the event loop thread with the GIL held.
 */
#include "_relay_lane.h"

static const char *name_strings[] = {NAME_LIST(NAME_STRING)};
PyObject *names[NAME_COUNT];
PyObject *rtp_slice_type, *encoded_frame_type, *feed_sink_type, *dtls_connected,
    *default_starts_frame, *default_is_keyframe, *str_video, *str_audio, *one,
    *recording_tap_type;
long long max_send_buffer, max_frame_bytes;
double silence_after, outage_gap;

/* RtpSendPath.send's guards, then RtpSender's send: 1 sent, 0 not the usual case (Python's
 * send decides), -1 error. The sender, transport, SRTP session, nominated pair and socket are
 * the ones RtpSendPath._use handed to the RtpSender (RtpSender.use). */
static int
send_usual(PyObject *out, unsigned long seq, unsigned long long timestamp, Relayed *r,
           unsigned long long ntp)
{
    int result = 0;
    PyObject *state = NULL, *tx_srtp = NULL, *size = NULL;
    PyObject *native = GET_ATTR(out, NAME(_native));
    if (native == NULL)
        return -1;
    if (Py_TYPE(native) != &RtpSenderType)
        goto done;
    RtpSender *sender = (RtpSender *)native;
    if (sender->pair == NULL || sender->nominated == NULL || sender->socket == NULL ||
        sender->session == NULL)
        goto done;
    int enabled = get_truth(sender->sender, NAME(_enabled));
    if (enabled <= 0) {
        result = enabled;
        goto done;
    }
    if ((state = GET_ATTR(sender->dtls, NAME(_state))) == NULL ||
        (tx_srtp = GET_ATTR(sender->dtls, NAME(_tx_srtp))) == NULL) {
        result = -1;
        goto done;
    }
    if (state != dtls_connected || tx_srtp != sender->session)
        goto done; /* not connected, or a new SRTP session (RtpSendPath._use) */
    PyObject *current = PyDict_GetItemWithError(sender->nominated, one); /* borrowed */
    if (current != sender->pair) {
        result = PyErr_Occurred() ? -1 : 0; /* none, or a new nominated pair */
        goto done;
    }
    size = PyObject_CallMethodNoArgs(sender->socket, NAME(get_write_buffer_size));
    if (size == NULL) {
        result = -1;
        goto done;
    }
    long long buffered = PyLong_AsLongLong(size);
    if (buffered == -1 && PyErr_Occurred()) {
        result = -1;
        goto done;
    }
    if (buffered > max_send_buffer)
        goto done; /* backed up: Python's send says so and the track restarts at a keyframe */
    result = rtp_sender_send(sender, seq, timestamp, marker_of(r), PyBytes_AS_STRING(r->payload),
                             payload_length(r), ntp) < 0
                 ? -1
                 : 1;
done:
    Py_DECREF(native);
    Py_XDECREF(state);
    Py_XDECREF(tx_srtp);
    Py_XDECREF(size);
    return result;
}

/* ForwardedTrack.forward in the usual case (forwarding, in this run, sent at once), else
 * Python's. */
static int
forward_to(PyObject *track, Relayed *r, int key_start, PyObject *source, PyObject *now_obj,
           double now, unsigned long long ntp, PyObject **ntp_obj)
{
    PyObject *out = GET_ATTR(track, NAME(_out));
    if (out == NULL)
        return -1;
    int result = 0;
    if (out == Py_None)
        goto done;
    int started = get_truth(out, NAME(started));
    if (started <= 0) {
        result = started;
        goto done;
    }
    PyObject *own_source = GET_ATTR(track, NAME(_source));
    if (own_source == NULL) {
        result = -1;
        goto done;
    }
    int same = PyObject_RichCompareBool(own_source, source, Py_EQ);
    Py_DECREF(own_source);
    int awaiting = same > 0 ? get_truth(track, NAME(_await_keyframe)) : 0;
    if (same < 0 || awaiting < 0) {
        result = -1;
        goto done;
    }
    int sent = 0;
    long long run_start, seq_offset, ts_offset;
    unsigned long out_seq = 0;
    unsigned long long out_ts = 0;
    if (same && !awaiting) {
        if (get_ll(track, NAME(_run_start), &run_start) < 0) {
            result = -1;
            goto done;
        }
        if ((((long long)r->h.seq - run_start) & 0xFFFF) >= 0x8000)
            goto done; /* from before this run (a late retransmission) */
        if (get_ll(track, NAME(_seq_offset), &seq_offset) < 0 ||
            get_ll(track, NAME(_ts_offset), &ts_offset) < 0) {
            result = -1;
            goto done;
        }
        out_seq = (unsigned long)(((long long)r->h.seq + seq_offset) & 0xFFFF);
        out_ts = (unsigned long long)(((long long)r->h.timestamp + ts_offset) & 0xFFFFFFFFLL);
        sent = send_usual(out, out_seq, out_ts, r, ntp);
        if (sent < 0) {
            result = -1;
            goto done;
        }
    }
    if (!sent) { /* a restart, a new source, a guard that said no: Python's forward */
        PyObject *slice = slice_of(r);
        if (*ntp_obj == NULL)
            *ntp_obj = PyLong_FromUnsignedLongLong(ntp);
        if (slice == NULL || *ntp_obj == NULL) {
            result = -1;
            goto done;
        }
        PyObject *args[5] = {slice, key_start ? Py_True : Py_False, source, now_obj, *ntp_obj};
        result = call_method(track, NAME(forward), args, 5);
        goto done;
    }
    /* sent: the bookkeeping after it */
    long long frame_ts;
    PyObject *counters = GET_ATTR(track, NAME(counters));
    PyObject *max_out = GET_ATTR(track, NAME(_max_out));
    if (counters == NULL || max_out == NULL || get_ll(track, NAME(_frame_ts), &frame_ts) < 0)
        goto bookkeeping_failed;
    if ((long long)out_ts != frame_ts) {
        if (set_ll(track, NAME(_frame_ts), (long long)out_ts) < 0 ||
            add_ll(track, NAME(frames_out), 1) < 0 ||
            add_ll(counters, NAME(frames_forwarded), 1) < 0)
            goto bookkeeping_failed;
    }
    int higher = max_out == Py_None;
    if (!higher) {
        long long highest = PyLong_AsLongLong(max_out);
        if (highest == -1 && PyErr_Occurred())
            goto bookkeeping_failed;
        higher = (((long long)out_seq - highest) & 0xFFFF) < 0x8000;
    }
    if ((higher && set_ll(track, NAME(_max_out), (long long)out_seq) < 0) ||
        set_ll(track, NAME(_last_out_ts), (long long)out_ts) < 0 ||
        set_double(track, NAME(_last_at), now) < 0 || add_ll(track, NAME(packets_out), 1) < 0 ||
        add_ll(counters, NAME(packets_forwarded), 1) < 0 ||
        add_ll(counters, NAME(bytes_forwarded), payload_length(r)) < 0)
        goto bookkeeping_failed;
    Py_DECREF(counters);
    Py_DECREF(max_out);
    goto done;
bookkeeping_failed:
    Py_XDECREF(counters);
    Py_XDECREF(max_out);
    result = -1;
done:
    Py_DECREF(out);
    return result;
}

/* Feed.publish_packet in the usual case (within budget, the same SSRC, not cut), else
 * Python's. */
static int
publish_packet(PyObject *feed, PyObject *segment, Relayed *r, double now)
{
    int result = -1;
    PyObject *now_obj = PyFloat_FromDouble(now);
    PyObject *own_segment = NULL, *budget = NULL, *last_ssrc = NULL, *kind = NULL,
             *tracks = NULL, *source = NULL, *ntp_obj = NULL, *part = NULL;
    if (now_obj == NULL)
        return -1;
    if ((own_segment = GET_ATTR(feed, NAME(_segment))) == NULL)
        goto done;
    int current = PyObject_RichCompareBool(segment, own_segment, Py_EQ);
    if (current <= 0) { /* a replaced connection still delivering its last packets */
        result = current;
        goto done;
    }
    double rate, capacity, tokens, at;
    if ((budget = GET_ATTR(feed, NAME(_budget))) == NULL ||
        get_double(budget, NAME(_rate), &rate) < 0 ||
        get_double(budget, NAME(_capacity), &capacity) < 0 ||
        get_double(budget, NAME(_tokens), &tokens) < 0 || get_double(budget, NAME(_at), &at) < 0)
        goto done;
    tokens = fmin(capacity, tokens + (now - at) * rate);
    Py_ssize_t size = payload_length(r);
    if ((last_ssrc = GET_ATTR(feed, NAME(_last_ssrc))) == NULL ||
        (kind = GET_ATTR(feed, NAME(kind))) == NULL)
        goto done;
    int same_ssrc = last_ssrc != Py_None && PyObject_RichCompareBool(last_ssrc, r->ssrc, Py_EQ);
    if (same_ssrc < 0)
        goto done;
    int video = PyUnicode_Check(kind) && PyUnicode_CompareWithASCIIString(kind, "video") == 0;
    int cut = video ? get_truth(feed, NAME(_cut)) : 0;
    if (cut < 0)
        goto done;
    if ((double)size > tokens || !same_ssrc || cut) {
        /* over budget, a new SSRC, after a cut: Python's publish_packet */
        PyObject *slice = slice_of(r);
        if (slice == NULL)
            goto done;
        PyObject *args[3] = {slice, segment, now_obj};
        result = call_method(feed, NAME(publish_packet), args, 3);
        goto done;
    }
    if (set_double(budget, NAME(_tokens), tokens - (double)size) < 0 ||
        set_double(budget, NAME(_at), now) < 0 || add_ll(feed, NAME(packets_in), 1) < 0)
        goto done;
    int key_start = video ? vp8_starts_keyframe((const unsigned char *)PyBytes_AS_STRING(
                                                    r->payload),
                                                size, r->descriptor)
                          : 1;
    if ((tracks = GET_ATTR(feed, NAME(_tracks))) == NULL)
        goto done;
    if (PyList_Check(tracks) && PyList_GET_SIZE(tracks) > 0) {
        /* Feed.forwarding_open: its forwarding_gate is None or open */
        PyObject *gate = GET_ATTR(feed, NAME(forwarding_gate));
        int forwarding = gate == NULL ? -1 : gate == Py_None ? 1 : get_truth(gate, NAME(is_open));
        Py_XDECREF(gate);
        if (forwarding < 0)
            goto done;
        if (forwarding) {
            if ((source = GET_ATTR(feed, NAME(source))) == NULL)
                goto done;
            unsigned long long ntp =
                (unsigned long long)((wall_clock() + NTP_EPOCH_OFFSET) * 4294967296.0);
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(tracks); i++) {
                PyObject *track = Py_NewRef(PyList_GET_ITEM(tracks, i));
                int forwarded =
                    forward_to(track, r, key_start, source, now_obj, now, ntp, &ntp_obj);
                Py_DECREF(track);
                if (forwarded < 0)
                    goto done;
            }
        }
    }
    if (video) {
        if ((part = GET_ATTR(feed, NAME(_assembler))) == NULL)
            goto done;
        result = part == Py_None ? 0 : assemble_video(feed, part, segment, r, now_obj, now);
    } else {
        if ((part = GET_ATTR(feed, NAME(_gate))) == NULL)
            goto done;
        result = part == Py_None ? 0 : assemble_audio(feed, part, segment, r, now_obj);
    }
done:
    Py_DECREF(now_obj);
    Py_XDECREF(own_segment);
    Py_XDECREF(budget);
    Py_XDECREF(last_ssrc);
    Py_XDECREF(kind);
    Py_XDECREF(tracks);
    Py_XDECREF(source);
    Py_XDECREF(ntp_obj);
    Py_XDECREF(part);
    return result;
}

/* FeedSink.__call__: the media presence, then the feed. */
static int
feed_sink(PyObject *sink, Relayed *r)
{
    int result = -1;
    PyObject *presence = NULL, *feed = NULL, *segment = NULL;
    PyObject *clock = GET_ATTR(sink, NAME(time));
    if (clock == NULL)
        return -1;
    PyObject *now_obj = PyObject_CallNoArgs(clock);
    Py_DECREF(clock);
    if (now_obj == NULL)
        return -1;
    double now = PyFloat_AsDouble(now_obj);
    Py_DECREF(now_obj);
    if (now == -1.0 && PyErr_Occurred())
        return -1;
    double heard_at;
    if ((presence = GET_ATTR(sink, NAME(presence))) == NULL ||
        get_double(presence, NAME(heard_at), &heard_at) < 0)
        goto done;
    if (now - heard_at > silence_after) {
        if (set_double(presence, NAME(gap_from), heard_at) < 0 ||
            set_double(presence, NAME(resumed_at), now) < 0)
            goto done;
    }
    if (set_double(presence, NAME(heard_at), now) < 0 ||
        (feed = GET_ATTR(sink, NAME(feed))) == NULL ||
        (segment = GET_ATTR(sink, NAME(segment))) == NULL)
        goto done;
    result = publish_packet(feed, segment, r, now);
done:
    Py_XDECREF(presence);
    Py_XDECREF(feed);
    Py_XDECREF(segment);
    return result;
}

/* FastReceive._handle(payload, ext_pos, padding, seq, timestamp, ssrc, second, packet) */
static int
handle_in_python(PyObject *path, Relayed *r)
{
    PyObject *packet = packet_of(r);
    if (packet == NULL)
        return -1;
    PyObject *result = PyObject_CallMethod(path, "_handle", "OnnIkOiO", r->payload, r->h.ext_pos,
                                           r->h.padding, r->h.seq, (unsigned long)r->h.timestamp,
                                           r->ssrc, r->h.second, packet);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* The RTCP statistics aiortc's StreamStatistics.add keeps (max_seq known). */
static int
note_statistics(PyObject *stats, Relayed *r, long long max_seq, long long clock_rate)
{
    if (add_ll(stats, NAME(packets_received), 1) < 0)
        return -1;
    long long seq = r->h.seq;
    long long ahead = (seq - max_seq) & 0xFFFF;
    if (!(0 < ahead && ahead < 0x8000))
        return 0;
    if (seq < max_seq && add_ll(stats, NAME(cycles), 1 << 16) < 0)
        return -1;
    if (set_ll(stats, NAME(max_seq), seq) < 0)
        return -1;
    long long arrival = (long long)(r->wall * (double)clock_rate);
    long long timestamp = r->h.timestamp;
    long long last_timestamp, last_arrival, jitter_q4;
    if (get_ll(stats, NAME(_last_timestamp), &last_timestamp) < 0)
        return -1;
    if (timestamp != last_timestamp) {
        if (get_ll(stats, NAME(_last_arrival), &last_arrival) < 0 ||
            get_ll(stats, NAME(_jitter_q4), &jitter_q4) < 0)
            return -1;
        long long diff = llabs((arrival - last_arrival) - (timestamp - last_timestamp));
        if (set_ll(stats, NAME(_jitter_q4), jitter_q4 + diff - ((jitter_q4 + 8) >> 4)) < 0)
            return -1;
    }
    if (set_ll(stats, NAME(_last_arrival), arrival) < 0 ||
        set_ll(stats, NAME(_last_timestamp), timestamp) < 0)
        return -1;
    return 0;
}

/* The NACK window: the next packet with nothing missing here, anything else in Python. */
static int
note_sequence(PyObject *path, PyObject *inbound, PyObject *nacks, Relayed *r)
{
    long long max_seq;
    PyObject *missing = GET_ATTR(nacks, NAME(missing));
    if (missing == NULL)
        return -1;
    Py_ssize_t missing_count = PyAnySet_Check(missing) ? PySet_GET_SIZE(missing) : -1;
    Py_DECREF(missing);
    if (get_ll(nacks, NAME(max_seq), &max_seq) < 0)
        return -1;
    if (missing_count == 0 && max_seq >= 0 && (((long long)r->h.seq - max_seq) & 0xFFFF) == 1)
        return set_ll(nacks, NAME(max_seq), r->h.seq);
    PyObject *seq = PyLong_FromUnsignedLong(r->h.seq);
    if (seq == NULL)
        return -1;
    PyObject *args[3] = {inbound, r->ssrc, seq};
    int result = call_method(path, NAME(_nack_check), args, 3);
    Py_DECREF(seq);
    return result;
}

/* Hands an exception raised by the sink to FastReceive._sink_failed (which logs it); an
 * exception that is not an Exception (KeyboardInterrupt, ...) goes on. */
static int
sink_failed(PyObject *path)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return -1;
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL)
        PyException_SetTraceback(value, traceback);
    PyObject *args[1] = {value != NULL ? value : Py_None};
    int result = call_method(path, NAME(_sink_failed), args, 1);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return result;
}

/* FastReceive._handle for one well-formed packet. */
static int
handle(PyObject *path, PyObject *counters, Relayed *r)
{
    int result = -1;
    PyObject *streams = NULL, *inbound = NULL, *receiver = NULL, *payload_types = NULL,
             *payload_type = NULL, *stats = NULL, *max_seq = NULL, *estimator = NULL,
             *nacks = NULL, *kind = NULL, *sink = NULL;
    if ((streams = GET_ATTR(path, NAME(_streams))) == NULL)
        goto done;
    if (!PyDict_Check(streams)) {
        PyErr_SetString(PyExc_TypeError, "FastReceive._streams is not a dict");
        goto done;
    }
    inbound = PyDict_GetItemWithError(streams, r->ssrc);
    if (inbound == NULL) {
        if (!PyErr_Occurred())
            result = handle_in_python(path, r); /* a new SSRC: routed in Python */
        goto done;
    }
    Py_INCREF(inbound);
    if ((receiver = GET_ATTR(inbound, NAME(receiver))) == NULL)
        goto done;
    int enabled = get_truth(receiver, NAME(_enabled));
    if (enabled <= 0) {
        result = enabled;
        goto done;
    }
    if ((payload_types = GET_ATTR(inbound, NAME(payload_types))) == NULL ||
        (payload_type = PyLong_FromLong(r->h.second & 0x7F)) == NULL ||
        (stats = GET_ATTR(inbound, NAME(stats))) == NULL ||
        (max_seq = GET_ATTR(stats, NAME(max_seq))) == NULL)
        goto done;
    int primary = PySet_Contains(payload_types, payload_type);
    if (primary < 0)
        goto done;
    if (!primary || max_seq == Py_None) { /* RTX, an unknown type, the first packet */
        result = handle_in_python(path, r);
        goto done;
    }
    long long last_seq = PyLong_AsLongLong(max_seq);
    long long clock_rate;
    if ((last_seq == -1 && PyErr_Occurred()) ||
        get_ll(inbound, NAME(clock_rate), &clock_rate) < 0 ||
        note_statistics(stats, r, last_seq, clock_rate) < 0)
        goto done;
    if ((estimator = GET_ATTR(inbound, NAME(estimator))) == NULL ||
        (estimator != Py_None &&
         add_ll(inbound, NAME(frame_bytes), payload_length(r) + r->h.padding) < 0))
        goto done;
    if ((nacks = GET_ATTR(inbound, NAME(nacks))) == NULL ||
        (nacks != Py_None && note_sequence(path, inbound, nacks, r) < 0))
        goto done;
    if (marker_of(r) && estimator != Py_None) { /* once per video frame */
        PyObject *packet = packet_of(r);
        PyObject *ext_pos = PyLong_FromSsize_t(r->h.ext_pos);
        PyObject *now = PyFloat_FromDouble(r->wall);
        int estimated = -1;
        if (packet != NULL && ext_pos != NULL && now != NULL) {
            PyObject *args[5] = {inbound, packet, ext_pos, r->ssrc, now};
            estimated = call_method(path, NAME(_estimate), args, 5);
        }
        Py_XDECREF(ext_pos);
        Py_XDECREF(now);
        if (estimated < 0)
            goto done;
    }
    if (payload_length(r) == 0) {
        result = add_ll(counters, NAME(malformed), 1); /* nothing to forward or record */
        goto done;
    }
    if ((kind = GET_ATTR(inbound, NAME(kind))) == NULL)
        goto done;
    r->video = PyUnicode_Check(kind) && PyUnicode_CompareWithASCIIString(kind, "video") == 0;
    if (r->video) {
        r->descriptor = vp8_descriptor_length(
            (const unsigned char *)PyBytes_AS_STRING(r->payload), payload_length(r));
        if (r->descriptor < 0) {
            result = add_ll(counters, NAME(malformed), 1);
            goto done;
        }
    }
    if ((sink = GET_ATTR(inbound, NAME(sink))) == NULL)
        goto done;
    int want_keyframe;
    if ((PyObject *)Py_TYPE(sink) == feed_sink_type) {
        want_keyframe = feed_sink(sink, r) < 0 ? -1 : 0; /* a FeedSink never asks */
    } else {
        PyObject *slice = slice_of(r);
        PyObject *wanted = slice == NULL ? NULL : PyObject_CallOneArg(sink, slice);
        want_keyframe = wanted == NULL ? -1 : PyObject_IsTrue(wanted);
        Py_XDECREF(wanted);
    }
    if (want_keyframe < 0) {
        /* never let a relay bug kill the receive path of the whole transport */
        result = sink_failed(path);
        goto done;
    }
    if (want_keyframe) {
        PyObject *args[2] = {inbound, r->ssrc};
        result = call_method(path, NAME(_send_pli), args, 2);
        goto done;
    }
    result = 0;
done:
    Py_XDECREF(streams);
    Py_XDECREF(inbound);
    Py_XDECREF(receiver);
    Py_XDECREF(payload_types);
    Py_XDECREF(payload_type);
    Py_XDECREF(stats);
    Py_XDECREF(max_seq);
    Py_XDECREF(estimator);
    Py_XDECREF(nacks);
    Py_XDECREF(kind);
    Py_XDECREF(sink);
    return result;
}

/*
 * relay_rtp(path, ctx, datagram) -> None
 * `path` is a fast_receive.FastReceive, `ctx` its SRTP session's libsrtp context: decrypts
 * and parses the datagram (as unprotect_rtp does), counts it, then does _handle's work.
 */
static PyObject *
relay_rtp(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned char buffer[BUFFER_BYTES];
    void *ctx;
    if (nargs != 3 || !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "relay_rtp(path, ctx: int, datagram: bytes)");
        return NULL;
    }
    if (rtp_slice_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_relay was not called");
        return NULL;
    }
    if (check_functions() < 0 || read_pointer(args[1], &ctx) < 0)
        return NULL;
    PyObject *path = args[0];
    PyObject *counters = GET_ATTR(path, NAME(counters));
    if (counters == NULL)
        return NULL;
    Relayed r = {0};
    r.buffer = buffer;
    int status = unprotect_and_parse(ctx, PyBytes_AS_STRING(args[2]), PyBytes_GET_SIZE(args[2]),
                                     buffer, &r.h);
    int result;
    if (status == UNDECRYPTABLE) {
        result = add_ll(counters, NAME(undecryptable), 1);
    } else if (add_ll(counters, NAME(packets), 1) < 0) {
        result = -1;
    } else if (status == MALFORMED) {
        result = add_ll(counters, NAME(malformed), 1);
    } else {
        r.wall = wall_clock();
        r.payload = PyBytes_FromStringAndSize((const char *)buffer + r.h.pos, r.h.end - r.h.pos);
        r.ssrc = PyLong_FromUnsignedLong(r.h.ssrc);
        result = r.payload == NULL || r.ssrc == NULL ? -1 : handle(path, counters, &r);
        relayed_clear(&r);
    }
    Py_DECREF(counters);
    if (result < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* aioice's StunProtocol.datagram_received, for what datagram_demux() does not take */
static PyObject *stun_datagram_received;

/*
 * The datagram_received of aioice's socket protocol (datagram_demux.demux_datagram in C):
 * RTP and RTCP (first byte 128-191, RFC 7983) go straight to the connection's data_received
 * (the chain's entry, for a transport with a lean receive path), anything else to aioice's own
 * method, which parses STUN.
 */
static PyObject *
demux_datagram(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "datagram_received(protocol, data, addr)");
        return NULL;
    }
    PyObject *protocol = args[0], *data = args[1];
    if (!PyBytes_Check(data) || PyBytes_GET_SIZE(data) == 0 ||
        (unsigned char)PyBytes_AS_STRING(data)[0] < 128 ||
        (unsigned char)PyBytes_AS_STRING(data)[0] > 191)
        return PyObject_Vectorcall(stun_datagram_received, args, 3, NULL);
    PyObject *receiver = GET_ATTR(protocol, NAME(receiver));
    PyObject *candidate =
        receiver == NULL ? NULL : GET_ATTR(protocol, NAME(local_candidate));
    PyObject *component =
        candidate == NULL ? NULL : GET_ATTR(candidate, NAME(component));
    PyObject *result = NULL;
    if (component != NULL) {
        PyObject *call[3] = {receiver, data, component};
        result = PyObject_VectorcallMethod(NAME(data_received), call, 3, NULL);
    }
    Py_XDECREF(receiver);
    Py_XDECREF(candidate);
    Py_XDECREF(component);
    return result;
}

static PyMethodDef demux_definition = {
    "datagram_received", (PyCFunction)(void (*)(void))demux_datagram, METH_FASTCALL,
    "aioice's datagram_received, RTP and RTCP sent straight to the connection"};

/*
 * datagram_demux(stun_datagram_received) -> a method for aioice.ice.StunProtocol
 * `stun_datagram_received` is aioice's own method, called for what is not RTP or RTCP.
 */
static PyObject *
datagram_demux(PyObject *module, PyObject *original)
{
    if (!PyCallable_Check(original)) {
        PyErr_SetString(PyExc_TypeError, "datagram_demux(stun_datagram_received)");
        return NULL;
    }
    Py_XSETREF(stun_datagram_received, Py_NewRef(original));
    PyObject *function = PyCFunction_New(&demux_definition, NULL);
    if (function == NULL)
        return NULL;
    PyObject *method = PyInstanceMethod_New(function); /* binds to the protocol like a def */
    Py_DECREF(function);
    return method;
}

/*
 * relay_datagram(path, datagram, component) -> None
 * What aioice's connection hands a FastReceive (its `data_received`): SRTP on the path's
 * current session goes to the chain; DTLS, RTCP, a new SRTP session and anything else go to
 * FastReceive._datagram, which decides.
 */
static PyObject *
relay_datagram(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "relay_datagram(path, datagram: bytes, component)");
        return NULL;
    }
    PyObject *path = args[0], *data = args[1];
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    PyObject *dtls = NULL, *srtp = NULL, *lean = NULL, *session = NULL, *context = NULL;
    int usual = size >= 12 && bytes[0] > 127 && bytes[0] < 192 && !(bytes[1] > 191 && bytes[1] < 209);
    if (usual) {
        if ((dtls = GET_ATTR(path, NAME(_dtls))) == NULL ||
            (srtp = GET_ATTR(dtls, NAME(_rx_srtp))) == NULL ||
            (lean = GET_ATTR(path, NAME(_rx_srtp))) == NULL)
            goto error;
        usual = srtp != Py_None && lean != Py_None;
        if (usual && ((session = GET_ATTR(lean, NAME(session))) == NULL ||
                      (context = GET_ATTR(path, NAME(_native_context))) == NULL))
            goto error;
        usual = usual && session == srtp && PyLong_Check(context) && PyObject_IsTrue(context);
    }
    if (!usual) {
        PyObject *result = PyObject_CallMethodObjArgs(path, NAME(_datagram), data, args[2], NULL);
        Py_XDECREF(dtls);
        Py_XDECREF(srtp);
        Py_XDECREF(lean);
        Py_XDECREF(session);
        Py_XDECREF(context);
        return result;
    }
    if (add_ll(dtls, NAME(_RTCDtlsTransport__rx_bytes), size) < 0 ||
        add_ll(dtls, NAME(_RTCDtlsTransport__rx_packets), 1) < 0)
        goto error;
    PyObject *relay_args[3] = {path, context, data};
    PyObject *result = relay_rtp(module, relay_args, 3);
    Py_DECREF(dtls);
    Py_DECREF(srtp);
    Py_DECREF(lean);
    Py_DECREF(session);
    Py_DECREF(context);
    return result;
error:
    Py_XDECREF(dtls);
    Py_XDECREF(srtp);
    Py_XDECREF(lean);
    Py_XDECREF(session);
    Py_XDECREF(context);
    return NULL;
}

/*
 * configure_relay(rtp_slice, encoded_frame, feed_sink, dtls_connected, starts_frame,
 *                 is_keyframe, recording_tap, max_send_buffer, max_frame_bytes,
 *                 silence_after, outage_gap)
 * The Python types and constants the chain uses (fast_receive calls it once, at import).
 */
static PyObject *
configure_relay(PyObject *module, PyObject *args, PyObject *kwargs)
{
    PyObject *slice, *frame, *sink, *connected, *starts, *keyframe, *tap;
    long long buffer_limit, frame_limit;
    double silence, outage;
    static char *keywords[] = {"rtp_slice",       "encoded_frame",  "feed_sink",
                               "dtls_connected",  "starts_frame",   "is_keyframe",
                               "recording_tap",   "max_send_buffer", "max_frame_bytes",
                               "silence_after",   "outage_gap",     NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOOLLdd", keywords, &slice, &frame,
                                     &sink, &connected, &starts, &keyframe, &tap, &buffer_limit,
                                     &frame_limit, &silence, &outage))
        return NULL;
    if (!PyType_Check(slice) || !PyType_Check(frame) || !PyType_Check(sink) ||
        !PyType_Check(tap)) {
        PyErr_SetString(PyExc_TypeError,
                        "rtp_slice, encoded_frame, feed_sink and recording_tap are types");
        return NULL;
    }
    Py_XSETREF(rtp_slice_type, Py_NewRef(slice));
    Py_XSETREF(encoded_frame_type, Py_NewRef(frame));
    Py_XSETREF(feed_sink_type, Py_NewRef(sink));
    Py_XSETREF(dtls_connected, Py_NewRef(connected));
    Py_XSETREF(default_starts_frame, Py_NewRef(starts));
    Py_XSETREF(default_is_keyframe, Py_NewRef(keyframe));
    Py_XSETREF(recording_tap_type, Py_NewRef(tap));
    max_send_buffer = buffer_limit;
    max_frame_bytes = frame_limit;
    silence_after = silence;
    outage_gap = outage;
    Py_RETURN_NONE;
}

PyMethodDef relay_lane_methods[] = {
    {"relay_rtp", (PyCFunction)(void (*)(void))relay_rtp, METH_FASTCALL,
     "relay_rtp(path, ctx, datagram): decrypt, parse and relay one SRTP datagram"},
    {"datagram_demux", (PyCFunction)datagram_demux, METH_O,
     "datagram_demux(stun_datagram_received): aioice's datagram_received, demultiplexed"},
    {"relay_datagram", (PyCFunction)(void (*)(void))relay_datagram, METH_FASTCALL,
     "relay_datagram(path, datagram, component): a FastReceive's data_received"},
    {"configure_relay", (PyCFunction)(void (*)(void))configure_relay,
     METH_VARARGS | METH_KEYWORDS, "configure_relay(...): the Python types the chain uses"},
    {NULL},
};

int
relay_lane_init(PyObject *module)
{
    for (int i = 0; i < NAME_COUNT; i++) {
        names[i] = PyUnicode_InternFromString(name_strings[i]);
        if (names[i] == NULL)
            return -1;
    }
    str_video = PyUnicode_InternFromString("video");
    str_audio = PyUnicode_InternFromString("audio");
    one = PyLong_FromLong(1);
    if (str_video == NULL || str_audio == NULL || one == NULL)
        return -1;
    if (frame_lane_init(module) < 0)
        return -1;
    return PyModule_AddFunctions(module, relay_lane_methods);
}
