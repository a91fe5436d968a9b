/*
 * What the C extension's two files share: `_rtp_native.c` (SRTP, RTP parsing, RtpSender) and
 * `_relay_lane.c` (the relay's per-packet chain that uses them).
 */
#ifndef VVSERVER_RTP_NATIVE_H
#define VVSERVER_RTP_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef int (*srtp_function)(void *ctx, void *rtp_hdr, int *len_ptr);

extern srtp_function srtp_protect_fn;
extern srtp_function srtp_unprotect_fn;

#define BUFFER_BYTES 1500 /* pylibsrtp's packet buffer */
#define MAX_TRAILER 144   /* what protect may add (pylibsrtp's SRTP_MAX_TRAILER_LEN) */
#define MAX_EXTENSION 256 /* the sender's header extension block (mid, abs-send-time) */

#define UNDECRYPTABLE -1
#define MALFORMED -2

/* One decrypted RTP packet's header, as `unprotect_and_parse` read it from its buffer. */
typedef struct {
    int length;            /* the decrypted packet's bytes */
    Py_ssize_t pos, end;   /* the payload: buffer[pos:end] (padding removed) */
    Py_ssize_t ext_pos;    /* the header extension block, or -1 */
    Py_ssize_t padding;
    unsigned int seq;
    uint32_t timestamp, ssrc;
    int second;            /* marker bit and payload type */
} ParsedRtp;

typedef struct {
    PyObject_HEAD
    PyObject *sender;   /* the RTCRtpSender (its RTCP report counters are set per packet) */
    PyObject *dtls;     /* the RTCDtlsTransport (its tx counters) */
    PyObject *history;  /* the NACK history (a dict) or NULL for audio */
    PyObject *session;  /* the pylibsrtp session `ctx` belongs to (kept alive here) */
    PyObject *sendto;   /* the nominated pair's transport.sendto */
    PyObject *address;  /* and its remote address */
    PyObject *pair;      /* the nominated candidate pair they belong to (or NULL) */
    PyObject *nominated; /* the ICE connection's nominated pairs (a dict, or NULL) */
    PyObject *socket;    /* the pair's transport (its write buffer is checked), or NULL */
    void *ctx;
    unsigned char first_byte;
    unsigned char payload_type;
    uint32_t ssrc;
    unsigned char extension[MAX_EXTENSION];
    Py_ssize_t extension_length;
    Py_ssize_t abs_send_time_at; /* offset of abs-send-time's 3 bytes in extension, or -1 */
    long history_size;
    long long packets_sent;
    long long octets_sent; /* payload bytes, as aiortc counts them for sender reports */
    long long last_timestamp;
} RtpSender;

extern PyTypeObject RtpSenderType;

/* --- small helpers on Python attributes (0 / value on success, -1 with an exception) ---- */

static inline int
get_ll(PyObject *object, PyObject *name, long long *out)
{
    PyObject *value = PyObject_GetAttr(object, name);
    if (value == NULL)
        return -1;
    long long result = PyLong_AsLongLong(value);
    Py_DECREF(value);
    if (result == -1 && PyErr_Occurred())
        return -1;
    *out = result;
    return 0;
}

static inline int
get_double(PyObject *object, PyObject *name, double *out)
{
    PyObject *value = PyObject_GetAttr(object, name);
    if (value == NULL)
        return -1;
    double result = PyFloat_AsDouble(value);
    Py_DECREF(value);
    if (result == -1.0 && PyErr_Occurred())
        return -1;
    *out = result;
    return 0;
}

static inline int
get_truth(PyObject *object, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(object, name);
    if (value == NULL)
        return -1;
    int result = PyObject_IsTrue(value);
    Py_DECREF(value);
    return result;
}

static inline int
set_owned(PyObject *object, PyObject *name, PyObject *value)
{
    if (value == NULL)
        return -1;
    int result = PyObject_SetAttr(object, name, value);
    Py_DECREF(value);
    return result;
}

static inline int
set_ll(PyObject *object, PyObject *name, long long value)
{
    return set_owned(object, name, PyLong_FromLongLong(value));
}

static inline int
set_double(PyObject *object, PyObject *name, double value)
{
    return set_owned(object, name, PyFloat_FromDouble(value));
}

static inline int
add_ll(PyObject *object, PyObject *name, long long amount)
{
    long long value;
    if (get_ll(object, name, &value) < 0)
        return -1;
    return set_ll(object, name, value + amount);
}

int read_pointer(PyObject *value, void **out);
int check_functions(void);
/* 0, UNDECRYPTABLE or MALFORMED; `buffer` holds BUFFER_BYTES */
int unprotect_and_parse(void *ctx, const char *data, Py_ssize_t size, unsigned char *buffer,
                        ParsedRtp *parsed);
/* the bytes put on the wire, or -1 with an exception set */
int rtp_sender_send(RtpSender *self, unsigned long seq, unsigned long long timestamp, int marker,
                    const char *payload, Py_ssize_t payload_length, unsigned long long ntp);

/* _relay_lane.c */
int relay_lane_init(PyObject *module);
extern PyMethodDef relay_lane_methods[];

#endif
