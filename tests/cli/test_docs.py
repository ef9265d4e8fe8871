from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Invoke


def test_doc_add_folder_list_show_remove(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha\n\nThe alpha note mentions kumquats.\n")
    (folder / "b.txt").write_text("Beta note.\n")
    (folder / "c.bin").write_bytes(b"\x00")
    report = json.loads(ctxvault("doc", "add", str(folder), "--space", "work", "--json").stdout)
    assert (report["added"], report["unchanged"], len(report["skipped"])) == (2, 0, 1)
    again = json.loads(ctxvault("doc", "add", str(folder), "--json").stdout)
    assert (again["added"], again["unchanged"]) == (0, 2)
    docs = json.loads(ctxvault("doc", "list", "--json").stdout)["items"]
    alpha = next(d for d in docs if d["text"] == "Alpha")
    detail = json.loads(ctxvault("doc", "show", alpha["id"], "--json").stdout)
    assert "kumquats" in detail["chunks"][0] and detail["mime"] == "text/markdown"
    assert ctxvault("doc", "remove", alpha["id"]).exit_code == 0
    assert ctxvault("doc", "show", alpha["id"]).exit_code == 3


def test_doc_add_of_an_unsupported_file_is_invalid_input(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    path = tmp_path / "x.docx"
    path.write_bytes(b"PK")
    assert ctxvault("doc", "add", str(path)).exit_code == 8
    assert ctxvault("doc", "add", str(tmp_path / "missing.md")).exit_code == 2
