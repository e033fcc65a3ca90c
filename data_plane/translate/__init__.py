"""Translators between wire formats and the canonical model (`model`): pure
functions, and one small object per stream. One module per wire format."""
