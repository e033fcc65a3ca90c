"""Test support: a real PostgreSQL, real processes, real HTTP."""
