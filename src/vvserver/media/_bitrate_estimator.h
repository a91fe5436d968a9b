/*
 * The C bitrate estimator's one entry point (`_estimator_type.c`; the estimator itself is
 * `_bitrate_estimator.c` and the files it names): registers NativeBitrateEstimator (what
 * `bitrate_estimator.LeanRemoteBitrateEstimator` does, in C) in the `_rtp_native` module.
 */
#ifndef VVSERVER_BITRATE_ESTIMATOR_H
#define VVSERVER_BITRATE_ESTIMATOR_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

int bitrate_estimator_init(PyObject *module);

#endif
