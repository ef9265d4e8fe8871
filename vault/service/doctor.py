"""The vault's health, checked and (its derived parts) repaired by the owner."""

from __future__ import annotations

from vault import doctor
from vault.doctor import DoctorReport, Progress
from vault.principal import Principal
from vault.service.core import ServiceCore


class DoctorPart(ServiceCore):
    """The vault's health, checked and (its derived parts) repaired by the owner."""

    def doctor(self, principal: Principal, *, repair: bool = False, progress: Progress | None = None) -> DoctorReport:
        """Check the database, key file, migrations, keyword index, units, vectors, sealed index and audit chain (owner only).

        ``repair`` rebuilds the derived parts found wrong from the canonical rows (which it never
        writes) and checks again. Resumable: each step commits as it goes.

        Raises:
            ScopeDenied: not the owner. VaultReadOnly: a repair of a read-only vault.
            EmbedderUnavailable: vectors to make and no model.
        """
        self._policy.require_owner(principal, "check the vault")
        report = doctor.examine(self.store, self.settings, self._key)
        if not repair:
            return report
        if self.store.read_only:
            raise self.store.refused()
        failing = {c.part for c in report.checks if not c.ok and c.repairable}
        done: list[str] = []
        for path in doctor.leftovers(self.settings.home):
            path.unlink(missing_ok=True)
            done.append(f"removed {path.name}")
        if "units" in failing:
            n = doctor.repair_units(self.store, self.settings, progress)
            done.append(f"rewrote the units of {n} item(s)")
        if failing & {"units", "keyword index"}:
            doctor.repair_fts(self.store)
            done.append("rebuilt the keyword index")
        if failing & {"units", "vectors", "sealed index"}:
            if orphans := doctor.drop_orphaned_vectors(self.store):
                done.append(f"dropped {orphans} orphaned vector(s)")
            self._retriever.discard_index()
            embedded = self._retriever.reindex(None if progress is None else lambda n, total: progress(n, total, "vectors"))
            done.append(f"embedded {embedded} unit(s) and rebuilt the sealed index")
        after = doctor.examine(self.store, self.settings, self._key)
        after.repaired = done
        return after
