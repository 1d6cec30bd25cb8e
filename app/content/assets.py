"""What the exam-content origin serves besides the exams themselves: the exam runtime and
MathJax, as static files under the `content/` prefix.

    content origin             static file                        from
    /runtime/...               content/runtime/...                content/static/content/runtime/
    /runtime/scorm-again/...   content/runtime/scorm-again/...    npm scorm-again (dist/)
    /mathjax/2/...             content/mathjax/2/...              npm mathjax@2.7.9 (package "mathjax2")
    /mathjax/4/...             content/mathjax/4/...              npm mathjax@4
    /mathjax/fonts/<font>/...  content/mathjax/fonts/<font>/...   npm @mathjax/<font> (MathJax 4's fonts)
    /exams/<dir>/...           (MEDIA_ROOT/exams/<dir>/...)       uploaded exam packages

collectstatic copies them to STATIC_ROOT/content/ like every other static file (nginx serves the
content origin from there); in development the content server (content/server.py) finds them with
the static finders. `ContentAssetsFinder` adds the npm packages, without what a browser never
loads (MathJax 2's unpacked sources, MathJax 4 fonts' Node builds).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import utils
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PREFIX = "content/"
MATHJAX_2_VERSION = "2.7.9"  # package.json: "mathjax2": "npm:mathjax@2.7.9"
MATHJAX_4_VERSION = "4.1.3"  # package.json: "mathjax" and "@mathjax/mathjax-newcm-font"


@dataclass(frozen=True)
class Asset:
    prefix: str  # under content/
    package: str  # under node_modules/
    skip: tuple[str, ...] = ()  # top-level folders of the package that are never served


def node_modules() -> Path:
    return Path(settings.REPO_DIR) / "node_modules"


ASSETS = (
    Asset("runtime/scorm-again", "scorm-again/dist"),
    Asset("mathjax/2", "mathjax2", skip=("unpacked", "test", "docs")),
    Asset("mathjax/4", "mathjax", skip=("node_modules",)),
    Asset("mathjax/fonts/mathjax-newcm-font", "@mathjax/mathjax-newcm-font", skip=("cjs", "mjs", "tsconfig", "examples")),
)


class ContentAssetsFinder(BaseFinder):
    """Finds the npm packages of the content origin (ASSETS) as static files under content/."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storages = []
        for asset in ASSETS:
            storage = FileSystemStorage(location=str(node_modules() / asset.package))
            storage.prefix = PREFIX + asset.prefix
            self.storages.append((asset, storage))

    def check(self, **kwargs):
        return [
            Error(f"{node_modules() / asset.package} is missing: run `npm ci` (scripts/dev and scripts/test do).",
                  id="content.E001")
            for asset, _ in self.storages if not os.path.isdir(node_modules() / asset.package)
        ]

    def find(self, path, find_all=False, **kwargs):
        matches = []
        for asset, storage in self.storages:
            start = storage.prefix + "/"
            if not path.startswith(start):
                continue
            inner = path[len(start):]
            if inner.split("/", 1)[0] in asset.skip or not storage.exists(inner):
                continue
            found = storage.path(inner)
            if not find_all:
                return found
            matches.append(found)
        return matches

    def list(self, ignore_patterns):
        for asset, storage in self.storages:
            if not os.path.isdir(storage.location):
                continue
            for path in utils.get_files(storage, ignore_patterns):
                if path.split(os.sep, 1)[0] not in asset.skip:
                    yield path, storage
