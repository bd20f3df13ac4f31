"""Words before a printed amount that qualify it: approximate amounts and bounds.

* An approximate amount ('approximately 100 ug', '~100 ug', 'about', 'around', 'circa',
  'nearly', 'roughly', '≈') is read as the amount, with ``Dose.qualifier = "approximately"``
  and a note: papers round doses they measured, and the amount is still the best figure
  for the dose given.
* A bound ('at least 50 ug', 'up to 50 ug', '>50 ug', '<1 mg', 'more than', 'less than',
  'a maximum of') is refused with reason ``bound``: the dose given is not known, only a
  side of it, and reading it as the dose would state a number the paper does not. A bound
  before a count or a time ('up to 3 injections', 'within 2 h') is noted, not refused.
"""

from __future__ import annotations

import re

from evmeta.schema.doses.tokens import DoseTextError, Token, span

__all__ = ["APPROXIMATE", "read_qualifiers"]

#: ``Dose.qualifier`` of an approximate amount.
APPROXIMATE = "approximately"

_APPROXIMATE = re.compile(
    r"(?:\b(?:approximately|approx\.?|about|around|circa|ca\.|roughly|nearly|an estimated|estimated)\s?"
    r"|(?:~|≈|∼)\s?)$"
)
#: A comparison before an amount: the text gives a bound, not the dose.
_BOUND = re.compile(
    r"(?:[<>≤≥]=?|=<|=>|\b(?:up to|at least|at most|more than|less than|greater than|fewer than|"
    r"not less than|not more than|no less than|no more than|maximum of|minimum of|over|under|"
    r"exceeding|below|above))\s?$"
)


def _before(s: str, token: Token) -> str:
    return s[max(0, token.start - 24) : token.start]


def read_qualifiers(
    s: str, tokens: list[Token], amount: Token, original: str
) -> tuple[str | None, list[str]]:
    """Qualifier of ``amount`` and notes; raise ``bound`` when an amount is a bound.

    Parameters
    ----------
    s : str
        The normalized dose text.
    tokens : list of Token
        Every number token of it.
    amount : Token
        The amount read as the dose.
    original : str
        The text as printed, for the error message.
    """
    notes: list[str] = []
    for token in tokens:
        match = _BOUND.search(_before(s, token))
        if not match or (
            match.group(0).strip() in {"over", "under", "above", "below"} and not token.is_amount
        ):
            continue
        word = match.group(0).strip()
        if token.is_amount or token.kind in {"bare", "volume"}:
            raise DoseTextError(
                original,
                "bound",
                f"{word!r} before {span(s, token)!r} gives a bound, not the dose given; type the dose itself "
                "(or leave the cell empty with a note)",
            )
        notes.append(f"{word!r} before {span(s, token)!r}: read as printed")
    qualifier = None
    for token in tokens:
        if token.is_amount and _APPROXIMATE.search(_before(s, token)):
            notes.append(f"{span(s, token)!r} is printed as approximate")
            if token is amount:
                qualifier = APPROXIMATE
    return qualifier, notes
