"""Tests of the domain code without HTTP: the slot engine, the audit chain."""
