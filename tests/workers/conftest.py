"""Fixtures of the worker tests: ``smtp_server`` (a real aiosmtpd server on 127.0.0.1)."""

from tests.workers.smtp_support import smtp_server

__all__ = ["smtp_server"]
