"""Exceptions raised while reading weights files."""


class WeightsFileError(ValueError):
    """A weights file that cannot be used: unreadable, truncated, or of another architecture."""


class UnsafeWeightsError(WeightsFileError):
    """A pickle that asks to call code other than tensor rebuilders; nothing was executed."""
