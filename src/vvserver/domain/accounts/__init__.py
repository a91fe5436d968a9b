"""Accounts and who is calling: sign-in, staff, principals and their scope, secrets, rate limits."""
