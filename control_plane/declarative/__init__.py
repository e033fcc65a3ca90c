"""Declarative configuration: the whole configuration as one document, exported
from the state, and planned and applied against it in one transaction."""
