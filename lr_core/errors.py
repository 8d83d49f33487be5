"""Exception types shared across lr_core."""


class DataError(ValueError):
    """Bad or inconsistent input data (messages name the file, line and field)."""


class ConfigError(ValueError):
    """Invalid or inconsistent configuration."""


class CacheMismatchError(ValueError):
    """A cached artifact does not match the settings it is being reused with."""


class MissingSettingError(ConfigError, DataError):
    """A setting the caller must supply (e.g. the instruction of an unregistered data set).

    Both a ConfigError and a DataError: the setting is missing because of what the data is.

    ``str(exc)`` names the library argument (``pass instruction=...``); the command line
    renders it with its own flag through :meth:`with_flag` (``pass --instruction TEXT``).
    """

    def __init__(self, message: str, setting: str):
        self.message, self.setting = message, setting
        super().__init__(f"{message}; pass {setting}=...")

    def with_flag(self, flag: str) -> str:
        return f"{self.message}; pass {flag}"
