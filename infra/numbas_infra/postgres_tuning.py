"""PostgreSQL's memory settings, sized from the server's RAM (a pure function: no Pulumi).

PostgreSQL shares the server with everything else the deploy runs: daphne × N (about 115 MB
each idle, more under load), Huey, Redis (cache, channel layer and queue), nginx, certbot,
Docker and the OS. `other_services_gb` is the room kept for them; by default the larger of 2 GB
(an assumption: four daphnes at a few hundred MB each under load, Huey, Redis, nginx, Docker
and the OS) and a quarter of the RAM (bigger servers run more replicas). Pass it when the
deploy runs more than that (e.g. many daphneReplicas).

The rules, from PostgreSQL's documentation ("Resource Consumption") and common practice:
- shared_buffers: 25 % of RAM (at least 128 MB, at most 16 GB: beyond that the kernel's cache
  does as well);
- effective_cache_size: what the kernel can cache for PostgreSQL, i.e. RAM minus the other
  services, kept between 50 % and 75 % of RAM (a planner hint, nothing is allocated);
- maintenance_work_mem: RAM / 16 (64 MB–1 GB) for VACUUM, CREATE INDEX and restores;
  autovacuum_work_mem: half of that for each of the 3 autovacuum workers, so that they cannot
  take 3 × maintenance_work_mem together;
- work_mem: per sort or hash step, so a query may use several: what is left after shared
  buffers, the other services and maintenance, divided by 3 × max_connections (4–256 MB; 4 MB
  is PostgreSQL's default);
- wal_buffers: shared_buffers / 32, at most 16 MB (what PostgreSQL's automatic value is).
"""

from __future__ import annotations

AUTOVACUUM_WORKERS = 3  # PostgreSQL's default autovacuum_max_workers
STEPS_PER_QUERY = 3  # sort/hash steps a connection may run at once, for work_mem


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def postgres_memory_settings(memory_gb: float, *, max_connections: int,
                             other_services_gb: float | None = None) -> dict[str, str]:
    """Settings for `postgres -c name=value`, e.g. {"shared_buffers": "2048MB", ...}."""
    if memory_gb <= 0:
        raise ValueError(f"memory_gb must be positive, not {memory_gb}")
    if max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, not {max_connections}")
    total = int(memory_gb * 1024)
    others_gb = max(2.0, memory_gb / 4) if other_services_gb is None else other_services_gb
    if others_gb < 0:
        raise ValueError(f"other_services_gb must not be negative, not {other_services_gb}")
    others = int(others_gb * 1024)

    shared_buffers = _clamp(total // 4, 128, 16 * 1024)
    effective_cache = _clamp(total - others, total // 2, total * 3 // 4)
    maintenance = _clamp(total // 16, 64, 1024)
    autovacuum = _clamp(maintenance // 2, 32, 512)
    left = total - shared_buffers - others - maintenance - AUTOVACUUM_WORKERS * autovacuum
    work = _clamp(left // (STEPS_PER_QUERY * max_connections), 4, 256)
    wal_buffers = _clamp(shared_buffers // 32, 1, 16)
    return {
        "max_connections": str(max_connections),
        "shared_buffers": f"{shared_buffers}MB",
        "effective_cache_size": f"{effective_cache}MB",
        "work_mem": f"{work}MB",
        "maintenance_work_mem": f"{maintenance}MB",
        "autovacuum_work_mem": f"{autovacuum}MB",
        "wal_buffers": f"{wal_buffers}MB",
    }
