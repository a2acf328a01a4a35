"""The scanner agent's tests need no database: they run without Django set up at all."""
