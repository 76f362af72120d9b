"""The tolerant pipe-table reader (ptmscrape/markdown_tables.py), on hand-made markdown."""

import pytest

from ptmscrape.markdown_tables import Link, is_delimiter_row, links, parse_tables, plain_text, split_row
from tests.helpers import returns_in_reason


@pytest.mark.parametrize("line, cells", [
    ("|a|b|c|", ["a", "b", "c"]),
    ("a | b | c", ["a", "b", "c"]),  # outer pipes are optional
    (" |Model  |    [44.7 MB](m/x.onnx)    |  1.2.1  |7", ["Model", "[44.7 MB](m/x.onnx)", "1.2.1", "7"]),
    ("|a|b||", ["a", "b", ""]),  # an empty last cell
    (r"|a \| b|c|", ["a | b", "c"]),  # an escaped pipe stays in its cell
    ("|\ta\t|\tb |", ["a", "b"]),
])
def test_split_row(line, cells):
    assert split_row(line) == cells


@pytest.mark.parametrize("line, expected", [
    ("|-|-|-|-|", True), ("|-------------|:--------------|:-:|--:|", True),
    ("| ------------- | ------------- |", True), ("---|---", True),
    ("|a|-|", False), ("| |", False), ("|", False), ("text", False),
])
def test_delimiter_rows(line, expected):
    assert is_delimiter_row(line) is expected


def test_tables_with_irregular_rows_headings_and_line_numbers():
    markdown = "\n".join([
        "# Title",                                     # 1
        "## Section <a name=\"sec\"/>",                # 2
        " |Model |Download |Opset version|Accuracy|",  # 3 leading space
        "|---|:---|:---|:---|",                        # 4
        "|A| [1 MB](m/a.onnx) | 7 | 70.1 |",           # 5
        "|B| [2 MB](m/b.onnx) | 9",                     # 6 no trailing pipe, fewer cells
        "> a note right after the table",              # 7 ends it
        "",
        "|x|y|",                                       # 9
        "|-|-|",
        "|1|2|3|",                                     # 11 one cell too many
        "|4|5||",                                      # 12 a stray empty cell: no problem
    ])
    first, second = parse_tables(markdown)
    assert first.header == ("Model", "Download", "Opset version", "Accuracy")
    assert first.line == 3 and first.row_lines == (5, 6) and first.heading == 'Section <a name="sec"/>'
    assert first.records() == [
        {"Model": "A", "Download": "[1 MB](m/a.onnx)", "Opset version": "7", "Accuracy": "70.1"},
        {"Model": "B", "Download": "[2 MB](m/b.onnx)", "Opset version": "9", "Accuracy": ""},
    ]
    assert first.problems == ()
    assert second.rows == (("1", "2"), ("4", "5"))
    assert second.problems == ("line 11: 3 cells, the header has 2 (dropped: 3)",)


def test_tables_in_comments_and_code_blocks_are_not_tables():
    markdown = "\n".join([
        "<!--|Model|Top-1|",
        "|-----|:----|",
        "|hidden|1|",
        "-->",
        "```sh",
        "|a|b|",
        "|-|-|",
        "```",
        "~~~",
        "| c | d |",
        "| --- | --- |",
        "~~~",
        "|shown|x|",
        "|-|-|",
        "|1|2|",
    ])
    (table,) = parse_tables(markdown)
    assert table.header == ("shown", "x") and table.line == 13  # comments keep line numbers


def test_a_table_ends_at_a_blank_line_a_heading_or_a_line_without_pipes():
    markdown = "|a|b|\n|-|-|\n|1|2|\n## Next\n|3|4|\n\n|c|d|\n|-|-|\n|5|6|\nplain text\n|7|8|"
    first, second = parse_tables(markdown)
    assert first.rows == (("1", "2"),) and second.rows == (("5", "6"),)


def test_repeated_header_names_get_distinct_keys():
    (table,) = parse_tables("|Model|Score|Score|\n|-|-|-|\n|m|1|2|")
    assert table.records() == [{"Model": "m", "Score": "1", "Score (2)": "2"}]


def test_links_and_plain_text_of_cells():
    cell = "<b>[ResNet](vision/classification/resnet)</b>"
    assert links(cell) == [Link("ResNet", "vision/classification/resnet")]
    assert plain_text(cell) == "ResNet"
    fcn = "<b>[FCN](vision/object_detection_segmentation/fcn)"  # no </b>
    assert links(fcn) == [Link("FCN", "vision/object_detection_segmentation/fcn")]
    badge = ("[![Hugging Face Spaces](https://img.shields.io/badge/x-Spaces-blue)]"
             "(https://huggingface.co/spaces/onnx/X)")
    assert links(badge) == [Link("Hugging Face Spaces", "https://huggingface.co/spaces/onnx/X")]
    assert links("![just an image](img.png)") == []
    assert links('[Paper]( https://example.org/a_(b).pdf "title")') == [
        Link("Paper", "https://example.org/a_(b).pdf")]
    assert plain_text("Top-5 error <br>[contribute](contribute.md)") == "Top-5 error contribute"
    assert plain_text("[mIOU](#metric) (%)") == "mIOU (%)"
    assert plain_text("  mAP of [0.024](https://x.example/s)  ") == "mAP of 0.024"
    assert links("Unpaired translation <br>[contribute](contribute.md)") == [Link("contribute", "contribute.md")]


@pytest.mark.parametrize("line, heading", [
    ("# Title", "Title"), ("## Title ##", "Title"), ("### Title ##  #", "Title ##"), ("#   Title  ", "Title"),
    ("# a #b", "a #b"), ("   # Indented", "Indented"), ("# ", ""), ("# ###", ""), ("#\tTab\t#", "Tab"),
    ("# C#", "C"), ("#\u00a0Nbsp\u00a0", "Nbsp"),
])
def test_heading_text(line, heading):
    tables = parse_tables(f"{line}\n\n| a |\n|---|\n| 1 |\n")
    assert tables[0].heading == heading


@pytest.mark.parametrize("line", ["####### seven", "#nospace", "    # four spaces"])
def test_not_a_heading(line):
    assert parse_tables(f"# Before\n{line}\n\n| a |\n|---|\n| 1 |\n")[0].heading == "Before"


def test_a_hostile_heading_line_is_read_in_linear_time():
    """A README line "# a", 20,000 spaces, "b" kept the heading's regular expression (whose lazy text
    was followed by optional spaces, #s and spaces) busy for hours: the crawl's one thread stopped."""
    md = "# a" + " " * 20000 + "b\n\n| x |\n|---|\n| 1 |\n" + "## c" + " \t" * 20000 + "#" * 20000 + "d\n"
    with returns_in_reason():
        tables = parse_tables(md)
    assert len(tables) == 1 and tables[0].heading == "a" + " " * 20000 + "b"


@pytest.mark.parametrize("cell, text", [
    ("a <b>bold</b> <br/> c", "a bold c"), ("x < y > z", "x z"), ("[a [b] c](t)", "a [b] c"),
    ("[![alt](img.png)](target)", "alt"),
])
def test_plain_text_of_cells_with_tags_and_nested_brackets(cell, text):
    assert plain_text(cell) == text


def test_hostile_cells_are_read_in_linear_time():
    """A cell of a million '<' (no '>'), or of '[x' repeated (no ']'), had the tag's or the link's
    regular expression scan to the end of the cell from each of them (quadratic: hours)."""
    with returns_in_reason():
        text = plain_text("<" * 1000000 + "<b>x</b>")
        found = links("![" + "[x" * 500000 + "[y](t)")
    assert text == "<" * 1000000 + "x" and found == [Link("y", "t")]
