"""The checks table: matching at printed precision, explained mismatches, graded-run JSON."""

import json

import numpy as np
import pytest

from course_utils import checks, report
from course_utils.paths import RUN_DIR_ENV


def test_integer_value_matches_exactly():
    row = checks.check_value("params_1_channel", 36_492_550)
    assert row.match and row.why == "" and row.report == "36,492,550"


def test_integer_off_by_one_is_a_mismatch_with_its_reason():
    row = checks.check_value("params_1_channel", 36_492_551, why="different model")
    assert not row.match and row.why == "different model"


def test_mismatch_without_reason_is_flagged_unexplained():
    row = checks.check_value("fps", 12.0)
    assert not row.match and row.why == checks.UNEXPLAINED


def test_matrix_matches_at_printed_decimals_only():
    printed = np.array(report.value("sigmoid_output"))
    assert checks.check_value("sigmoid_output", printed + 0.004, decimals=2).match
    assert not checks.check_value("sigmoid_output", printed + 0.006, decimals=2).match


def test_garbled_print_never_matches_a_real_matrix():
    row = checks.check_value("maxpool_delta_as_printed", np.zeros((4, 4)), why="garbled")
    assert not row.match
    assert "0.04684955, 0, 0" in row.report  # shown as printed, ragged


def test_shape_mismatch_is_not_a_match():
    assert not checks.values_match([1.0, 2.0], [1.0, 2.0, 3.0])


def test_relative_tolerance_for_measured_values():
    assert checks.values_match(59.21, 59.0, rtol=0.01)
    assert not checks.values_match(59.21, 50.0, rtol=0.01)


def test_missing_report_value_never_matches():
    row = checks.check_value("conv_delta_kernel", [[1.0]], why="not printed")
    assert not row.match and row.report == "(not printed)"


def test_claim_row_and_table_columns():
    rows = [checks.check_claim("claim", "Part One", "a", "b", False, "wrong"),
            checks.check_value("epochs", 10)]
    table = checks.checks_table(rows)
    assert list(table.columns) == ["quantity", "source", "report", "computed", "match", "why not"]
    assert table["match"].tolist() == ["no", "yes"]


def test_save_checks_writes_json_only_in_graded_runs(tmp_path, monkeypatch):
    rows = [checks.check_value("epochs", 10)]
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    assert checks.save_checks("00_demo", rows) is None
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    path = checks.save_checks("00_demo", rows)
    data = json.loads(path.read_text())
    assert data["notebook"] == "00_demo" and data["checks"][0]["match"] is True


def test_unknown_report_key_lists_known_keys():
    with pytest.raises(KeyError, match="known keys"):
        report.value("no_such_key")


def test_report_is_internally_consistent_where_it_should_be():
    # The 1- vs 3-channel difference must be conv1's extra weights: 2 x 128 x 5 x 5.
    assert report.value("params_3_channel") - report.value("params_1_channel") == 2 * 128 * 5 * 5
    assert report.value("params_total_q4") == report.value("params_1_channel")


def test_match_by_construction_is_labelled_with_its_reason_and_kept_in_json(tmp_path,
                                                                           monkeypatch):
    row = checks.check_value("image_width", 800, by_construction="the generator draws 800")
    assert row.match and row.by_construction == "the generator draws 800"
    assert row.why == "by construction: the generator draws 800"  # seen by match/why readers
    claim = checks.check_claim("c", "Part One", 1, 1, True, by_construction="solved from it")
    table = checks.checks_table([row, claim, checks.check_value("epochs", 10)])
    assert table["match"].tolist() == [checks.BY_CONSTRUCTION, checks.BY_CONSTRUCTION, "yes"]
    assert table["why not"].tolist() == ["the generator draws 800", "solved from it", ""]
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    saved = json.loads(checks.save_checks("00_demo", [row]).read_text())["checks"][0]
    assert saved["match"] is True and saved["by_construction"] == "the generator draws 800"


def test_by_construction_never_hides_a_difference():
    row = checks.check_value("image_width", 640, why="another dataset",
                             by_construction="the generator draws 800")
    assert not row.match and row.by_construction == "" and row.why == "another dataset"
    assert checks.checks_table([row])["match"].tolist() == ["no"]


def test_row_json_round_trip_and_reading_back(tmp_path, monkeypatch):
    rows = [checks.check_value("epochs", 10),
            checks.check_value("fps", 12.0),
            checks.check_value("image_width", 800, by_construction="the generator draws 800")]
    assert [r.verdict for r in rows] == [checks.MATCH, checks.DIFFER, checks.BY_CONSTRUCTION]
    assert [checks.Check.from_json(r.to_json()) for r in rows] == rows
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    checks.save_checks("00_demo", rows)
    assert checks.read_checks(tmp_path / checks.RESULTS_DIR, "00_demo") == rows
    assert checks.read_checks(tmp_path / checks.RESULTS_DIR, "01_none") == []
    assert list(rows[2].display_row()) == list(checks.CHECK_COLUMNS)


def test_malformed_row_is_an_error_naming_the_file(tmp_path):
    checks.checks_path(tmp_path, "00_demo").write_text('{"checks": [{"quantity": "x"}]}')
    with pytest.raises(ValueError, match="00_demo.checks.json: a check row lacks source"):
        checks.read_checks(tmp_path, "00_demo")
