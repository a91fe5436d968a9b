/*
 * Python's int and float semantics for the C bitrate estimator (`_python_numbers.c`): what
 * CPython does for the operations `bitrate_estimator.py` and `aimd_rate_control.py` use, on
 * int64 ints and doubles: `a * b / c` on ints (true division), int(x), round(x), math.sqrt,
 * `x ** y` and pow(), a float division by zero, and int + - * that raise OverflowError where
 * Python's unbounded ints would leave int64.
 */
#ifndef VVSERVER_PYTHON_NUMBERS_H
#define VVSERVER_PYTHON_NUMBERS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>

#if defined(__FAST_MATH__) || (defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0)
#error "the estimator needs IEEE double arithmetic as Python does it (no -ffast-math, no x87)"
#endif

static inline int
out_of_range(void)
{
    PyErr_SetString(PyExc_OverflowError,
                    "an int outside the native bitrate estimator's 64-bit range");
    return -1;
}

#define ADD(a, b, result) (__builtin_add_overflow((a), (b), (result)) ? out_of_range() : 0)
#define SUB(a, b, result) (__builtin_sub_overflow((a), (b), (result)) ? out_of_range() : 0)
#define MUL(a, b, result) (__builtin_mul_overflow((a), (b), (result)) ? out_of_range() : 0)

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
float_division_by_zero(void)
{
    PyErr_SetString(PyExc_ZeroDivisionError, "float division by zero");
    return -1;
}

/* Python's `a * b / c` on ints (true division: the exact quotient, rounded once). */
int estimator_int_true_divide(long long a, long long b, long long c, double *result);
/* Python's int(x) for a float x (what PyLong_FromDouble does), kept to int64. */
int estimator_float_to_int(double x, long long *result);
/* Python's round(x) for a float x: half to even (float.__round__). */
int estimator_round_float(double x, long long *result);
/* math.sqrt(x) */
int estimator_python_sqrt(double x, double *result);
/* `iv ** iw` and pow(iv, iw) for floats: CPython's float_pow (Objects/floatobject.c). */
int estimator_python_pow(double iv, double iw, double *result);

#endif
