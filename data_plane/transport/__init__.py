"""Talking to upstreams: one attempt at a time, and reading what a stream says."""
