"""Who is calling: the owner, or a registered app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NewType

AppId = NewType("AppId", str)


@dataclass(frozen=True, slots=True)
class Principal:
    """Every service call names one. The owner has all rights; an app has its grants."""

    kind: Literal["owner", "app"]
    app_id: AppId | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.kind == "app") != (self.app_id is not None):
            raise ValueError("an app principal needs an app_id, and only an app has one")

    @property
    def is_owner(self) -> bool:
        return self.kind == "owner"

    @property
    def label(self) -> str:
        """What is stamped as ``created_by`` and written to the audit log."""
        return "owner" if self.kind == "owner" else f"app:{self.app_id}"

    @classmethod
    def app(cls, app_id: str, name: str | None = None) -> Principal:
        return cls(kind="app", app_id=AppId(app_id), name=name)


OWNER = Principal(kind="owner")
