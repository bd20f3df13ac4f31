"""Doses of another agent than the EVs printed in a dose cell: 'cisplatin (5 mg/kg)',
'LPS 10 mg/kg', '100 ug EVs 24 h after streptozotocin 60 mg/kg'.

The agents are data (``evmeta/data/dose_agents.toml``: injury-model drugs and toxins,
comparator drugs, anaesthetics, labels). :func:`agent_tokens` finds, for every agent named,
the mass or amount of substance printed right after it ('cisplatin (5 mg/kg)', 'STZ; 40 mg/kg', 'cisplatin at
20 mg/kg') or right before it ('5 mg/kg cisplatin', '40 mg/kg of streptozotocin'); those
amounts are the agent's dose, never the EVs'. A name used as an adjective of the EVs
('LPS-primed MSC-EVs', 'cisplatin-pretreated') names no agent dose.
"""

from __future__ import annotations

import re
from functools import cache

from evmeta.data import load_toml
from evmeta.schema.doses.tokens import PARTICLE_WORD, Token

__all__ = ["agent_tokens", "agents"]

#: What may stand between an agent's name and its dose printed after it.
_AFTER = re.compile(
    r"\(?\s?(?:[a-z0-9-]{1,10}\s?[;,:]\s?)?"
    r"(?:at(?:\sa)?(?:\sdose\sof)?|(?:in\s)?a\sdose\sof|dose\sof|of|dosed\sat|[:;=,])?"
)
#: What may stand between a dose and the agent's name printed after it.
_BEFORE = re.compile(r"\s?(?:\)\s?)?(?:of\s)?")


@cache
def agents() -> dict[str, str]:
    """Agent name (casefolded) -> its role ('injury-model agent', 'anaesthetic', ...)."""
    return dict(load_toml("dose_agents.toml")["agents"])


@cache
def _pattern() -> re.Pattern:
    names = sorted(agents(), key=len, reverse=True)
    primed = r"(?![a-z0-9])(?!-?\s?(?:primed|pretreated|pre-treated|preconditioned|stimulated|treated|exposed|challenged|activated))"
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(n) for n in names) + r")" + primed)


def agent_tokens(s: str, tokens: list[Token]) -> dict[int, str]:
    """Index in ``tokens`` of each amount that is a named agent's dose -> the agent's name.

    Parameters
    ----------
    s : str
        The normalized dose text.
    tokens : list of Token
        Its number tokens (:func:`evmeta.schema.doses.tokens.scan`).
    """
    found: dict[int, str] = {}
    for match in _pattern().finditer(s):
        name = match.group(0)
        for i, token in enumerate(tokens):
            if token.kind not in {"mass", "moles"} or i in found:
                continue
            after = token.start >= match.end() and _AFTER.fullmatch(s[match.end() : token.start].strip())
            before = token.end <= match.start() and _BEFORE.fullmatch(s[token.end : match.start()])
            if after or before:
                found[i] = name
                break
    first = _pattern().search(s)
    if not found and first and not _EV_WORDS.search(s):
        # 'LPS from E. coli 055:B5 (5 mg/kg)': an agent is named and nothing of the EVs is.
        amount = next((i for i, t in enumerate(tokens) if t.kind in {"mass", "moles"}), None)
        if amount is not None:
            found[amount] = first.group(0)
    return found


#: Words that name the EVs (or their cells) in a dose text.
_EV_WORDS = re.compile(
    rf"\b(?:{PARTICLE_WORD}|[a-z-]*mscs?|msc[a-z-]*|cells?|secretome|conditioned|cm|cell[- ]equivalents?)\b"
)
