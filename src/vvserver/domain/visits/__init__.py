"""Visits: the state machine, views, join links, chat, flags, the kiosk's day, the event bus."""
