"""Tests through the HTTP API, as users and operators call it."""
