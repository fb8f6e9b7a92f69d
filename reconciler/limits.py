"""Limits and name rules every layer shares, in one place.

What a manifest may say is what every supported database can store (one code base for SQLite,
MySQL, MariaDB, TiDB and PostgreSQL: docs/ARCHITECTURE.md, portability rule 6) and what
Kubernetes can name: so a value that validates can always be applied and rendered, and what
history holds beyond these limits is refused or cut the same way on every back end.
"""

from __future__ import annotations

import re

NAME_CHARS = 255  # VARCHAR(255): names, owners, emails, lineage paths
TEXT_CHARS = 16_000  # MySQL TEXT is 65,535 bytes: 16,000 utf8mb4 characters always fit
VERSION_CHARS = 128  # the version column of every table
PATH_CHARS = 4096  # an artifact path (payload, never indexed)
# Bigger files are refused before they are read (FIL002): no manifest or registry file is
# anywhere near, and a hostile one cannot make a run parse gigabytes.
MAX_FILE_BYTES = 1024 * 1024

# A DNS-1123 label: names become Kubernetes resource names and namespaces.
DNS_LABEL_CHARS = 63
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")  # always fullmatch


def version_order(version: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key for version names: numeric where they are dotted numbers (1.10.0 after
    1.9.0), text elsewhere (after the numbers)."""
    parts = version.replace("-", ".").replace("+", ".").split(".")
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def is_dns_label(name: str) -> bool:
    """Whether name is a DNS-1123 label (lower-case letters, digits, '-'; at most 63)."""
    return len(name) <= DNS_LABEL_CHARS and DNS_LABEL.fullmatch(name) is not None
