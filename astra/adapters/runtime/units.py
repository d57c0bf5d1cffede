"""What every runtime adapter starts for a spec: the command and the tenant's own variables.

An instance runs `astra instance run <id>` with its bot token and runtime credential; a pool
unit (`RuntimeSpec.members`) runs `astra runtime pool --pool <name>` with each member's token
and credential in ASTRA_POOL_MEMBERS (what a bot alone has, times its members: nothing more).
"""

from __future__ import annotations

import hashlib
import json

from astra.ports.runtime import RuntimeSpec, pool_name


def unit_command(spec: RuntimeSpec) -> list[str]:
    if spec.is_pool:
        return ["runtime", "pool", "--pool", pool_name(spec.instance_id)]
    return ["instance", "run", spec.instance_id]


def tenant_variables(spec: RuntimeSpec) -> dict[str, str]:
    """The variables that make a runtime this instance (or these instances), and win over
    anything spec.environment says."""
    if spec.is_pool:
        members = [
            {"id": m.instance_id, "token": m.bot_token, "key": m.instance_key}
            for m in spec.members
        ]
        return {
            "ASTRA_TENANT": "1",
            "ASTRA_POOL_ID": spec.instance_id,
            "ASTRA_POOL_MEMBERS": json.dumps(members, separators=(",", ":")),
        }
    return {
        "ASTRA_TENANT": "1",
        "ASTRA_INSTANCE_ID": spec.instance_id,
        "ASTRA_BOT_TOKEN": spec.bot_token,
        "ASTRA_INSTANCE_KEY": spec.instance_key,
    }


def _secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def spec_document(spec: RuntimeSpec) -> dict[str, object]:
    """The spec with its secrets replaced by their hashes: what a digest label is made of."""
    return {
        "instance_id": spec.instance_id,
        "owner_id": spec.owner_id,
        "bot_token": _secret(spec.bot_token),
        "instance_key": _secret(spec.instance_key),
        "environment": sorted(spec.environment.items()),
        "members": [spec_document(m) for m in spec.members],
    }


def spec_digest(spec: RuntimeSpec) -> str:
    return hashlib.sha256(json.dumps(spec_document(spec), sort_keys=True).encode()).hexdigest()
