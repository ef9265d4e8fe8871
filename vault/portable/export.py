"""Build a bundle's files from the vault: PAM memory store, embeddings, companion files.

Reads canonical rows only (items, doc_files, units, vectors) through one ItemFilter;
the caller (VaultService.export_bundle) has already checked that the owner asked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from schemas.items import Item
from schemas.portable import (
    COMPANION_DIR,
    FORMAT_VERSION,
    BundleCounts,
    ChunkEntry,
    DocumentEntry,
    DocumentFileInfo,
    DocumentsFile,
    EarlierState,
    FileEntry,
    Manifest,
    PreferenceHistory,
    PreferencesFile,
    Selection,
    SpaceEntry,
    SpacesFile,
    TombstoneEntry,
    TombstonesFile,
    VectorsFile,
    VersionEntry,
)
from vault import vectors as vector_rows
from vault.blob import content, content_size
from vault.errors import StoreCorrupt
from vault.filters import ItemFilter
from vault.items import ITEM_COLUMNS, row_to_item
from vault.portable import pam
from vault.portable.bundle import Files, sha256
from vault.store import Row, Store

Progress = Callable[[int, int, str], None]
_UNSAFE = re.compile(r"[\x00-\x1f/\\:]+")


def _dump(model: Any) -> bytes:
    # Compact on purpose: with indent, json falls back to its pure-Python encoder (3x slower).
    return json.dumps(model, ensure_ascii=False, separators=(",", ":")).encode()


def _safe_filename(name: str) -> str:
    cleaned = _UNSAFE.sub("_", name).strip(". ")[:120]
    return cleaned or "file"


class _StoredFile:
    """A document's file (current or kept version) left in the database until its tar member is written
    (a ``vault.blob.Blob``): its size and the sha256 the vault recorded are what the manifest declares."""

    def __init__(self, store: Store, table: str, key: list[object], size: int, digest: str) -> None:
        self._store, self._table, self._key = store, table, key
        self.size, self.sha256 = size, digest

    def read(self) -> bytes:
        where = "item_id = ?" if len(self._key) == 1 else "item_id = ? AND version = ?"
        row = self._store.one(f"SELECT data FROM {self._table} WHERE {where}", self._key)
        if row is None:
            raise StoreCorrupt(f"a document's file ({self._table} {self._key[0]}) was removed while it was being exported: export again")
        return bytes(row[0])


def build_bundle(
    store: Store,
    scope: ItemFilter,
    selection: Selection,
    *,
    now: datetime,
    export_id: str,
    model: str | None = None,
    progress: Progress | None = None,
    salvage: Salvage | None = None,
) -> tuple[Files, BundleCounts]:
    """Every file of the bundle, by path inside it, and what it holds.

    ``salvage``: a damaged vault, read through the salvage's own connection. Every row that can
    still be read is exported; what cannot be (a damaged page) is listed in ``salvage.unreadable``.
    """
    unreadable = salvage.unreadable if salvage is not None else None
    lazy = salvage is None  # a damaged vault's files are read now, where a damaged page is caught and listed
    history = ItemFilter(request=scope.request, reach=scope.reach, since=scope.since, until=scope.until, include_superseded=True)
    where, params = history.where("i")
    if unreadable is None:
        rows = store.query(f"SELECT {ITEM_COLUMNS} FROM items i WHERE {where} ORDER BY i.created_at, i.id", params)
    else:
        assert salvage is not None
        rows = _readable_items(salvage, where, params)
        store = salvage.store
    items = [row_to_item(r) for r in rows]
    ids = {i.id for i in items}
    superseded_by = {i.supersedes: i.id for i in items if i.supersedes in ids}
    # A value replaced by one the bundle forgot names it too (its tombstone travels); one replaced by a value
    # outside the selection names none, so an import of the slice leaves the importing vault's value live.
    request, request_params = scope.request.sql("i")
    try:
        superseded_by |= {
            r[0]: r[1]
            for r in store.query(
                f"SELECT i.supersedes, i.id FROM items i WHERE i.deleted_at IS NOT NULL AND i.supersedes IS NOT NULL AND {request}",
                request_params,
            )
            if r[0] in ids
        }
    except StoreCorrupt:
        if salvage is None:
            raise
        store = salvage.reopen()

    vec_sql = f"""SELECT u.item_id, u.seq, m.name AS model, m.dim, v.vec FROM vectors v JOIN models m ON m.id = v.model
            JOIN units u ON u.uid = v.uid JOIN items i ON i.id = u.item_id
            WHERE {where} ORDER BY m.name = ? DESC, m.name, u.item_id, u.seq"""  # the vault's current model first: one model per bundle
    try:
        vec_rows = store.query(vec_sql, [*params, model])
    except StoreCorrupt:
        if salvage is None:
            raise
        store = salvage.reopen()
        vec_rows = []
        salvage.unreadable.append("vectors: unreadable; exported without them (an import re-embeds the items)")
    model, dim = (vec_rows[0]["model"], int(vec_rows[0]["dim"])) if vec_rows else (None, None)
    vec_rows = [r for r in vec_rows if r["model"] == model and r["dim"] == dim]
    vec_units = [(str(r["item_id"]), int(r["seq"])) for r in vec_rows]
    with_vector = {item_id for item_id, seq in vec_units if seq == 0}

    files: Files = {}
    try:
        versions, left_out = _histories(store, scope, where, params, files, lazy)
    except StoreCorrupt:
        if salvage is None:
            raise
        store = salvage.reopen()
        versions, left_out = {}, {}
        files = {}
        salvage.unreadable.append("history: the items' earlier versions are unreadable; exported without them")
    counts = BundleCounts(vectors=len(vec_rows))
    memories: list[dict[str, Any]] = []
    embeddings: list[dict[str, Any]] = []
    prefs: dict[str, list[Item]] = {}
    documents: list[DocumentEntry] = []
    conversations: list[dict[str, Any]] = []
    spaces: dict[str, SpaceEntry] = {}
    row_of = {unit: n for n, unit in enumerate(vec_units)}
    for n, item in enumerate(items, 1):
        if progress and n % 500 == 0:
            progress(n, len(items), "items")
        live = item.superseded_at is None
        if live:
            entry = spaces.setdefault(item.space, SpaceEntry(name=item.space, memories=0, preferences=0, documents=0))
            field = {"memory": "memories", "preference": "preferences", "document": "documents"}[item.kind]
            setattr(entry, field, getattr(entry, field) + 1)
        if item.kind == "document":
            try:
                documents.append(_document(store, item, files, versions.get(item.id, []), left_out.get(item.id, []), lazy))
            except StoreCorrupt:
                if salvage is None:
                    raise
                store = salvage.reopen()
                salvage.unreadable.append(f"document {item.id}: its file or chunks are unreadable; left out")
                continue
            counts.documents += 1
            counts.chunks += len(documents[-1].chunks)
            member = documents[-1].file.member  # a conversation's transcript is read (alone) to write it as PAM too
            if live and pam.is_conversation(item) and (conv := pam.conversation(item, content(files[member]).decode("utf-8", "replace"))):
                files[conv[0]] = _dump(conv[1])  # also a PAM conversation, for tools that read PAM (issue 28)
                conversations.append(conv[2])
            continue
        ref = f"emb-{item.id}" if item.id in with_vector else None
        memories.append(pam.memory_object(item, superseded_by.get(item.id), ref, versions.get(item.id), left_out.get(item.id)))
        if ref is not None:
            embeddings.append(
                {
                    "id": ref,
                    "memory_id": item.id,
                    "model": model,
                    "dimensions": dim,
                    "created_at": now.isoformat(),
                    "storage": {"type": "file", "ref": f"{COMPANION_DIR}/vectors.f32#{row_of[(item.id, 0)]}"},
                }
            )
        if item.kind == "memory":
            counts.memories += 1
        else:
            prefs.setdefault(item.key or "", []).append(item)
            if live:
                counts.preferences += 1
            else:
                counts.preference_versions += 1

    files["memory-store.json"] = _dump(
        pam.memory_store(memories, owner_id="owner", export_id=export_id, now=now, conversations=conversations)
    )
    if embeddings:
        files["embeddings.json"] = _dump(pam.embeddings_file(embeddings))
    c = COMPANION_DIR
    files[f"{c}/preferences.json"] = _dump(
        PreferencesFile(
            preferences=[
                PreferenceHistory(
                    key=key,
                    current=next((v.id for v in versions if v.superseded_at is None), None),
                    versions=[v.id for v in sorted(versions, key=lambda v: (v.provenance.created_at, v.id), reverse=True)],
                )
                for key, versions in sorted(prefs.items())
            ]
        ).model_dump(mode="json")
    )
    files[f"{c}/documents.json"] = _dump(DocumentsFile(documents=documents).model_dump(mode="json"))
    try:
        tombstones = _tombstones(store, scope, selection)
    except StoreCorrupt:
        if salvage is None:
            raise
        store = salvage.reopen()
        tombstones = TombstonesFile(tombstones=[])
        salvage.unreadable.append("tombstones: unreadable; exported without them")
    files[f"{c}/tombstones.json"] = _dump(tombstones.model_dump(mode="json", exclude_none=True))
    files[f"{c}/spaces.json"] = _dump(SpacesFile(spaces=sorted(spaces.values(), key=lambda s: s.name)).model_dump(mode="json"))
    if vec_rows:
        assert model is not None and dim is not None
        files[f"{c}/vectors.json"] = _dump(VectorsFile(model=model, dimensions=dim, units=vec_units).model_dump(mode="json"))
        files[f"{c}/vectors.f32"] = vector_rows.decode([bytes(r["vec"]) for r in vec_rows], dim).astype("<f4").tobytes()
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        exported_by=pam.EXPORTER,
        created_at=now,
        selection=selection,
        counts=counts,
        model=model,
        dimensions=dim,
        files={name: FileEntry(sha256=sha256(data), size=content_size(data)) for name, data in sorted(files.items())},
    )
    files[f"{c}/manifest.json"] = _dump(manifest.model_dump(mode="json", exclude_none=True))
    return files, counts


class Salvage:
    """Reading a damaged vault: its own connection, opened again after each damaged page.

    SQLCipher leaves a connection in an error state once a page fails its HMAC, so every read
    after the first damaged page would fail too (issue 29).
    """

    def __init__(self, open_store: Callable[[], Store]) -> None:
        self._open = open_store
        self.store = open_store()
        self.unreadable: list[str] = []

    def reopen(self) -> Store:
        self.store.conn.close()
        self.store = self._open()
        return self.store

    def close(self) -> None:
        self.store.conn.close()


def _readable_items(salvage: Salvage, where: str, params: list[Any]) -> list[Row]:
    """The item rows of ``where`` that can be read, row by row by rowid: a damaged page loses only its own rows.

    A scan stops at the first damaged page; a lookup by rowid reads only the pages on its own path.
    """
    try:
        top_row = salvage.store.one("SELECT max(rowid) FROM items")
    except StoreCorrupt:
        salvage.reopen()
        salvage.unreadable.append("items: the table cannot be read at all")
        return []
    top = int(top_row[0]) if top_row is not None and top_row[0] is not None else 0
    rows: list[Row] = []
    lost = 0
    for rowid in range(1, top + 1):
        try:
            row = salvage.store.one(f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.rowid = ? AND ({where})", [rowid, *params])
        except StoreCorrupt:
            salvage.reopen()
            lost += 1
            continue
        if row is not None:
            rows.append(row)
    if lost:
        salvage.unreadable.append(f"items: {lost} rows on damaged pages could not be read")
    rows.sort(key=lambda r: (r["created_at"], r["id"]))
    return rows


def _histories(
    store: Store, scope: ItemFilter, where: str, params: list[object], files: Files, lazy: bool = False
) -> tuple[dict[str, list[VersionEntry]], dict[str, list[datetime]]]:
    """The kept versions of the exported items, oldest first; a version outside the selection stays out, as an item
    would, and only the instant it was written is listed (``left_out``: no content, no hash), so an importing vault
    still at it knows it is behind. A document version's file is added to ``files`` (``x-ctxvault/files/ID/vN/NAME``):
    ``lazy``, as a Blob read from ``doc_versions`` when its member is written."""
    out: dict[str, list[VersionEntry]] = {}
    left_out: dict[str, list[datetime]] = {}
    rows = store.query(
        f"""SELECT i.kind, v.*, d.path AS f_path, d.filename AS f_name, d.mime AS f_mime, d.size AS f_size, d.sha256 AS f_sha,
                   d.data IS NOT NULL AS f_has, length(d.data) AS f_len{"" if lazy else ", d.data AS f_data"}
            FROM item_versions v JOIN items i ON i.id = v.item_id
            LEFT JOIN doc_versions d ON d.item_id = v.item_id AND d.version = v.version
            WHERE {where} ORDER BY v.item_id, v.version""",
        params,
    )
    for r in rows:
        tags = json.loads(r["tags"])
        if not (
            scope.request.matches(r["kind"], r["space"], tags, r["sensitivity"])
            and scope.allows(r["kind"], r["space"], tags, r["sensitivity"])
        ):
            left_out.setdefault(r["item_id"], []).append(datetime.fromisoformat(r["saved_at"]))
            continue
        file = None
        if r["f_has"]:
            member = f"{COMPANION_DIR}/files/{r['item_id']}/v{r['version']}/{_safe_filename(r['f_name'])}"
            key: list[object] = [r["item_id"], r["version"]]
            files[member] = _StoredFile(store, "doc_versions", key, int(r["f_len"]), r["f_sha"]) if lazy else bytes(r["f_data"])
            file = DocumentFileInfo(
                member=member, path=r["f_path"], filename=r["f_name"], mime=r["f_mime"], size=r["f_size"], sha256=r["f_sha"]
            )
        out.setdefault(r["item_id"], []).append(
            VersionEntry(
                text=r["text"], space=r["space"], tags=tags, sensitivity=r["sensitivity"], content_hash=r["content_hash"],
                saved_by=r["saved_by"], saved_at=r["saved_at"], replaced_by=r["replaced_by"], replaced_at=r["replaced_at"], file=file,
            )
        )  # fmt: skip
    return out, left_out


def _tombstones(store: Store, scope: ItemFilter, selection: Selection) -> TombstonesFile:
    """Forgotten items inside the selection (id, content hash, and the states it held, so a vault still at an
    earlier one forgets it too), and (in a full export) purged ids: no content."""
    request, request_params = scope.request.sql("i")
    rows = store.query(
        f"SELECT i.id, i.kind, i.content_hash, i.deleted_at, i.updated_at FROM items i WHERE i.deleted_at IS NOT NULL AND {request} "
        "ORDER BY i.id",
        request_params,
    )
    earlier: dict[str, list[EarlierState]] = {}
    kinds = {r["id"]: r["kind"] for r in rows}
    for start in range(0, len(rows), 5000):
        part = json.dumps([r["id"] for r in rows[start : start + 5000]])
        for v in store.query(
            "SELECT item_id, space, tags, sensitivity, saved_at, content_hash FROM item_versions "
            "WHERE item_id IN (SELECT value FROM json_each(?)) ORDER BY item_id, version",
            [part],
        ):
            tags = json.loads(v["tags"])
            if scope.request.matches(kinds[v["item_id"]], v["space"], tags, v["sensitivity"]):  # as _histories: none outside
                earlier.setdefault(v["item_id"], []).append(EarlierState(saved_at=v["saved_at"], content_hash=v["content_hash"]))
    entries = [
        TombstoneEntry(
            id=r["id"], content_hash=r["content_hash"], state="forgotten", at=r["deleted_at"], updated_at=r["updated_at"],
            earlier=earlier.get(r["id"], []),
        )
        for r in rows
    ]  # fmt: skip
    if selection.is_everything:  # a purged id has no space or kind left to select by
        entries += [
            TombstoneEntry(id=r[0], state="purged", at=r[1])  # the id only: a hash would confirm a guess at what was erased
            for r in store.query("SELECT id, purged_at FROM tombstones ORDER BY id")
        ]
    return TombstonesFile(tombstones=entries)


def _document(
    store: Store, item: Item, files: Files, history: list[VersionEntry], left_out: list[datetime], lazy: bool = False
) -> DocumentEntry:
    data = "length(data) AS f_len" if lazy else "data"
    f = store.one(f"SELECT path, filename, mime, size, sha256, {data} FROM doc_files WHERE item_id = ?", [item.id])
    if f is None:
        raise StoreCorrupt(f"document {item.id} has no file row")
    member = f"{COMPANION_DIR}/files/{item.id}/{_safe_filename(f['filename'])}"
    files[member] = _StoredFile(store, "doc_files", [item.id], int(f["f_len"]), f["sha256"]) if lazy else bytes(f["data"])
    units = store.query("SELECT seq, start, end, text FROM units WHERE item_id = ? ORDER BY seq", [item.id])
    return DocumentEntry(
        id=item.id,
        title=item.text,
        space=item.space,
        tags=item.tags,
        sensitivity=item.sensitivity,
        source=item.provenance.source,
        created_by=item.provenance.created_by,
        created_at=item.provenance.created_at,
        updated_at=item.provenance.updated_at,
        valid_from=item.valid_from,
        valid_until=item.valid_until,
        content_hash=item.content_hash,
        meta=item.meta,
        file=DocumentFileInfo(member=member, path=f["path"], filename=f["filename"], mime=f["mime"], size=f["size"], sha256=f["sha256"]),
        chunks=[ChunkEntry(seq=u["seq"], start=u["start"], end=u["end"], text=u["text"]) for u in units],
        history=history,
        left_out=left_out,
    )
