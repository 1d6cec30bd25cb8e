"""Run the Pulumi program under pulumi.runtime.set_mocks (no CLI, no cloud) and record every
resource it declares, with its inputs, for the infra tests."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import runpy
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import yaml
from pulumi.runtime.mocks import MockMonitor

REPO = Path(__file__).resolve().parents[2]
PROJECT = "numbas-lti"


@dataclass
class Declared:
    type: str
    name: str
    inputs: dict
    provider: str


class RecordingMocks(pulumi.runtime.Mocks):
    """Records what the program declares and answers as the providers would, where the program
    depends on it: hcloud ids (the server's can be set, to model a replacement), generated keys,
    random ids that stay the same while their keepers do (pulumi-random's behaviour), and command
    failures (a step whose script exits non-zero fails the resource: `failing`)."""

    def __init__(self, *, server_id: str = "4242", failing: frozenset[str] = frozenset()):
        self.resources: list[Declared] = []
        self.server_id = server_id
        self.failing = failing
        self.options: dict[tuple[str, str], dict] = {}  # (type, name) -> resource options, see RecordingMonitor

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        # Only a command fails its resource on a non-zero exit: the docker provider waits for an
        # `attach`ed container but ignores its exit code (the GUIDE's §4).
        if args.name in self.failing and args.typ.startswith("command:"):
            raise Exception(f"{args.name}: Process exited with status 1 (modelled failure)")
        self.resources.append(Declared(args.typ, args.name, dict(args.inputs), args.provider or ""))
        outputs = dict(args.inputs)
        if args.typ == "hcloud:index/primaryIp:PrimaryIp":
            outputs["ipAddress"] = "203.0.113.10" if args.inputs.get("type") == "ipv4" else "2001:db8:1234::/64"
        elif args.typ == "tls:index/privateKey:PrivateKey":
            outputs |= {"privateKeyOpenssh": f"-----PRIVATE {args.name}-----", "publicKeyOpenssh": f"ssh-ed25519 AAAA{args.name}\n",
                        "privateKeyPem": f"-----PEM {args.name}-----"}
        elif args.typ == "tls:index/selfSignedCert:SelfSignedCert":
            outputs["certPem"] = "-----BEGIN CERTIFICATE-----"
        elif args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = f"generated-{args.name}"
        elif args.typ == "random:index/randomId:RandomId":
            keepers = json.dumps(args.inputs.get("keepers"), sort_keys=True, default=str)
            outputs["hex"] = hashlib.sha256(keepers.encode()).hexdigest()[:6]
        elif args.typ.startswith("command:"):
            outputs["stdout"] = ""
        elif args.typ == "docker:index/image:Image":
            outputs["imageName"] = args.inputs.get("imageName")
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            outputs["imageId"] = f"sha256:{args.name}"
        if args.typ == "hcloud:index/server:Server":
            return self.server_id, outputs
        return f"{args.name}-id" if not args.typ.startswith("hcloud") else "4242", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of_type(self, type_: str) -> list[Declared]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Declared:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, (name, [r.name for r in self.resources])
        return matches[0]

    def options_of(self, declared: Declared) -> dict:
        """The options the program registered the resource with (ignoreChanges, deleteBeforeReplace,
        protect, replaceOnChanges, dependencies, propertyDependencies, aliases)."""
        return self.options[(declared.type, declared.name)]

    def urn_of(self, declared: Declared) -> str:
        return self.options_of(declared)["urn"]


class RecordingMonitor(MockMonitor):
    """The mock monitor, also keeping what a RegisterResource request says besides the inputs: the
    options the engine would act on (the mocks' new_resource does not see them)."""

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        self.mocks.options[(request.type, request.name)] = {
            "urn": response.urn,
            "ignoreChanges": list(request.ignoreChanges),
            "deleteBeforeReplace": request.deleteBeforeReplace,
            "protect": request.protect,
            "replaceOnChanges": list(request.replaceOnChanges),
            "dependencies": list(request.dependencies),
            "propertyDependencies": {k: list(v.urns) for k, v in request.propertyDependencies.items()},
            "aliases": [a.spec.name for a in request.aliases if a.spec.name],
        }
        return response


# Inputs whose change makes the provider replace a resource rather than update it, read from the
# pinned providers' source: terraform-provider-hcloud v1.68.0 (what pulumi-hcloud 1.43.3 wraps)
# internal/server/resource.go (ForceNew: image, location, user_data, ssh_keys; server_type is
# changed in place), internal/volume/resource_attachment.go (volume_id, server_id),
# internal/sshkey/resource.go (public_key: RequiresReplace); pulumi-command v1.2.1
# provider/pkg/provider/common/inputs.go (triggers: replaceOnChanges).
REPLACED_ON = {
    "hcloud:index/server:Server": {"image", "location", "userData", "sshKeys"},
    "hcloud:index/volumeAttachment:VolumeAttachment": {"volumeId", "serverId"},
    "hcloud:index/sshKey:SshKey": {"publicKey"},
    "command:remote:Command": {"triggers"},
    "command:local:Command": {"triggers"},
}


def plan(before: "Run", after: "Run") -> dict[str, str]:
    """What `pulumi up` would do to each resource when the program goes from `before` to `after`
    (two runs with different config): create, delete, same, update or replace, applying the
    new run's ignoreChanges as the engine does (top-level properties) and REPLACED_ON."""
    olds = {(r.type, r.name): r for r in before.mocks.resources}
    news = {(r.type, r.name): r for r in after.mocks.resources}
    for key, new in news.items():  # aliases: an old name the new resource takes over
        for alias in after.mocks.options_of(new)["aliases"]:
            if key not in olds and (key[0], alias) in olds:
                olds[key] = olds.pop((key[0], alias))
    steps: dict[str, str] = {}
    for key in olds.keys() - news.keys():
        steps[key[1]] = "delete"
    for key, new in news.items():
        if key not in olds:
            steps[key[1]] = "create"
            continue
        old, ignored = olds[key], set(after.mocks.options_of(new)["ignoreChanges"])
        changed = {k for k in old.inputs.keys() | new.inputs.keys()
                   if plain(old.inputs.get(k)) != plain(new.inputs.get(k))} - ignored
        replace_on = REPLACED_ON.get(new.type, set()) | set(after.mocks.options_of(new)["replaceOnChanges"])
        steps[key[1]] = "replace" if changed & replace_on else "update" if changed else "same"
    return steps


def stack_config(stack: str) -> dict[str, str]:
    """The example stack file's config, as pulumi passes it to a program (JSON for lists)."""
    values = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    if f"{PROJECT}:backupBucket" in values:  # what the operator sets with --secret (never in the file)
        values.setdefault(f"{PROJECT}:backupAccessKey", "test-access-key")
        values.setdefault(f"{PROJECT}:backupSecretKey", "test-secret-key")
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


@dataclass
class Run:
    mocks: RecordingMocks
    home: str = ""
    namespace: dict = field(default_factory=dict)


# Everything Pulumi runs on one thread with an event loop of its own: the test process's main
# thread may have none (after asyncio.run) or a running one (Playwright's).
_pulumi_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pulumi-mocks",
                                    initializer=lambda: asyncio.set_event_loop(asyncio.new_event_loop()))


def resolve(awaitable_factory):
    """Await something of a finished run (e.g. output.is_secret) on the Pulumi thread."""
    from pulumi.runtime.sync_await import _sync_await

    return _pulumi_thread.submit(lambda: _sync_await(awaitable_factory())).result(timeout=120)


_last_mocks: RecordingMocks | None = None  # the latest run's, also when the program failed


def run_program(stack: str, overrides: dict[str, object] | None = None, *, server_id: str = "4242",
                failing: frozenset[str] = frozenset(), home: str | None = None) -> Run:
    """One run of the program. home: the operator's home directory for this run (a fresh empty one
    by default: nothing from an earlier deploy is on this machine)."""
    return _pulumi_thread.submit(_run_program, stack, overrides, server_id, failing, home).result(timeout=300)


def _run_program(stack: str, overrides: dict[str, object] | None = None, server_id: str = "4242",
                 failing: frozenset[str] = frozenset(), home: str | None = None) -> Run:
    config = stack_config(stack)
    for key, value in (overrides or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value if isinstance(value, str) else json.dumps(value)
    global _last_mocks
    mocks = _last_mocks = RecordingMocks(server_id=server_id, failing=failing)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(mocks))
    pulumi.runtime.set_all_config(config)
    run = Run(mocks, home=home or tempfile.mkdtemp(prefix="operator-home-"))

    @pulumi.runtime.test
    def program():
        run.namespace = runpy.run_path(str(REPO / "infra" / "__main__.py"), run_name="__pulumi__")

    previous = os.environ.get("HOME")
    os.environ["HOME"] = run.home
    try:
        program()
    finally:
        if previous is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = previous
    return run


SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"  # how the engine wraps secret values


def plain(value):
    """A mocked input with any secret wrapper removed."""
    if isinstance(value, dict) and SECRET_SIGNATURE in value:
        return value["value"]
    return value


def was_secret(value) -> bool:
    return isinstance(value, dict) and SECRET_SIGNATURE in value


def is_secret(output: pulumi.Output) -> bool:
    """Whether an output of a finished run is marked secret."""
    return resolve(output.is_secret)
