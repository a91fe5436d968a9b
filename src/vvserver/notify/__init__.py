"""Notifications: e-mail queued in the database, sent by a background worker."""
