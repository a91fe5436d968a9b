"""The server process: serving, draining on SIGTERM/SIGINT, and ``--workers N`` supervision."""
