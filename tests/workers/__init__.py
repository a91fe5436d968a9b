"""Tests of the background workers: the scheduler and the mailer."""
