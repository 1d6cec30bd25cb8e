"""Server types come from one table (numbas_infra/server_types.py): the config refuses types
Hetzner has withdrawn (naming what replaces them and the command to set it), Arm types (the app
image is amd64), and types not sold in the chosen location; the default is cx33. PostgreSQL's
memory settings are sized from the chosen type's RAM."""

import re

import pytest

from tests.infra.program import run_program


def config_error(overrides: dict) -> str:
    from numbas_infra.config import ConfigError

    with pytest.raises(Exception) as error:
        run_program("staging", overrides)
    chain = [error.value, *([error.value.__cause__] if error.value.__cause__ else [])]
    text = " ".join(str(e) for e in chain)
    assert any(isinstance(e, ConfigError) for e in chain) or "ConfigError" in text, text
    return text


# --- the table ------------------------------------------------------------------------------


def test_the_table_knows_the_current_types_with_their_sizes_and_locations():
    from numbas_infra import server_types as st

    cx33 = st.ORDERABLE["cx33"]
    assert (cx33.vcpus, cx33.memory_gb, cx33.disk_gb, cx33.architecture) == (4, 8, 80, "x86")
    assert cx33.locations == ("fsn1", "nbg1", "hel1")
    for name in ("cx23", "cx43", "cx53"):
        assert st.ORDERABLE[name].locations == ("fsn1", "nbg1", "hel1")
    # Verified against the live API by the hcloud provider's acceptance test (v1.68.0).
    cpx22 = st.ORDERABLE["cpx22"]
    assert (cpx22.vcpus, cpx22.memory_gb, cpx22.disk_gb) == (2, 4, 80) and len(cpx22.locations) == 4
    assert {f"cpx{n}2" for n in range(1, 7)} <= set(st.ORDERABLE)
    assert all(st.ORDERABLE[f"ccx{n}3"].locations == st.LOCATIONS for n in range(1, 7))
    assert all(st.ORDERABLE[f"cax{n}1"].architecture == "arm" for n in range(1, 5))
    # Every replacement named for a withdrawn type is itself orderable.
    for withdrawn in st.WITHDRAWN.values():
        assert withdrawn.replacements and all(r in st.ORDERABLE for r in withdrawn.replacements), withdrawn
    # Withdrawn nowhere it is still sold.
    for name, kind in st.ORDERABLE.items():
        assert not set(kind.locations) & set(st.WITHDRAWN.get(name, st.Withdrawn(name, (), (), "")).locations)


def test_every_location_offers_an_x86_type_with_room_for_the_stack():
    from numbas_infra import server_types as st

    for location in st.LOCATIONS:
        assert any(t.memory_gb >= 8 for t in st.offered_in(location)), location
        suggestion = st.check(st._suggestion(location), location)
        assert suggestion.architecture == "x86" and suggestion.memory_gb >= 8


# --- the config -----------------------------------------------------------------------------


def test_the_default_server_type_is_cx33():
    run = run_program("staging", {"serverType": None})
    cfg = run.namespace["cfg"]
    assert cfg.server_type == "cx33" and (cfg.server_vcpus, cfg.server_memory_gb) == (4, 8)
    (server,) = run.mocks.of_type("hcloud:index/server:Server")
    assert server.inputs["serverType"] == "cx33"


def test_the_example_stacks_use_current_types():
    assert run_program("prod").namespace["cfg"].server_type == "cx33"
    assert run_program("staging").namespace["cfg"].server_type == "cx23"


@pytest.mark.parametrize("old, new, also", [
    ("cx32", "cx33", "cpx32"), ("cx22", "cx23", "cpx22"), ("cx52", "cx53", "cpx62"),
    ("cpx31", "cpx32", "cx33"), ("cpx11", "cpx22", "cx23"), ("cx21", "cx23", None),
])
def test_a_deprecated_type_is_refused_naming_its_replacements_and_the_command(old, new, also):
    text = config_error({"serverType": old, "location": "nbg1"})
    assert f"{old} is deprecated" in text
    assert f"Use {new} (" in text and (also is None or f"{also} (" in text), text
    assert f"pulumi config set serverType {new}" in text


def test_a_withdrawn_type_names_only_replacements_sold_in_the_location():
    text = config_error({"serverType": "cpx41", "location": "sin"})
    assert "Use cpx42 (8 vCPU, 16 GB) instead" in text and "cx43" not in text  # no CX in Singapore
    assert "pulumi config set serverType cpx42" in text


def test_cpx_gen1_is_still_what_the_us_locations_sell():
    cfg = run_program("staging", {"serverType": "cpx31", "location": "ash"}).namespace["cfg"]
    assert (cfg.location, cfg.server_type, cfg.server_memory_gb) == ("ash", "cpx31", 8)


@pytest.mark.parametrize("arm", ["cax11", "cax21", "cax41"])
def test_arm_types_are_refused_because_the_image_is_amd64(arm):
    text = config_error({"serverType": arm})
    assert "Arm (arm64)" in text and "linux/amd64" in text
    assert "pulumi config set serverType cx33" in text


def test_a_type_not_sold_in_the_location_is_refused_naming_where_it_is_sold():
    text = config_error({"serverType": "cx33", "location": "ash"})
    assert "not sold in ash; it is sold in fsn1, nbg1, hel1" in text
    assert "ccx13" in text and "cpx21" in text  # what ash does sell
    match = re.search(r"pulumi config set serverType (\S+)", text)
    assert match and match.group(1) in ("ccx13", "cpx31", "ccx23"), text


def test_an_unknown_type_or_location_is_refused():
    text = config_error({"serverType": "cx34"})
    assert "'cx34' is not a server type this program knows" in text and "cx33" in text
    text = config_error({"location": "fra1"})
    assert "Hetzner's locations are fsn1, nbg1, hel1, ash, hil, sin" in text
    assert "pulumi config set location nbg1" in text


# --- PostgreSQL's memory settings --------------------------------------------------------------


def mb(value: str) -> int:
    assert re.fullmatch(r"\d+MB", value), value
    return int(value[:-2])


def test_postgres_settings_for_a_cx33():
    from numbas_infra.postgres_tuning import postgres_memory_settings

    s = postgres_memory_settings(8, max_connections=100)
    assert set(s) == {"max_connections", "shared_buffers", "effective_cache_size", "work_mem",
                      "maintenance_work_mem", "autovacuum_work_mem", "wal_buffers"}
    assert s["max_connections"] == "100"
    assert mb(s["shared_buffers"]) == 2048  # 25 %
    assert 4096 <= mb(s["effective_cache_size"]) <= 6144  # 50-75 %
    assert mb(s["wal_buffers"]) == 16
    assert 256 <= mb(s["maintenance_work_mem"]) <= 1024
    # What PostgreSQL may take at worst leaves the other services their 2 GB.
    worst = (mb(s["shared_buffers"]) + mb(s["maintenance_work_mem"]) + 3 * mb(s["autovacuum_work_mem"])
             + 3 * 100 * mb(s["work_mem"]))
    assert worst <= 8192 - 2048
    assert mb(s["work_mem"]) >= 4


@pytest.mark.parametrize("memory_gb", [2, 4, 8, 16, 32, 64, 192])
def test_postgres_settings_scale_with_the_ram(memory_gb):
    from numbas_infra.postgres_tuning import postgres_memory_settings

    s = postgres_memory_settings(memory_gb, max_connections=200)
    total = memory_gb * 1024
    assert mb(s["shared_buffers"]) == min(total // 4, 16384)
    assert total // 2 <= mb(s["effective_cache_size"]) <= total * 3 // 4
    assert mb(s["autovacuum_work_mem"]) <= mb(s["maintenance_work_mem"]) <= 1024
    assert 4 <= mb(s["work_mem"]) <= 256
    assert 1 <= mb(s["wal_buffers"]) <= 16


def test_postgres_settings_follow_connections_and_the_room_for_other_services():
    from numbas_infra.postgres_tuning import postgres_memory_settings

    few, many = (postgres_memory_settings(16, max_connections=n) for n in (20, 400))
    assert mb(few["work_mem"]) > mb(many["work_mem"]) >= 4
    crowded = postgres_memory_settings(16, max_connections=20, other_services_gb=10)
    assert mb(crowded["work_mem"]) < mb(few["work_mem"])
    assert mb(crowded["effective_cache_size"]) == 16 * 1024 // 2  # never below half the RAM
    for bad in ({"memory_gb": 0, "max_connections": 10}, {"memory_gb": 8, "max_connections": 0},
                {"memory_gb": 8, "max_connections": 10, "other_services_gb": -1}):
        with pytest.raises(ValueError):
            postgres_memory_settings(**bad)


def test_postgres_settings_from_the_chosen_server_type():
    from numbas_infra.postgres_tuning import postgres_memory_settings

    cfg = run_program("staging", {"serverType": "cx43"}).namespace["cfg"]
    settings = postgres_memory_settings(cfg.server_memory_gb, max_connections=100)
    assert settings["shared_buffers"] == "4096MB" and cfg.server_vcpus == 8


def test_postgresql_knows_the_settings_and_accepts_their_values():
    """Checked against the running PostgreSQL's pg_settings (names, units, bounds)."""
    import os

    from numbas_infra.postgres_tuning import postgres_memory_settings

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("needs PostgreSQL (scripts/test starts one and sets DATABASE_URL)")
    psycopg2 = pytest.importorskip("psycopg2")
    units_kb = {"kB": 1, "8kB": 8, "MB": 1024}
    for memory_gb in (2, 8, 192):
        settings = postgres_memory_settings(memory_gb, max_connections=100)
        with psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres") as connection, connection.cursor() as cursor:
            cursor.execute("SELECT name, unit, min_val::bigint, max_val::bigint FROM pg_settings WHERE name = ANY(%s)",
                           (list(settings),))
            known = {name: (unit, low, high) for name, unit, low, high in cursor.fetchall()}
        assert set(known) == set(settings)
        for name, value in settings.items():
            unit, low, high = known[name]
            amount = int(value) if unit is None else mb(value) * 1024 // units_kb[unit]
            assert low <= amount <= high, (name, value, known[name])
