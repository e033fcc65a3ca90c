"""The README's SDK snippets work as pasted: each runs, as a script of its own,
from a directory whose `.sluice/dev.json` is what `make run` writes, against a
running data plane."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake import expected_content
from tests.support.kinds import Kinds, start_kinds_fake
from tests.support.routing import new_key
from tests.support.stack import Stack

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = [
    block
    for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    if ".sluice/dev.json" in block
]


@pytest.fixture(scope="module")
async def checkout(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    served = Kinds(stack, start_kinds_fake(stack), await new_key(stack))
    await served.create()
    where = tmp_path_factory.mktemp("checkout")
    (where / ".sluice").mkdir()
    dev = {
        "data_plane_url": served.url + "/v1",
        "api_key": served.key,
        "model": served.model("openai"),
    }
    (where / ".sluice" / "dev.json").write_text(json.dumps(dev))
    return where


def test_there_are_snippets_for_both_sdks() -> None:
    assert any("from openai import OpenAI" in s for s in SNIPPETS)
    assert any("import anthropic" in s for s in SNIPPETS)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=["openai", "anthropic"][: len(SNIPPETS)])
def test_a_snippet_runs_as_pasted(checkout: Path, snippet: str) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", snippet],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    # the whole answer, then the same streamed
    assert ran.stdout.splitlines() == [expected_content(20)] * 2
