"""The checks table: matching at printed precision, explained mismatches, graded-run JSON."""

import html
import json

import numpy as np
import pytest

from course_utils import checks, report
from course_utils.paths import RUN_DIR_ENV


def test_integer_value_matches_exactly():
    row = checks.check_value("params_1_channel", 36_492_550, independent="counted afresh")
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
            checks.check_value("im2col_example_rows", 9)]
    table = checks.checks_table(rows)
    assert list(table.columns) == ["match", "quantity", "why not", "report", "computed", "source"]
    assert table["match"].tolist() == ["no", "yes"]


def test_save_checks_writes_json_only_in_graded_runs(tmp_path, monkeypatch):
    rows = [checks.check_value("im2col_example_rows", 9)]
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
    table = checks.checks_table([row, claim, checks.check_value("im2col_example_rows", 9)])
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
    rows = [checks.check_value("im2col_example_rows", 9),
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


LONG_REASON = ("deliberate: the quick preset uses lr=0.0001; our runs at the report's lr=0.01 "
               "diverged on the built-in dataset")


def test_table_shows_the_verdict_first_and_every_reason_whole_in_text_and_html():
    rows = [checks.check_value("lr", 0.0001, why=LONG_REASON),
            checks.check_value("im2col_example_rows", 9)]
    table = checks.show_checks("00_demo", rows)
    assert table.columns[0] == "match" and list(table.columns) == list(checks.CHECK_COLUMNS)
    text, page = repr(table), table._repr_html_()
    assert LONG_REASON in text and html.escape(LONG_REASON) in page and "..." not in text + page
    header, _, first, second = text.splitlines()
    assert header.startswith("match ") and first.startswith("no ") and second.startswith("yes ")
    assert page.index("<th ") == page.index("<th style=\"text-align: left; vertical-align: top\">"
                                           "match</th>")
    assert type(table.head(1)) is type(table) and LONG_REASON in repr(table.head(1))
    assert table.loc[0, "why not"] == LONG_REASON  # still indexed like a DataFrame


def test_matrix_row_is_summarised_in_its_cell_and_shown_side_by_side():
    printed = np.array(report.value("updated_fc_weights"))  # 2 x 4, 8 decimals
    ours = printed.copy()
    ours[1, 2] += 0.01
    table = checks.checks_table([checks.check_value("updated_fc_weights", ours, decimals=8,
                                                    why="one entry off")])
    assert table.loc[0, "report"] == checks.format_value(printed, 8)  # full value kept
    text, page = repr(table), table._repr_html_()
    assert "..." not in text + page
    first_row = text.splitlines()[2]
    assert "2x4 matrix (below)" in first_row and "2x4: largest |difference| 0.01" in first_row
    block = text.split("\n\n")[1].splitlines()
    assert block[0] == "updated_fc_weights (Part Two, Result)"
    assert block[1].split("|")[0].strip() == "report" and block[1].split("|")[1].strip() == "ours"
    left, right = (side.strip() for side in block[3].split("|"))
    assert left.startswith("[ 0.06325175") and right.endswith("<- differs")
    assert not block[2].endswith("<- differs")
    assert "<pre>updated_fc_weights (Part Two, Result)" in page


def test_ragged_print_beside_ours_and_equal_matrices_say_equal():
    ragged = checks.check_value("maxpool_delta_as_printed", np.zeros((4, 4)), why="garbled")
    equal = checks.check_value("sigmoid_output", np.array(report.value("sigmoid_output")),
                               decimals=2)
    text = repr(checks.checks_table([ragged, equal]))
    assert "ragged (4, 5, 4, 4 entries) matrix (below)" in text and "4x4: shapes differ" in text
    assert "2x2: equal" in text
    assert "  (0, 0.03649574, 0.04684955, 0, 0)  |  [0., 0., 0., 0.]  <- differs" in text


def test_large_matrix_is_printed_whole():
    assert "..." not in checks.format_value(np.zeros((40, 40)))
