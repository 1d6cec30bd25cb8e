"""Hetzner Cloud server types, in one place: what can be ordered where, what has been withdrawn
and what replaces it, and which of them can run the app (x86 only: the image is linux/amd64).

Sources (checked 2026; see the notes for what is inferred):
- Deprecations: https://docs.hetzner.cloud/changelog#2025-10-16-server-types-deprecated (CX Gen 2
  cx22–cx52 and CPX Gen 1 cpx11–cpx51, announced 2025-10-16, not orderable after 2025-12-31) and
  https://docs.hetzner.cloud/changelog#2024-06-06-old-server-types-with-shared-intel-vcpus-are-deprecated
  (cx11–cx51).
- The hcloud Terraform provider's acceptance tests, run against the live API (v1.68.0,
  internal/servertype/data_source_test.go): cpx22 is id 109 with 2 vCPUs, 4 GB, 80 GB, x86, in 4
  locations (fsn1 first); cpx11 is 2 vCPUs, 2 GB, 40 GB, offered in 6 locations, and its
  deprecation is per location (deprecated in fsn1 from 2025-10-16, unavailable after
  2025-12-31; the type as a whole is not deprecated). The provider's own tests order cpx12 in
  hel1 (internal/teste2e/testing.go).
- Sizes of the other types and the locations of each family: Hetzner's price pages as quoted by
  several public projects; they agree with each other. The CX family (and the Arm CAX family) is
  sold in the EU locations only; the new CPX family in the EU and Singapore (which makes
  cpx22's 4 locations); CPX Gen 1 remains the shared-vCPU offer in Ashburn and Hillsboro; CCX
  everywhere. When Hetzner changes its range, change this table: nothing else names a type.
"""

from __future__ import annotations

from dataclasses import dataclass

EU = ("fsn1", "nbg1", "hel1")
US = ("ash", "hil")
SINGAPORE = ("sin",)
LOCATIONS = EU + US + SINGAPORE
DEFAULT = "cx33"


@dataclass(frozen=True)
class ServerType:
    name: str
    vcpus: int
    memory_gb: float
    disk_gb: int
    architecture: str  # "x86" or "arm"
    cpu: str  # "shared" or "dedicated" vCPUs
    locations: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.name} ({self.vcpus} vCPU, {self.memory_gb:g} GB)"


@dataclass(frozen=True)
class Withdrawn:
    name: str
    replacements: tuple[str, ...]  # best match first
    locations: tuple[str, ...]  # where it can no longer be ordered
    when: str


def _family(names_specs: dict[str, tuple[int, float, int]], *, architecture: str, cpu: str,
            locations: tuple[str, ...]) -> dict[str, ServerType]:
    return {name: ServerType(name, vcpus, memory, disk, architecture, cpu, locations)
            for name, (vcpus, memory, disk) in names_specs.items()}


ORDERABLE: dict[str, ServerType] = {
    # Cost-optimised, shared Intel/AMD vCPUs: EU only.
    **_family({"cx23": (2, 4, 40), "cx33": (4, 8, 80), "cx43": (8, 16, 160), "cx53": (16, 32, 320)},
              architecture="x86", cpu="shared", locations=EU),
    # Regular performance, shared AMD vCPUs (Gen 2): EU and Singapore.
    **_family({"cpx12": (1, 2, 40), "cpx22": (2, 4, 80), "cpx32": (4, 8, 160), "cpx42": (8, 16, 320),
               "cpx52": (12, 24, 480), "cpx62": (16, 32, 640)},
              architecture="x86", cpu="shared", locations=EU + SINGAPORE),
    # CPX Gen 1 is withdrawn in the EU and Singapore but still what Ashburn and Hillsboro sell.
    **_family({"cpx11": (2, 2, 40), "cpx21": (3, 4, 80), "cpx31": (4, 8, 160), "cpx41": (8, 16, 240),
               "cpx51": (16, 32, 360)},
              architecture="x86", cpu="shared", locations=US),
    # General purpose, dedicated AMD vCPUs: every location.
    **_family({"ccx13": (2, 8, 80), "ccx23": (4, 16, 160), "ccx33": (8, 32, 240), "ccx43": (16, 64, 360),
               "ccx53": (32, 128, 600), "ccx63": (48, 192, 960)},
              architecture="x86", cpu="dedicated", locations=LOCATIONS),
    # Arm (Ampere): orderable, but not for us (see check()).
    **_family({"cax11": (2, 4, 40), "cax21": (4, 8, 80), "cax31": (8, 16, 160), "cax41": (16, 32, 320)},
              architecture="arm", cpu="shared", locations=EU),
}

_CX_GEN2 = "deprecated 2025-10-16, not orderable since 2025-12-31"
WITHDRAWN: dict[str, Withdrawn] = {
    **{old: Withdrawn(old, new, LOCATIONS, "withdrawn in 2024") for old, new in {
        "cx11": ("cx23",), "cx21": ("cx23",), "cx31": ("cx33",), "cx41": ("cx43",), "cx51": ("cx53",),
    }.items()},
    **{old: Withdrawn(old, new, LOCATIONS, _CX_GEN2) for old, new in {
        "cx22": ("cx23", "cpx22"), "cx32": ("cx33", "cpx32"), "cx42": ("cx43", "cpx42"), "cx52": ("cx53", "cpx62"),
    }.items()},
    **{old: Withdrawn(old, new, EU + SINGAPORE, _CX_GEN2) for old, new in {
        "cpx11": ("cpx22", "cx23"), "cpx21": ("cpx22", "cx23"), "cpx31": ("cpx32", "cx33"),
        "cpx41": ("cpx42", "cx43"), "cpx51": ("cpx62", "cx53"),
    }.items()},
    # The first two dedicated-vCPU generations, replaced by the ccx?3 types in 2023.
    **{f"ccx{size}{gen}": Withdrawn(f"ccx{size}{gen}", (f"ccx{size}3",), LOCATIONS, "withdrawn in 2023")
       for size in range(1, 7) for gen in (1, 2) if f"ccx{size}3" in ORDERABLE},
}


class ServerTypeError(ValueError):
    """A server type this stack cannot order; the message names what to use instead."""

    def __init__(self, message: str, suggestion: str):
        super().__init__(message)
        self.suggestion = suggestion  # a type that works in the chosen location


def offered_in(location: str, *, architecture: str = "x86") -> list[ServerType]:
    """The types that can be ordered in a location, smallest first."""
    return sorted((t for t in ORDERABLE.values() if location in t.locations and t.architecture == architecture),
                  key=lambda t: (t.cpu != "shared", t.memory_gb, t.vcpus, t.name))


def _suggestion(location: str) -> str:
    if DEFAULT in ORDERABLE and location in ORDERABLE[DEFAULT].locations:
        return DEFAULT
    usable = [t for t in offered_in(location) if t.memory_gb >= 8] or offered_in(location)
    return usable[0].name


def check(name: str, location: str) -> ServerType:
    """The server type `name` if this stack can order it in `location`; otherwise ServerTypeError."""
    if location not in LOCATIONS:
        raise ServerTypeError(f"Hetzner has no location '{location}' (locations: {', '.join(LOCATIONS)}).", DEFAULT)
    suggestion = _suggestion(location)
    kind = ORDERABLE.get(name)
    if kind is not None and kind.architecture != "x86":
        raise ServerTypeError(
            f"{kind.describe()} is an Arm (arm64) type, and the app image is built for linux/amd64 only. "
            f"Use an x86 type such as {ORDERABLE[suggestion].describe()}.", suggestion)
    if kind is not None and location in kind.locations:
        return kind
    withdrawn = WITHDRAWN.get(name)
    if withdrawn is not None and location in withdrawn.locations:
        here = [ORDERABLE[r] for r in withdrawn.replacements if location in ORDERABLE[r].locations]
        replacements = here or offered_in(location)[:1]
        options = " or ".join(r.describe() for r in replacements)
        raise ServerTypeError(
            f"{name} is deprecated: Hetzner no longer sells it in {location} ({withdrawn.when}). "
            f"Use {options} instead. "
            f"An existing server changes type in place (Hetzner powers it off for a few minutes to rescale "
            f"it; the data volumes are untouched).", replacements[0].name)
    if kind is not None:
        raise ServerTypeError(
            f"{kind.describe()} is not sold in {location}; it is sold in {', '.join(kind.locations)}. "
            f"Choose one of those locations, or a type sold in {location}: "
            f"{', '.join(t.name for t in offered_in(location))}.", suggestion)
    raise ServerTypeError(
        f"'{name}' is not a server type this program knows (infra/numbas_infra/server_types.py lists "
        f"Hetzner's). Types sold in {location}: {', '.join(t.name for t in offered_in(location))}.", suggestion)
