"""The durable scheduler of timed work.

Every job is derived from the database (a state or a marker column written in the same
transaction as the job's effect), so a restart neither loses nor repeats work. The loop is in
``vvserver.scheduling.loop``; the event bus it publishes on is ``vvserver.domain.visits.bus``.
"""
