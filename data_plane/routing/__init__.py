"""Choosing a deployment: per-replica health (breakers, in-flight, latency) and the plan."""
