"""Exception types shared across lr_core."""


class DataError(ValueError):
    """Bad or inconsistent input data (messages name the file, line and field)."""


class ConfigError(ValueError):
    """Invalid or inconsistent configuration."""


class CacheMismatchError(ValueError):
    """A cached artifact does not match the settings it is being reused with."""
