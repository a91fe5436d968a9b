"""Notices to people: the e-mail outbox (written in the caller's transaction) and calendar files."""
