"""``find_project_root``: the course folder wherever the package is installed (issue 15)."""

from __future__ import annotations

from pathlib import Path

from course_utils.paths import COURSE_ROOT_ENV, PROJECT_ROOT, find_project_root


def test_the_repository_is_the_root() -> None:
    assert (PROJECT_ROOT / "notebooks").is_dir() and (PROJECT_ROOT / "course_utils").is_dir()


def test_a_package_beside_notebooks_wins(tmp_path: Path) -> None:
    (tmp_path / "course" / "notebooks").mkdir(parents=True)
    found = find_project_root(tmp_path / "course", {COURSE_ROOT_ENV: str(tmp_path)}, tmp_path)
    assert found == tmp_path / "course"


def test_an_installed_package_uses_the_variable_then_the_working_folder(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    course = tmp_path / "course"
    (course / "notebooks" / "07_x").mkdir(parents=True)
    site.mkdir()
    assert find_project_root(site, {COURSE_ROOT_ENV: str(course)}, tmp_path) == course.resolve()
    # a notebook runs from notebooks/<NN_name>/: its course folder is two levels up
    assert find_project_root(site, {}, course / "notebooks" / "07_x") == course.resolve()
    assert find_project_root(site, {}, tmp_path) == tmp_path.resolve()
