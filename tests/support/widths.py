"""Both widths from one walk through a page (issue 16: every page at 1280×800 and on a 390×844 phone).

A browser test walks its flow once, in a desktop window; where it checks the page's layout it calls
`fits_at_both_widths`, which checks the page as it is at the desktop size and again with the window
narrowed to the phone's (CSS media queries apply on resize, as when a phone turns), then gives the
window its size back. One walk instead of one per width: the same states are checked at both widths
for about half the time. `tests/test_pages_browser.py` loads every page afresh at each width.
"""

from __future__ import annotations

from tests.test_accessibility import axe_problems

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SIZES = (DESKTOP, PHONE)


def overflow(page) -> int:
    """How many pixels the document is wider than the window (0 or less: it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def action_problem(page, selector: str) -> str | None:
    """None when the first element matching `selector` can be scrolled to, is wholly inside the
    window across (and down, unless taller than the window) and could be clicked (visible, stable,
    enabled, not covered); otherwise what is wrong."""
    target = page.locator(selector).first
    if target.count() == 0:
        return f"{selector}: missing"
    target.scroll_into_view_if_needed()
    if not target.is_visible():
        return f"{selector}: not visible"
    box = target.bounding_box()
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    if box is None or box["x"] < -1 or box["x"] + box["width"] > width + 1 or box["y"] >= height or \
            box["y"] + box["height"] <= 0 or (box["height"] <= height and (box["y"] < -1 or box["y"] + box["height"] > height + 1)):
        return f"{selector}: outside the window ({box})"
    try:
        target.click(trial=True, timeout=3000)
    except Exception as error:  # playwright's TimeoutError: say which action, not the stack
        return f"{selector}: not clickable ({str(error).splitlines()[0]})"
    return None


def layout_problems(page, label: str, actions: tuple[str, ...] = (), *, axe: bool = True) -> list[str]:
    """At the window's current size: overflow, the actions, axe-core (tests/test_accessibility.py)."""
    size = page.viewport_size
    where = f"{label} at {size['width']}×{size['height']}"
    problems = []
    extra = overflow(page)
    if extra > 0:
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + [...e.classList].join('.')
                                 + ' ' + Math.round(e.getBoundingClientRect().right))""")
        problems.append(f"{where}: the document is {extra}px wider than the window: {wide}")
    problems += [f"{where}: {p}" for p in (action_problem(page, s) for s in actions) if p]
    if axe:
        problems += axe_problems(page, where)
    return problems


def fits_at_both_widths(page, label: str, actions: tuple[str, ...] = (), *, axe: bool = True) -> None:
    """Assert the page's layout at the desktop size and at the phone's; the window keeps its size."""
    original = dict(page.viewport_size)
    problems = []
    try:
        for size in SIZES:
            page.set_viewport_size(size)
            problems += layout_problems(page, label, actions, axe=axe)
    finally:
        page.set_viewport_size(original)
    assert not problems, "\n".join(problems)
