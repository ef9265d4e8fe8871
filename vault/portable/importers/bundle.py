"""Our own bundles (sealed or a plain directory) and bare PAM directories."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from schemas.portable import COMPANION_DIR, FORMAT_NAME, FORMAT_VERSION, DocumentsFile, Manifest, TombstonesFile, VectorsFile
from vault.blob import content, content_size
from vault.chunking import Chunk
from vault.dates import aware
from vault.errors import BadBundle
from vault.portable import bundle, pam
from vault.portable.bundle import Files, Identity
from vault.portable.records import (
    DocumentPayload,
    ImportBatch,
    ItemRecord,
    Tombstone,
    VectorSet,
    check_count,
    check_text,
    clean_space,
    valid_id,
    versions_from,
)
from vault.portable.spool import Spool

MANIFEST = f"{COMPANION_DIR}/manifest.json"
M = TypeVar("M", bound=BaseModel)


def open_files(path: Path, *, identities: list[Identity] | None, passphrase: str | None, spool: Spool | None = None) -> Files:
    """The files of a bundle at ``path``: an age file, a plain tar, or a directory (documents sealed into ``spool``)."""
    if path.is_dir():
        return bundle.read_directory(path)
    if bundle.is_age_file(path):
        return bundle.read_encrypted(path, identities=identities, passphrase=passphrase, spool=spool)
    with path.open("rb") as fh:
        return bundle.untar(fh, spool)


def _model(cls: type[M], files: Files, name: str) -> M:
    try:
        return cls.model_validate(bundle.load_json(files[name], name))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadBundle(f"{name} is malformed at {'.'.join(map(str, err['loc'][:4]))}: {err['msg']}") from exc


def read(files: Files, source: str, space: str | None) -> ImportBatch:
    """Parse a bundle's files, verifying the manifest's sha256 of every file first.

    Raises:
        BadBundle: unknown version, a file missing, added or altered, or hostile content.
    """
    if MANIFEST not in files:
        return read_pam(files, source, space)
    raw = bundle.load_json(files[MANIFEST], MANIFEST)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise BadBundle(f"{MANIFEST} does not describe a {FORMAT_NAME}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise BadBundle(
            f"bundle format version {str(raw.get('format_version'))[:16]!r} is not supported (this version reads {FORMAT_VERSION})"
        )
    manifest = _model(Manifest, files, MANIFEST)
    listed = set(manifest.files) | {MANIFEST}
    if extra := sorted(set(files) - listed):
        raise BadBundle(f"bundle holds files its manifest does not list: {extra[0][:80]!r}")
    for name, entry in manifest.files.items():
        if name not in files:
            raise BadBundle(f"bundle is missing {name[:80]!r}")
        if content_size(files[name]) != entry.size or bundle.sha256(files[name]) != entry.sha256:
            raise BadBundle(f"{name[:80]!r} does not match the manifest's sha256 (tampered or corrupt)")

    records, skipped = pam.parse_memory_store(bundle.load_json(files["memory-store.json"], "memory-store.json"), space=space)
    counts = manifest.counts
    if (
        sum(1 for r in records if r.kind == "memory") != counts.memories
        or sum(1 for r in records if r.kind == "preference") != counts.preferences + counts.preference_versions
    ):
        raise BadBundle("memory-store.json holds a different number of items than the manifest declares")
    docs = _model(DocumentsFile, files, f"{COMPANION_DIR}/documents.json") if f"{COMPANION_DIR}/documents.json" in files else None
    if docs is not None:
        check_count(len(docs.documents), "documents.json")
        if len(docs.documents) != counts.documents:
            raise BadBundle("documents.json holds a different number of documents than the manifest declares")
        for d in docs.documents:
            if d.file.member not in files:
                raise BadBundle(f"document {d.id[:40]!r}: its file {d.file.member[:80]!r} is missing")
            data = files[d.file.member]
            if bundle.sha256(data) != d.file.sha256:
                raise BadBundle(f"document {d.id[:40]!r}: file does not match its sha256")
            chunks = tuple(Chunk(c.seq, c.start, c.end, check_text(c.text, f"document {d.id[:40]!r} chunk {c.seq}")) for c in d.chunks)
            records.append(
                ItemRecord(
                    id=d.id,
                    kind="document",
                    text=check_text(d.title, f"document {d.id[:40]!r}"),
                    space=space or d.space,
                    created_at=d.created_at,
                    updated_at=d.updated_at,
                    tags=tuple(d.tags),
                    sensitivity=d.sensitivity,
                    source=d.source,
                    created_by=d.created_by,
                    valid_from=d.valid_from,
                    valid_until=d.valid_until,
                    meta=d.meta,
                    hash=d.content_hash,
                    document=DocumentPayload(d.file.path, d.file.filename, d.file.mime, data, d.file.sha256, None, chunks),
                    history=versions_from(d.history, f"document {d.id[:40]!r}", files),
                    left_out=frozenset(aware(t) for t in d.left_out),
                )
            )
    vectors = _vectors(files, manifest)
    partial = not manifest.selection.is_everything
    return ImportBatch("bundle", source, tuple(records), vectors, tuple(skipped), _tombstones(files), partial=partial)


def _tombstones(files: Files) -> tuple[Tombstone, ...]:
    """Items the exporting vault forgot (id and content hash) or purged (id only); bundles made before history have none.

    Raises:
        BadBundle: too many entries, an id that is not an item id, or a forgotten entry without its hash.
    """
    name = f"{COMPANION_DIR}/tombstones.json"
    if name not in files:
        return ()
    entries = _model(TombstonesFile, files, name).tombstones
    check_count(len(entries), "tombstones.json")
    out: list[Tombstone] = []
    for n, t in enumerate(entries, 1):
        if valid_id(t.id) is None:
            raise BadBundle(f"tombstones.json: entry {n}: {t.id[:40]!r} is not an item id")
        if t.state == "forgotten" and not t.content_hash:
            raise BadBundle(f"tombstones.json: entry {n}: a forgotten item's tombstone carries its content hash")
        # A purged id's hash, should a bundle carry one, is not kept: this vault keeps none either.
        if t.state == "purged":
            out.append(Tombstone(t.id, None, True, t.at))
            continue
        states = None
        if t.updated_at is not None and t.earlier is not None and t.content_hash:
            states = frozenset({(aware(t.updated_at), t.content_hash), *((aware(e.saved_at), e.content_hash) for e in t.earlier)})
        out.append(Tombstone(t.id, t.content_hash, False, t.at, states))
    return tuple(out)


def _vectors(files: Files, manifest: Manifest) -> VectorSet | None:
    name = f"{COMPANION_DIR}/vectors.json"
    if name not in files:
        return None
    spec = _model(VectorsFile, files, name)
    blob = content(files.get(f"{COMPANION_DIR}/vectors.f32", b""))
    width = spec.dimensions * 4
    if len(blob) != width * len(spec.units) or len(spec.units) != manifest.counts.vectors:
        raise BadBundle("vectors.f32 does not hold one vector per unit listed in vectors.json")
    import numpy as np  # only a bundle with vectors needs it

    matrix = np.frombuffer(blob, dtype="<f4").reshape(len(spec.units), spec.dimensions)
    if not np.isfinite(matrix).all():
        raise BadBundle("vectors.f32 holds a value that is not a finite number")
    return VectorSet(spec.model, spec.dimensions, [(item_id, seq) for item_id, seq in spec.units], matrix.astype(np.float32, copy=False))


def read_pam(files: Files, source: str, space: str | None) -> ImportBatch:
    """A PAM directory without our manifest: its memory store, and its conversations (``conversations/*.json``,
    as ``pam convert`` writes them) as documents, one transcript each; a conversation PAM's own model
    rejects is skipped with the reason."""
    from portable_ai_memory.models.conversation import Conversation

    from vault.portable.importers.chats import documents, skip
    from vault.portable.importers.providers import chat_of

    if "memory-store.json" not in files:
        raise BadBundle("no memory-store.json: this is neither a Context Vault bundle nor a PAM directory")
    records, skipped = pam.parse_memory_store(bundle.load_json(files["memory-store.json"], "memory-store.json"), space=space)
    names = sorted(n for n in files if n.startswith("conversations/") and n.endswith(".json"))
    check_count(len(names), "conversations/")
    for name in names:
        try:
            conv = Conversation.model_validate(bundle.load_json(files[name], name))
        except BadBundle as exc:
            skipped.append(skip(name, f"unreadable conversation: {exc.message[:200]}"))
            continue
        except ValidationError as exc:
            skipped.append(skip(name, f"not a PAM conversation: {exc.errors()[0]['msg'][:200]}"))
            continue
        provider = clean_space(conv.provider.name if conv.provider else None, "pam")
        chat = chat_of(conv, provider)
        if chat.turns:
            records += documents(chat, space)
        else:
            skipped.append(skip(name, "conversation without a message"))
    return ImportBatch("pam", source, tuple(records), None, tuple(skipped))
