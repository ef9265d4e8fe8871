"""The one exception hierarchy of Context Vault.

Every error knows how each surface reports it: a CLI exit code, an HTTP status
and an MCP kind (mapped to the SDK by ``mcp_server``). Messages are safe to show.

    VaultError                      exit 1   HTTP 500
    ├── InvalidInput                exit 8   HTTP 400   bad arguments, malformed scope
    │   └── TooLarge                exit 14  HTTP 413   oversized upload or field
    ├── NotFound                    exit 3   HTTP 404   missing, forgotten, or out of scope
    ├── ScopeDenied                 exit 4   HTTP 403   the principal lacks a grant
    ├── VaultLocked                 exit 5   HTTP 423   no key available
    ├── WrongPassphrase             exit 6   HTTP 401   passphrase or recovery key rejected
    ├── BadBundle                   exit 7   HTTP 422   export/import file unreadable or hostile
    │   └── NothingToImport         exit 24  HTTP 422   an import source held nothing readable (skips listed)
    ├── VaultExists                 exit 9   HTTP 409   init over an existing vault
    ├── NoVault                     exit 10  HTTP 404   no vault at the given location
    ├── SchemaTooNew                exit 11  HTTP 409   vault written by a newer version
    ├── KeyFileCorrupt              exit 12  HTTP 500   key file truncated, tampered or unknown
    ├── StoreCorrupt                exit 13  HTTP 500   database or index unreadable with the key
    ├── AuditTampered               exit 15  HTTP 500   the audit hash chain does not verify
    ├── EmbedderUnavailable         exit 16  HTTP 503   the embedding model cannot be loaded
    ├── InvalidToken                exit 17  HTTP 401   unknown, rotated or revoked app token
    ├── VaultBusy                   exit 18  HTTP 503   another process held the vault past the wait
    ├── StorageFailed               exit 19  HTTP 507   the disk refused a write (full, read-only, failing)
    ├── VaultReadOnly               exit 20  HTTP 409   the vault's files or mount are read-only; reads still work
    ├── VaultUnhealthy              exit 21  HTTP 500   `ctxvault doctor` found problems (repairable or not)
    ├── LoginThrottled              exit 31  HTTP 429   too many wrong passphrases from this browser
    └── LimitReached                exit 34  HTTP 429   a per-app limit is reached (pending consent requests)

Exit code 2 stays click's usage error.
"""

from __future__ import annotations

from typing import ClassVar, Literal

McpKind = Literal["tool_error", "invalid_request", "invalid_params", "internal"]


class VaultError(Exception):
    """Base. Subclasses set how each surface reports them; the message is safe to show."""

    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500
    mcp: ClassVar[McpKind] = "internal"

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class InvalidInput(VaultError):
    """The caller sent something malformed: a bad scope, an unknown kind, an empty text."""

    exit_code, http_status, mcp = 8, 400, "tool_error"


class TooLarge(InvalidInput):
    """An input exceeds a documented size limit."""

    exit_code, http_status, mcp = 14, 413, "tool_error"


class NotFound(VaultError):
    """No such item for this principal; out-of-scope items are reported the same way."""

    exit_code, http_status, mcp = 3, 404, "tool_error"


class ScopeDenied(VaultError):
    """The principal holds no grant for this action; the message names what to request."""

    exit_code, http_status, mcp = 4, 403, "tool_error"


class VaultLocked(VaultError):
    """No passphrase, recovery key or unlock session was available."""

    exit_code, http_status, mcp = 5, 423, "invalid_request"


class WrongPassphrase(VaultError):
    """The passphrase or recovery key does not unwrap the data key."""

    exit_code, http_status, mcp = 6, 401, "invalid_request"


class BadBundle(VaultError):
    """An export or import file is truncated, tampered, hostile or of an unknown version."""

    exit_code, http_status, mcp = 7, 422, "invalid_params"


class NothingToImport(BadBundle):
    """An import source held nothing the importer could read; the message says what was skipped and why."""

    exit_code, http_status, mcp = 24, 422, "invalid_params"


class VaultExists(VaultError):
    """A vault already exists where one was to be created."""

    exit_code, http_status, mcp = 9, 409, "invalid_request"


class NoVault(VaultError):
    """There is no vault at the configured location."""

    exit_code, http_status, mcp = 10, 404, "invalid_request"


class SchemaTooNew(VaultError):
    """The vault was written by a newer Context Vault; this version refuses to touch it."""

    exit_code, http_status, mcp = 11, 409, "internal"


class KeyFileCorrupt(VaultError):
    """The key file is truncated, altered or of an unknown format."""

    exit_code, http_status, mcp = 12, 500, "internal"


class StoreCorrupt(VaultError):
    """The database or an index file cannot be read with the vault's data key."""

    exit_code, http_status, mcp = 13, 500, "internal"


class AuditTampered(VaultError):
    """The audit log's hash chain breaks at a sequence number."""

    exit_code, http_status, mcp = 15, 500, "internal"

    def __init__(self, message: str, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


class EmbedderUnavailable(VaultError):
    """The configured embedding model cannot be loaded."""

    exit_code, http_status, mcp = 16, 503, "internal"


class InvalidToken(VaultError):
    """An app token (or OAuth access token) that no app holds: never issued, rotated, or removed."""

    exit_code, http_status, mcp = 17, 401, "invalid_request"


class VaultBusy(VaultError):
    """Another process held the vault for longer than a writer waits (a bulk import on a rollback journal)."""

    exit_code, http_status, mcp = 18, 503, "tool_error"


class StorageFailed(VaultError):
    """The disk refused a write the vault needs to be durable (full, read-only or failing); nothing was changed."""

    exit_code, http_status, mcp = 19, 507, "internal"


class VaultReadOnly(VaultError):
    """The vault sits on a read-only mount or in files this user cannot write: every read works, a write is refused."""

    exit_code, http_status, mcp = 20, 409, "tool_error"


class VaultUnhealthy(VaultError):
    """`ctxvault doctor` found problems; its report says which parts and whether `--repair` fixes them."""

    exit_code, http_status, mcp = 21, 500, "internal"


class LoginThrottled(VaultError):
    """Too many wrong passphrases on the owner's login page: wait ``retry_after`` seconds (or use ``ctxvault ui``)."""

    exit_code, http_status, mcp = 31, 429, "invalid_request"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LimitReached(VaultError):
    """A per-app limit is reached (pending consent requests); the message says what frees it."""

    exit_code, http_status, mcp = 34, 429, "tool_error"
