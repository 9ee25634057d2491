"""(temporary shell; being written for issue 4) Store: SQLite jobs and metric history."""

from pathlib import Path


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path

    def close(self) -> None:
        pass
