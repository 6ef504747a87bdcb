"""Benchmark: ``reconciler.expressions.evaluate`` on 60 mappings for each of 10,000 synthetic users.

The 60 expressions mix what real schemas hold: Direct ``[x]`` references, ``Trim``, ``Join``,
``IIF(IsPresent(...))`` fallbacks, ``Replace`` (literal and regex), ``Left``/``Mid``, ``Switch``,
``ToLower`` and the default AccountEnabled expression. Each user has about 40 attributes, with some of
the mapped ones missing and a multi-valued proxyAddresses.

Baseline, measured in the same run on the same users: a plain ``dict.get`` of every attribute each
expression reads. Target: all 600,000 evaluations in under 2 seconds.

    python -m benchmarks.expressions [--users 10000] [--repeat 3]

No I/O beyond printing.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable

from reconciler.expressions import AttributeValue, evaluate, parse, referenced_attributes

TARGET_SECONDS = 2.0

_TEXT_ATTRIBUTES = [
    "company", "department", "title", "l", "st", "co", "postalCode", "streetAddress", "mobile",
    "telephoneNumber", "physicalDeliveryOfficeName", "info", "initials", "middleName", "pager",
]  # fmt: skip


def make_expressions() -> list[str]:
    """Sixty expressions in the proportions of a typical user schema."""
    direct = [f"[extensionAttribute{i}]" for i in range(1, 16)] + [
        "[cn]", "[mailNickname]", "[employeeID]", "[manager]", "[objectGUID]",
    ]  # fmt: skip
    trims = [f"Trim([{name}])" for name in _TEXT_ATTRIBUTES]
    mixed = [
        'Join(" ", [givenName], [sn])',
        'Join(".", [givenName], [sn])',
        'Join("@", [sAMAccountName], "contoso.com")',
        'Join(", ", [sn], [givenName])',
        "IIF(IsPresent([displayName]), [displayName], [cn])",
        "IIF(IsPresent([mS-DS-ConsistencyGuid]), [mS-DS-ConsistencyGuid], [objectGUID])",
        "IIF(IsPresent([userPrincipalName]), [userPrincipalName], IIF(IsPresent([sAMAccountName]), "
        'Join("@", [sAMAccountName], "contoso.com"), Error("AccountName is not present")))',
        'IIF(IsPresent([postOfficeBox]), Left(Trim(Item([postOfficeBox], 1)), 448), "")',
        'IIF([employeeType]="Intern","t-" & [mailNickname],[mailNickname])',
        'IIF(IsNullOrEmpty([c]), "US", ToUpper([c]))',
        'Replace([mail], "@contoso.com", , , "", , )',
        'Replace([telephoneNumber], , "[()\\\\s-]+", , "", , )',
        'Replace([userPrincipalName], , "(?<Suffix>@(.)*)", "Suffix", "", , )',
        'Replace([preferredLanguage], "-", , , "_", , )',
        "Left(Trim([description]), 448)",
        "Left([givenName], 1)",
        "Left([sAMAccountName], 20)",
        "Left(Trim([info]), 1024)",
        "Mid([objectId], 25, 12)",
        "Mid([givenName], 1, 3)",
        'IIF(IsPresent([userAccountControl]), IIF(BitAnd([userAccountControl], 2)="0", "True", "False"), '
        "Not([accountDisabled]))",
        'Switch([employeeType], "Member", "Contractor", "Guest", "Vendor", "Guest")',
        'Switch([c], [co], "US", "United States", "NZ", "New Zealand")',
        'ToLower(Join("@", StripSpaces(Join(".", [givenName], [sn])), "contoso.com"))',
        "RemoveDuplicates(Trim([proxyAddresses]))",
    ]
    expressions = direct + trims + mixed
    assert len(expressions) == 60, len(expressions)
    return expressions


def make_users(count: int, seed: int = 11) -> list[dict[str, AttributeValue]]:
    rnd = random.Random(seed)
    users: list[dict[str, AttributeValue]] = []
    for n in range(count):
        attrs: dict[str, AttributeValue] = {
            "cn": f"User {n}",
            "givenName": f"Given{n}",
            "sn": f"Surname{n}",
            "sAMAccountName": f"user{n}",
            "mailNickname": f"user{n}",
            "mail": f"user{n}@contoso.com",
            "objectGUID": f"{n:032x}",
            "objectId": f"00aa00aa-bb11-cc22-dd33-{n:012x}",
            "employeeID": str(100000 + n),
            "manager": f"CN=Manager {n % 50},OU=Sales,DC=contoso,DC=com",
            "userAccountControl": rnd.choice(["512", "514", "66048"]),
            "description": f"  employee number {n}  ",
            "preferredLanguage": rnd.choice(["en-US", "fr-FR", "de-DE"]),
            "employeeType": rnd.choice(["Member", "Contractor", "Intern"]),
            "c": rnd.choice(["US", "NZ", "FR"]),
            "proxyAddresses": [
                f"SMTP:user{n}@contoso.com",
                f"smtp:u{n}@contoso.com",
                f"smtp:u{n}@contoso.com",
            ],
        }
        if rnd.random() < 0.9:
            attrs["userPrincipalName"] = f"user{n}@contoso.com"
        if rnd.random() < 0.7:
            attrs["displayName"] = f"User Number {n}"
        if rnd.random() < 0.2:
            attrs["postOfficeBox"] = [f" PO {n} "]
        for i in range(1, 16):
            if rnd.random() < 0.5:
                attrs[f"extensionAttribute{i}"] = f"ext{i}-{n}"
        for name in _TEXT_ATTRIBUTES:
            if rnd.random() < 0.8:
                attrs[name] = f"  {name} {n} "
        attrs["telephoneNumber"] = f"+1 (425) 555-{n % 10000:04d}"
        users.append(attrs)
    return users


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    expressions = make_expressions()
    users = make_users(args.users)
    for text in expressions:
        parse(text)  # parsed once; evaluate() reuses the cached compiled form
    reads = [sorted(referenced_attributes(text)) for text in expressions]

    def baseline() -> None:
        for attrs in users:
            get = attrs.get
            for names in reads:
                for name in names:
                    get(name)

    errors = 0

    def run() -> None:
        nonlocal errors
        errors = 0
        for attrs in users:
            for text in expressions:
                try:
                    evaluate(text, attrs)
                except Exception:
                    errors += 1

    base = _best(baseline, args.repeat)
    elapsed = _best(run, args.repeat)
    evaluations = args.users * len(expressions)
    print(f"expressions: {len(expressions)} mappings x {args.users} users = {evaluations} evaluations")
    per = elapsed / evaluations * 1e6
    print(f"  evaluate():             {elapsed:8.3f} s  ({per:.2f} us per evaluation)")
    print(f"  baseline dict lookups:  {base:8.3f} s  (evaluate is {elapsed / base:,.1f}x the baseline)")
    print(f"  evaluation errors (Error() and the like): {errors}")
    ok = elapsed < TARGET_SECONDS
    print(f"  target under {TARGET_SECONDS:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
