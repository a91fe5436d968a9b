/*
 * The C bitrate estimator's incoming bitrate and rate control (issue 15): the RateCounter part
 * of `bitrate_estimator.LeanRemoteBitrateEstimator` (`_erase_old`, `_insert_rate_entry`,
 * `incoming_bitrate`, and the entries `add` appends) and
 * `aimd_rate_control.LeanAimdRateControl.update` with its helpers (`_near_max_rate_increase`,
 * `_additive_rate_increase`, `_multiplicative_rate_increase`,
 * `_update_max_throughput_estimate`, `_clamp_bitrate`), in the same order, on the same values
 * as the Python (how: _bitrate_estimator.c's top comment). add() is in _bitrate_estimator.c.
 */
#include <math.h>
#include <string.h>

#include "_estimator_state.h"

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

int
estimator_rate_append(Estimator *self, long long ms, long long value)
{
    if (rate_reserve(self) < 0)
        return -1;
    Py_ssize_t end = self->rate_head + self->rate_length++;
    self->rate_ms[end] = ms;
    self->rate_values[end] = value;
    return 0;
}

/* _insert_rate_entry: an entry out of time order, after those at the same ms (bisect_right) */
int
estimator_rate_insert(Estimator *self, long long ms, long long value)
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
int
estimator_rate_erase_old(Estimator *self, long long origin, long long now_ms, long long *result)
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
int
estimator_rate_incoming_bitrate(Estimator *self, long long now_ms, int *present,
                                long long *bitrate)
{
    *present = 0;
    if (!self->has_rate_origin)
        return 0;
    long long origin, active_window_size;
    if (estimator_rate_erase_old(self, self->rate_origin_ms, now_ms, &origin) < 0 ||
        SUB(now_ms, origin, &active_window_size) < 0 ||
        ADD(active_window_size, 1, &active_window_size) < 0)
        return -1;
    if (self->rate_length && active_window_size > 1) {
        double rate;
        if (estimator_int_true_divide(RATE_SCALE, self->rate_total, active_window_size,
                                      &rate) < 0 ||
            estimator_round_float(rate, bitrate) < 0)
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
    if (estimator_int_true_divide(self->current_bitrate, 1, 30, &bits_per_frame) < 0 ||
        estimator_float_to_int(ceil(bits_per_frame / (8 * 1200)), &packets_per_frame) < 0)
        return -1;
    if (packets_per_frame == 0)
        return float_division_by_zero();
    double avg_packet_size_bits = bits_per_frame / (double)packets_per_frame;
    long long response_time = self->rtt + 100;
    if (estimator_float_to_int((avg_packet_size_bits * 1000) / (double)response_time,
                               &increase) < 0)
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
        estimator_int_true_divide(elapsed, increase, 1000, &value) < 0)
        return -1;
    return estimator_float_to_int(value, result);
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
        if (estimator_int_true_divide(elapsed, 1, 1000, &exponent) < 0 ||
            estimator_python_pow(alpha, exponent, &alpha) < 0)
            return -1;
    }
    double increase = (alpha - 1) * (double)new_bitrate;
    if (1000 > increase) { /* max(increase, 1000) */
        *result = 1000;
        return 0;
    }
    return estimator_float_to_int(increase, result);
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
    if (estimator_python_pow(avg - estimated_throughput_kbps, 2.0, &square) < 0)
        return -1;
    double var = (1 - alpha) * self->var_max_bitrate_kbps + alpha * square / norm;
    if (2.5 < var) /* max(0.4, min(var, 2.5)) */
        var = 2.5;
    self->var_max_bitrate_kbps = var > 0.4 ? var : 0.4;
    return 0;
}

/* LeanAimdRateControl.update(bandwidth_usage, estimated_throughput, now_ms): *present = 0 for
 * None, else *target is the new bitrate */
int
estimator_rate_control_update(Estimator *self, int bandwidth_usage, int has_throughput,
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
    if (estimator_int_true_divide(estimated_throughput, 1, 1000, &estimated_throughput_kbps) < 0)
        return -1;

    if (state == INCREASE) {
        if (self->has_avg_max) {
            if (estimator_python_sqrt(self->var_max_bitrate_kbps * self->avg_max_bitrate_kbps,
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
            if (estimator_python_sqrt(self->var_max_bitrate_kbps * self->avg_max_bitrate_kbps,
                                      &sigma_kbps) < 0)
                return -1;
            if (estimated_throughput_kbps < self->avg_max_bitrate_kbps - 3 * sigma_kbps)
                self->has_avg_max = 0;
        }
        if (update_max_throughput_estimate(self, estimated_throughput_kbps) < 0)
            return -1;
        self->near_max = 1;
        if (estimator_round_float(0.85 * (double)estimated_throughput, &new_bitrate) < 0)
            return -1;
        self->last_change_ms = now_ms;
        self->has_last_change = 1;
        state = HOLD;
    }
    self->rate_control_state = state;

    /* _clamp_bitrate(new_bitrate, estimated_throughput) */
    long long max_bitrate;
    if (estimator_float_to_int(1.5 * (double)estimated_throughput, &max_bitrate) < 0 ||
        ADD(max_bitrate, 10000, &max_bitrate) < 0)
        return -1;
    if (self->current_bitrate > max_bitrate) /* max(max_bitrate, current_bitrate) */
        max_bitrate = self->current_bitrate;
    self->current_bitrate = max_bitrate < new_bitrate ? max_bitrate : new_bitrate;
    *target = self->current_bitrate;
    *present = 1;
    return 0;
}
