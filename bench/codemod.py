"""Codemod wall time over a generated 1,000-file tree: `logkit codemod apply --diff` against
`python -m libcst.tool codemod` running the same transform, in the same run.

The tree has about 100k lines; about 2% of its files construct legacy envelopes (sites routed
through run(), a declared sink's call, a class with an injected hook), beside the legacy
logger implementation and the repository's [tool.logkit.codemod] table. Both tools print a
unified diff and write nothing; both use one worker per CPU.

Run: .venv/bin/python bench/codemod.py [FILES]
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import line

FILES = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
LEGACY_SHARE = 0.02
BIN = Path(sys.executable).parent

PLAIN_FUNCTION = '''

def {name}(items: list[dict[str, Any]], limit: int = {n}) -> dict[str, Any]:
    """Summarise {name} over the first items."""
    totals: dict[str, Any] = {{"count": 0, "keys": set()}}
    for index, item in enumerate(items):
        if index >= limit:
            break
        totals["count"] += 1
        totals["keys"].update(item)
        if item.get("kind") == "{name}":
            totals.setdefault("matches", []).append(index)
    return totals
'''

PLAIN_CLASS = '''

class {name}:
    """A small service object, as the engines have by the hundred."""

    def __init__(self, store: Any, prefix: str = "{name}") -> None:
        self.store = store
        self.prefix = prefix

    def key(self, item_id: str) -> str:
        return f"{{self.prefix}}:{{item_id}}"

    def load(self, item_id: str) -> Any:
        return self.store.get(self.key(item_id))
'''

LEGACY_FUNCTIONS = """

def record_{name}(ctx: Any, agent_id: str, question: str) -> None:
    event = DatasetEvent(
        tenantId=ctx.tenant_id,
        env=ctx.env,
        surface="chat",
        agentId=agent_id,
        input={{"kind": "{name}"}},
        output={{}},
    )
    log_dataset_event(event)


def keep_{name}(ctx: Any, agent_id: str, created: list[Any]) -> None:
    evt = DatasetEvent(
        tenantId=ctx.tenant_id,
        env=ctx.env,
        surface="chat",
        agentId=agent_id,
        input={{"question": ctx.question}},
        output={{}},
    )
    log_dataset_event(evt)
    created.append(evt)


def export_{name}(ctx: Any, agent_id: str) -> None:
    publish_export(
        DatasetEvent(
            tenantId=ctx.tenant_id,
            env=ctx.env,
            surface="export",
            agentId=agent_id,
            input={{"kind": "{name}"}},
            output={{}},
        )
    )


class Embedder{name}:
    def __init__(
        self, tenant_id: str, env: str, model_call_logger: ModelCallLogger | None = None
    ) -> None:
        self.tenant_id = tenant_id
        self.env = env
        self._model_call_logger = model_call_logger

    def _log_model_call(self, call: ModelCallLog) -> None:
        if self._model_call_logger is not None:
            self._model_call_logger(call)

    def embed(self, doc: Any) -> None:
        self._log_model_call(
            ModelCallLog(
                tenant_id=self.tenant_id,
                env=self.env,
                model_id="text-embedding-3-small",
                purpose="embed_upsert",
                prompt=PromptSnapshot(text=doc.text),
                output_dimensions=3,
            )
        )
"""

HEADER = '''"""Generated module {index} of the benchmark tree."""

from __future__ import annotations

from typing import Any
'''
LEGACY_IMPORTS = """
from engines.analytics.export import publish_export
from engines.dataset.events.schemas import DatasetEvent
from engines.logging.events.engine import run as log_dataset_event
from engines.nexus.logging import ModelCallLog, ModelCallLogger, PromptSnapshot
"""
# The legacy modules the sites name (LEGACY.md), and the repository's codemod table.
SUPPORT = {
    "pyproject.toml": (
        '[tool.logkit.codemod]\nsinks = ["engines.analytics.export.publish_export"]\n'
    ),
    "engines/dataset/events/schemas.py": "class DatasetEvent:\n    pass\n",
    "engines/nexus/logging.py": "class ModelCallLog:\n    pass\n\n\nModelCallLogger = object\n",
    "engines/nexus/backends.py": "def get_backend():\n    return None\n",
    "engines/analytics/export.py": "def publish_export(event):\n    pass\n",
    "engines/logging/events/engine.py": (
        "from engines.nexus.backends import get_backend\n\n\n"
        "def run(event):\n"
        "    try:\n"
        "        get_backend().write_event(event)\n"
        "    except Exception as exc:\n"
        '        return {"status": "error", "error": str(exc)}\n'
        '    return {"status": "accepted"}\n'
    ),
}


def generate(root: Path, files: int) -> tuple[int, int]:
    """Write the tree; returns (lines, files with legacy sites)."""
    for name, text in SUPPORT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    rng = random.Random(9)
    legacy = set(rng.sample(range(files), max(1, round(files * LEGACY_SHARE))))
    lines = 0
    for index in range(files):
        package = root / "engines" / f"pkg{index // 50:02d}"
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").touch()
        parts = [HEADER.format(index=index)]
        if index in legacy:
            parts.append(LEGACY_IMPORTS)
            parts.append(LEGACY_FUNCTIONS.format(name=f"m{index}"))
        while sum(p.count("\n") for p in parts) < 95:
            template = PLAIN_CLASS if rng.random() < 0.3 else PLAIN_FUNCTION
            parts.append(template.format(name=f"f{index}_{len(parts)}", n=rng.randint(5, 50)))
        text = "".join(parts)
        (package / f"mod{index:04d}.py").write_text(text)
        lines += text.count("\n")
    return lines, len(legacy)


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # libcst's tool exits 1 when it printed warnings
        raise SystemExit(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, done.stdout


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        lines, legacy = generate(root, FILES)
        # libcst's CLI reads its settings from here; the codemod is imported as a module.
        (root / ".libcst.codemod.yaml").write_text(
            "generated_code_marker: '@generated'\nformatter: ['true']\n"
            "blacklist_patterns: []\nmodules: ['logkit.codemods']\nrepo_root: '.'\n"
        )
        jobs = str(os.cpu_count() or 1)
        ours, our_diff = timed([str(BIN / "logkit"), "codemod", "apply", "--diff", "engines"], root)
        theirs, their_diff = timed(
            [
                sys.executable,
                "-m",
                "libcst.tool",
                "codemod",
                "--no-format",
                "--hide-progress",
                f"--jobs={jobs}",  # "-j N" and "-u N" are misread by the tool's first parser
                "--unified-diff=3",
                "transform.MigrateLegacyCallSites",
                "engines",
            ],
            root,
        )
    changed = sum(1 for text in our_diff.splitlines() if text.startswith("+++ "))
    theirs_changed = sum(1 for text in their_diff.splitlines() if text.startswith("+++ "))
    note = f"{FILES:,} files, {lines:,} lines, {legacy} with legacy sites, {jobs} jobs"
    line("logkit codemod apply --diff", ours, "s", f"{note}; {changed} files in the diff")
    line(
        "python -m libcst.tool codemod, same transform",
        theirs,
        "s",
        f"{theirs_changed} files in its diff; {theirs / ours:.1f}x logkit's wall time",
    )


if __name__ == "__main__":
    main()
