"""VaultService: the one API that the CLI, MCP and HTTP adapters call.

Every public method takes the calling principal first, asks the policy what that
principal may do, does it, and records it in the audit log. The methods live in one
module per noun; this class joins them into the single API.
"""

from __future__ import annotations

from vault.service.activity import ActivityPart
from vault.service.core import Progress
from vault.service.doctor import DoctorPart
from vault.service.forgotten import ForgottenPart
from vault.service.history import HistoryPart
from vault.service.library import LibraryPart
from vault.service.oauth import OAuthPart
from vault.service.portable import PortablePart
from vault.service.preferences import PreferencesPart
from vault.service.reach import ReachPart
from vault.service.retrieval import RetrievalPart


class VaultService(
    ActivityPart, DoctorPart, ForgottenPart, PreferencesPart, HistoryPart, LibraryPart, OAuthPart, PortablePart, RetrievalPart, ReachPart
):
    """An unlocked vault. Close it when done (or use it as a context manager)."""


__all__ = ["Progress", "VaultService"]
