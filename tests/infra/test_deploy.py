"""What a `pulumi up` would do, modelled under mocks from the providers' documented behaviour:

- pulumi-docker: a resource's provider is identified by its configuration's `host`; a new host
  means a new provider, and every container, network and image on it is created again (the
  GUIDE's §4: if the host string did not change with the server, nothing would be recreated on a
  replaced server). A container whose inputs change is replaced (every docker_container argument
  forces a new container); replacement is create-before-delete unless `delete_before_replace`.
- pulumi-random: a RandomId keeps its value while its keepers stay the same.
- pulumi-command: a remote command whose script exits non-zero fails its resource, and whatever
  depends on it is not created or changed (the mocks raise for the steps named in `failing`).

So "nothing is replaced" is "every resource's inputs are the same", and the tests compare two runs."""

from __future__ import annotations

import json
import stat

import pytest

from tests.infra.program import plain, resolve, run_program, was_secret

CONTAINER = "docker:index/container:Container"


def inputs_by_resource(run) -> dict[str, dict]:
    return {r.name: r.inputs for r in run.mocks.resources if r.type.startswith(("docker:", "command:", "tls:", "hcloud:",
                                                                                "random:"))}


def names(run, prefix: str) -> list[str]:
    return sorted(r.inputs["name"] for r in run.mocks.of_type(CONTAINER) if r.inputs["name"].startswith(prefix))


@pytest.fixture(scope="module")
def baseline():
    return run_program("prod")


def test_a_fresh_clone_deploys_with_only_the_state(tmp_path):
    """No ~/.ssh files from an earlier deploy: the deploy key and the pinned host key come from the
    state at every run, into a directory named after the project and stack."""
    home = tmp_path / "ci-runner"
    home.mkdir()
    run = run_program("prod", home=str(home))
    directory = home / ".ssh" / "pulumi" / "numbas-lti-prod"
    key, known_hosts = directory / "deploy_key", directory / "known_hosts"
    assert key.read_text() == "-----PRIVATE server-deploy-key-----\n"  # the tls.PrivateKey's, from the state
    assert known_hosts.read_text() == "numbas-lti-prod-server-* ssh-ed25519 AAAAserver-host-key\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(directory.stat().st_mode) == 0o700
    provider = run.mocks.named("app-docker")
    ssh_opts = json.loads(provider.inputs["sshOpts"])
    # The same on every machine (ssh expands ~): another operator's run does not change the provider.
    assert ssh_opts[:2] == ["-i", "~/.ssh/pulumi/numbas-lti-prod/deploy_key"]
    assert "UserKnownHostsFile=~/.ssh/pulumi/numbas-lti-prod/known_hosts" in ssh_opts
    # Nothing is written once, at creation only (a local command's `create`).
    assert not [c.name for c in run.mocks.of_type("command:local:Command") if c.inputs.get("create")]

    other = run_program("staging", home=str(home))  # another stack on the same machine: its own files
    assert (home / ".ssh" / "pulumi" / "numbas-lti-staging" / "deploy_key").exists()
    assert json.loads(other.mocks.named("app-docker").inputs["sshOpts"])[1] == "~/.ssh/pulumi/numbas-lti-staging/deploy_key"


def test_a_replaced_server_gets_a_new_docker_connection_and_everything_again(baseline):
    replaced = run_program("prod", server_id="5151")
    old, new = baseline.mocks.named("app-docker"), replaced.mocks.named("app-docker")
    assert old.inputs["host"] != new.inputs["host"] and new.inputs["host"].endswith("-server-5151")
    # Same address (primary IPs outlive servers): ssh reaches it by HostName, checks the pinned key.
    assert "HostName=203.0.113.10" in json.loads(new.inputs["sshOpts"])
    on_provider = [r for r in replaced.mocks.resources if r.type.startswith("docker:index/")]
    assert {r.type for r in on_provider} >= {CONTAINER, "docker:index/network:Network", "docker:index/image:Image",
                                             "docker:index/remoteImage:RemoteImage"}
    assert all("app-docker" in r.provider for r in on_provider)  # so all of them move to the new server
    # No Docker volumes (their id is their name: deleting the old server's could remove the new one's).
    assert not replaced.mocks.of_type("docker:index/volume:Volume")
    for c in replaced.mocks.of_type(CONTAINER):
        assert all(m["type"] == "bind" and m["source"].startswith("/") for m in c.inputs.get("mounts", [])), c.name
    # ... and, whatever the provider makes of a new host, every Docker resource's own inputs change
    # (container and network arguments force a replacement; images are pulled or built again).
    before, after = inputs_by_resource(baseline), inputs_by_resource(replaced)
    docker_resources = [r.name for r in replaced.mocks.resources if r.type.startswith("docker:index/")]
    assert docker_resources and all(before[n] != after[n] for n in docker_resources), \
        [n for n in docker_resources if before[n] == after[n]]
    # Every step runs again on the new server.
    for step in replaced.mocks.of_type("command:remote:Command"):
        assert plain(step.inputs["triggers"])[0] == "5151", step.name


def test_a_run_without_changes_replaces_nothing(baseline):
    again = run_program("prod")
    first, second = inputs_by_resource(baseline), inputs_by_resource(again)
    assert first.keys() == second.keys()
    changed = [name for name in first if first[name] != second[name]]
    assert changed == []
    cert = baseline.mocks.named("app-bootstrap-cert").inputs
    # The tls provider replaces a certificate once it is due for renewal: not within 20 years.
    assert cert["validityPeriodHours"] >= 24 * 365 * 10 and cert["earlyRenewalHours"] == 0
    nginx = next(r for r in baseline.mocks.of_type(CONTAINER) if r.inputs["name"] == "numbas-lti-nginx")
    assert "uploads" not in nginx.inputs  # its files are the nginx step's: a change reloads, never replaces


def test_more_daphne_replicas_do_not_recreate_nginx(baseline):
    more = run_program("prod", {"daphneReplicas": 6})
    before, after = inputs_by_resource(baseline), inputs_by_resource(more)
    assert before["app-nginx"] == after["app-nginx"] and before["app-certbot"] == after["app-certbot"]
    assert before["app-postgres"] == after["app-postgres"]  # the same max_connections step: no restart
    assert before["app-nginx-config"]["triggers"] != after["app-nginx-config"]["triggers"]  # a reload
    assert len(names(more, "numbas-lti-daphne-")) == 6


def test_an_upgrade_starts_a_new_generation_beside_the_old_one(baseline, monkeypatch):
    from numbas_infra import app_stack

    monkeypatch.setattr(app_stack, "image_tag", lambda: "0123456789abcdef")
    upgraded = run_program("prod")
    old_app = names(baseline, "numbas-lti-daphne-") + names(baseline, "numbas-lti-huey-")
    new_app = names(upgraded, "numbas-lti-daphne-") + names(upgraded, "numbas-lti-huey-")
    assert len(new_app) == len(old_app) == 5 and not set(old_app) & set(new_app)  # no name collides
    before, after = inputs_by_resource(baseline), inputs_by_resource(upgraded)
    for fixed in ("app-nginx", "app-certbot", "app-postgres", "app-redis"):
        assert before[fixed] == after[fixed], fixed
    for step in ("app-migrate", "app-nginx-config", "app-verify", "app-prune"):
        assert before[step]["triggers"] != after[step]["triggers"], step  # each runs again
    app = upgraded.namespace["app"]
    assert app.dependencies["numbas-lti-nginx"] == ["app-nginx-config"]
    # The upstream list names the new generation only; old containers leave after it is live.
    upstreams = plain(after["app-nginx-config"]["stdin"])
    assert upstreams and upstreams != plain(before["app-nginx-config"]["stdin"])
    # Rollback is the previous release's `pulumi up`: the same inputs give the same generation.
    monkeypatch.undo()
    assert names(run_program("prod"), "numbas-lti-daphne-") == names(baseline, "numbas-lti-daphne-")


def test_a_secret_change_is_a_new_generation_too():
    run = run_program("staging")
    rotated = run_program("staging", {"emailUrl": "smtp://mail.example.ac.uk:25"})
    assert set(names(run, "numbas-lti-daphne-")).isdisjoint(names(rotated, "numbas-lti-daphne-"))


def test_a_failed_migration_stops_the_rollout():
    with pytest.raises(Exception, match="app-migrate"):
        run_program("prod", failing=frozenset({"app-migrate"}))
    # What the failed run declared: nothing of the app after the migrate step.
    from tests.infra import program

    mocks = program._last_mocks
    declared = {r.name for r in mocks.resources}
    assert "app-postgres" in declared and "app-app-image" in declared
    assert not declared & {"app-daphne-1", "app-huey-1", "app-nginx-config", "app-nginx", "app-verify"}


def test_stop_signals_let_old_containers_finish(baseline):
    by_name = {r.inputs["name"]: r.inputs for r in baseline.mocks.of_type(CONTAINER)}
    for name, c in by_name.items():
        if "-huey-" in name:
            assert c["stopSignal"] == "SIGINT" and c["destroyGraceSeconds"] >= 60, name  # Huey: finish tasks
        if "-daphne-" in name:
            assert c["stopSignal"] == "SIGTERM" and c["destroyGraceSeconds"] >= 10, name
    assert by_name["numbas-lti-postgres"]["destroyGraceSeconds"] >= 60  # a clean shutdown, no recovery


def test_postgres_allows_every_pool_at_its_fullest_during_an_upgrade(baseline):
    from numbas_infra import spec

    postgres = next(r for r in baseline.mocks.of_type(CONTAINER) if r.inputs["name"] == "numbas-lti-postgres")
    command = postgres.inputs["command"]
    max_connections = int(next(a for a in command if a.startswith("max_connections=")).split("=")[1])
    # Sized for the server's memory (postgres_tuning.py): a cx33 has 8 GB.
    assert "shared_buffers=2048MB" in command and "effective_cache_size=6144MB" in command
    pools = 0
    for r in baseline.mocks.of_type(CONTAINER):
        envs = dict(e.split("=", 1) for e in plain(r.inputs.get("envs") or []))
        if "DB_POOL_SIZE" in envs:
            pools += int(envs["DB_POOL_SIZE"]) + int(envs["DB_POOL_MAX_OVERFLOW"])
    assert pools > 0 and max_connections >= 2 * pools + spec.RESERVED_CONNECTIONS and max_connections % 100 == 0
    daphne = next(r for r in baseline.mocks.of_type(CONTAINER) if "-daphne-" in r.inputs["name"])
    envs = dict(e.split("=", 1) for e in plain(daphne.inputs["envs"]))
    # A pool at least as large as the threads that use the database at once.
    assert int(envs["DB_POOL_SIZE"]) >= int(envs["ATTEMPT_DB_THREADS"]) + 1


def test_production_backs_up_off_the_server(baseline):
    """PostgreSQL archives its WAL with pgBackRest; the backup container (same image) shares its
    data directory and socket; the app knows backups are expected; the keys are secret."""
    from numbas_infra import backup, spec

    by_name = {r.inputs["name"]: r for r in baseline.mocks.of_type(CONTAINER)}
    postgres, worker = by_name["numbas-lti-postgres"].inputs, by_name["numbas-lti-backup"].inputs
    assert postgres["image"] == worker["image"] and postgres["image"].startswith(spec.BACKUP_IMAGE + ":")
    assert "archive_mode=on" in postgres["command"] and any(
        a.startswith("archive_command=pgbackrest --stanza=numbas-lti archive-push") for a in postgres["command"])
    mounts = {m["target"]: m["source"] for m in postgres["mounts"]}
    assert mounts == {spec.POSTGRES_DATA_TARGET: f"{spec.DATA_MOUNT}/postgres", backup.SOCKET_DIR: spec.PG_SOCKET_VOLUME}
    assert {m["target"]: m["source"] for m in worker["mounts"]}.items() >= mounts.items()
    envs = dict(e.split("=", 1) for e in plain(postgres["envs"]))
    assert envs["PGDATA"] == spec.POSTGRES_PGDATA and envs["PGBACKREST_REPO1_S3_KEY"] == "test-access-key"
    worker_env = dict(e.split("=", 1) for e in plain(worker["envs"]))
    assert set(backup.SECRET_ENV) <= set(worker_env) and worker["command"] == ["numbas-backup", "schedule"]
    assert worker_env["RESTIC_PASSWORD"] == "generated-app-backup-restic-password"
    conf = {u["file"]: u["content"] for u in worker["uploads"]}[backup.PGBACKREST_CONF]
    assert "repo1-s3-bucket=numbas-lti-backups-example" in conf and "repo1-path=/numbas-lti-prod/pgbackrest" in conf
    for name in ("numbas-lti-postgres", "numbas-lti-backup"):
        assert was_secret(by_name[name].inputs["envs"]), name
    daphne = next(r for r in baseline.mocks.of_type(CONTAINER) if "-daphne-" in r.inputs["name"])
    assert "BACKUPS_EXPECTED=1" in plain(daphne.inputs["envs"])
    assert "numbas-backup pre-deploy" in baseline.mocks.named("app-migrate").inputs["create"]
    # Exported (secret) so that the operator keeps the encryption secrets off the server too.
    exports = baseline.namespace["backup_exports"]
    assert resolve(lambda: _repository(exports())) == \
        "s3://fsn1.your-objectstorage.com/numbas-lti-backups-example/numbas-lti-prod"
    for key in ("backup_cipher_pass", "backup_restic_password"):
        assert resolve(lambda: exports()[key].is_secret()), key


async def _repository(exports):
    return exports["backup_repository"]


def test_a_stack_without_a_bucket_says_how_to_get_one():
    from numbas_infra.config import ConfigError

    with pytest.raises(Exception) as error:
        run_program("prod", {"backupBucket": None})
    text = " ".join(str(e) for e in [error.value, error.value.__cause__])
    assert "pulumi config set backupBucket" in text and "pulumi config set --secret backupAccessKey" in text
    assert "pulumi config set offsiteBackups false" in text
    staging = run_program("staging")  # off unless asked for: no archiving, no backup container
    names = {r.inputs["name"] for r in staging.mocks.of_type(CONTAINER)}
    assert "numbas-lti-backup" not in names
    postgres = next(r for r in staging.mocks.of_type(CONTAINER) if r.inputs["name"] == "numbas-lti-postgres")
    assert not any("archive" in a for a in postgres.inputs["command"])
    assert ConfigError
