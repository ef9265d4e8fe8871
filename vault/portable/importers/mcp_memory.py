"""The official MCP memory server's ``memory.jsonl``: a knowledge graph, one JSON object a line.

Entities (``{"type": "entity", "name", "entityType", "observations": [...]}``) become one
memory per observation, tagged with the entity's name and type; relations
(``{"type": "relation", "from", "to", "relationType"}``) become one memory each.
The file has no ids or timestamps: re-imports are idempotent through content hashes.
"""

from __future__ import annotations

from datetime import datetime

from schemas.portable import Skipped
from vault.errors import BadBundle
from vault.portable.bundle import load_json
from vault.portable.records import ImportBatch, ItemRecord, check_count, check_text, clean_tags


def _label(name: str) -> str:
    return name.replace("_", " ").strip()


def read(data: bytes, source: str, space: str | None, now: datetime) -> ImportBatch:
    lines = [ln for ln in data.splitlines() if ln.strip()]
    check_count(len(lines), "memory.jsonl")
    records: list[ItemRecord] = []
    skipped: list[Skipped] = []
    for n, line in enumerate(lines, 1):
        obj = load_json(line, f"memory.jsonl line {n}")
        if not isinstance(obj, dict):
            raise BadBundle(f"memory.jsonl line {n} is not a JSON object")
        kind = obj.get("type")
        base = {"space": space or "personal", "created_at": now, "updated_at": now, "source": "import:mcp-memory"}
        if kind == "entity":
            name, etype, observations = obj.get("name"), obj.get("entityType"), obj.get("observations", [])
            if not isinstance(name, str) or not name or not isinstance(observations, list):
                raise BadBundle(f"memory.jsonl line {n}: an entity needs a name and a list of observations")
            check_count(len(observations), f"memory.jsonl line {n}")
            for obs in observations:
                if not isinstance(obs, str) or not obs.strip():
                    skipped.append(Skipped(ref=f"line {n}", reason="observation is not a non-empty string"))
                    continue
                text = check_text(f"{_label(name)}: {obs.strip()}", f"memory.jsonl line {n}")
                records.append(
                    ItemRecord(
                        id=None, kind="memory", text=text, tags=clean_tags([name, str(etype or "")]),
                        meta={"entity": name, "entity_type": etype}, **base,  # type: ignore[arg-type]
                    )
                )  # fmt: skip
        elif kind == "relation":
            src, dst, rel = obj.get("from"), obj.get("to"), obj.get("relationType")
            if not all(isinstance(v, str) and v for v in (src, dst, rel)):
                raise BadBundle(f"memory.jsonl line {n}: a relation needs from, to and relationType")
            assert isinstance(src, str) and isinstance(dst, str) and isinstance(rel, str)
            text = check_text(f"{_label(src)} {rel.replace('_', ' ')} {_label(dst)}", f"memory.jsonl line {n}")
            records.append(
                ItemRecord(
                    id=None, kind="memory", text=text, tags=clean_tags([src, dst, "relation"]),
                    meta={"relation": rel, "from": src, "to": dst}, **base,  # type: ignore[arg-type]
                )
            )  # fmt: skip
        else:
            skipped.append(Skipped(ref=f"line {n}", reason=f"unknown type {str(kind)[:40]!r}"))
    return ImportBatch("mcp-memory", source, tuple(records), None, tuple(skipped))
