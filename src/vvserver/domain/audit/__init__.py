"""The audit log: the hash chain and its anchor, and the administrators' view of it."""
