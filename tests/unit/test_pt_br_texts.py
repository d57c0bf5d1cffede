"""The pt-BR texts of the portal, the admin panel, the bot and the domain's messages: the slips
a native speaker caught in review stay fixed, and every text has both languages."""

from __future__ import annotations

import re

import pytest

from astra.adapters.chat.discord.texts import TEXTS as BOT
from astra.domain.messages import MESSAGES
from astra.entrypoints.admin.texts import TEXTS as ADMIN
from astra.entrypoints.portal.i18n import TEXT as PORTAL


def _pt_br() -> list[tuple[str, str]]:
    texts = [(f"portal:{k}", v[0]) for k, v in PORTAL.items()]
    texts += [(f"admin:{k}", v[0]) for k, v in ADMIN.items()]
    texts += [(f"bot:{k}", v["pt-BR"]) for k, v in BOT.items()]
    texts += [(f"domain:{k}", v["pt-BR"]) for k, v in MESSAGES.items()]
    return texts


# What reads as a translation or a slip to a Brazilian reader, and what it became.
SLIPS = {
    r"\bkeys?\b": "English in a Portuguese sentence (chave/chaves)",
    r"está já|já utilizado": "'o teste grátis está já utilizado' (já foi usado)",
    r"copia-e-cola": "PIX's own name has no hyphens (copia e cola)",
    r"à mão": "manualmente",
    r"restante\(s\)": "restam {n} dia(s)",
    r"\bSomar\b|\bsoma \d": "adicionar",
    r"Pedir saque|Saque pedido": "solicitar / solicitado",
    r"te mandar DM": "enviar uma DM",
}


@pytest.mark.parametrize("pattern", sorted(SLIPS))
def test_no_pt_br_text_has_a_known_slip(pattern: str) -> None:
    found = [name for name, text in _pt_br() if re.search(pattern, text)]
    assert found == [], f"{SLIPS[pattern]}: {found}"


def test_every_text_has_both_languages() -> None:
    for name, value in PORTAL.items():
        assert all(value) and len(value) == 2, name
    for name, value in ADMIN.items():
        assert all(value) and len(value) == 2, name
    for name, value in {**BOT, **MESSAGES}.items():
        assert value.get("pt-BR") and value.get("en"), name
