/*
 * What the C bitrate estimator's files share (`_bitrate_estimator.c`: add(), OveruseEstimator
 * and OveruseDetector; `_estimator_rate.c`: RateCounter and AimdRateControl;
 * `_estimator_type.c`: the NativeBitrateEstimator type and read_abs_send_time): aiortc.rate's
 * and aimd_rate_control.py's constants, the Estimator struct (the fields of
 * `bitrate_estimator.LeanRemoteBitrateEstimator` and of its `LeanAimdRateControl`), and the
 * functions and names one file uses from another. Python's int and float semantics are in
 * _python_numbers.h.
 */
#ifndef VVSERVER_ESTIMATOR_STATE_H
#define VVSERVER_ESTIMATOR_STATE_H

#include "_python_numbers.h"

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

/* --- the incoming bitrate and AimdRateControl (_estimator_rate.c) ------------------------ */

/* RateCounter: an entry in time order (after the last), or out of it (_insert_rate_entry) */
int estimator_rate_append(Estimator *self, long long ms, long long value);
int estimator_rate_insert(Estimator *self, long long ms, long long value);
/* _erase_old(origin, now_ms): the window's origin after it */
int estimator_rate_erase_old(Estimator *self, long long origin, long long now_ms,
                             long long *result);
/* incoming_bitrate(now_ms): *present = 0 for None */
int estimator_rate_incoming_bitrate(Estimator *self, long long now_ms, int *present,
                                    long long *bitrate);
/* LeanAimdRateControl.update(bandwidth_usage, estimated_throughput, now_ms): *present = 0 for
 * None, else *target is the new bitrate */
int estimator_rate_control_update(Estimator *self, int bandwidth_usage, int has_throughput,
                                  long long estimated_throughput, long long now_ms,
                                  int *present, long long *target);

/* --- add() and incoming_bitrate() (_bitrate_estimator.c), the type's methods ------------- */

/* add()'s argument names, interned by bitrate_estimator_init (_estimator_type.c) */
extern PyObject *estimator_str_arrival_time_ms, *estimator_str_abs_send_time,
    *estimator_str_payload_size, *estimator_str_ssrc;
extern const char *const estimator_add_names[4];

PyObject *Estimator_add(Estimator *self, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames);
PyObject *Estimator_incoming_bitrate(Estimator *self, PyObject *now_object);

#endif
