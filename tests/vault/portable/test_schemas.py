"""The companion files' JSON Schemas in schemas/json/ are generated from schemas/portable.py and current."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from schemas.portable import Selection, json_schemas
from tests.vault.portable.conftest import REPO, populate
from vault import OWNER, VaultService


def test_generated_schemas_are_current() -> None:
    for filename, text in json_schemas().items():
        assert (REPO / "schemas" / "json" / filename).read_text() == text, "run: python -m schemas.portable"


def test_every_companion_file_of_an_export_validates_against_its_schema(source: VaultService, tmp_path: Path) -> None:
    populate(source, memories=5, documents=1)
    source.export_bundle(OWNER, Selection(spaces=["work", "personal"]), tmp_path / "b", plaintext=True)
    for name in ("manifest", "preferences", "documents", "spaces", "vectors"):
        schema = json.loads((REPO / "schemas" / "json" / f"ctxvault-{name}.schema.json").read_text())
        jsonschema.validate(json.loads((tmp_path / "b" / "x-ctxvault" / f"{name}.json").read_text()), schema)
