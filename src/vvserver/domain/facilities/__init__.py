"""Facilities: housing units, visiting rules, blackouts, kiosks and reports."""
