"""People: persons in custody, visitors, their approvals and bans."""
