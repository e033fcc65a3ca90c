"""`sluice run` (what `make run` starts): everything up, demo data seeded, the printed
snippets work as pasted, `.sluice/dev.env` starts another replica, Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.processes import Server, free_port

pytestmark = pytest.mark.timeout(120)

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "sluice.yaml"


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def _curl_as_httpx(snippet: str) -> httpx.Response:
    """Send the request the printed curl command describes."""
    words = shlex.split(snippet.replace("\\\n", " "))
    assert words[0] == "curl"
    url = next(w for w in words[1:] if w.startswith("http"))
    headers = dict(words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "-H")
    body = words[words.index("-d") + 1]
    return httpx.post(url, headers=headers, content=body, timeout=10)


def test_sluice_run(database_url: str, tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("CONTROL_PLANE", "DATA_PLANE", "FAKE_PROVIDER")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env |= {f"SLUICE_{name}_PORT": str(port) for name, port in ports.items()}
    env |= {"SLUICE_DATABASE_URL": database_url, "SLUICE_STATE_DIR": str(tmp_path / "state")}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.tools.cli", "run"], env=env, stdout=out, stderr=out
        )
    extra: Server | None = None
    try:
        _wait_for(tmp_path / "state" / "dev.json", proc, log)
        time.sleep(0.5)  # the banner follows the files
        info = json.loads((tmp_path / "state" / "dev.json").read_text())
        assert info["data_plane_url"] == f"http://127.0.0.1:{ports['DATA_PLANE']}/v1"
        assert info["control_plane_url"] == f"http://127.0.0.1:{ports['CONTROL_PLANE']}"
        assert info["model"] == "demo-model"
        assert info["database_url"] == database_url
        assert {"admin_token", "api_key", "tenant_id"} <= set(info)

        with openai.OpenAI(base_url=info["data_plane_url"], api_key=info["api_key"]) as client:
            reply = client.chat.completions.create(
                model=info["model"], messages=[{"role": "user", "content": "hello"}]
            )
        assert reply.choices[0].message.content

        printed = log.read_text()
        curl = re.search(r"^  (curl .*?)\n\n", printed, re.S | re.M)
        assert curl, printed
        answer = _curl_as_httpx(curl.group(1))
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"]
        pythons = re.findall(r"^  (\S+) - <<'PY'\n(.*?)\nPY\n", printed, re.S | re.M)
        assert len(pythons) == 2, printed  # the openai SDK's and the anthropic SDK's
        for python, snippet in pythons:
            ran = subprocess.run(
                [python, "-c", snippet], capture_output=True, text=True, timeout=30
            )
            assert ran.returncode == 0, ran.stderr
            assert ran.stdout.strip()

        admin = httpx.get(
            info["control_plane_url"] + "/admin/v1/tenants",
            headers={"authorization": f"Bearer {info['admin_token']}"},
        )
        assert [t["id"] for t in admin.json()] == [info["tenant_id"]]

        # the README's sluice.yaml, applied to what `make run` set up (its fake provider
        # on this test's port rather than 9090), twice: the second changes nothing
        example = EXAMPLE.read_text().replace(
            "127.0.0.1:9090", f"127.0.0.1:{ports['FAKE_PROVIDER']}"
        )
        (tmp_path / "sluice.yaml").write_text(example)
        cli_env = env | {
            "SLUICE_URL": info["control_plane_url"],
            "SLUICE_TOKEN": info["admin_token"],
        }
        apply = [
            sys.executable,
            "-m",
            "control_plane.cli",
            "apply",
            "-f",
            str(tmp_path / "sluice.yaml"),
        ]
        first = subprocess.run(apply, env=cli_env, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert "demo-model" in first.stdout
        again = subprocess.run(apply, env=cli_env, capture_output=True, text=True, timeout=60)
        assert again.stdout.strip() == "no changes", again.stdout + again.stderr
        with openai.OpenAI(base_url=info["data_plane_url"], api_key=info["api_key"]) as client:
            client.chat.completions.create(
                model=info["model"], messages=[{"role": "user", "content": "after apply"}]
            )

        # another replica from dev.env alone
        saved = dict(
            line.split("=", 1) for line in (tmp_path / "state" / "dev.env").read_text().splitlines()
        )
        assert saved["SLUICE_DATABASE_URL"] == database_url
        port = free_port()
        replica_env = {k: v for k, v in saved.items() if k != "SLUICE_DATA_PLANE_PORT"}
        extra = Server("devrun-replica", "data_plane", ["--port", str(port)], replica_env, tmp_path)
        extra.wait_http(f"http://127.0.0.1:{port}/readyz")
        url = f"http://127.0.0.1:{port}/v1"
        with openai.OpenAI(base_url=url, api_key=info["api_key"]) as replica:
            assert [m.id for m in replica.models.list().data] == ["demo-model"]
    finally:
        if extra is not None:
            extra.stop()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0, log.read_text()
    for port in ports.values():
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
