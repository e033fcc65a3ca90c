"""`sluice run`: PostgreSQL, migrations, the fake provider, both planes, demo data.

For local development only. Starts everything, seeds a demo tenant, provider,
route and key through the admin API, writes `.sluice/dev.env` and
`.sluice/dev.json` once all is ready, and stops what it started on Ctrl-C or
SIGTERM. The admin token and secret key are generated on the first run and
kept in `.sluice/dev.env`, so provider keys stay readable across runs.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx

from shared.migrate import migrate
from shared.tools.devseed import Seed, seed_demo

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]
PG_SCRIPT = ROOT / "scripts" / "pg.sh"


def _state_dir() -> Path:
    return Path(os.environ.get("SLUICE_STATE_DIR") or ROOT / ".sluice")


def _shown(path: Path | str) -> str:
    """`path` relative to the working folder when inside it, for copy-paste."""
    relative = os.path.relpath(os.path.abspath(path))
    return str(path) if relative.startswith("..") else relative


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip().strip("'\"") for k, v in pairs if not k.startswith("#")}


def _settings_env(state_dir: Path) -> dict[str, str]:
    """SLUICE_* for the children: the environment first, then the last run's, then fresh."""
    saved = _read_env_file(state_dir / "dev.env")
    env = {k: v for k, v in saved.items() if k.startswith("SLUICE_")}
    env.update({k: v for k, v in os.environ.items() if k.startswith("SLUICE_")})
    env.setdefault("SLUICE_ADMIN_TOKEN", "sluice-admin-" + secrets.token_urlsafe(24))
    env.setdefault("SLUICE_SECRET_KEY", secrets.token_urlsafe(32))
    env.setdefault("SLUICE_CONTROL_PLANE_PORT", "8081")
    env.setdefault("SLUICE_DATA_PLANE_PORT", "8080")
    env.setdefault("SLUICE_FAKE_PROVIDER_PORT", "9090")
    # no load balancer to drop a local replica: Ctrl-C stops at once, streams still finish
    env.setdefault("SLUICE_DRAIN_DELAY_SECONDS", "0")
    return env


def _start_postgres(env: dict[str, str]) -> bool:
    """Start the local server unless another database was given; True if we started it.
    The server keeps its durability settings unless SLUICE_PG_FAST=1 (scripts/pg.sh)."""
    local = subprocess.run([str(PG_SCRIPT), "url"], check=True, capture_output=True, text=True)
    local_url = local.stdout.strip()
    if os.environ.get("SLUICE_DATABASE_URL", local_url) != local_url:
        return False
    was_running = subprocess.run([str(PG_SCRIPT), "status"], capture_output=True).returncode == 0
    subprocess.run([str(PG_SCRIPT), "start"], check=True)
    env["SLUICE_DATABASE_URL"] = local_url
    return not was_running


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"sluice run: the {what} exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"sluice run: the {what} was not ready within {timeout:.0f} s ({url})")


def _write_state(state_dir: Path, env: dict[str, str], seed: Seed) -> dict[str, str]:
    state_dir.mkdir(parents=True, exist_ok=True)
    dp = f"http://127.0.0.1:{env['SLUICE_DATA_PLANE_PORT']}/v1"
    info = {
        "data_plane_url": dp,
        "control_plane_url": f"http://127.0.0.1:{env['SLUICE_CONTROL_PLANE_PORT']}",
        "admin_token": env["SLUICE_ADMIN_TOKEN"],
        "api_key": seed.api_key,
        "model": seed.model,
        "tenant_id": seed.tenant_id,
        "database_url": env["SLUICE_DATABASE_URL"],
    }
    for name in ("dev.env", "dev.json"):
        (state_dir / name).touch(mode=0o600)
    lines = [f"{k}={v}" for k, v in sorted(env.items()) if k.startswith("SLUICE_")]
    (state_dir / "dev.env").write_text("\n".join(lines) + "\n")
    (state_dir / "dev.json").write_text(json.dumps(info, indent=2) + "\n")
    info["state_dir"] = _shown(state_dir)
    info["python"] = _shown(sys.executable)  # has the openai and anthropic packages
    return info


def _banner(info: dict[str, str]) -> str:
    return f"""
Sluice is running.
  data plane     {info["data_plane_url"]}
  control plane  {info["control_plane_url"]}
  OpenAPI        {info["control_plane_url"]}/admin/schema/openapi.json
  console        {info["control_plane_url"]}/console (log in with the admin token)
  demo key       {info["api_key"]}
  admin token    {info["admin_token"]}
Details: {info["state_dir"]}/dev.json, settings: {info["state_dir"]}/dev.env

Try it:
  curl {info["data_plane_url"]}/chat/completions \\
    -H "Authorization: Bearer {info["api_key"]}" -H "Content-Type: application/json" \\
    -d '{{"model": "{info["model"]}", "messages": [{{"role": "user", "content": "Hello"}}]}}'

  {info["python"]} - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="{info["data_plane_url"]}", api_key="{info["api_key"]}")
reply = client.chat.completions.create(
    model="{info["model"]}", messages=[{{"role": "user", "content": "Hello"}}])
print(reply.choices[0].message.content)
PY

  {info["python"]} - <<'PY'
import anthropic
client = anthropic.Anthropic(base_url="{info["data_plane_url"].removesuffix("/v1")}",
                             api_key="{info["api_key"]}")
message = client.messages.create(model="{info["model"]}", max_tokens=256,
                                 messages=[{{"role": "user", "content": "Hello"}}])
print(message.content[0].text)
PY

Another data-plane replica:
  set -a; . {info["state_dir"]}/dev.env; set +a; .venv/bin/sluice data-plane --port 8090

Ctrl-C stops everything.
"""


def main(argv: list[str]) -> None:
    state_dir = _state_dir()
    env = _settings_env(state_dir)
    started_pg = _start_postgres(env)
    children: list[subprocess.Popen[bytes]] = []
    stop = running = False
    failure = ""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True
        if not running:  # still starting: abandon the start-up
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    child_env = {**os.environ, **env}
    sluice = [sys.executable, "-m", "shared.tools.cli"]
    try:
        migrate(env["SLUICE_DATABASE_URL"])
        fake_port = env["SLUICE_FAKE_PROVIDER_PORT"]
        specs = [
            ("fake provider", ["fake-provider", "--port", fake_port], f"{fake_port}/_fake/healthz"),
            ("control plane", ["control-plane"], f"{env['SLUICE_CONTROL_PLANE_PORT']}/readyz"),
            ("data plane", ["data-plane"], f"{env['SLUICE_DATA_PLANE_PORT']}/readyz"),
        ]
        for what, args, health in specs:
            proc = subprocess.Popen([*sluice, *args], env=child_env)
            children.append(proc)
            _wait_http(f"http://127.0.0.1:{health}", proc, what)
        previous_file = state_dir / "dev.json"
        previous = json.loads(previous_file.read_text()) if previous_file.exists() else {}
        seed = seed_demo(
            f"http://127.0.0.1:{env['SLUICE_CONTROL_PLANE_PORT']}",
            f"http://127.0.0.1:{env['SLUICE_DATA_PLANE_PORT']}/v1",
            env["SLUICE_ADMIN_TOKEN"],
            f"http://127.0.0.1:{fake_port}/v1",
            previous.get("api_key"),
        )
        print(_banner(_write_state(state_dir, env, seed)), flush=True)
        running = True
        while not stop:
            for proc in children:
                if proc.poll() is not None:
                    print(f"sluice run: a process exited ({proc.args!r})", file=sys.stderr)
                    stop = True
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, httpx.HTTPError) as exc:
        failure = f"sluice run: {exc}"
    finally:
        for proc in children:
            if proc.poll() is None:
                proc.terminate()
        for proc in children:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if started_pg:
            subprocess.run([str(PG_SCRIPT), "stop"], check=False)
        print("sluice run: stopped", file=sys.stderr)
    if failure:
        sys.exit(failure)
