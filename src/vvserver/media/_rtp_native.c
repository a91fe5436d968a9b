/*
 * The relay's per-packet steps in C (issue 15): SRTP unprotect + RTP header parsing on the
 * way in, RTP header building + NACK history + SRTP protect + the socket's sendto on the way
 * out. Python keeps every decision (routing, statistics, NACKs, keyframes, what to forward to
 * whom); this module only does the straight-line byte work those decisions need, so a packet
 * costs one call into C on each side instead of some forty Python-level steps.
 *
 * libsrtp is the copy inside pylibsrtp (the one aiortc's sessions live in): Python hands over
 * the addresses of its srtp_protect / srtp_unprotect once (`set_srtp_functions`), so this
 * module needs no libsrtp headers or library of its own. Their libsrtp 2 prototype:
 *     srtp_err_status_t f(srtp_t ctx, void *rtp_hdr, int *len_ptr)   (0 = ok)
 * Everything runs on the event loop thread with the GIL held, as pylibsrtp's own calls do.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#include "_rtp_native.h"
#include "_bitrate_estimator.h"

srtp_function srtp_protect_fn = NULL;
srtp_function srtp_unprotect_fn = NULL;

/* Interned attribute names (the private counters aiortc's RTCP reports read). */
static PyObject *str_tx_bytes, *str_tx_packets, *str_packet_count, *str_octet_count,
    *str_ntp_timestamp, *str_rtp_timestamp;

void
slot_cache_fill(SlotCache *cache, PyTypeObject *type, PyObject *name)
{
    cache->type = NULL;
    cache->offset = -1;
    /* _PyType_Lookup gives the type a version tag if it can (what its method cache needs) */
    PyObject *descriptor = _PyType_Lookup(type, name); /* borrowed; never raises */
    if (!(type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) || type->tp_version_tag == 0)
        return;
    cache->type = type;
    cache->version = type->tp_version_tag;
    if (type->tp_getattro != PyObject_GenericGetAttr ||
        type->tp_setattro != PyObject_GenericSetAttr || descriptor == NULL ||
        !Py_IS_TYPE(descriptor, &PyMemberDescr_Type) ||
        !PyType_IsSubtype(type, PyDescr_TYPE(descriptor)))
        return; /* a slot of another class put in this one's dict: Python refuses it too */
    PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
    if (member->type == T_OBJECT_EX && !(member->flags & READONLY))
        cache->offset = member->offset; /* a data descriptor: it wins over any instance dict */
}

int
read_pointer(PyObject *value, void **out)
{
    void *pointer = PyLong_AsVoidPtr(value);
    if (pointer == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "null pointer");
        return -1;
    }
    *out = pointer;
    return 0;
}

static PyObject *
set_srtp_functions(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    void *protect, *unprotect;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "set_srtp_functions(protect, unprotect)");
        return NULL;
    }
    if (read_pointer(args[0], &protect) < 0 || read_pointer(args[1], &unprotect) < 0)
        return NULL;
    srtp_protect_fn = (srtp_function)protect;
    srtp_unprotect_fn = (srtp_function)unprotect;
    Py_RETURN_NONE;
}

int
check_functions(void)
{
    if (srtp_protect_fn == NULL || srtp_unprotect_fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "set_srtp_functions was not called");
        return -1;
    }
    return 0;
}

/*
 * unprotect_rtp(ctx, datagram) -> (payload, ext_pos, padding, seq, timestamp, ssrc, second, packet)
 *                                 | UNDECRYPTABLE | MALFORMED
 * `packet` is the whole decrypted packet (header extensions are read from it at `ext_pos`,
 * -1 when it has none); `payload` is its RTP payload without padding; `second` the header's
 * second byte (marker and payload type).
 */
int
unprotect_and_parse(void *ctx, const char *data, Py_ssize_t size, unsigned char *buffer,
                    ParsedRtp *parsed)
{
    int length, status;
    if (size > BUFFER_BYTES || size < 12)
        return UNDECRYPTABLE;
    memcpy(buffer, data, (size_t)size);
    length = (int)size;
    status = srtp_unprotect_fn(ctx, buffer, &length);
    if (status != 0 || length < 0 || length > BUFFER_BYTES)
        return UNDECRYPTABLE;

    unsigned char first = buffer[0];
    if (first >> 6 != 2 || length < 12)
        return MALFORMED;
    Py_ssize_t pos = 12 + (first & 0x0F) * 4;
    Py_ssize_t ext_pos = -1;
    if (first & 0x10) {
        if (length < pos + 4)
            return MALFORMED;
        ext_pos = pos;
        pos += 4 + (((Py_ssize_t)buffer[pos + 2] << 8) | buffer[pos + 3]) * 4;
    }
    Py_ssize_t end = length;
    Py_ssize_t padding = 0;
    if (first & 0x20) {
        padding = buffer[length - 1];
        end = length - padding;
        if (!padding)
            return MALFORMED;
    }
    if (pos > end)
        return MALFORMED;
    parsed->length = length;
    parsed->pos = pos;
    parsed->end = end;
    parsed->ext_pos = ext_pos;
    parsed->padding = padding;
    parsed->seq = ((unsigned int)buffer[2] << 8) | buffer[3];
    parsed->timestamp = ((uint32_t)buffer[4] << 24) | ((uint32_t)buffer[5] << 16) |
                        ((uint32_t)buffer[6] << 8) | buffer[7];
    parsed->ssrc = ((uint32_t)buffer[8] << 24) | ((uint32_t)buffer[9] << 16) |
                   ((uint32_t)buffer[10] << 8) | buffer[11];
    parsed->second = buffer[1];
    return 0;
}

/*
 * unprotect_rtp(ctx, datagram) -> (payload, ext_pos, padding, seq, timestamp, ssrc, second, packet)
 *                                 | UNDECRYPTABLE | MALFORMED
 * `packet` is the whole decrypted packet (header extensions are read from it at `ext_pos`,
 * -1 when it has none); `payload` is its RTP payload without padding; `second` the header's
 * second byte (marker and payload type).
 */
static PyObject *
unprotect_rtp(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned char buffer[BUFFER_BYTES];
    ParsedRtp parsed;
    void *ctx;
    if (nargs != 2 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "unprotect_rtp(ctx: int, datagram: bytes)");
        return NULL;
    }
    if (check_functions() < 0 || read_pointer(args[0], &ctx) < 0)
        return NULL;
    int status = unprotect_and_parse(ctx, PyBytes_AS_STRING(args[1]),
                                     PyBytes_GET_SIZE(args[1]), buffer, &parsed);
    if (status != 0)
        return PyLong_FromLong(status);
    PyObject *packet = PyBytes_FromStringAndSize((const char *)buffer, parsed.length);
    if (packet == NULL)
        return NULL;
    PyObject *payload =
        PyBytes_FromStringAndSize((const char *)buffer + parsed.pos, parsed.end - parsed.pos);
    if (payload == NULL) {
        Py_DECREF(packet);
        return NULL;
    }
    return Py_BuildValue("(NnnIkkiN)", payload, parsed.ext_pos, parsed.padding, parsed.seq,
                         (unsigned long)parsed.timestamp, (unsigned long)parsed.ssrc,
                         parsed.second, packet);
}

/* --- RtpSender: one forwarding sender's packets, built, kept, protected and sent -------- */

static int
RtpSender_traverse(RtpSender *self, visitproc visit, void *arg)
{
    Py_VISIT(self->sender);
    Py_VISIT(self->dtls);
    Py_VISIT(self->history);
    Py_VISIT(self->session);
    Py_VISIT(self->sendto);
    Py_VISIT(self->address);
    Py_VISIT(self->pair);
    Py_VISIT(self->nominated);
    Py_VISIT(self->socket);
    return 0;
}

static int
RtpSender_clear(RtpSender *self)
{
    Py_CLEAR(self->sender);
    Py_CLEAR(self->dtls);
    Py_CLEAR(self->history);
    Py_CLEAR(self->session);
    Py_CLEAR(self->sendto);
    Py_CLEAR(self->address);
    Py_CLEAR(self->pair);
    Py_CLEAR(self->nominated);
    Py_CLEAR(self->socket);
    self->ctx = NULL;
    return 0;
}

static void
RtpSender_dealloc(RtpSender *self)
{
    PyObject_GC_UnTrack(self);
    RtpSender_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* RtpSender(sender, dtls, first_byte, payload_type, ssrc, extension, abs_send_time_at,
 *           history, history_size) */
static int
RtpSender_init(RtpSender *self, PyObject *args, PyObject *kwargs)
{
    PyObject *sender, *dtls, *history;
    int first_byte, payload_type;
    unsigned long ssrc;
    Py_buffer extension;
    Py_ssize_t abs_at;
    long history_size;
    static char *keywords[] = {"sender", "dtls", "first_byte", "payload_type", "ssrc",
                               "extension", "abs_send_time_at", "history", "history_size",
                               NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOiiky*nOl", keywords, &sender, &dtls,
                                     &first_byte, &payload_type, &ssrc, &extension, &abs_at,
                                     &history, &history_size))
        return -1;
    if (extension.len > MAX_EXTENSION || (abs_at >= 0 && abs_at > extension.len - 3) || abs_at < -1 ||
        first_byte < 0 || first_byte > 255 || payload_type < 0 || payload_type > 127 ||
        history_size <= 0 || ssrc > 0xFFFFFFFFUL) {
        PyBuffer_Release(&extension);
        PyErr_SetString(PyExc_ValueError, "RtpSender: argument out of range");
        return -1;
    }
    if (history != Py_None && !PyDict_Check(history)) {
        PyBuffer_Release(&extension);
        PyErr_SetString(PyExc_TypeError, "RtpSender: history must be a dict or None");
        return -1;
    }
    memcpy(self->extension, extension.buf, (size_t)extension.len);
    self->extension_length = extension.len;
    PyBuffer_Release(&extension);
    self->abs_send_time_at = abs_at;
    self->first_byte = (unsigned char)first_byte;
    self->payload_type = (unsigned char)payload_type;
    self->ssrc = (uint32_t)ssrc;
    self->history_size = history_size;
    Py_INCREF(sender);
    Py_XSETREF(self->sender, sender);
    Py_INCREF(dtls);
    Py_XSETREF(self->dtls, dtls);
    if (history == Py_None) {
        Py_CLEAR(self->history);
    } else {
        Py_INCREF(history);
        Py_XSETREF(self->history, history);
    }
    self->last_timestamp = -1;
    return 0;
}

/* use(session, ctx, sendto, address[, pair, nominated, socket]): the SRTP session and socket
 * to send with from now on; the relay's C chain sends only while `pair` is still the one in
 * `nominated` (the ICE connection's dict) and `socket`'s write buffer is not backed up */
static PyObject *
RtpSender_use(RtpSender *self, PyObject *const *args, Py_ssize_t nargs)
{
    void *ctx;
    if (nargs != 4 && nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "use(session, ctx, sendto, address[, pair, nominated, socket])");
        return NULL;
    }
    if (nargs == 7 && !PyDict_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "nominated must be a dict");
        return NULL;
    }
    if (read_pointer(args[1], &ctx) < 0)
        return NULL;
    if (!PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "sendto must be callable");
        return NULL;
    }
    Py_INCREF(args[0]);
    Py_XSETREF(self->session, args[0]);
    Py_INCREF(args[2]);
    Py_XSETREF(self->sendto, args[2]);
    Py_INCREF(args[3]);
    Py_XSETREF(self->address, args[3]);
    Py_XSETREF(self->pair, nargs == 7 ? Py_NewRef(args[4]) : NULL);
    Py_XSETREF(self->nominated, nargs == 7 ? Py_NewRef(args[5]) : NULL);
    Py_XSETREF(self->socket, nargs == 7 ? Py_NewRef(args[6]) : NULL);
    self->ctx = ctx;
    Py_RETURN_NONE;
}

/*
 * Builds the packet (this sender's SSRC, payload type and extension block, abs-send-time from
 * `ntp`), keeps it in the history (video), protects it and hands it to the socket; then sets
 * the counters aiortc's RTCP sender reports read. Returns the bytes put on the wire, or -1
 * with an exception set.
 */
int
rtp_sender_send(RtpSender *self, unsigned long seq, unsigned long long timestamp, int marker,
                const char *payload, Py_ssize_t payload_length, unsigned long long ntp)
{
    unsigned char buffer[BUFFER_BYTES];
    if (self->ctx == NULL || self->sendto == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "RtpSender.use() was not called");
        return -1;
    }
    if (check_functions() < 0)
        return -1;
    if (seq > 0xFFFF || timestamp > 0xFFFFFFFFULL) {
        PyErr_SetString(PyExc_OverflowError, "sequence number or timestamp out of range");
        return -1;
    }
    Py_ssize_t length = 12 + self->extension_length + payload_length;
    if (length > BUFFER_BYTES - MAX_TRAILER) {
        PyErr_SetString(PyExc_ValueError, "packet is too long");
        return -1;
    }
    buffer[0] = self->first_byte;
    buffer[1] = (unsigned char)((marker ? 0x80 : 0) | self->payload_type);
    buffer[2] = (unsigned char)(seq >> 8);
    buffer[3] = (unsigned char)seq;
    buffer[4] = (unsigned char)(timestamp >> 24);
    buffer[5] = (unsigned char)(timestamp >> 16);
    buffer[6] = (unsigned char)(timestamp >> 8);
    buffer[7] = (unsigned char)timestamp;
    buffer[8] = (unsigned char)(self->ssrc >> 24);
    buffer[9] = (unsigned char)(self->ssrc >> 16);
    buffer[10] = (unsigned char)(self->ssrc >> 8);
    buffer[11] = (unsigned char)self->ssrc;
    memcpy(buffer + 12, self->extension, (size_t)self->extension_length);
    if (self->abs_send_time_at >= 0) {
        uint32_t abs_send_time = (uint32_t)((ntp >> 14) & 0xFFFFFF);
        unsigned char *at = buffer + 12 + self->abs_send_time_at;
        at[0] = (unsigned char)(abs_send_time >> 16);
        at[1] = (unsigned char)(abs_send_time >> 8);
        at[2] = (unsigned char)abs_send_time;
    }
    memcpy(buffer + 12 + self->extension_length, payload, (size_t)payload_length);

    if (self->history != NULL) {
        PyObject *plain = PyBytes_FromStringAndSize((const char *)buffer, length);
        if (plain == NULL)
            return -1;
        PyObject *key = PyLong_FromLong((long)(seq % (unsigned long)self->history_size));
        if (key == NULL) {
            Py_DECREF(plain);
            return -1;
        }
        int stored = PyDict_SetItem(self->history, key, plain);
        Py_DECREF(key);
        Py_DECREF(plain);
        if (stored < 0)
            return -1;
    }

    int protected_length = (int)length;
    int status = srtp_protect_fn(self->ctx, buffer, &protected_length);
    if (status != 0 || protected_length < 0 || protected_length > BUFFER_BYTES) {
        PyErr_Format(PyExc_RuntimeError, "srtp_protect failed: %d", status);
        return -1;
    }
    PyObject *datagram = PyBytes_FromStringAndSize((const char *)buffer, protected_length);
    if (datagram == NULL)
        return -1;
    /* held for the call: the socket's sendto may run Python (error_received) that calls
     * use() on this sender and replaces them */
    PyObject *sendto = Py_NewRef(self->sendto);
    PyObject *address = Py_NewRef(self->address);
    PyObject *call_args[2] = {datagram, address};
    PyObject *result = PyObject_Vectorcall(sendto, call_args, 2, NULL);
    Py_DECREF(datagram);
    Py_DECREF(sendto);
    Py_DECREF(address);
    if (result == NULL)
        return -1;
    Py_DECREF(result);

    if (add_ll(self->dtls, str_tx_bytes, protected_length) < 0 ||
        add_ll(self->dtls, str_tx_packets, 1) < 0)
        return -1;
    self->packets_sent += 1;
    self->octets_sent += payload_length;
    if (set_owned(self->sender, str_packet_count, PyLong_FromLongLong(self->packets_sent)) <
            0 ||
        set_owned(self->sender, str_octet_count, PyLong_FromLongLong(self->octets_sent)) < 0)
        return -1;
    if ((long long)timestamp != self->last_timestamp) {
        /* what the sender's RTCP loop puts in its sender reports: a matching pair */
        self->last_timestamp = (long long)timestamp;
        if (set_owned(self->sender, str_ntp_timestamp, PyLong_FromUnsignedLongLong(ntp)) <
                0 ||
            set_owned(self->sender, str_rtp_timestamp,
                          PyLong_FromUnsignedLongLong(timestamp)) < 0)
            return -1;
    }
    return protected_length;
}

/* send(sequence_number, timestamp, marker, payload, ntp) -> bytes put on the wire */
static PyObject *
RtpSender_send(RtpSender *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyBytes_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "send(sequence_number, timestamp, marker, payload: bytes, ntp)");
        return NULL;
    }
    unsigned long seq = PyLong_AsUnsignedLong(args[0]);
    if (seq == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    unsigned long long timestamp = PyLong_AsUnsignedLongLong(args[1]);
    if (timestamp == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    int marker = PyObject_IsTrue(args[2]);
    if (marker < 0)
        return NULL;
    unsigned long long ntp = PyLong_AsUnsignedLongLong(args[4]);
    if (ntp == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    int sent = rtp_sender_send(self, seq, timestamp, marker, PyBytes_AS_STRING(args[3]),
                               PyBytes_GET_SIZE(args[3]), ntp);
    return sent < 0 ? NULL : PyLong_FromLong(sent);
}

static PyMemberDef RtpSender_members[] = {
    {"packets_sent", T_LONGLONG, offsetof(RtpSender, packets_sent), READONLY, NULL},
    {"octets_sent", T_LONGLONG, offsetof(RtpSender, octets_sent), READONLY, NULL},
    {NULL},
};

static PyMethodDef RtpSender_methods[] = {
    {"use", (PyCFunction)(void (*)(void))RtpSender_use, METH_FASTCALL,
     "use(session, ctx, sendto, address): the SRTP session and socket to send with"},
    {"send", (PyCFunction)(void (*)(void))RtpSender_send, METH_FASTCALL,
     "send(sequence_number, timestamp, marker, payload, ntp) -> bytes sent"},
    {NULL},
};

PyTypeObject RtpSenderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vvserver.media._rtp_native.RtpSender",
    .tp_basicsize = sizeof(RtpSender),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One forwarding sender's packets: built, kept for NACKs, protected and sent.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)RtpSender_init,
    .tp_dealloc = (destructor)RtpSender_dealloc,
    .tp_traverse = (traverseproc)RtpSender_traverse,
    .tp_clear = (inquiry)RtpSender_clear,
    .tp_methods = RtpSender_methods,
    .tp_members = RtpSender_members,
};

static PyMethodDef module_methods[] = {
    {"set_srtp_functions", (PyCFunction)(void (*)(void))set_srtp_functions, METH_FASTCALL,
     "set_srtp_functions(protect, unprotect): libsrtp's function addresses"},
    {"unprotect_rtp", (PyCFunction)(void (*)(void))unprotect_rtp, METH_FASTCALL,
     "unprotect_rtp(ctx, datagram) -> (payload, ext_pos, padding, seq, timestamp, ssrc, "
     "second, packet) | UNDECRYPTABLE | MALFORMED"},
    {NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    .m_name = "vvserver.media._rtp_native",
    .m_doc = "The relay's per-packet SRTP and RTP header work in C.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__rtp_native(void)
{
    str_tx_bytes = PyUnicode_InternFromString("_RTCDtlsTransport__tx_bytes");
    str_tx_packets = PyUnicode_InternFromString("_RTCDtlsTransport__tx_packets");
    str_packet_count = PyUnicode_InternFromString("_RTCRtpSender__packet_count");
    str_octet_count = PyUnicode_InternFromString("_RTCRtpSender__octet_count");
    str_ntp_timestamp = PyUnicode_InternFromString("_RTCRtpSender__ntp_timestamp");
    str_rtp_timestamp = PyUnicode_InternFromString("_RTCRtpSender__rtp_timestamp");
    if (!str_tx_bytes || !str_tx_packets || !str_packet_count || !str_octet_count ||
        !str_ntp_timestamp || !str_rtp_timestamp)
        return NULL;
    if (PyType_Ready(&RtpSenderType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_definition);
    if (module == NULL)
        return NULL;
    Py_INCREF(&RtpSenderType);
    if (PyModule_AddObject(module, "RtpSender", (PyObject *)&RtpSenderType) < 0 ||
        PyModule_AddIntConstant(module, "UNDECRYPTABLE", UNDECRYPTABLE) < 0 ||
        PyModule_AddIntConstant(module, "MALFORMED", MALFORMED) < 0 ||
        PyModule_AddIntConstant(module, "BUFFER_BYTES", BUFFER_BYTES) < 0 ||
        relay_lane_init(module) < 0 || bitrate_estimator_init(module) < 0) {
        Py_DECREF(&RtpSenderType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
