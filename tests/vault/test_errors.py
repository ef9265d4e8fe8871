from __future__ import annotations

from vault import errors
from vault.errors import VaultError


def _all_errors() -> list[type[VaultError]]:
    seen: list[type[VaultError]] = []
    todo: list[type[VaultError]] = [VaultError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


def test_every_error_has_its_own_exit_code_and_no_usage_code() -> None:
    codes = [cls.exit_code for cls in _all_errors()]
    assert len(codes) == len(set(codes))
    assert 0 not in codes and 2 not in codes


def test_every_error_is_drawn_in_the_module_docstring() -> None:
    doc = errors.__doc__ or ""
    for cls in _all_errors():
        assert cls.__name__ in doc
        assert f"exit {cls.exit_code} " in doc.split(cls.__name__, 1)[1].splitlines()[0] + " "


def test_every_error_maps_to_a_status_and_an_mcp_kind() -> None:
    for cls in _all_errors():
        assert 400 <= cls.http_status < 600
        assert cls.mcp in ("tool_error", "invalid_request", "invalid_params", "internal")
