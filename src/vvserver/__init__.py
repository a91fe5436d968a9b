"""vvserver: self-hostable video visitation for jails and prisons."""

__version__ = "0.1.0"
