"""Where a failing test's bug probably is (plain module, no runner)."""

from __future__ import annotations

from pathlib import Path

from swarm_lsp.workers.testing.suspects import is_test_path, suspect

ASSERTION = """def test_perimeter():
>       assert Rectangle(2, 3).perimeter() == 10
E       assert 5 == 10
E        +  where 5 = perimeter()
E        +    where perimeter = Rectangle(width=2, height=3).perimeter

tests/test_geometry.py:14: AssertionError"""


def test_test_paths() -> None:
    assert is_test_path("tests/test_geometry.py")
    assert is_test_path("pkg/test_x.py") and is_test_path("x_test.go")
    assert is_test_path("web/src/app.spec.ts") and is_test_path("src/__tests__/a.js")
    assert not is_test_path("shapes/geometry.py") and not is_test_path("contest.py")


def test_the_deepest_frame_in_code_under_test_wins(tmp_path: Path) -> None:
    frames = [
        ("tests/test_geometry.py", 14, "test_perimeter"),
        ("shapes/geometry.py", 9, "area_of_circle"),
        ("shapes/util.py", 3, "check"),
    ]
    assert suspect("", frames, tmp_path) == ("shapes/util.py", 3, "check", True)


def test_a_plain_assertion_points_at_the_function_it_checks(tmp_path: Path) -> None:
    (tmp_path / "shapes").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_geometry.py").write_text("def perimeter():\n    pass\n")
    (tmp_path / "shapes/geometry.py").write_text(
        "class Rectangle:\n    def area(self):\n        pass\n\n    def perimeter(self):\n"
    )
    frames = [("tests/test_geometry.py", 14, "test_perimeter")]
    assert suspect(ASSERTION, frames, tmp_path) == ("shapes/geometry.py", 5, "perimeter()", False)
    assert suspect("E   assert 1 == 2", frames, tmp_path) is None
