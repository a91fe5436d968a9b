"""Booking visits: the slot engine, booking and moving, cancelling, credit and make-up visits."""
