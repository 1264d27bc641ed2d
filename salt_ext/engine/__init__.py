"""The ServerFlow master engine: event-bus listener hosting inventory (and, later, chat)."""
