/*
 * The receive-side bitrate estimator in C (issue 15): NativeBitrateEstimator does what
 * `bitrate_estimator.LeanRemoteBitrateEstimator` does (`add`, `_erase_old`,
 * `_insert_rate_entry`, `incoming_bitrate`, `_update`) with its `rate_control`
 * (`aimd_rate_control.LeanAimdRateControl.update` and its helpers), in the same order, on the
 * same values: the same REMBs, ints, and floats bit for bit. The Python classes stay the
 * reference; tests/media/test_bitrate_estimator.py feeds the same calls to aiortc's estimator,
 * the Python one and this one, and compares every result and the state after every call.
 *
 * How Python's arithmetic is kept:
 * - Python's ints are int64 here. Every int operation whose result could leave that range is
 *   checked and raises OverflowError where Python's unbounded ints would go on (no caller sends
 *   such values: NTP milliseconds, 24-bit abs-send-times, frame sizes).
 * - int / int is Python's correctly rounded true division: a double division when both sides
 *   are exact doubles (|x| <= 2^53, always so in practice), else Python's own ints do it.
 * - round() rounds half to even, int() truncates, math.ceil, and min()/max() keep Python's
 *   operand order (it decides what a NaN gives, and whether the result is an int): the
 *   `_threshold`, `_var_noise` and `_overuse_time` fields may hold an int in Python (6 or 600,
 *   1, 0), so a flag keeps that and the getters give the same type.
 * - `x ** 2` and pow() follow CPython's float_pow (its special cases, then libm's pow, the one
 *   CPython calls; never folded into x * x), math.sqrt of a negative raises ValueError, and a
 *   float division by zero raises ZeroDivisionError, each at the same point of the update as in
 *   Python, so that what an error leaves behind is the same state.
 * - no fused multiply-add (setup.py compiles with -ffp-contract=off) and no x87 excess
 *   precision (checked in _python_numbers.h).
 * Everything runs with the GIL held; an estimator belongs to one receiver.
 *
 * The files: this one has `add` (and `incoming_bitrate`'s method) and `_update` (the
 * OveruseEstimator and OveruseDetector); _estimator_rate.c the incoming bitrate (RateCounter)
 * and AimdRateControl; _python_numbers.c Python's int and float semantics; _estimator_type.c
 * the type, its state getters and read_abs_send_time (the abs-send-time extension);
 * _estimator_state.h the constants and the Estimator struct they share.
 */
#include <math.h>

#include "_estimator_state.h"

/* --- OveruseEstimator and OveruseDetector (`_update`) ----------------------------------- */

static int
update(Estimator *self, long long time_delta_ms, double timestamp_delta_ms, long long size_delta,
       long long now_ms)
{
    /* update_min_frame_period: the minimum of the last 60 timestamp deltas, this one included */
    if (self->history_length >= HISTORY_LENGTH) {
        self->history_start = (self->history_start + 1) % HISTORY_LENGTH;
        self->history_length--;
    }
    self->history[(self->history_start + self->history_length++) % HISTORY_LENGTH] =
        timestamp_delta_ms;
    double min_frame_period = self->history[self->history_start];
    for (int i = 1; i < self->history_length; i++) {
        double delta = self->history[(self->history_start + i) % HISTORY_LENGTH];
        if (delta < min_frame_period)
            min_frame_period = delta;
    }

    double t_ts_delta = (double)time_delta_ms - timestamp_delta_ms;
    long long num_of_deltas = self->num_of_deltas + 1;
    if (num_of_deltas > DELTA_COUNTER_MAX)
        num_of_deltas = DELTA_COUNTER_MAX;
    self->num_of_deltas = num_of_deltas;

    /* update Kalman filter */
    int hypothesis = self->hypothesis;
    double offset = self->offset;
    double e00 = self->e00 + PROCESS_NOISE_0;
    double e01 = self->e01;
    double e10 = self->e10;
    double e11 = self->e11 + PROCESS_NOISE_1;
    if ((hypothesis == OVERUSING && offset < self->previous_offset) ||
        (hypothesis == UNDERUSING && offset > self->previous_offset))
        e11 += 10 * PROCESS_NOISE_1;

    double h0 = (double)size_delta;
    double eh0 = e00 * h0 + e01;
    double eh1 = e10 * h0 + e11;

    /* update noise estimate */
    double residual = t_ts_delta - self->slope * h0 - offset;
    if (hypothesis == NORMAL) {
        double var_noise = self->var_noise, root, noise, beta, square;
        if (estimator_python_sqrt(var_noise, &root) < 0)
            return -1;
        double max_residual = 3.0 * root;
        if (fabs(residual) < max_residual)
            noise = residual;
        else
            noise = residual < 0 ? -max_residual : max_residual;
        double alpha = num_of_deltas > 10 * 30 ? 0.002 : 0.01;
        if (estimator_python_pow(1 - alpha, min_frame_period * 30.0 / 1000.0, &beta) < 0)
            return -1;
        double avg_noise = self->avg_noise = beta * self->avg_noise + (1 - beta) * noise;
        if (estimator_python_pow(avg_noise - noise, 2.0, &square) < 0)
            return -1;
        var_noise = beta * var_noise + (1 - beta) * square;
        if (var_noise < 1) {
            self->var_noise = 1;
            self->var_noise_is_int = 1;
        } else {
            self->var_noise = var_noise;
            self->var_noise_is_int = 0;
        }
    }

    double denom = self->var_noise + h0 * eh0 + eh1;
    if (denom == 0.0)
        return float_division_by_zero();
    double k0 = eh0 / denom;
    double k1 = eh1 / denom;

    double ikh00 = 1.0 - k0 * h0;
    double ikh01 = -k0;
    double ikh10 = -k1 * h0;
    double ikh11 = 1.0 - k1;

    /* update state */
    self->e00 = e00 * ikh00 + e10 * ikh01;
    self->e01 = e01 * ikh00 + e11 * ikh01;
    self->e10 = e00 * ikh10 + e10 * ikh11;
    self->e11 = e01 * ikh10 + e11 * ikh11;

    self->previous_offset = offset;
    self->slope += k0 * residual;
    self->offset = offset = offset + k1 * residual;

    /* OveruseDetector.detect(offset, timestamp_delta_ms, num_of_deltas, now_ms) */
    if (num_of_deltas < 2)
        return 0;
    double modified_offset =
        (double)(num_of_deltas < MIN_NUM_DELTAS ? num_of_deltas : MIN_NUM_DELTAS) * offset;
    double threshold = self->threshold;
    if (modified_offset > threshold) {
        double overuse_time;
        int overuse_time_kind = FLOAT;
        if (self->overuse_time_kind == NONE)
            overuse_time = timestamp_delta_ms / 2;
        else
            overuse_time = self->overuse_time + timestamp_delta_ms;
        self->overuse_counter++;

        if (overuse_time > OVERUSE_TIME_THRESHOLD && self->overuse_counter > 1 &&
            offset >= self->detector_previous_offset) {
            self->overuse_counter = 0;
            overuse_time = 0;
            overuse_time_kind = INT;
            self->hypothesis = OVERUSING;
        }
        self->overuse_time = overuse_time;
        self->overuse_time_kind = (char)overuse_time_kind;
    } else if (modified_offset < -threshold) {
        self->overuse_counter = 0;
        self->overuse_time_kind = NONE;
        self->hypothesis = UNDERUSING;
    } else {
        self->overuse_counter = 0;
        self->overuse_time_kind = NONE;
        self->hypothesis = NORMAL;
    }
    self->detector_previous_offset = offset;

    /* update_threshold(modified_offset, now_ms) */
    long long last_update_ms = self->has_detector_last_update ? self->detector_last_update_ms
                                                              : now_ms;
    double abs_offset = fabs(modified_offset);
    if (abs_offset > threshold + MAX_ADAPT_OFFSET_MS) {
        self->detector_last_update_ms = now_ms;
        self->has_detector_last_update = 1;
        return 0;
    }
    double k = abs_offset < threshold ? K_DOWN : K_UP;
    long long time_delta;
    if (SUB(now_ms, last_update_ms, &time_delta) < 0)
        return -1;
    if (time_delta > 100)
        time_delta = 100;
    threshold += k * (abs_offset - threshold) * (double)time_delta;
    int threshold_is_int = 0; /* max(6, min(threshold, 600)) */
    if (600 < threshold) {
        threshold = 600;
        threshold_is_int = 1;
    }
    if (threshold > 6) {
        self->threshold = threshold;
        self->threshold_is_int = (char)threshold_is_int;
    } else {
        self->threshold = 6;
        self->threshold_is_int = 1;
    }
    self->detector_last_update_ms = now_ms;
    self->has_detector_last_update = 1;
    return 0;
}

/* --- add() ------------------------------------------------------------------------------- */

static PyObject *
estimate(Estimator *self, PyObject *now_object, long long now, long long abs_send_time,
         long long payload_size, PyObject *ssrc)
{
    long long timestamp;
    if (MUL(abs_send_time, 256, &timestamp) < 0) /* abs_send_time << 8 */
        return NULL;

    /* make note of SSRC */
    if (self->ssrcs == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the estimator was cleared");
        return NULL;
    }
    if (PyDict_SetItem(self->ssrcs, ssrc, now_object) < 0)
        return NULL;

    /* update incoming bitrate: aiortc's `rate(now) is not None`, a reset, then `add()` */
    int has_origin = self->has_rate_origin;
    long long origin = self->rate_origin_ms, total;
    if (has_origin) {
        if (estimator_rate_erase_old(self, origin, now, &origin) < 0)
            return NULL;
        if (self->rate_length && now > origin) { /* now - origin + 1 > 1 */
            self->incoming_bitrate_initialized = 1;
        } else if (self->incoming_bitrate_initialized) {
            self->rate_head = self->rate_length = 0;
            self->rate_total = 0;
            self->has_rate_origin = has_origin = 0;
            self->incoming_bitrate_initialized = 0;
        }
    } else if (self->incoming_bitrate_initialized) {
        self->incoming_bitrate_initialized = 0; /* the reset of an empty counter */
    }
    if (ADD(self->rate_total, payload_size, &total) < 0)
        return NULL;
    if (!has_origin) {
        self->rate_origin_ms = now;
        self->has_rate_origin = 1;
        if (estimator_rate_append(self, now, payload_size) < 0)
            return NULL;
    } else if (now >= origin) {
        if (!self->rate_length || now >= self->rate_ms[self->rate_head + self->rate_length - 1]) {
            if (estimator_rate_append(self, now, payload_size) < 0)
                return NULL;
        } else if (estimator_rate_insert(self, now, payload_size) < 0) {
            return NULL;
        }
    } else {
        /* before the origin: aiortc's bucket index wraps round the window */
        long long behind, ms;
        if (SUB(now, origin, &behind) < 0)
            return NULL;
        behind %= RATE_WINDOW_MS;
        if (behind < 0)
            behind += RATE_WINDOW_MS; /* Python's % */
        if (ADD(origin, behind, &ms) < 0 || estimator_rate_insert(self, ms, payload_size) < 0)
            return NULL;
    }
    self->rate_total = total;

    /* calculate inter-arrival deltas */
    unsigned long long since_first = ((unsigned long long)timestamp -
                                      (unsigned long long)self->first_timestamp) & MASK;
    if (!self->has_first) {
        self->has_first = 1;
        self->first_timestamp = self->last_timestamp = timestamp;
        self->group_size = payload_size;
        self->group_arrival = now;
    } else if (since_first < HALF) { /* else: out of order, ignored */
        long long last_timestamp = self->last_timestamp, group_arrival = self->group_arrival;
        /* belongs to a burst? */
        long long timestamp_delta_ms;
        unsigned long long since_last =
            ((unsigned long long)timestamp - (unsigned long long)last_timestamp) & MASK;
        if (estimator_round_float(TIMESTAMP_TO_MS * (double)since_last,
                                  &timestamp_delta_ms) < 0)
            return NULL;
        long long arrival_time_delta;
        int burst; /* (arrival_time_delta - timestamp_delta_ms) < 0 and arrival_time_delta <= 5 */
        if (__builtin_sub_overflow(now, group_arrival, &arrival_time_delta))
            burst = now < group_arrival;
        else
            burst = arrival_time_delta < timestamp_delta_ms &&
                    arrival_time_delta <= BURST_DELTA_THRESHOLD_MS;
        if (timestamp_delta_ms != 0 && !burst && since_first > GROUP_LENGTH) {
            /* a new timestamp group: the deltas to the previous one, then shift groups */
            long long group_size = self->group_size;
            int has_previous = self->has_previous;
            long long previous_last_timestamp = self->previous_last_timestamp;
            long long previous_arrival = self->previous_arrival;
            long long previous_size = self->previous_size;
            self->previous_last_timestamp = last_timestamp;
            self->has_previous = 1;
            self->previous_arrival = group_arrival;
            self->previous_size = group_size;
            self->first_timestamp = self->last_timestamp = timestamp;
            self->group_size = payload_size;
            self->group_arrival = now;
            if (has_previous) {
                long long time_delta_ms, size_delta;
                unsigned long long between = ((unsigned long long)last_timestamp -
                                              (unsigned long long)previous_last_timestamp) &
                                             MASK;
                if (SUB(group_arrival, previous_arrival, &time_delta_ms) < 0 ||
                    SUB(group_size, previous_size, &size_delta) < 0 ||
                    update(self, time_delta_ms, (double)between * TIMESTAMP_TO_MS, size_delta,
                           now) < 0)
                    return NULL;
            }
        } else {
            if ((timestamp < last_timestamp &&
                 (unsigned long long)last_timestamp - (unsigned long long)timestamp > HALF) ||
                (timestamp > last_timestamp &&
                 (unsigned long long)timestamp - (unsigned long long)last_timestamp < HALF))
                self->last_timestamp = timestamp;
            if (ADD(self->group_size, payload_size, &self->group_size) < 0)
                return NULL;
            self->group_arrival = now;
        }
    }

    int hypothesis = self->hypothesis;
    if (!self->has_last_update ||
        difference_above(now, self->last_update_ms, FEEDBACK_INTERVAL_MS) ||
        hypothesis == OVERUSING) {
        int has_throughput, has_target;
        long long throughput = 0, target;
        if (estimator_rate_incoming_bitrate(self, now, &has_throughput, &throughput) < 0 ||
            estimator_rate_control_update(self, hypothesis, has_throughput, throughput, now,
                                          &has_target, &target) < 0)
            return NULL;
        if (has_target) {
            self->last_update_ms = now;
            self->has_last_update = 1;
            PyObject *bitrate = PyLong_FromLongLong(target);
            PyObject *ssrcs = bitrate == NULL ? NULL : PyDict_Keys(self->ssrcs);
            PyObject *result = ssrcs == NULL ? NULL : PyTuple_Pack(2, bitrate, ssrcs);
            Py_XDECREF(bitrate);
            Py_XDECREF(ssrcs);
            return result;
        }
    }
    Py_RETURN_NONE;
}

PyObject *estimator_str_arrival_time_ms, *estimator_str_abs_send_time,
    *estimator_str_payload_size, *estimator_str_ssrc;
const char *const estimator_add_names[4] = {"arrival_time_ms", "abs_send_time", "payload_size",
                                            "ssrc"};

/* An int argument in int64's range: TypeError for anything but an int (Python's estimator
 * would take a float arrival time or size, and give floats back). */
static int
int_argument(PyObject *value, int index, long long *result)
{
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "add() argument '%s' must be int, not %.200s",
                     estimator_add_names[index], Py_TYPE(value)->tp_name);
        return -1;
    }
    int overflow;
    *result = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow)
        return out_of_range();
    return *result == -1 && PyErr_Occurred() ? -1 : 0;
}

/* add(arrival_time_ms, abs_send_time, payload_size, ssrc) -> (bitrate, [ssrc, ...]) | None */
PyObject *
Estimator_add(Estimator *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *values[4] = {NULL, NULL, NULL, NULL};
    PyObject *const names[4] = {estimator_str_arrival_time_ms, estimator_str_abs_send_time,
                                estimator_str_payload_size, estimator_str_ssrc};
    if (nargs > 4) {
        PyErr_Format(PyExc_TypeError, "add() takes 5 positional arguments but %zd were given",
                     nargs + 1);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        values[i] = args[i];
    Py_ssize_t keywords = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < keywords; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int index = -1;
        for (int i = 0; i < 4 && index < 0; i++)
            if (key == names[i])
                index = i;
        for (int i = 0; i < 4 && index < 0; i++) /* not interned */
            if (PyUnicode_Check(key) && PyUnicode_Compare(key, names[i]) == 0)
                index = i;
        if (index < 0) {
            PyErr_Format(PyExc_TypeError, "add() got an unexpected keyword argument '%S'", key);
            return NULL;
        }
        if (values[index] != NULL) {
            PyErr_Format(PyExc_TypeError, "add() got multiple values for argument '%s'",
                         estimator_add_names[index]);
            return NULL;
        }
        values[index] = args[nargs + k];
    }
    for (int i = 0; i < 4; i++) {
        if (values[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "add() missing 1 required positional argument: '%s'",
                         estimator_add_names[i]);
            return NULL;
        }
    }
    long long now, abs_send_time, payload_size;
    if (int_argument(values[0], 0, &now) < 0 || int_argument(values[1], 1, &abs_send_time) < 0 ||
        int_argument(values[2], 2, &payload_size) < 0)
        return NULL;
    return estimate(self, values[0], now, abs_send_time, payload_size, values[3]);
}

/* incoming_bitrate(now_ms) -> int | None */
PyObject *
Estimator_incoming_bitrate(Estimator *self, PyObject *now_object)
{
    long long now, bitrate;
    int present, overflow;
    if (!PyLong_Check(now_object)) {
        PyErr_Format(PyExc_TypeError, "incoming_bitrate() argument must be int, not %.200s",
                     Py_TYPE(now_object)->tp_name);
        return NULL;
    }
    now = PyLong_AsLongLongAndOverflow(now_object, &overflow);
    if (overflow)
        return PyErr_Occurred() ? NULL : (out_of_range(), NULL);
    if ((now == -1 && PyErr_Occurred()) ||
        estimator_rate_incoming_bitrate(self, now, &present, &bitrate) < 0)
        return NULL;
    if (!present)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(bitrate);
}
