"""The image (deploy/Dockerfile) and the runtime lock it installs.

Text checks over the Dockerfile and the two locks; no image build needed.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"
FULL_LOCK = ROOT / "requirements.lock"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def _pins(lock: Path) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in _PIN.findall(lock.read_text())}


def _final_stage() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile's last stage, continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    instructions = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def _command_form(arguments: str) -> list[str]:
    arguments = arguments.strip()
    if arguments.startswith("["):
        parsed = json.loads(arguments)
        assert all(isinstance(part, str) for part in parsed)
        return list(parsed)
    return ["/bin/sh", "-c", arguments]


def test_the_image_runs_sluice() -> None:
    stage = _final_stage()
    entrypoint = [_command_form(a) for op, a in stage if op == "ENTRYPOINT"]
    cmd = [_command_form(a) for op, a in stage if op == "CMD"]
    assert cmd, "the runtime stage has no CMD"
    argv = [*(entrypoint[-1] if entrypoint else []), *cmd[-1]]
    assert argv[0] == "sluice", f"the image runs {argv}, not sluice (exec form, PID 1)"
    assert argv[1:3] == ["data-plane", "--host"]
    assert argv[3] == "0.0.0.0"


def test_the_image_runs_as_a_non_root_user() -> None:
    stage = _final_stage()
    users = [a.split(":")[0].strip() for op, a in stage if op == "USER"]
    assert users, "the runtime stage never leaves root"
    assert users[-1] not in ("root", "0")


def test_the_image_installs_the_runtime_lock_with_hashes() -> None:
    text = " ".join(DOCKERFILE.read_text().split())
    assert "COPY requirements-runtime.lock ./" in text
    assert "pip install --require-hashes -r requirements-runtime.lock" in text
    assert "requirements.lock" not in text.replace("requirements-runtime.lock", "")
    assert "pip install --no-deps ." in text
    assert "python:3.11-slim" in text


def test_the_build_context_leaves_local_state_out() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".sluice", ".git", "tests"} <= ignored
    assert {"requirements-runtime.lock", "pyproject.toml", "README.md"}.isdisjoint(ignored)


# --- the runtime lock ---------------------------------------------------------------


def test_the_runtime_lock_has_no_development_tool() -> None:
    runtime = _pins(RUNTIME_LOCK)
    dev_only = {
        canonicalize_name(Requirement(r).name) for r in PROJECT["optional-dependencies"]["dev"]
    }
    assert {"pytest", "mypy", "ruff", "schemathesis", "kubernetes-validate"} <= dev_only
    assert dev_only.isdisjoint(runtime), sorted(dev_only & runtime.keys())
    # and nothing that only the development tools pull in
    assert {"pluggy", "iniconfig", "hypothesis", "mypy-extensions"}.isdisjoint(runtime)


def test_the_runtime_lock_pins_every_runtime_dependency_with_hashes() -> None:
    runtime = _pins(RUNTIME_LOCK)
    for spec in PROJECT["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in runtime, f"{name} is not in {RUNTIME_LOCK.name}"
        assert requirement.specifier.contains(runtime[name]), f"{name}=={runtime[name]}"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", RUNTIME_LOCK.read_text().split("\n", 2)[2])
    for block in blocks:
        assert "--hash=sha256:" in block, f"no hash for {block.split()[0]}"


def test_the_runtime_lock_is_complete_for_this_platform() -> None:
    """Every distribution the runtime dependencies need here, transitively (extras and
    markers evaluated as pip would), is pinned; and the two locks agree on versions."""
    runtime, full = _pins(RUNTIME_LOCK), _pins(FULL_LOCK)
    pending = [(Requirement(spec), "") for spec in PROJECT["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        assert name in runtime, f"{name} (needed at runtime) is not in {RUNTIME_LOCK.name}"
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            needs = distribution(name).requires or []
        except PackageNotFoundError as exc:  # the venv is installed from the full lock
            raise AssertionError(f"{name} is not installed") from exc
        for extra_name in ("", *requirement.extras):
            pending += [(Requirement(r), extra_name) for r in needs]
    assert {key.split("[")[0] for key in seen} <= runtime.keys()
    for pinned, version in runtime.items():
        assert full.get(pinned) == version, (
            f"{pinned}: {version} here, {full.get(pinned)} in the full lock"
        )
