"""Tooling around the planes: the `sluice` command, the local dev runner and its demo
data, and the SQL checker. Nothing on a request path imports this package."""
