"""Local stand-ins for the upstream providers: tools for development, tests and
benchmarks, never part of what runs in a pod."""
