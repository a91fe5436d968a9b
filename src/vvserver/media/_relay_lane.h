/*
 * What the relay chain's two files share (`_relay_lane.c`: the per-packet steps;
 * `_frame_lane.c`: in-order frame assembly): attribute names, what configure_relay() was
 * given, and the packet being relayed (the helpers on Python attributes are in _rtp_native.h).
 */
#ifndef VVSERVER_RELAY_LANE_H
#define VVSERVER_RELAY_LANE_H

#include "_rtp_native.h"
#include <math.h>
#include <time.h>

#define LANE_MAX 64 /* packets of one video frame held in a FrameLane, at most */

/* --- attribute names ------------------------------------------------------------------- */

#define NAME_LIST(X)                                                                             \
    X(_streams) X(counters) X(packets) X(malformed) X(undecryptable) X(_handle) X(_estimate)    \
    X(_nack_check) X(_send_pli) X(_sink_failed) X(receiver) X(_enabled) X(payload_types)       \
    X(stats) X(packets_received) X(max_seq) X(cycles) X(_last_arrival) X(_last_timestamp)       \
    X(_jitter_q4) X(clock_rate) X(estimator) X(frame_bytes) X(nacks) X(missing) X(kind)        \
    X(sink) X(time) X(presence) X(heard_at) X(gap_from) X(resumed_at) X(feed) X(segment)       \
    X(_segment) X(_budget) X(_rate) X(_capacity) X(_tokens) X(_at) X(_last_ssrc) X(_cut)       \
    X(packets_in) X(_tracks) X(forwarding_gate) X(is_open) X(source) X(_assembler) X(_gate)               \
    X(publish_packet) X(publish) X(_assemble) X(_out) X(started) X(_source)                    \
    X(_await_keyframe) X(_run_start) X(_seq_offset) X(_ts_offset) X(_sender) X(_dtls)          \
    X(_state) X(transport) X(_connection) X(_nominated) X(_pair) X(_tx_srtp) X(session)        \
    X(_native) X(_socket) X(get_write_buffer_size) X(forward) X(_frame_ts) X(frames_out)       \
    X(_max_out) X(_last_out_ts) X(_last_at) X(packets_out) X(frames_forwarded)                 \
    X(packets_forwarded) X(bytes_forwarded) X(_lane) X(_starts_frame) X(_is_keyframe)          \
    X(_slots) X(_next) X(_ssrc) X(_behind_since) X(_max_wait) X(_loss) X(_held)    \
    X(_frame_subscribers) X(frames_in) X(bytes_in) X(keyframes_in) X(_needs_keyframe)   \
    X(_keyframe_wanted) X(_recorder) X(_closed) X(_writer) X(_write_failed) X(_file) X(_origin) \
    X(frames) X(bytes) X(_last_flush) X(_flush_interval) X(write) X(flush)                     \
    X(local_candidate) X(component) X(data_received) X(_datagram) X(_rx_srtp) X(_native_context) X(_RTCDtlsTransport__rx_bytes)                 \
    X(_RTCDtlsTransport__rx_packets)

#define NAME_ENUM(name) N##name,
enum { NAME_LIST(NAME_ENUM) NAME_COUNT };
#define NAME_STRING(name) #name,
extern PyObject *names[NAME_COUNT];
#define NAME(name) names[N##name]

/* What configure_relay() was given. */
extern PyObject *rtp_slice_type, *encoded_frame_type, *feed_sink_type, *dtls_connected,
    *default_starts_frame, *default_is_keyframe, *str_video, *str_audio, *one,
    *recording_tap_type;
extern long long max_send_buffer, max_frame_bytes;
extern double silence_after, outage_gap;

#define NTP_EPOCH_OFFSET 2208988800.0

/* Calls `object.name(*args)` and drops the result; -1 with an exception. */
static inline int
call_method(PyObject *object, PyObject *name, PyObject *const *args, size_t nargs)
{
    PyObject *stack[8]; /* stack[0] is free: the callee may use it (ARGUMENTS_OFFSET) */
    stack[1] = object;
    for (size_t i = 0; i < nargs && i < 6; i++)
        stack[i + 2] = args[i];
    PyObject *result = PyObject_VectorcallMethod(
        name, stack + 1, (nargs + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

static inline double
wall_clock(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now); /* what Python's time.time() reads */
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* rtp_parsing.vp8_descriptor_length */
static inline Py_ssize_t
vp8_descriptor_length(const unsigned char *payload, Py_ssize_t size)
{
    if (size < 1)
        return -1;
    Py_ssize_t pos = 1;
    if (payload[0] & 0x80) {
        if (size < 2)
            return -1;
        unsigned char extended = payload[1];
        pos = 2;
        if (extended & 0x80) {
            if (size <= pos)
                return -1;
            pos += (payload[pos] & 0x80) ? 2 : 1;
        }
        if (extended & 0x40)
            pos += 1;
        if (extended & 0x30)
            pos += 1;
    }
    return pos <= size ? pos : -1;
}

/* frames.vp8_is_keyframe */
static inline int
vp8_is_keyframe(const unsigned char *frame, Py_ssize_t size)
{
    return size >= 10 && !(frame[0] & 0x01) && frame[3] == 0x9d && frame[4] == 0x01 &&
           frame[5] == 0x2a;
}

/* rtp_parsing.vp8_starts_keyframe, the descriptor's length known */
static inline int
vp8_starts_keyframe(const unsigned char *payload, Py_ssize_t size, Py_ssize_t descriptor)
{
    if (size < 1 || !(payload[0] & 0x10) || (payload[0] & 0x07))
        return 0;
    const unsigned char *start = payload + descriptor;
    return descriptor >= 0 && size >= descriptor + 6 && !(start[0] & 0x01) && start[3] == 0x9d &&
           start[4] == 0x01 && start[5] == 0x2a;
}

/* --- the packet being relayed ---------------------------------------------------------- */

typedef struct {
    const unsigned char *buffer; /* the decrypted packet */
    ParsedRtp h;
    PyObject *payload;  /* bytes: buffer[pos:end] */
    PyObject *ssrc;     /* int */
    PyObject *packet;   /* bytes: the whole packet, made when needed */
    PyObject *slice;    /* aiortc_hooks.RtpSlice, made when a Python step needs one */
    Py_ssize_t descriptor; /* VP8 payload descriptor's length (video), 0 (audio) */
    int video;
    double wall;        /* time.time() when it was handled */
} Relayed;

static inline Py_ssize_t
payload_length(Relayed *r)
{
    return r->h.end - r->h.pos;
}

static inline int
marker_of(Relayed *r)
{
    return r->h.second >> 7;
}

static inline PyObject *
packet_of(Relayed *r)
{
    if (r->packet == NULL)
        r->packet = PyBytes_FromStringAndSize((const char *)r->buffer, r->h.length);
    return r->packet;
}

/* RtpSlice(sequence_number, timestamp, marker, ssrc, payload_type, payload, data) */
static inline PyObject *
slice_of(Relayed *r)
{
    if (r->slice != NULL)
        return r->slice;
    PyObject *data;
    if (r->video && r->descriptor > 0)
        data = PyBytes_FromStringAndSize(PyBytes_AS_STRING(r->payload) + r->descriptor,
                                         payload_length(r) - r->descriptor);
    else
        data = Py_NewRef(r->payload);
    if (data == NULL)
        return NULL;
    PyObject *seq = PyLong_FromUnsignedLong(r->h.seq);
    PyObject *timestamp = PyLong_FromUnsignedLong(r->h.timestamp);
    PyObject *payload_type = PyLong_FromLong(r->h.second & 0x7F);
    if (seq != NULL && timestamp != NULL && payload_type != NULL) {
        PyObject *args[7] = {seq,        timestamp, marker_of(r) ? Py_True : Py_False,
                             r->ssrc,    payload_type, r->payload, data};
        r->slice = PyObject_Vectorcall(rtp_slice_type, args, 7, NULL);
    }
    Py_XDECREF(seq);
    Py_XDECREF(timestamp);
    Py_XDECREF(payload_type);
    Py_DECREF(data);
    return r->slice;
}

static inline void
relayed_clear(Relayed *r)
{
    Py_CLEAR(r->payload);
    Py_CLEAR(r->ssrc);
    Py_CLEAR(r->packet);
    Py_CLEAR(r->slice);
}

/* A frame the chain assembled (what an EncodedFrame holds). */
typedef struct {
    int video;
    PyObject *data; /* bytes, owned by whoever made the Frame */
    uint32_t timestamp, ssrc;
    int keyframe, after_loss;
    PyObject *arrival; /* float: the event loop's time it became complete (borrowed) */
} Frame;

/* _frame_publish.c: Feed.publish for one frame */
int publish_frame(PyObject *feed, PyObject *segment, Frame *frame);

/* _frame_lane.c */
int assemble_video(PyObject *feed, PyObject *assembler, PyObject *segment, Relayed *r,
                   PyObject *now_obj, double now);
int assemble_audio(PyObject *feed, PyObject *gate, PyObject *segment, Relayed *r,
                   PyObject *now_obj);
int frame_lane_init(PyObject *module);

#endif
