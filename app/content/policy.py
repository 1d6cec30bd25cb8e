"""The exam-content origin's response headers and MathJax addresses: one definition for the
development content server (content/server.py) and for production's nginx, whose configuration
(infra/numbas_infra/nginx_config.py) loads this file by its path. Plain Python, no Django.

The policy lets an exam do what Numbas exams do — inline and eval'd scripts, inline styles,
data: images and fonts, its own frames and workers — on its own origin only. What it closes:
requests to any other origin (`connect-src`, so an exam cannot even try the application's
URLs with `fetch`), other sites' scripts and styles (MathJax comes from this origin unless the
operator allows its CDN), plugins, `<base>` tricks, form posts elsewhere, and framing by anyone
but this origin, the application and the LMS pages that may frame the application.
"""

from __future__ import annotations

# Where MathJax lives on its CDNs, for operators who allow them (EXAM_MATHJAX=cdn): the content
# origin then redirects /mathjax/<path> there instead of serving its own copy.
MATHJAX_CDN = {
    "2/": "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.9/",
    "4/": "https://cdn.jsdelivr.net/npm/mathjax@4.1.3/",
    "fonts/mathjax-newcm-font/": "https://cdn.jsdelivr.net/npm/@mathjax/mathjax-newcm-font@4.1.3/",
}
MATHJAX_CDN_SOURCES = ("https://cdnjs.cloudflare.com", "https://cdn.jsdelivr.net")
MATHJAX_MODES = ("local", "cdn")

# Runtime and MathJax files are addressed by fixed names: browsers revalidate the runtime on every
# load (a deploy reaches them at once) and keep MathJax for a day.
RUNTIME_CACHE = "no-cache"
MATHJAX_CACHE = "public, max-age=86400"
EXAM_CACHE = "private, max-age=3600"


def _sources(values) -> str:
    return "".join(f" {value}" for value in values)


def content_security_policy(*, app_sources: list[str], frame_ancestors: str = "'self' https:",
                            mathjax: str = "local", extra_sources: list[str] = ()) -> str:
    """The CSP of every response of the content origin.

    app_sources: the application's origin(s), which frame the runtime.
    frame_ancestors: the application's own FRAME_ANCESTORS (the LMS pages above it).
    extra_sources: origins an operator lets exams load from (e.g. an applet's site); never the
      application's.
    """
    if mathjax not in MATHJAX_MODES:
        raise ValueError(f"mathjax must be one of {MATHJAX_MODES}, not {mathjax!r}")
    outside = [*(MATHJAX_CDN_SOURCES if mathjax == "cdn" else ()), *extra_sources]
    more = _sources(outside)
    ancestors = [token for token in frame_ancestors.split() if token not in ("'self'", "'none'")]
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:{more}",
        f"style-src 'self' 'unsafe-inline'{more}",
        f"img-src 'self' data: blob:{more}",
        f"font-src 'self' data:{more}",
        f"media-src 'self' data: blob:{more}",
        f"connect-src 'self'{more}",
        f"frame-src 'self'{more}",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        f"frame-ancestors 'self'{_sources(app_sources)}{_sources(ancestors)}",
    ])


def security_headers(csp: str) -> dict[str, str]:
    """Every response of the content origin carries these (and never a Set-Cookie)."""
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    }
