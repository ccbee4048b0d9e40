"""PageRank and the repo map: ranking toward the current file, signatures, budgets."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm_lsp.context.index import SymbolIndex
from swarm_lsp.context.packing import estimate_tokens
from swarm_lsp.context.repomap import RepoMap, name_weight, pagerank


def test_pagerank_sums_to_one_and_follows_links() -> None:
    # 0 → 1 → 2, 3 → 2; 2 is dangling.
    edges = {0: {1: 1.0}, 1: {2: 1.0}, 3: {2: 1.0}}
    ranks = pagerank(edges, 4)
    assert sum(ranks) == pytest.approx(1.0)
    assert ranks[2] == max(ranks)
    assert ranks[1] > ranks[0]


def test_pagerank_personalisation_pulls_rank() -> None:
    edges = {0: {1: 1.0}, 2: {3: 1.0}}
    toward_0 = pagerank(edges, 4, {0: 1.0})
    toward_2 = pagerank(edges, 4, {2: 1.0})
    assert toward_0[1] > toward_0[3]
    assert toward_2[3] > toward_2[1]


@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.dictionaries(
                st.integers(0, n - 1),
                st.dictionaries(st.integers(0, n - 1), st.floats(0.01, 10.0), max_size=n),
                max_size=n,
            ),
        )
    )
)
def test_pagerank_is_a_distribution(case: tuple[int, dict[int, dict[int, float]]]) -> None:
    size, edges = case
    ranks = pagerank(edges, size)
    assert len(ranks) == size
    assert sum(ranks) == pytest.approx(1.0, abs=1e-6)
    assert all(r >= 0 for r in ranks)


def test_name_weight() -> None:
    assert name_weight("area_of_circle", 1) > name_weight("area", 1)
    assert name_weight("_private", 1) < name_weight("public", 1)
    assert name_weight("get", 10) < name_weight("get", 1)


def build(root: Path, files: dict[str, str], cache: Path) -> SymbolIndex:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    index = SymbolIndex(root, cache, 1_000_000)
    index.build()
    return index


@pytest.fixture
def project(tmp_path: Path) -> SymbolIndex:
    return build(
        tmp_path / "ws",
        {
            "core.py": "def shared_helper(x):\n    return x\n\nclass Engine:\n"
            "    def start(self):\n        pass\n",
            "billing.py": "def invoice_total(items):\n    return sum(items)\n",
            "app.py": "from core import shared_helper, Engine\n\ndef run():\n"
            "    Engine().start()\n    return shared_helper(1)\n",
            "reports.py": "from billing import invoice_total\n\ndef monthly():\n"
            "    return invoice_total([1])\n",
        },
        tmp_path / "cache",
    )


def test_ranking_follows_the_current_file(project: SymbolIndex) -> None:
    repomap = RepoMap(project)
    from_app = [t.name for t in repomap.ranked_definitions(["app.py"], exclude_files=["app.py"])]
    assert from_app.index("shared_helper") < from_app.index("invoice_total")
    assert "run" not in from_app  # the current file is excluded
    from_reports = [t.name for t in repomap.ranked_definitions(["reports.py"])]
    assert from_reports.index("invoice_total") < from_reports.index("shared_helper")
    files = repomap.rank_files(["reports.py"])
    assert files["billing.py"] > files["core.py"]


def test_focus_names_pull_their_definitions_up(project: SymbolIndex) -> None:
    repomap = RepoMap(project)
    ranked = [t.name for t in repomap.ranked_definitions(focus_names=["invoice_total"])]
    assert ranked[0] == "invoice_total"


def test_render_signatures_with_parents(project: SymbolIndex) -> None:
    repomap = RepoMap(project)
    start = project.definitions("start")[0]
    text = repomap.render([start])
    assert text == "core.py:\n  class Engine:\n    def start(self):\n"


def test_fit_respects_the_budget(project: SymbolIndex) -> None:
    repomap = RepoMap(project)
    full, all_tags = repomap.fit(10_000, ["app.py"])
    assert "billing.py:" in full and "core.py:" in full
    assert len(all_tags) == sum(len(e.definitions) for e in project.entries())
    small, some = repomap.fit(12, ["app.py"])
    assert estimate_tokens(small) <= 12 and 0 < len(some) < len(all_tags)
    assert small.splitlines()[0].endswith(":")  # starts with a file header
    assert repomap.fit(0, ["app.py"]) == ("", [])


def test_graph_is_rebuilt_after_index_changes(project: SymbolIndex, tmp_path: Path) -> None:
    repomap = RepoMap(project)
    before = repomap.graph()
    assert repomap.graph() is before  # cached
    path = tmp_path / "ws" / "extra.py"
    path.write_text("def extra_thing():\n    invoice_total([])\n")
    project.update_file(path)
    after = repomap.graph()
    assert after is not before and "extra.py" in after.files
