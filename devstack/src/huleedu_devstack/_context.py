"""``with stack:`` for every backend: start on the way in, stop on the way out."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class StartStopContext:
    """A context manager over ``start()`` and ``stop()``; ``stop()`` runs whatever happened."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
