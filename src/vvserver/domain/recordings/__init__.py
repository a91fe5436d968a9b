"""Finished recordings: playback, search and evidence export."""
