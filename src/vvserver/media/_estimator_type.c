/*
 * The C bitrate estimator's type (issue 15): NativeBitrateEstimator, what
 * `bitrate_estimator.LeanRemoteBitrateEstimator()` starts from (its OveruseEstimator,
 * OveruseDetector and LeanAimdRateControl's initial values), its state under Python's field
 * names and types (the tests compare them after every call), and bitrate_estimator_init, which
 * registers it in `_rtp_native` with read_abs_send_time: `rtp_parsing.header_extension` for the
 * abs-send-time extension that `FastReceive._estimate` feeds in. Its methods, add() and
 * incoming_bitrate(), are in _bitrate_estimator.c.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "_bitrate_estimator.h"
#include "_estimator_state.h"

/* --- the abs-send-time extension FastReceive._estimate feeds in ------------------------- */

#define ONE_BYTE_PROFILE 0xBEDE /* rtp_parsing's */
#define TWO_BYTE_PROFILE_MASK 0xFFF0
#define TWO_BYTE_PROFILE 0x1000
#define ABS_SEND_TIME_BYTES 3

static PyObject *struct_error; /* struct.error, imported at first use */

/*
 * read_abs_send_time(packet, ext_pos, wanted_id) -> int | None: what
 * `rtp_parsing.header_extension(packet, ext_pos, wanted_id)` gives, as an int when it is 3
 * bytes long (`int.from_bytes(value, "big")`), else None; struct.error where its
 * `EXTENSION_HEADER.unpack_from` raises one (an extension block past the packet's end).
 */
static PyObject *
read_abs_send_time(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "read_abs_send_time() takes 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    if (!PyLong_Check(args[1]) || !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "read_abs_send_time(): ext_pos and wanted_id are ints");
        return NULL;
    }
    int overflow;
    long long ext_pos = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (overflow)
        ext_pos = overflow < 0 ? -1 : LLONG_MAX;
    long long wanted_id = PyLong_AsLongLongAndOverflow(args[2], &overflow);
    if (overflow)
        wanted_id = -1; /* not 0, and no extension's id */
    if (PyErr_Occurred())
        return NULL;
    if (ext_pos < 0 || wanted_id == 0)
        Py_RETURN_NONE;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *packet = view.buf;
    long long length = view.len, start = -1, size = 0;
    if (ext_pos > length - 4) {
        PyBuffer_Release(&view);
        if (struct_error == NULL) {
            PyObject *module_struct = PyImport_ImportModule("struct");
            if (module_struct == NULL)
                return NULL;
            struct_error = PyObject_GetAttrString(module_struct, "error");
            Py_DECREF(module_struct);
            if (struct_error == NULL)
                return NULL;
        }
        PyErr_SetString(struct_error, "the header extension block runs past the packet");
        return NULL;
    }
    long long profile = packet[ext_pos] << 8 | packet[ext_pos + 1];
    long long words = packet[ext_pos + 2] << 8 | packet[ext_pos + 3];
    long long pos = ext_pos + 4;
    long long end = pos + words * 4 < length ? pos + words * 4 : length;
    if (profile == ONE_BYTE_PROFILE) {
        while (pos < end) {
            unsigned char byte = packet[pos];
            if (byte == 0) { /* padding */
                pos += 1;
                continue;
            }
            long long id = byte >> 4;
            size = (byte & 0x0F) + 1;
            if (id == 15)
                break;
            if (id == wanted_id) {
                start = pos + 1;
                break;
            }
            pos += 1 + size;
        }
    } else if ((profile & TWO_BYTE_PROFILE_MASK) == TWO_BYTE_PROFILE) {
        while (pos + 1 < end) {
            long long id = packet[pos];
            if (id == 0) {
                pos += 1;
                continue;
            }
            size = packet[pos + 1];
            if (id == wanted_id) {
                start = pos + 2;
                break;
            }
            pos += 2 + size;
        }
    }
    PyObject *result = NULL;
    if (start >= 0 && size == ABS_SEND_TIME_BYTES && start + size <= length)
        result = PyLong_FromLong(packet[start] << 16 | packet[start + 1] << 8 | packet[start + 2]);
    PyBuffer_Release(&view);
    if (result == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return result;
}

static PyMethodDef module_functions[] = {
    {"read_abs_send_time", (PyCFunction)(void (*)(void))read_abs_send_time, METH_FASTCALL,
     "read_abs_send_time(packet, ext_pos, wanted_id) -> int | None: a 3-byte header "
     "extension's value (rtp_parsing.header_extension's, as an int)"},
    {NULL},
};

/* --- the type ---------------------------------------------------------------------------- */

static PyObject *
Estimator_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) || (kwargs != NULL && PyDict_GET_SIZE(kwargs))) {
        PyErr_SetString(PyExc_TypeError, "NativeBitrateEstimator() takes no arguments");
        return NULL;
    }
    Estimator *self = (Estimator *)type->tp_alloc(type, 0); /* zeroed: 0, 0.0, None */
    if (self == NULL)
        return NULL;
    if ((self->ssrcs = PyDict_New()) == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    /* OveruseEstimator */
    self->e00 = 100.0;
    self->e11 = 0.1;
    self->var_noise = 50.0;
    self->slope = 1.0 / 64;
    /* OveruseDetector */
    self->hypothesis = NORMAL;
    self->threshold = 12.5;
    /* RemoteBitrateEstimator */
    self->incoming_bitrate_initialized = 1;
    /* AimdRateControl */
    self->var_max_bitrate_kbps = 0.4;
    self->current_bitrate = 30000000;
    self->latest_estimated_throughput = 30000000;
    self->rtt = 200;
    self->rate_control_state = HOLD;
    return (PyObject *)self;
}

static int
Estimator_traverse(Estimator *self, visitproc visit, void *arg)
{
    Py_VISIT(self->ssrcs);
    return 0;
}

static int
Estimator_clear(Estimator *self)
{
    Py_CLEAR(self->ssrcs);
    return 0;
}

static void
Estimator_dealloc(Estimator *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->ssrcs);
    PyMem_Free(self->rate_ms);
    PyMem_Free(self->rate_values);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* state getters: Python's field names and types (None where Python has None) */

static PyObject *
optional_int(char present, long long value)
{
    if (!present)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(value);
}

static PyObject *
int_or_float(char is_int, double value)
{
    return is_int ? PyLong_FromDouble(value) : PyFloat_FromDouble(value);
}

#define OPTIONAL_INT_GETTER(name, flag, field)                                                    \
    static PyObject *Estimator_get_##name(Estimator *self, void *closure)                        \
    {                                                                                             \
        return optional_int(self->flag, self->field);                                             \
    }

OPTIONAL_INT_GETTER(detector_last_update_ms, has_detector_last_update, detector_last_update_ms)
OPTIONAL_INT_GETTER(first_timestamp, has_first, first_timestamp)
OPTIONAL_INT_GETTER(previous_last_timestamp, has_previous, previous_last_timestamp)
OPTIONAL_INT_GETTER(rate_origin_ms, has_rate_origin, rate_origin_ms)
OPTIONAL_INT_GETTER(last_update_ms, has_last_update, last_update_ms)

static PyObject *
Estimator_get_var_noise(Estimator *self, void *closure)
{
    return int_or_float(self->var_noise_is_int, self->var_noise);
}

static PyObject *
Estimator_get_threshold(Estimator *self, void *closure)
{
    return int_or_float(self->threshold_is_int, self->threshold);
}

static PyObject *
Estimator_get_overuse_time(Estimator *self, void *closure)
{
    if (self->overuse_time_kind == NONE)
        Py_RETURN_NONE;
    return int_or_float(self->overuse_time_kind == INT, self->overuse_time);
}

static PyObject *
Estimator_get_history(Estimator *self, void *closure)
{
    PyObject *history = PyTuple_New(self->history_length);
    for (int i = 0; history != NULL && i < self->history_length; i++) {
        PyObject *delta =
            PyFloat_FromDouble(self->history[(self->history_start + i) % HISTORY_LENGTH]);
        if (delta == NULL)
            Py_CLEAR(history);
        else
            PyTuple_SET_ITEM(history, i, delta);
    }
    return history;
}

static PyObject *
rate_tuple(Estimator *self, const long long *values)
{
    PyObject *tuple = PyTuple_New(self->rate_length);
    for (Py_ssize_t i = 0; tuple != NULL && i < self->rate_length; i++) {
        PyObject *value = PyLong_FromLongLong(values[self->rate_head + i]);
        if (value == NULL)
            Py_CLEAR(tuple);
        else
            PyTuple_SET_ITEM(tuple, i, value);
    }
    return tuple;
}

static PyObject *
Estimator_get_rate_ms(Estimator *self, void *closure)
{
    return rate_tuple(self, self->rate_ms);
}

static PyObject *
Estimator_get_rate_values(Estimator *self, void *closure)
{
    return rate_tuple(self, self->rate_values);
}

static PyObject *
Estimator_get_ssrcs(Estimator *self, void *closure)
{
    if (self->ssrcs == NULL)
        Py_RETURN_NONE;
    return Py_NewRef(self->ssrcs);
}

static PyObject *bandwidth_usage; /* aiortc.rate.BandwidthUsage, imported at first use */

static PyObject *
Estimator_get_hypothesis(Estimator *self, void *closure)
{
    if (bandwidth_usage == NULL) {
        PyObject *rate = PyImport_ImportModule("aiortc.rate");
        if (rate == NULL)
            return NULL;
        bandwidth_usage = PyObject_GetAttrString(rate, "BandwidthUsage");
        Py_DECREF(rate);
        if (bandwidth_usage == NULL)
            return NULL;
    }
    return PyObject_CallFunction(bandwidth_usage, "i", self->hypothesis);
}

static PyStructSequence_Field rate_control_fields[] = {
    {"avg_max_bitrate_kbps", NULL},
    {"var_max_bitrate_kbps", NULL},
    {"current_bitrate", NULL},
    {"current_bitrate_initialized", NULL},
    {"first_estimated_throughput_time", NULL},
    {"last_change_ms", NULL},
    {"near_max", NULL},
    {"latest_estimated_throughput", NULL},
    {"rtt", NULL},
    {"_state", "the RateControlState value"},
    {NULL, NULL},
};

static PyStructSequence_Desc rate_control_description = {
    "vvserver.media._rtp_native.AimdRateControlState",
    "A NativeBitrateEstimator's rate control (LeanAimdRateControl's fields), read at one time.",
    rate_control_fields,
    10,
};

static PyTypeObject RateControlStateType;

static PyObject *
Estimator_get_rate_control(Estimator *self, void *closure)
{
    PyObject *state = PyStructSequence_New(&RateControlStateType);
    if (state == NULL)
        return NULL;
    PyObject *values[10] = {
        self->has_avg_max ? PyFloat_FromDouble(self->avg_max_bitrate_kbps) : Py_NewRef(Py_None),
        PyFloat_FromDouble(self->var_max_bitrate_kbps),
        PyLong_FromLongLong(self->current_bitrate),
        PyBool_FromLong(self->current_bitrate_initialized),
        optional_int(self->has_first_estimated_throughput_time,
                     self->first_estimated_throughput_time),
        optional_int(self->has_last_change, self->last_change_ms),
        PyBool_FromLong(self->near_max),
        PyLong_FromLongLong(self->latest_estimated_throughput),
        PyLong_FromLongLong(self->rtt),
        PyLong_FromLong(self->rate_control_state),
    };
    int failed = 0;
    for (int i = 0; i < 10; i++) {
        if (values[i] == NULL)
            failed = 1;
        else
            PyStructSequence_SET_ITEM(state, i, values[i]);
    }
    if (failed) {
        Py_DECREF(state); /* frees the items set */
        return NULL;
    }
    return state;
}

static PyMethodDef Estimator_methods[] = {
    {"add", (PyCFunction)(void (*)(void))Estimator_add, METH_FASTCALL | METH_KEYWORDS,
     "add(arrival_time_ms, abs_send_time, payload_size, ssrc) -> (bitrate, [ssrc, ...]) | None"},
    {"incoming_bitrate", (PyCFunction)Estimator_incoming_bitrate, METH_O,
     "incoming_bitrate(now_ms) -> bits per second over the last second, or None"},
    {NULL},
};

#define FIELD(name, type, field)                                                                  \
    {name, type, offsetof(Estimator, field), READONLY, NULL}

static PyMemberDef Estimator_members[] = {
    FIELD("_e00", T_DOUBLE, e00),
    FIELD("_e01", T_DOUBLE, e01),
    FIELD("_e10", T_DOUBLE, e10),
    FIELD("_e11", T_DOUBLE, e11),
    FIELD("_avg_noise", T_DOUBLE, avg_noise),
    FIELD("_slope", T_DOUBLE, slope),
    FIELD("_offset", T_DOUBLE, offset),
    FIELD("_previous_offset", T_DOUBLE, previous_offset),
    FIELD("_num_of_deltas", T_LONGLONG, num_of_deltas),
    FIELD("_hypothesis", T_INT, hypothesis),
    FIELD("_overuse_counter", T_LONGLONG, overuse_counter),
    FIELD("_detector_previous_offset", T_DOUBLE, detector_previous_offset),
    FIELD("_last_timestamp", T_LONGLONG, last_timestamp),
    FIELD("_group_arrival", T_LONGLONG, group_arrival),
    FIELD("_group_size", T_LONGLONG, group_size),
    FIELD("_previous_arrival", T_LONGLONG, previous_arrival),
    FIELD("_previous_size", T_LONGLONG, previous_size),
    FIELD("_rate_total", T_LONGLONG, rate_total),
    FIELD("incoming_bitrate_initialized", T_BOOL, incoming_bitrate_initialized),
    {NULL},
};

#define GETTER(name, function) {name, (getter)Estimator_get_##function, NULL, NULL, NULL}

static PyGetSetDef Estimator_getset[] = {
    GETTER("_var_noise", var_noise),
    GETTER("_threshold", threshold),
    GETTER("_detector_last_update_ms", detector_last_update_ms),
    GETTER("_overuse_time", overuse_time),
    GETTER("_first_timestamp", first_timestamp),
    GETTER("_previous_last_timestamp", previous_last_timestamp),
    GETTER("_rate_origin_ms", rate_origin_ms),
    GETTER("_history", history),
    GETTER("_rate_ms", rate_ms),
    GETTER("_rate_values", rate_values),
    GETTER("last_update_ms", last_update_ms),
    GETTER("ssrcs", ssrcs),
    GETTER("hypothesis", hypothesis),
    GETTER("rate_control", rate_control),
    {NULL},
};

static PyTypeObject EstimatorType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vvserver.media._rtp_native.NativeBitrateEstimator",
    .tp_basicsize = sizeof(Estimator),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "bitrate_estimator.LeanRemoteBitrateEstimator in C: the same REMBs and state.",
    .tp_new = Estimator_new,
    .tp_dealloc = (destructor)Estimator_dealloc,
    .tp_traverse = (traverseproc)Estimator_traverse,
    .tp_clear = (inquiry)Estimator_clear,
    .tp_methods = Estimator_methods,
    .tp_members = Estimator_members,
    .tp_getset = Estimator_getset,
};

int
bitrate_estimator_init(PyObject *module)
{
    if ((estimator_str_arrival_time_ms = PyUnicode_InternFromString(estimator_add_names[0])) ==
            NULL ||
        (estimator_str_abs_send_time = PyUnicode_InternFromString(estimator_add_names[1])) ==
            NULL ||
        (estimator_str_payload_size = PyUnicode_InternFromString(estimator_add_names[2])) ==
            NULL ||
        (estimator_str_ssrc = PyUnicode_InternFromString(estimator_add_names[3])) == NULL)
        return -1;
    if (PyStructSequence_InitType2(&RateControlStateType, &rate_control_description) < 0 ||
        PyType_Ready(&EstimatorType) < 0)
        return -1;
    if (PyModule_AddFunctions(module, module_functions) < 0)
        return -1;
    Py_INCREF(&EstimatorType);
    if (PyModule_AddObject(module, "NativeBitrateEstimator", (PyObject *)&EstimatorType) < 0) {
        Py_DECREF(&EstimatorType);
        return -1;
    }
    return 0;
}
