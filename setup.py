"""The one thing pyproject.toml cannot say: the relay's C extension (issue 15).

`vvserver.media._rtp_native` is built from source by `pip install` (gcc and the Python headers
are all it needs: libsrtp is reached through pylibsrtp's copy at run time). The relay runs
without it, slower, when it is missing (see docs/media.md).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "vvserver.media._rtp_native",
            sources=["src/vvserver/media/_rtp_native.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
