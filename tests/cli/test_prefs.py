from __future__ import annotations

import json

from tests.cli.conftest import Invoke


def test_pref_set_get_list_history_unset(ctxvault: Invoke, initialised: str) -> None:
    assert ctxvault("pref", "set", "diet", "vegetarian").exit_code == 0
    assert ctxvault("pref", "set", "diet", "vegan", "--space", "health").exit_code == 0
    assert ctxvault("pref", "get", "diet").stdout.strip() == "vegan"
    assert [p["key"] for p in json.loads(ctxvault("pref", "list", "--json").stdout)] == ["diet"]
    history = json.loads(ctxvault("pref", "history", "diet", "--json").stdout)
    assert [h["text"] for h in history] == ["vegan", "vegetarian"]
    assert ctxvault("pref", "unset", "diet").exit_code == 0
    assert ctxvault("pref", "get", "diet").exit_code == 3


def test_pref_set_with_a_bad_key_is_invalid_input(ctxvault: Invoke, initialised: str) -> None:
    result = ctxvault("pref", "set", "Not A Key", "x")
    assert result.exit_code == 8
    assert ctxvault("pref", "history", "nothing").exit_code == 3
