"""Fault-injection scenarios of reliability.md §4, each ending with a `N passed, N failed` line."""
