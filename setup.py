"""The one thing pyproject.toml cannot say: the relay's C extension (issue 15).

`vvserver.media._rtp_native` is built from source by `pip install` (gcc and the Python headers
are all it needs: libsrtp is reached through pylibsrtp's copy at run time; scripts/ensure-venv
installs both on Debian). It is optional: where it cannot be built the install goes on and the
relay does the same work in Python, slower (a warning at start; the test suite fails on it).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "vvserver.media._rtp_native",
            sources=[
                "src/vvserver/media/_rtp_native.c",
                "src/vvserver/media/_relay_lane.c",
                "src/vvserver/media/_frame_lane.c",
                "src/vvserver/media/_frame_publish.c",
                "src/vvserver/media/_bitrate_estimator.c",
                "src/vvserver/media/_estimator_rate.c",
                "src/vvserver/media/_estimator_type.c",
                "src/vvserver/media/_python_numbers.c",
            ],
            depends=[
                "src/vvserver/media/_rtp_native.h",
                "src/vvserver/media/_relay_lane.h",
                "src/vvserver/media/_bitrate_estimator.h",
                "src/vvserver/media/_estimator_state.h",
                "src/vvserver/media/_python_numbers.h",
            ],
            # -ffp-contract=off: no fused multiply-add, so that the C bitrate estimator's floats
            # are Python's bit for bit (_bitrate_estimator.c, _estimator_rate.c, _python_numbers.c)
            extra_compile_args=[
                "-O2",
                "-Wall",
                "-Wextra",
                "-Wno-unused-parameter",
                "-ffp-contract=off",
            ],
            # libm's versioned pow, the one CPython calls (unlinked, the old compat one binds)
            libraries=["m"],
            optional=True,
        )
    ]
)
