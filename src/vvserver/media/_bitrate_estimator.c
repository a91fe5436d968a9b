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
 *   precision (checked below).
 * Everything runs with the GIL held; an estimator belongs to one receiver.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "_bitrate_estimator.h"

#if defined(__FAST_MATH__) || (defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0)
#error "the estimator needs IEEE double arithmetic as Python does it (no -ffast-math, no x87)"
#endif

/* aiortc.rate's constants (bitrate_estimator.py) */
#define BURST_DELTA_THRESHOLD_MS 5
#define MAX_ADAPT_OFFSET_MS 15
#define MIN_NUM_DELTAS 60
#define DELTA_COUNTER_MAX 1000
#define HISTORY_LENGTH 60 /* MIN_FRAME_PERIOD_HISTORY_LENGTH */
#define INTER_ARRIVAL_SHIFT 26
#define TIMESTAMP_GROUP_LENGTH_MS 5
#define RATE_WINDOW_MS 1000
#define RATE_SCALE 8000
#define GROUP_LENGTH ((TIMESTAMP_GROUP_LENGTH_MS << INTER_ARRIVAL_SHIFT) / 1000)
#define OVERUSE_TIME_THRESHOLD 10
#define MASK 0xFFFFFFFFULL
#define HALF 0x80000000ULL
static const double TIMESTAMP_TO_MS = 1000.0 / (double)(1 << INTER_ARRIVAL_SHIFT);
static const double PROCESS_NOISE_0 = 1e-13;
static const double PROCESS_NOISE_1 = 1e-3;
static const double K_UP = 0.0087;
static const double K_DOWN = 0.039;

/* aimd_rate_control.py */
#define FEEDBACK_INTERVAL_MS 500
enum { NORMAL = 0, UNDERUSING = 1, OVERUSING = 2 }; /* aiortc's BandwidthUsage values */
enum { HOLD = 0, INCREASE = 1, DECREASE = 2 };      /* aiortc's RateControlState values */

enum { NONE = 0, FLOAT = 1, INT = 2 }; /* what `_overuse_time` holds */

typedef struct {
    PyObject_HEAD
    PyObject *ssrcs; /* dict: ssrc -> the arrival time it was last seen at (Python's `ssrcs`) */
    /* OveruseEstimator */
    double e00, e01, e10, e11, avg_noise, var_noise, slope, offset, previous_offset;
    long long num_of_deltas;
    double history[HISTORY_LENGTH]; /* the last timestamp deltas, a ring from history_start */
    int history_start, history_length;
    /* OveruseDetector */
    int hypothesis;
    double threshold;
    long long detector_last_update_ms, overuse_counter;
    double overuse_time, detector_previous_offset;
    /* InterArrival: the current and previous timestamp groups */
    long long first_timestamp, last_timestamp, group_arrival, group_size;
    long long previous_last_timestamp, previous_arrival, previous_size;
    /* RateCounter: entries [rate_head, rate_head + rate_length) of two arrays, in time order */
    long long *rate_ms, *rate_values;
    Py_ssize_t rate_head, rate_length, rate_capacity;
    long long rate_origin_ms, rate_total;
    /* RemoteBitrateEstimator */
    long long last_update_ms;
    /* AimdRateControl */
    double avg_max_bitrate_kbps, var_max_bitrate_kbps;
    long long current_bitrate, first_estimated_throughput_time, last_change_ms;
    long long latest_estimated_throughput, rtt;
    int rate_control_state;
    /* Python's None (has_*: not None) and ints in float fields */
    char var_noise_is_int, threshold_is_int, overuse_time_kind;
    char has_detector_last_update, has_first, has_previous, has_rate_origin, has_last_update;
    char incoming_bitrate_initialized;
    char has_avg_max, current_bitrate_initialized, has_first_estimated_throughput_time;
    char has_last_change, near_max;
} Estimator;

/* --- Python's int and float semantics ---------------------------------------------------- */

static int
out_of_range(void)
{
    PyErr_SetString(PyExc_OverflowError,
                    "an int outside the native bitrate estimator's 64-bit range");
    return -1;
}

#define ADD(a, b, result) (__builtin_add_overflow((a), (b), (result)) ? out_of_range() : 0)
#define SUB(a, b, result) (__builtin_sub_overflow((a), (b), (result)) ? out_of_range() : 0)
#define MUL(a, b, result) (__builtin_mul_overflow((a), (b), (result)) ? out_of_range() : 0)

#define EXACT (1LL << 53) /* ints up to this size are exact doubles */

/* Python's `a - b > c` on ints, for a small c: exact even where a - b leaves int64 */
static inline int
difference_above(long long a, long long b, long long c)
{
    long long difference;
    if (__builtin_sub_overflow(a, b, &difference))
        return a > b;
    return difference > c;
}

static inline int
exact_double(long long x)
{
    return x >= -EXACT && x <= EXACT;
}

/* Python's `a * b / c` on ints (true division: the exact quotient, rounded once). */
static int
int_true_divide(long long a, long long b, long long c, double *result)
{
    long long product;
    if (!__builtin_mul_overflow(a, b, &product) && exact_double(product) && exact_double(c) &&
        c != 0) {
        *result = (double)product / (double)c;
        return 0;
    }
    PyObject *pa = PyLong_FromLongLong(a), *pb = PyLong_FromLongLong(b),
             *pc = PyLong_FromLongLong(c), *p = NULL, *q = NULL;
    int status = -1;
    if (pa != NULL && pb != NULL && pc != NULL && (p = PyNumber_Multiply(pa, pb)) != NULL &&
        (q = PyNumber_TrueDivide(p, pc)) != NULL) {
        *result = PyFloat_AsDouble(q);
        status = *result == -1.0 && PyErr_Occurred() ? -1 : 0;
    }
    Py_XDECREF(pa);
    Py_XDECREF(pb);
    Py_XDECREF(pc);
    Py_XDECREF(p);
    Py_XDECREF(q);
    return status;
}

/* Python's int(x) for a float x (what PyLong_FromDouble does), kept to int64. */
static int
float_to_int(double x, long long *result)
{
    if (isnan(x)) {
        PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer");
        return -1;
    }
    if (isinf(x)) {
        PyErr_SetString(PyExc_OverflowError, "cannot convert float infinity to integer");
        return -1;
    }
    x = trunc(x);
    if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0))
        return out_of_range();
    *result = (long long)x;
    return 0;
}

/* Python's round(x) for a float x: half to even (float.__round__). */
static int
round_float(double x, long long *result)
{
    double rounded = round(x);
    if (fabs(x - rounded) == 0.5)
        rounded = 2.0 * round(x / 2.0);
    return float_to_int(rounded, result);
}

static int
float_division_by_zero(void)
{
    PyErr_SetString(PyExc_ZeroDivisionError, "float division by zero");
    return -1;
}

/* math.sqrt(x) */
static int
python_sqrt(double x, double *result)
{
    double r = sqrt(x);
    if (isnan(r) && !isnan(x)) {
        PyErr_SetString(PyExc_ValueError, "math domain error");
        return -1;
    }
    *result = r;
    return 0;
}

/* libm's pow, called through a pointer so that the compiler cannot turn pow(x, 2.0) into
 * x * x (CPython calls pow itself, and pow need not round x * x the same way). */
static double (*volatile libm_pow)(double, double) = pow;

static inline int
odd_integer(double x)
{
    return fmod(fabs(x), 2.0) == 1.0;
}

/* `iv ** iw` and pow(iv, iw) for floats: CPython's float_pow (Objects/floatobject.c). */
static int
python_pow(double iv, double iw, double *result)
{
    int negate_result = 0;
    if (iw == 0) {
        *result = 1.0;
        return 0;
    }
    if (isnan(iv)) {
        *result = iv;
        return 0;
    }
    if (isnan(iw)) {
        *result = iv == 1.0 ? 1.0 : iw;
        return 0;
    }
    if (isinf(iw)) {
        iv = fabs(iv);
        if (iv == 1.0)
            *result = 1.0;
        else if ((iw > 0.0) == (iv > 1.0))
            *result = fabs(iw);
        else
            *result = 0.0;
        return 0;
    }
    if (isinf(iv)) {
        int iw_is_odd = odd_integer(iw);
        if (iw > 0.0)
            *result = iw_is_odd ? iv : fabs(iv);
        else
            *result = iw_is_odd ? copysign(0.0, iv) : 0.0;
        return 0;
    }
    if (iv == 0.0) {
        if (iw < 0.0) {
            PyErr_SetString(PyExc_ZeroDivisionError,
                            "0.0 cannot be raised to a negative power");
            return -1;
        }
        *result = odd_integer(iw) ? iv : 0.0;
        return 0;
    }
    if (iv < 0.0) {
        if (iw != floor(iw)) {
            /* Python gives a complex number; never here: the bases are positive constants,
             * and ** 2 has an integral exponent */
            PyErr_SetString(PyExc_ValueError, "a negative number to a fractional power");
            return -1;
        }
        iv = -iv;
        negate_result = odd_integer(iw);
    }
    if (iv == 1.0) {
        *result = negate_result ? -1.0 : 1.0;
        return 0;
    }
    errno = 0;
    double ix = libm_pow(iv, iw);
    if (errno == 0) { /* _Py_ADJUST_ERANGE1 */
        if (ix == HUGE_VAL || ix == -HUGE_VAL)
            errno = ERANGE;
    } else if (errno == ERANGE && ix == 0.0) {
        errno = 0;
    }
    if (negate_result)
        ix = -ix;
    if (errno != 0) {
        PyErr_SetFromErrno(errno == ERANGE ? PyExc_OverflowError : PyExc_ValueError);
        return -1;
    }
    *result = ix;
    return 0;
}

/* --- the incoming bitrate (RateCounter) ------------------------------------------------- */

/* Room for one more entry after the last. */
static int
rate_reserve(Estimator *self)
{
    if (self->rate_head + self->rate_length < self->rate_capacity)
        return 0;
    if (self->rate_head > 0 && self->rate_head >= self->rate_length) {
        memmove(self->rate_ms, self->rate_ms + self->rate_head,
                (size_t)self->rate_length * sizeof(long long));
        memmove(self->rate_values, self->rate_values + self->rate_head,
                (size_t)self->rate_length * sizeof(long long));
        self->rate_head = 0;
        return 0;
    }
    Py_ssize_t capacity = self->rate_capacity ? self->rate_capacity * 2 : 64;
    long long *ms = PyMem_Realloc(self->rate_ms, (size_t)capacity * sizeof(long long));
    if (ms == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->rate_ms = ms;
    long long *values = PyMem_Realloc(self->rate_values, (size_t)capacity * sizeof(long long));
    if (values == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->rate_values = values;
    self->rate_capacity = capacity;
    return 0;
}

static int
rate_append(Estimator *self, long long ms, long long value)
{
    if (rate_reserve(self) < 0)
        return -1;
    Py_ssize_t end = self->rate_head + self->rate_length++;
    self->rate_ms[end] = ms;
    self->rate_values[end] = value;
    return 0;
}

/* _insert_rate_entry: an entry out of time order, after those at the same ms (bisect_right) */
static int
rate_insert(Estimator *self, long long ms, long long value)
{
    if (rate_reserve(self) < 0)
        return -1;
    Py_ssize_t low = self->rate_head, high = self->rate_head + self->rate_length;
    while (low < high) {
        Py_ssize_t middle = low + (high - low) / 2;
        if (ms < self->rate_ms[middle])
            high = middle;
        else
            low = middle + 1;
    }
    Py_ssize_t end = self->rate_head + self->rate_length++;
    memmove(self->rate_ms + low + 1, self->rate_ms + low, (size_t)(end - low) * sizeof(long long));
    memmove(self->rate_values + low + 1, self->rate_values + low,
            (size_t)(end - low) * sizeof(long long));
    self->rate_ms[low] = ms;
    self->rate_values[low] = value;
    return 0;
}

/* _erase_old(origin, now_ms): the window's origin after it */
static int
erase_old(Estimator *self, long long origin, long long now_ms, long long *result)
{
    if (difference_above(now_ms, origin, RATE_WINDOW_MS - 1)) { /* origin < now_ms - 999 */
        long long new_origin_ms = now_ms - (RATE_WINDOW_MS - 1); /* > origin: in range */
        long long total = self->rate_total;
        while (self->rate_length && self->rate_ms[self->rate_head] < new_origin_ms) {
            if (SUB(total, self->rate_values[self->rate_head], &total) < 0)
                return -1;
            self->rate_head++;
            self->rate_length--;
        }
        if (self->rate_length == 0)
            self->rate_head = 0;
        self->rate_total = total;
        self->rate_origin_ms = origin = new_origin_ms;
    }
    *result = origin;
    return 0;
}

/* incoming_bitrate(now_ms): *present = 0 for None */
static int
incoming_bitrate(Estimator *self, long long now_ms, int *present, long long *bitrate)
{
    *present = 0;
    if (!self->has_rate_origin)
        return 0;
    long long origin, active_window_size;
    if (erase_old(self, self->rate_origin_ms, now_ms, &origin) < 0 ||
        SUB(now_ms, origin, &active_window_size) < 0 ||
        ADD(active_window_size, 1, &active_window_size) < 0)
        return -1;
    if (self->rate_length && active_window_size > 1) {
        double rate;
        if (int_true_divide(RATE_SCALE, self->rate_total, active_window_size, &rate) < 0 ||
            round_float(rate, bitrate) < 0)
            return -1;
        *present = 1;
    }
    return 0;
}

/* --- AimdRateControl --------------------------------------------------------------------- */

/* _near_max_rate_increase() */
static int
near_max_rate_increase(Estimator *self, long long *result)
{
    double bits_per_frame;
    long long packets_per_frame, increase;
    if (int_true_divide(self->current_bitrate, 1, 30, &bits_per_frame) < 0 ||
        float_to_int(ceil(bits_per_frame / (8 * 1200)), &packets_per_frame) < 0)
        return -1;
    if (packets_per_frame == 0)
        return float_division_by_zero();
    double avg_packet_size_bits = bits_per_frame / (double)packets_per_frame;
    long long response_time = self->rtt + 100;
    if (float_to_int((avg_packet_size_bits * 1000) / (double)response_time, &increase) < 0)
        return -1;
    *result = increase > 4000 ? increase : 4000; /* max(4000, increase) */
    return 0;
}

/* _additive_rate_increase(last_ms, now_ms) */
static int
additive_rate_increase(Estimator *self, long long last_ms, long long now_ms, long long *result)
{
    long long elapsed, increase;
    double value;
    if (SUB(now_ms, last_ms, &elapsed) < 0 || near_max_rate_increase(self, &increase) < 0 ||
        int_true_divide(elapsed, increase, 1000, &value) < 0)
        return -1;
    return float_to_int(value, result);
}

/* _multiplicative_rate_increase(new_bitrate, last_ms, now_ms) */
static int
multiplicative_rate_increase(Estimator *self, long long new_bitrate, long long now_ms,
                             long long *result)
{
    double alpha = 1.08;
    if (self->has_last_change) {
        long long elapsed = 1000; /* min(now_ms - last_ms, 1000) */
        if (!difference_above(now_ms, self->last_change_ms, 1000) &&
            SUB(now_ms, self->last_change_ms, &elapsed) < 0)
            return -1;
        double exponent;
        if (int_true_divide(elapsed, 1, 1000, &exponent) < 0 ||
            python_pow(alpha, exponent, &alpha) < 0)
            return -1;
    }
    double increase = (alpha - 1) * (double)new_bitrate;
    if (1000 > increase) { /* max(increase, 1000) */
        *result = 1000;
        return 0;
    }
    return float_to_int(increase, result);
}

/* _update_max_throughput_estimate(estimated_throughput_kbps) */
static int
update_max_throughput_estimate(Estimator *self, double estimated_throughput_kbps)
{
    double alpha = 0.05;
    if (!self->has_avg_max) {
        self->avg_max_bitrate_kbps = estimated_throughput_kbps;
        self->has_avg_max = 1;
    } else {
        self->avg_max_bitrate_kbps =
            (1 - alpha) * self->avg_max_bitrate_kbps + alpha * estimated_throughput_kbps;
    }
    double avg = self->avg_max_bitrate_kbps;
    double norm = avg > 1 ? avg : 1; /* max(1, avg) */
    double square;
    if (python_pow(avg - estimated_throughput_kbps, 2.0, &square) < 0)
        return -1;
    double var = (1 - alpha) * self->var_max_bitrate_kbps + alpha * square / norm;
    if (2.5 < var) /* max(0.4, min(var, 2.5)) */
        var = 2.5;
    self->var_max_bitrate_kbps = var > 0.4 ? var : 0.4;
    return 0;
}

/* LeanAimdRateControl.update(bandwidth_usage, estimated_throughput, now_ms): *present = 0 for
 * None, else *target is the new bitrate */
static int
rate_control_update(Estimator *self, int bandwidth_usage, int has_throughput,
                    long long estimated_throughput, long long now_ms, int *present,
                    long long *target)
{
    *present = 0;
    if (!self->current_bitrate_initialized && has_throughput) {
        if (!self->has_first_estimated_throughput_time) {
            self->first_estimated_throughput_time = now_ms;
            self->has_first_estimated_throughput_time = 1;
        } else if (difference_above(now_ms, self->first_estimated_throughput_time, 3000)) {
            self->current_bitrate = estimated_throughput;
            self->current_bitrate_initialized = 1;
        }
    }

    /* wait for initialisation or overuse */
    if (!self->current_bitrate_initialized && bandwidth_usage != OVERUSING)
        return 0;

    /* update state */
    int state = self->rate_control_state;
    if (bandwidth_usage == NORMAL && state == HOLD) {
        self->last_change_ms = now_ms;
        self->has_last_change = 1;
        state = INCREASE;
    } else if (bandwidth_usage == OVERUSING) {
        state = DECREASE;
    } else if (bandwidth_usage == UNDERUSING) {
        state = HOLD;
    }

    long long new_bitrate = self->current_bitrate;
    if (has_throughput)
        self->latest_estimated_throughput = estimated_throughput;
    else
        estimated_throughput = self->latest_estimated_throughput;
    double estimated_throughput_kbps, sigma_kbps;
    if (int_true_divide(estimated_throughput, 1, 1000, &estimated_throughput_kbps) < 0)
        return -1;

    if (state == INCREASE) {
        if (self->has_avg_max) {
            if (python_sqrt(self->var_max_bitrate_kbps * self->avg_max_bitrate_kbps,
                            &sigma_kbps) < 0)
                return -1;
            if (estimated_throughput_kbps >= self->avg_max_bitrate_kbps + 3 * sigma_kbps) {
                self->near_max = 0;
                self->has_avg_max = 0;
            }
        }
        long long increase;
        if (self->near_max) {
            if (!self->has_last_change) { /* Python's assert: never (set with INCREASE) */
                PyErr_SetNone(PyExc_AssertionError);
                return -1;
            }
            if (additive_rate_increase(self, self->last_change_ms, now_ms, &increase) < 0)
                return -1;
        } else if (multiplicative_rate_increase(self, new_bitrate, now_ms, &increase) < 0) {
            return -1;
        }
        if (ADD(new_bitrate, increase, &new_bitrate) < 0)
            return -1;
        self->last_change_ms = now_ms;
        self->has_last_change = 1;
    } else if (state == DECREASE) {
        if (self->has_avg_max) {
            if (python_sqrt(self->var_max_bitrate_kbps * self->avg_max_bitrate_kbps,
                            &sigma_kbps) < 0)
                return -1;
            if (estimated_throughput_kbps < self->avg_max_bitrate_kbps - 3 * sigma_kbps)
                self->has_avg_max = 0;
        }
        if (update_max_throughput_estimate(self, estimated_throughput_kbps) < 0)
            return -1;
        self->near_max = 1;
        if (round_float(0.85 * (double)estimated_throughput, &new_bitrate) < 0)
            return -1;
        self->last_change_ms = now_ms;
        self->has_last_change = 1;
        state = HOLD;
    }
    self->rate_control_state = state;

    /* _clamp_bitrate(new_bitrate, estimated_throughput) */
    long long max_bitrate;
    if (float_to_int(1.5 * (double)estimated_throughput, &max_bitrate) < 0 ||
        ADD(max_bitrate, 10000, &max_bitrate) < 0)
        return -1;
    if (self->current_bitrate > max_bitrate) /* max(max_bitrate, current_bitrate) */
        max_bitrate = self->current_bitrate;
    self->current_bitrate = max_bitrate < new_bitrate ? max_bitrate : new_bitrate;
    *target = self->current_bitrate;
    *present = 1;
    return 0;
}

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
        if (python_sqrt(var_noise, &root) < 0)
            return -1;
        double max_residual = 3.0 * root;
        if (fabs(residual) < max_residual)
            noise = residual;
        else
            noise = residual < 0 ? -max_residual : max_residual;
        double alpha = num_of_deltas > 10 * 30 ? 0.002 : 0.01;
        if (python_pow(1 - alpha, min_frame_period * 30.0 / 1000.0, &beta) < 0)
            return -1;
        double avg_noise = self->avg_noise = beta * self->avg_noise + (1 - beta) * noise;
        if (python_pow(avg_noise - noise, 2.0, &square) < 0)
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
        if (erase_old(self, origin, now, &origin) < 0)
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
        if (rate_append(self, now, payload_size) < 0)
            return NULL;
    } else if (now >= origin) {
        if (!self->rate_length || now >= self->rate_ms[self->rate_head + self->rate_length - 1]) {
            if (rate_append(self, now, payload_size) < 0)
                return NULL;
        } else if (rate_insert(self, now, payload_size) < 0) {
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
        if (ADD(origin, behind, &ms) < 0 || rate_insert(self, ms, payload_size) < 0)
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
        if (round_float(TIMESTAMP_TO_MS * (double)since_last, &timestamp_delta_ms) < 0)
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
        if (incoming_bitrate(self, now, &has_throughput, &throughput) < 0 ||
            rate_control_update(self, hypothesis, has_throughput, throughput, now, &has_target,
                                &target) < 0)
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

static PyObject *str_arrival_time_ms, *str_abs_send_time, *str_payload_size, *str_ssrc;
static const char *const add_names[4] = {"arrival_time_ms", "abs_send_time", "payload_size",
                                         "ssrc"};

/* An int argument in int64's range: TypeError for anything but an int (Python's estimator
 * would take a float arrival time or size, and give floats back). */
static int
int_argument(PyObject *value, int index, long long *result)
{
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "add() argument '%s' must be int, not %.200s",
                     add_names[index], Py_TYPE(value)->tp_name);
        return -1;
    }
    int overflow;
    *result = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow)
        return out_of_range();
    return *result == -1 && PyErr_Occurred() ? -1 : 0;
}

/* add(arrival_time_ms, abs_send_time, payload_size, ssrc) -> (bitrate, [ssrc, ...]) | None */
static PyObject *
Estimator_add(Estimator *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *values[4] = {NULL, NULL, NULL, NULL};
    PyObject *const names[4] = {str_arrival_time_ms, str_abs_send_time, str_payload_size,
                                str_ssrc};
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
                         add_names[index]);
            return NULL;
        }
        values[index] = args[nargs + k];
    }
    for (int i = 0; i < 4; i++) {
        if (values[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "add() missing 1 required positional argument: '%s'",
                         add_names[i]);
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
static PyObject *
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
    if ((now == -1 && PyErr_Occurred()) || incoming_bitrate(self, now, &present, &bitrate) < 0)
        return NULL;
    if (!present)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(bitrate);
}

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
    if ((str_arrival_time_ms = PyUnicode_InternFromString(add_names[0])) == NULL ||
        (str_abs_send_time = PyUnicode_InternFromString(add_names[1])) == NULL ||
        (str_payload_size = PyUnicode_InternFromString(add_names[2])) == NULL ||
        (str_ssrc = PyUnicode_InternFromString(add_names[3])) == NULL)
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
