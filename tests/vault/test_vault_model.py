"""The vault's own model: new vaults record the int8 default, old ones keep fp32, `reindex --model` switches resumably."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from schemas.items import MemoryIn, SearchQuery
from tests.conftest import PASSPHRASE
from vault import OWNER, Settings, VaultService, init_vault, open_vault, vault_model
from vault.errors import EmbedderUnavailable, InvalidInput
from vault.index import index_file
from vault.migrations.m0011_model import EARLIER_DEFAULT
from vault.settings import DEFAULT_MODEL, NEW_VAULT_MODEL
from vault.store import Store
from vault.unlock import unlock_key

ROOT = Path(__file__).resolve().parents[2]
FACTS = [f"Fact {n}: my {thing} is kept in the {place}" for n, (thing, place) in enumerate(
    [(t, p) for t in ("passport", "bicycle", "guitar", "umbrella") for p in ("hall", "attic", "garage")]
)]  # fmt: skip


def _fill(svc: VaultService) -> None:
    for text in FACTS:
        svc.remember(OWNER, MemoryIn(text=text))


def _as_before_m0011(settings: Settings) -> None:
    """Make the vault what every release before m0011_model left: no recorded model."""
    store = Store(settings.db_path, unlock_key(settings, PASSPHRASE))
    try:
        with store.transaction():
            store.execute("DROP TABLE vault_model")
            store.execute("DELETE FROM _migrations WHERE name = 'm0011_model'")
    finally:
        store.close()


def _models_of_vectors(svc: VaultService) -> dict[str, int]:
    rows = svc.store.query("SELECT m.name, count(*) FROM vectors v JOIN models m ON m.id = v.model GROUP BY m.name")
    return {str(r[0]): int(r[1]) for r in rows}


def test_a_new_vault_records_the_int8_model_and_embeds_with_it(vault: VaultService) -> None:
    assert NEW_VAULT_MODEL == DEFAULT_MODEL + "#int8"
    assert vault_model.recorded(vault.store) == NEW_VAULT_MODEL
    vault.remember(OWNER, MemoryIn(text="I keep bees on the roof"))
    assert _models_of_vectors(vault) == {NEW_VAULT_MODEL: 1}
    assert vault.retrieval_stats(OWNER).model == NEW_VAULT_MODEL


def test_a_vault_keeps_its_model_whatever_ctxvault_model_says_later(settings: Settings) -> None:
    init_vault(replace(settings, model=DEFAULT_MODEL), PASSPHRASE)  # created with fp32 on purpose
    with open_vault(settings, PASSPHRASE) as svc:  # the default (int8) configured now
        svc.remember(OWNER, MemoryIn(text="My sister lives in Lisbon"))
        assert svc.retrieval_stats(OWNER).model == DEFAULT_MODEL and _models_of_vectors(svc) == {DEFAULT_MODEL: 1}


def test_an_old_fp32_vault_keeps_searching_densely_with_fp32_after_the_code_upgrade(settings: Settings) -> None:
    fp32 = replace(settings, model=DEFAULT_MODEL)
    init_vault(fp32, PASSPHRASE)
    with open_vault(fp32, PASSPHRASE) as svc:
        _fill(svc)
    _as_before_m0011(settings)
    with open_vault(settings, PASSPHRASE) as svc:  # the new code, whose default is int8
        assert vault_model.recorded(svc.store) == DEFAULT_MODEL
        stats = svc.retrieval_stats(OWNER)
        assert stats.model == DEFAULT_MODEL and stats.stale_vectors == 0 and stats.vectors == len(FACTS)
        hits = svc.search(OWNER, SearchQuery(text="where is my travel document", mode="dense", limit=1)).hits
        assert "my passport" in hits[0].text
        assert _models_of_vectors(svc) == {DEFAULT_MODEL: len(FACTS)}  # nothing re-embedded, nothing stale


def test_an_old_vault_without_vectors_records_the_earlier_fp32_default(settings: Settings) -> None:
    init_vault(settings, PASSPHRASE)
    _as_before_m0011(settings)
    with open_vault(settings, PASSPHRASE) as svc:
        assert vault_model.recorded(svc.store) == EARLIER_DEFAULT == DEFAULT_MODEL


def test_reindex_with_a_model_switches_the_vault_and_re_embeds_every_unit(settings: Settings) -> None:
    fp32 = replace(settings, model=DEFAULT_MODEL)
    init_vault(fp32, PASSPHRASE)
    with open_vault(fp32, PASSPHRASE) as svc:
        _fill(svc)
        svc.search(OWNER, SearchQuery(text="guitar", limit=1))  # seals the fp32 index file
    assert index_file(settings.index_dir, DEFAULT_MODEL).exists()
    with open_vault(settings, PASSPHRASE) as svc:
        report = svc.reindex(OWNER, model=NEW_VAULT_MODEL)
        assert report.switched_from == DEFAULT_MODEL and report.model == NEW_VAULT_MODEL and report.embedded == len(FACTS)
        assert _models_of_vectors(svc) == {NEW_VAULT_MODEL: len(FACTS)}
        hits = svc.search(OWNER, SearchQuery(text="where is my travel document", mode="dense", limit=1)).hits
        assert "my passport" in hits[0].text
    assert not index_file(settings.index_dir, DEFAULT_MODEL).exists()  # no sealed copy of the old vectors is left
    with open_vault(settings, PASSPHRASE) as svc:
        assert vault_model.recorded(svc.store) == NEW_VAULT_MODEL and svc.retrieval_stats(OWNER).stale_vectors == 0


def test_an_unloadable_model_switches_nothing(vault: VaultService) -> None:
    vault.remember(OWNER, MemoryIn(text="I keep bees on the roof"))
    with pytest.raises(EmbedderUnavailable):
        vault.reindex(OWNER, model="no-such/model")
    assert vault_model.recorded(vault.store) == NEW_VAULT_MODEL and vault.retrieval_stats(OWNER).stale_vectors == 0


_KILLED_REINDEX = """
import os, sys
from vault import OWNER, Settings, open_vault, search
search.EMBED_BATCH = 4
settings = Settings.from_env()
svc = open_vault(settings, sys.argv[1])

def progress(done: int, total: int) -> None:
    if done > 2 * search.EMBED_BATCH:  # the first batch's write was awaited before the second was queued
        os._exit(9)  # killed: no cleanup, no close

svc.reindex(OWNER, progress=progress, model=sys.argv[2])
"""


def test_a_model_switch_killed_midway_searches_by_keywords_and_resumes(settings: Settings) -> None:
    fp32 = replace(settings, model=DEFAULT_MODEL)
    init_vault(fp32, PASSPHRASE)
    with open_vault(fp32, PASSPHRASE) as svc:
        _fill(svc)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-c", _KILLED_REINDEX, PASSPHRASE, NEW_VAULT_MODEL], env=env, cwd=ROOT, timeout=300)
    assert killed.returncode == 9
    with open_vault(settings, PASSPHRASE) as svc:
        assert vault_model.recorded(svc.store) == NEW_VAULT_MODEL  # recorded before the first batch
        counts = _models_of_vectors(svc)
        assert 0 < counts[NEW_VAULT_MODEL] < len(FACTS) and counts[DEFAULT_MODEL] == len(FACTS) - counts[NEW_VAULT_MODEL]
        hits = svc.search(OWNER, SearchQuery(text="guitar attic", limit=3)).hits  # hybrid falls back to keywords
        assert any("guitar is kept in the attic" in h.text for h in hits)
        with pytest.raises(InvalidInput):
            svc.search(OWNER, SearchQuery(text="guitar", mode="dense"))
        report = svc.reindex(OWNER)  # no --model: the vault's recorded model goes on
        assert report.embedded == len(FACTS) - counts[NEW_VAULT_MODEL] and report.switched_from is None
        assert _models_of_vectors(svc) == {NEW_VAULT_MODEL: len(FACTS)}
        hits = svc.search(OWNER, SearchQuery(text="where is my travel document", mode="dense", limit=1)).hits
        assert "my passport" in hits[0].text


def test_the_switch_is_in_the_audit_log(vault: VaultService) -> None:
    vault.reindex(OWNER, model=DEFAULT_MODEL)
    rows = vault.store.query("SELECT detail FROM audit WHERE detail LIKE '%switch model%'")
    assert [json.loads(r[0])["to"] for r in rows] == [DEFAULT_MODEL]
