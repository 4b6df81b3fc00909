"""API keys from the console: mint (master and sub), rename, revoke; each audited.

Keys are made by ``core.accounts``, the same functions the account API uses.
"""

from __future__ import annotations

from typing import Any

from core import accounts, audit
from core import db as core_db
from core.models import ApiKey, Membership


def create_master_key(member: Membership, name: str) -> accounts.NewKey:
    """Mint a master key for the member; its raw value is for this response only."""
    key = accounts.create_master_key(member.org_id, member.id, name)
    audit.record("key.created", org_id=member.org_id, target=key.id, details={"name": name, "kind": "master"})
    return key


def create_sub_key(member: Membership, parent: ApiKey, name: str, controls: dict[str, Any]) -> accounts.NewKey:
    """Mint a sub-key under ``parent``; ValueError, LookupError or PermissionError say why not."""
    key = accounts.create_sub_key(parent.id, name, **controls)
    audit.record("key.created", org_id=member.org_id, target=key.id,
                 details={"name": key.row.get("name"), "kind": "sub", "parent_id": parent.id})
    return key


def revoke_key(member: Membership, key: ApiKey) -> None:
    """Revoke the key (a master takes its sub-keys with it); audited when this call revoked it."""
    if accounts.revoke_key(member.org_id, key.id):
        audit.record("key.revoked", org_id=member.org_id, target=key.id, details={"name": key.name})


def rename_key(member: Membership, key: ApiKey, name: str) -> None:
    """Give the key a new name (nothing happens for an empty or unchanged one); ValueError says why not."""
    if not name or name == key.name:
        return
    name = accounts.clean_name(name)
    before, key.name = key.name, name
    core_db.session().commit()
    audit.record("key.renamed", org_id=member.org_id, target=key.id, details={"from": before, "to": name})
