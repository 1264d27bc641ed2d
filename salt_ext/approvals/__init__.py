"""Approvals: a proposed write action runs only when a person allowed to approve it says so,
exactly as proposed and previewed, once, before it expires."""
