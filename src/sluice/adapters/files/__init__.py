"""File bytes for the engine's ``FileStore`` port."""

from sluice.adapters.files.local import LocalFileStore, file_type

__all__ = ["LocalFileStore", "file_type"]
