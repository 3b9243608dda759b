"""Exceptions raised while finding, downloading and verifying pretrained models."""


class PretrainedError(Exception):
    """Base class of every error `keras_esrgan.pretrained` raises."""


class UnknownModelError(PretrainedError, FileNotFoundError):
    """Neither an existing file nor a registered model name (the message lists close names).

    A `FileNotFoundError`, so code that handles a missing weights file handles a typo too.
    """


class DownloadError(PretrainedError, OSError):
    """The file could not be fetched: HTTP error, interrupted transfer, refused redirect."""


class OfflineError(DownloadError):
    """The host cannot be reached (refused, DNS failure, timeout); says how to install by hand."""


class VerificationError(PretrainedError, ValueError):
    """A downloaded file is not the one the entry pins (SHA-256, size or layout); nothing kept."""


class CorruptCacheError(VerificationError):
    """A file already in the cache fails verification; it is left in place for a human to look."""
