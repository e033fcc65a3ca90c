"""A chat request's phases: the gate (checks), the attempts (up to the commit
point, then the relay) and the accounting."""
