"""The one error type of media decoding."""


class MediaError(ValueError):
    """A media source could not be read or decoded. The message names the source and the reason."""
