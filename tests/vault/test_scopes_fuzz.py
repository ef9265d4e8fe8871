"""The scope parser fed seeded random and mutated scope texts: each parses or is InvalidInput, never a crash (issue 27).

Inputs come from ``FUZZ_SEED`` (default 29): input ``n`` depends only on the seed and ``n``, so a
failure names what to rerun. A third are built from the grammar with wrong parts (unknown or
owner-only actions and kinds, filters repeated, empty, unknown, with hostile values), a third are
valid scopes mutated character by character, a third any Unicode (surrogates and controls
included). Properties: ``parse_scope`` returns a ``Scope`` or raises ``InvalidInput`` whose message
stays short (a hostile text is not echoed whole); a parsed scope formats to a text that parses back
to the same scope; ``parse_scopes`` and the service's ``grant`` agree with it. Counts:
docs/reliability.md, "Fuzzing counts".
"""

from __future__ import annotations

import os
import random
import time

import pytest

from vault import OWNER, VaultService
from vault.errors import InvalidInput, VaultError
from vault.scopes import ACTIONS, KINDS, OWNER_ONLY_ACTIONS, format_scope, parse_scope, parse_scopes

SEED = int(os.environ.get("FUZZ_SEED", "29"))
SHORT = 5_000
LONG = int(os.environ.get("SCOPE_FUZZ_INPUTS", "50000"))
MESSAGE_CHARS = 1_000

_ACTIONS = [*ACTIONS, *OWNER_ONLY_ACTIONS, "", "READ", "reads", "search ", "*", "read\x00", "séarch"]
_KINDS = [*KINDS, "*", "", "memory", "Memories", "documents ", "profile*", "kind", "\u202ememories"]
_NAMES = ["space", "tag", "kind", "sens", "", "Space", "spaces", "tag ", "x", "sens\x00"]
_VALUES = [
    "work", "personal", "travel", "a,b", "work,", ",", "", "low", "medium", "high", "HIGH", "memories,documents",
    "a" * 65, "a" * 5000, "a," * 3000, "🙂", "\ud800", "\x00", "\x1b[31m", "\u202eevil", "=", "#", ";", ":", "..", "a b",
    "-", "_", "0", "work;space=home", "x=y", "é", "ℌ",
]  # fmt: skip
_ANY = "abcdeimnoprstwy*:#;=,. -_\t\n\x00é🙂\ud800\u202e\\'\""


def _from_grammar(rng: random.Random) -> str:
    """A scope built from its grammar; each part is well formed more often than not, so that some parse."""

    def pick(good: list[str] | tuple[str, ...], bad: list[str]) -> str:
        return rng.choice(good) if rng.random() < 0.8 else rng.choice(bad)

    text = f"{pick(ACTIONS, _ACTIONS)}{pick([':'], ['', '::', ' : '])}{pick(KINDS, _KINDS)}"
    if rng.random() < 0.6:
        filters = []
        for _ in range(rng.randint(0, 3)):
            name = pick(["space", "tag", "sens"], _NAMES)
            good = {"space": ["work", "personal", "a,b"], "tag": ["travel", "x-1"], "sens": ["low", "high"]}.get(name, ["work"])
            filters.append(f"{name}{pick(['='], ['', '=='])}{pick(good, _VALUES)}")
        text += pick(["#"], ["##", "# "]) + pick([";"], [";;", ","]).join(filters)
    return text


def _valid(rng: random.Random) -> str:
    while True:
        try:
            return format_scope(parse_scope(_from_grammar(rng)))
        except InvalidInput:
            continue


def _mutated(rng: random.Random) -> str:
    chars = list(_valid(rng))
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(chars) + 1)
        match rng.randrange(6):
            case 0:
                chars.insert(at, rng.choice(_ANY))
            case 1 if chars:
                del chars[min(at, len(chars) - 1)]
            case 2 if chars:
                chars[min(at, len(chars) - 1)] = rng.choice(_ANY)
            case 3:
                chars[at:at] = list(rng.choice(_VALUES))
            case 4 if len(chars) < 2_000:
                chars = chars * rng.randint(2, 50)
            case _:
                chars = [c.upper() if rng.random() < 0.3 else c for c in chars]
    return "".join(chars)


def _any(rng: random.Random) -> str:
    size = rng.choice([0, 1, 3, 10, 40, 300, 5_000])
    if rng.random() < 0.5:
        return "".join(rng.choice(_ANY) for _ in range(size))
    return "".join(chr(rng.randrange(0x110000)) for _ in range(size))


def scope_input(n: int) -> str:
    rng = random.Random(f"{SEED}:scope:{n}")
    return (_from_grammar, _mutated, _any)[n % 3](rng)


def run(count: int) -> dict[str, int]:
    tally = {"inputs": 0, "parsed": 0, "refused": 0}
    crashes: list[str] = []
    slowest = 0.0
    for n in range(count):
        text = scope_input(n)
        case = f"FUZZ_SEED={SEED} scope #{n} ({text[:60]!r}…)"
        tally["inputs"] += 1
        start = time.perf_counter()
        try:
            scope = parse_scope(text)
        except InvalidInput as exc:
            tally["refused"] += 1
            if len(exc.message) > MESSAGE_CHARS:
                crashes.append(f"{case}: a message of {len(exc.message)} characters")
            continue
        except Exception as exc:  # the property under test: nothing but InvalidInput escapes
            crashes.append(f"{case}: {type(exc).__name__}: {exc!s:.200}")
            continue
        finally:
            slowest = max(slowest, time.perf_counter() - start)
        tally["parsed"] += 1
        again = parse_scope(format_scope(scope))
        if again != scope or format_scope(again) != format_scope(scope) or parse_scopes([text]) != [scope]:
            crashes.append(f"{case}: does not round-trip: {format_scope(scope)!r}")
    assert not crashes, "\n".join(crashes[:20])
    assert slowest < 5, f"one scope took {slowest:.2f} s to parse"  # a hang; 1.65 s was seen at load 17, niced
    return tally


def test_fuzzed_scopes_parse_or_are_refused_briefly() -> None:
    tally = run(SHORT)
    assert tally["parsed"] > SHORT // 20 and tally["refused"] > SHORT // 2, tally  # both paths are exercised


def test_the_service_refuses_what_the_parser_refuses_and_grants_what_it_parses(vault: VaultService) -> None:
    vault.add_app(OWNER, "fuzzed")
    for n in range(300):
        text = scope_input(n)
        try:
            expected = format_scope(parse_scope(text))
        except InvalidInput:
            expected = None
        try:
            grant = vault.grant(OWNER, "fuzzed", [text])
        except VaultError as exc:
            assert expected is None, (n, text[:80], exc.message)
            assert len(exc.message) <= MESSAGE_CHARS, (n, len(exc.message))
            continue
        assert expected is not None and grant.scopes == [expected], (n, text[:80], grant.scopes)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_long_fuzz_of_the_scope_parser() -> None:
    start = time.monotonic()
    tally = run(LONG)
    print(f"fuzz scopes: {tally} in {time.monotonic() - start:.0f} s")
