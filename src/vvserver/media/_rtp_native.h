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

/* --- attributes read and written from C ----------------------------------------------
 *
 * The chain's state lives on Python objects. Most of its classes declare their hot fields in
 * `__slots__`, so a field is a pointer at a fixed offset of the object: each call site keeps
 * a one-entry cache (type, the type's version tag, offset), filled the first time it sees a
 * type, and reads or writes that pointer directly while the type and its version are the same
 * (what CPython's own LOAD_ATTR_SLOT does). Anything else (an instance dict, a property, a
 * slot not set yet, a class changed since) goes through PyObject_GetAttr / PyObject_SetAttr,
 * so the meaning is always Python's.
 */
typedef struct {
    PyTypeObject *type;   /* not owned: the version tag says whether it is still the same */
    unsigned int version; /* the type's tp_version_tag when filled */
    Py_ssize_t offset;    /* the slot's offset in the object, or -1: not a plain slot */
} SlotCache;

/* Fills `cache` for `type` and `name`; the cache stays empty where the type has no valid
 * version tag. Never raises. (_rtp_native.c) */
void slot_cache_fill(SlotCache *cache, PyTypeObject *type, PyObject *name);

/* The object's slot for `name` (borrowed; NULL: not a slot here, or not set) */
static inline PyObject **
slot_address(PyObject *object, PyObject *name, SlotCache *cache)
{
    PyTypeObject *type = Py_TYPE(object);
    if (type != cache->type || type->tp_version_tag != cache->version ||
        !(type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG))
        slot_cache_fill(cache, type, name);
    if (cache->type != type || cache->offset < 0)
        return NULL;
    return (PyObject **)((char *)object + cache->offset);
}

static inline PyObject *
attr_get(PyObject *object, PyObject *name, SlotCache *cache)
{
    PyObject **slot = slot_address(object, name, cache);
    if (slot != NULL && *slot != NULL)
        return Py_NewRef(*slot);
    return PyObject_GetAttr(object, name);
}

/* Steals `value` (NULL: an error already set). */
static inline int
attr_set_owned(PyObject *object, PyObject *name, PyObject *value, SlotCache *cache)
{
    if (value == NULL)
        return -1;
    PyObject **slot = slot_address(object, name, cache);
    if (slot != NULL) {
        PyObject *old = *slot;
        *slot = value;
        Py_XDECREF(old);
        return 0;
    }
    int result = PyObject_SetAttr(object, name, value);
    Py_DECREF(value);
    return result;
}

/* A cache of its own for each place the macros below are written (GCC/Clang statement
 * expressions: a static variable per expansion). The cache is not keyed by the name: every
 * call site passes one constant name (NAME(x) or an interned string), and no function that
 * takes the name as a parameter may use these macros. */
#define CALL_SITE() ({ static SlotCache site_cache_; &site_cache_; })

/* `object.name` (new reference, NULL with an exception) */
#define GET_ATTR(object, name) attr_get((object), (name), CALL_SITE())

/* --- small helpers on Python attributes (0 / value on success, -1 with an exception) ---- */

static inline int
get_ll_at(PyObject *object, PyObject *name, long long *out, SlotCache *cache)
{
    PyObject *value = attr_get(object, name, cache);
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
get_double_at(PyObject *object, PyObject *name, double *out, SlotCache *cache)
{
    PyObject *value = attr_get(object, name, cache);
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
get_truth_at(PyObject *object, PyObject *name, SlotCache *cache)
{
    PyObject *value = attr_get(object, name, cache);
    if (value == NULL)
        return -1;
    int result = PyObject_IsTrue(value);
    Py_DECREF(value);
    return result;
}

static inline int
add_ll_at(PyObject *object, PyObject *name, long long amount, SlotCache *cache)
{
    long long value;
    if (get_ll_at(object, name, &value, cache) < 0)
        return -1;
    return attr_set_owned(object, name, PyLong_FromLongLong(value + amount), cache);
}

#define get_ll(object, name, out) get_ll_at((object), (name), (out), CALL_SITE())
#define get_double(object, name, out) get_double_at((object), (name), (out), CALL_SITE())
#define get_truth(object, name) get_truth_at((object), (name), CALL_SITE())
#define set_owned(object, name, value) attr_set_owned((object), (name), (value), CALL_SITE())
#define set_ll(object, name, value) set_owned((object), (name), PyLong_FromLongLong(value))
#define set_double(object, name, value) set_owned((object), (name), PyFloat_FromDouble(value))
#define add_ll(object, name, amount) add_ll_at((object), (name), (amount), CALL_SITE())

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
