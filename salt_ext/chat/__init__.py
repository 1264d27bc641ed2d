"""Conversations: a question in, a grounded answer out (pipeline -> execution -> responder)."""
