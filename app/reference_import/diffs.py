"""numbas-lti-provider's stored suspend-data diffs, turned back into the values they stand for.

The reference keeps only the newest `cmi.suspend_data` of an attempt as plain text; each older
one is an edit script (a `numbas_lti_scormelementdiff` row says which newer value it applies
to). Script lines: `d<a>,<b>` delete, `i<a>,<text>` insert, `r<a>,<b>,<text>` replace; `a` and
`b` are hexadecimal character offsets into the newer string (b exclusive), applied in order
with a running offset; in `<text>` a newline is written `\\n` and a backslash `\\\\`.
"""

from __future__ import annotations


class DiffError(ValueError):
    pass


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append("\n" if nxt == "n" else nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def apply_diff(newer: str, script: str) -> str:
    """The older value that `script` makes of `newer`."""
    result, shift = newer, 0
    for line in script.split("\n"):
        if not line:
            continue
        op, rest = line[0], line[1:]
        try:
            if op == "d":
                a, b = (int(x, 16) for x in rest.split(",", 1))
                result = result[:a + shift] + result[b + shift:]
                shift -= b - a
            elif op == "i":
                a_text, text = rest.split(",", 1)
                a, text = int(a_text, 16), _unescape(text)
                result = result[:a + shift] + text + result[a + shift:]
                shift += len(text)
            elif op == "r":
                a_text, b_text, text = rest.split(",", 2)
                a, b, text = int(a_text, 16), int(b_text, 16), _unescape(text)
                result = result[:a + shift] + text + result[b + shift:]
                shift += len(text) - (b - a)
            else:
                raise DiffError(f"unknown diff operation {op!r}")
        except ValueError as error:
            if isinstance(error, DiffError):
                raise
            raise DiffError(f"unreadable diff line {line[:40]!r}") from None
    return result


def resolve(values: dict[int, str], diffs: dict[int, int]) -> dict[int, str]:
    """Element id -> its real value, for one attempt's elements: `values` holds every element's
    stored value, `diffs` maps a diff element's id to the id of the newer value it applies to."""
    resolved: dict[int, str] = {}

    def real(element_id: int, depth: int = 0) -> str:
        if element_id in resolved:
            return resolved[element_id]
        if element_id not in diffs:
            return values[element_id]
        chain, current = [], element_id
        while current in diffs and current not in resolved:  # iterative: chains can be long
            chain.append(current)
            current = diffs[current]
            if len(chain) > len(diffs) + 1:
                raise DiffError("a cycle of suspend-data diffs")
        base = resolved.get(current, values[current])
        for link in reversed(chain):
            base = apply_diff(base, values[link])
            resolved[link] = base
        return resolved[element_id]

    return {element_id: real(element_id) for element_id in values}
