"""Who is a shop's staff, from Discord's data: the rule the platform applies to a verified
user (astra.domain.staff), and how old an interaction may be (the verifier's clock check)."""

from __future__ import annotations

import time

import pytest

from astra.adapters.chat.discord.actors import (
    DISCORD_EPOCH_MS,
    TOKEN_LIFETIME_S,
    InteractionActors,
)
from astra.domain.staff import ADMINISTRATOR, MANAGE_GUILD, facts_of, is_staff
from astra.ports.chat import InteractionRef, InteractionUnverified

GUILD = "900000000000000001"
OWNER = "900000000000000002"
USER = "900000000000000003"
STAFF_ROLE = "900000000000000010"
BOT_ROLE = "900000000000000011"
MANAGER_ROLE = "900000000000000012"


def _facts(member_roles: list[str], *, everyone: int = 0, bot_role_perms: int = MANAGE_GUILD):
    guild = {
        "id": GUILD,
        "owner_id": OWNER,
        "roles": [
            {"id": GUILD, "permissions": str(everyone), "managed": False},
            {"id": STAFF_ROLE, "permissions": "0", "managed": False},
            {"id": BOT_ROLE, "permissions": str(bot_role_perms), "managed": True},
            {"id": MANAGER_ROLE, "permissions": str(MANAGE_GUILD), "managed": False},
        ],
    }
    return facts_of(guild, {"roles": member_roles})


@pytest.mark.parametrize(("user", "roles", "staff_role", "bot", "expected"), [
    (OWNER, [], None, False, True),  # the guild's owner
    (USER, [MANAGER_ROLE], None, False, True),  # Manage Server through a role
    (USER, [STAFF_ROLE], STAFF_ROLE, False, True),  # the configured staff role
    (USER, [], STAFF_ROLE, False, False),  # a plain member
    (USER, [STAFF_ROLE], None, False, False),  # a role nobody configured
    (USER, [BOT_ROLE], None, False, False),  # a managed role's permissions never count
    (USER, [BOT_ROLE], BOT_ROLE, False, False),  # nor does a managed role as the staff role
    (USER, [MANAGER_ROLE], None, True, False),  # a bot user never counts
    (OWNER, [], None, True, False),
    (USER, ["900000000000000099"], "900000000000000099", False, False),  # a role not there
])
def test_staff_is_decided_from_discords_roles(user, roles, staff_role, bot, expected) -> None:
    assert is_staff(user, user_is_bot=bot, facts=_facts(roles),
                    staff_role_id=staff_role) is expected


def test_everyone_with_administrator_makes_every_member_staff() -> None:
    assert is_staff(USER, user_is_bot=False, facts=_facts([], everyone=ADMINISTRATOR),
                    staff_role_id=None)


def test_malformed_discord_data_is_no_permission() -> None:
    facts = facts_of({"id": GUILD, "owner_id": OWNER, "roles": [
        {"id": MANAGER_ROLE, "permissions": "lots"}, "junk"]}, {"roles": "x"})
    assert not is_staff(USER, user_is_bot=False, facts=facts, staff_role_id=MANAGER_ROLE)


def _snowflake(seconds_ago: float) -> str:
    ms = int((time.time() - seconds_ago) * 1000) - DISCORD_EPOCH_MS
    return str(ms << 22)


def test_an_interaction_older_than_its_token_or_from_the_future_is_refused() -> None:
    actors = InteractionActors("http://127.0.0.1:9")
    token = "t" * 40
    assert actors._fresh_for(InteractionRef(_snowflake(10), token)) > TOKEN_LIFETIME_S - 60
    for ref in (InteractionRef(_snowflake(TOKEN_LIFETIME_S + 5), token),
                InteractionRef(_snowflake(-600), token),
                InteractionRef("12ab", token)):
        with pytest.raises(InteractionUnverified):
            actors._fresh_for(ref)
