"""Named implementations that a config value selects (`generation.backend`, `reward.name`)."""

from __future__ import annotations


class Registry(dict):
    """A dict of name -> implementation, filled by the `register(name)` class decorator."""

    def register(self, name: str):
        def wrap(obj):
            self[name] = obj
            return obj

        return wrap
