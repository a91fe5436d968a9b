/*
 * Python's int and float semantics for the C bitrate estimator (issue 15): what CPython does
 * for the operations `bitrate_estimator.LeanRemoteBitrateEstimator` and
 * `aimd_rate_control.LeanAimdRateControl` use, on int64 ints and doubles, the same values bit
 * for bit and the same exceptions (see _bitrate_estimator.c's top comment):
 * - `a * b / c` on ints: Python's correctly rounded true division (Objects/longobject.c), a
 *   double division when both sides are exact doubles, else Python's own ints do it;
 * - int(x) (PyLong_FromDouble, kept to int64) and round(x) (float.__round__: half to even);
 * - math.sqrt (ValueError for a negative), a float division by zero (ZeroDivisionError);
 * - `x ** y` and pow() on floats: CPython's float_pow (Objects/floatobject.c), its special
 *   cases, then libm's pow.
 */
#include <errno.h>
#include <math.h>

#include "_python_numbers.h"

#define EXACT (1LL << 53) /* ints up to this size are exact doubles */

static inline int
exact_double(long long x)
{
    return x >= -EXACT && x <= EXACT;
}

/* Python's `a * b / c` on ints (true division: the exact quotient, rounded once). */
int
estimator_int_true_divide(long long a, long long b, long long c, double *result)
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
int
estimator_float_to_int(double x, long long *result)
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
int
estimator_round_float(double x, long long *result)
{
    double rounded = round(x);
    if (fabs(x - rounded) == 0.5)
        rounded = 2.0 * round(x / 2.0);
    return estimator_float_to_int(rounded, result);
}

/* math.sqrt(x) */
int
estimator_python_sqrt(double x, double *result)
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
int
estimator_python_pow(double iv, double iw, double *result)
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
