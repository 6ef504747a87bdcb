"""Benchmark: a preview of a whole OU, 60 mappings evaluated for each of 10,000 users.

The mappings mix what the AD2AAD template holds: Direct copies, ``Trim([x])`` expressions, constants and
a few heavier expressions (AccountEnabled's nested IIF with BitAnd, the UPN fallback with Error(...),
Join, Left, RemoveDuplicates). Each user has about 30 attributes, some of the mapped ones missing.

Two baselines are measured in the same run on the same users: copying each user's attribute dict
(``dict(attrs)``), and 60 plain ``dict.get`` lookups per user (the floor for any mapping in Python).
Target: the evaluation, scope check included, under 2 seconds.

    python -m benchmarks.preview [--users 10000] [--mappings 60]

No I/O beyond printing.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable

from reconciler.core.model import Mapping, MappingKind, Scope, ScopeKind
from reconciler.provisioning.evaluate import MappingEvaluator, ScopeMatcher, SourceValue

TARGET_SECONDS = 2.0

_HEAVY = (
    'IIF(IsPresent([userAccountControl]), IIF(BitAnd([userAccountControl], 2)="0", "True", "False"), '
    "Not([accountDisabled]))",
    "IIF(IsPresent([userPrincipalName]), [userPrincipalName], IIF(IsPresent([sAMAccountName]), "
    'Join("@", [sAMAccountName], "contoso.com"), Error("AccountName is not present")))',
    "IIF(IsPresent([displayName]), [displayName], [cn])",
    'Join(" ", [givenName], [sn])',
    "Left(Trim([description]), 448)",
    "RemoveDuplicates(Trim([proxyAddresses]))",
)


def make_mappings(count: int) -> list[Mapping]:
    """``count`` user mappings: half Direct, a third Trim, the heavy ones, the rest constants."""
    mappings: list[Mapping] = []
    for i, text in enumerate(_HEAVY):
        mappings.append(Mapping("user", f"Heavy{i}", MappingKind.EXPRESSION, text))
    direct = count // 2
    trim = count // 3
    for i in range(direct):
        mappings.append(Mapping("user", f"Direct{i}", MappingKind.DIRECT, f"attr{i}"))
    for i in range(trim):
        mappings.append(Mapping("user", f"Trimmed{i}", MappingKind.EXPRESSION, f"Trim([text{i}])"))
    i = 0
    while len(mappings) < count:
        mappings.append(Mapping("user", f"Constant{i}", MappingKind.CONSTANT, f"value {i}"))
        i += 1
    return mappings[:count]


def make_users(count: int, mappings: int, seed: int = 7) -> list[tuple[str, dict[str, SourceValue]]]:
    """``count`` users in a few OUs; roughly a fifth of the mapped attributes are missing on each."""
    rnd = random.Random(seed)
    ous = ["OU=Sales", "OU=Engineering", "OU=Support", "OU=Contractors"]
    users: list[tuple[str, dict[str, SourceValue]]] = []
    for n in range(count):
        attrs: dict[str, SourceValue] = {
            "cn": f"User {n}",
            "givenName": f"Given{n}",
            "sn": f"Surname{n}",
            "userAccountControl": rnd.choice(["512", "514", "66048"]),
            "description": f"  employee number {n}  ",
            "proxyAddresses": [
                f"SMTP:user{n}@contoso.com",
                f"smtp:u{n}@contoso.com",
                f"smtp:u{n}@contoso.com",
            ],
        }
        if rnd.random() < 0.8:
            attrs["userPrincipalName"] = f"user{n}@contoso.com"
        # One in a hundred has no account name at all: the UPN mapping's Error(...) fires for most of them.
        if rnd.random() < 0.99:
            attrs["sAMAccountName"] = f"user{n}"
        if rnd.random() < 0.7:
            attrs["displayName"] = f"User Number {n}"
        for i in range(mappings // 2):
            if rnd.random() < 0.8:
                attrs[f"attr{i}"] = f"v{i}-{n}"
        for i in range(min(mappings // 3, 12)):
            attrs[f"text{i}"] = f"  t{i} {n} "
        ou = ous[n % len(ous)]
        users.append((f"CN=User {n},{ou},DC=contoso,DC=com", attrs))
    return users


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call. CPU time shows the cost when other work shares the machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    runs = [_timed(fn) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--mappings", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    mappings = make_mappings(args.mappings)
    users = make_users(args.users, args.mappings)
    scope = Scope(
        ScopeKind.ORGANIZATIONAL_UNITS,
        ("OU=Sales,DC=contoso,DC=com", "OU=Engineering,DC=contoso,DC=com"),
    )
    sources = [m.value if m.kind is MappingKind.DIRECT else m.target for m in mappings]

    def copy_dicts() -> None:
        for _, attrs in users:
            dict(attrs)

    def plain_lookups() -> None:
        for _, attrs in users:
            get = attrs.get
            [get(name) for name in sources]

    errors = 0
    in_scope = 0

    def preview() -> None:
        nonlocal errors, in_scope
        # A fresh evaluator and matcher each round, as one preview run builds them.
        evaluator = MappingEvaluator(mappings, object_type="user")
        matcher = ScopeMatcher(scope)
        errors = in_scope = 0
        for dn, attrs in users:
            if matcher.check(dn).in_scope:
                in_scope += 1
            if not evaluator.evaluate(attrs).ok:
                errors += 1

    baseline_copy, _ = _best(copy_dicts, args.repeat)
    baseline_lookup, _ = _best(plain_lookups, args.repeat)
    elapsed, cpu = _best(preview, args.repeat)
    evaluations = args.users * len(mappings)
    print(f"preview: {len(mappings)} mappings x {args.users} users = {evaluations} evaluations")
    print(f"  in scope: {in_scope}, users with an Error(...) outcome: {errors}")
    print(f"  evaluation + scope:      {elapsed:8.3f} s  ({elapsed / evaluations * 1e6:.2f} us per mapping)")
    print(f"    of which CPU time:     {cpu:8.3f} s")
    print(f"  baseline dict copy:      {baseline_copy:8.3f} s  (ratio {elapsed / baseline_copy:,.0f}x)")
    print(f"  baseline 60 dict.get:    {baseline_lookup:8.3f} s  (ratio {elapsed / baseline_lookup:,.1f}x)")
    ok = elapsed < TARGET_SECONDS
    print(f"  target < {TARGET_SECONDS:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
