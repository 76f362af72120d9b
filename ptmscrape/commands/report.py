"""``scrapy report``: one self-contained HTML page with plots summarising the dataset tree
(``PTM_DATA_DIR``). The work is done in ``ptmscrape/export/report.py``; this only reads options."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from scrapy.commands import ScrapyCommand

from ptmscrape.checks import BadInput, check_output_file
from ptmscrape.commands import check_something_to_export, dataset_dir, fail
from ptmscrape.export.sqlite import ExportError, export_sqlite


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "-o report.html [--sqlite dataset.sqlite]"

    def short_desc(self) -> str:
        return "Write an HTML report with plots of the dataset tree (PTM_DATA_DIR)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("-o", "--output", metavar="FILE", required=True, help="the HTML page")
        parser.add_argument("--sqlite", metavar="FILE",
                            help="the SQLite database to update and summarise; without it, a temporary one")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None  # set by scrapy.cmdline before run()
        data_dir = dataset_dir("report", args, self.settings)
        try:
            check_output_file(f"-o {opts.output}", opts.output)
            if opts.sqlite:
                check_output_file(f"--sqlite {opts.sqlite}", opts.sqlite)
            check_not_a_database(opts.output, opts.sqlite)
        except BadInput as exc:
            fail("report", exc)
        check_something_to_export("report", data_dir)
        from ptmscrape.export.report import write_report  # matplotlib only when asked for

        out = Path(opts.output)
        try:
            if opts.sqlite:
                export_sqlite(data_dir, opts.sqlite)
                write_report(opts.sqlite, out)
            else:
                with tempfile.TemporaryDirectory(dir=out.resolve().parent, prefix=".report-") as tmp:
                    db = Path(tmp) / "dataset.sqlite"
                    export_sqlite(data_dir, db)
                    write_report(db, out)
        except (ExportError, OSError) as exc:
            print(f"report failed: {exc}", file=sys.stderr)
            self.exitcode = 1
            return
        print(f"{out}: report written")


SQLITE_HEADER = b"SQLite format 3\x00"


def check_not_a_database(output: str, sqlite: str | None) -> None:
    """The page never replaces a database: ``-o`` an SQLite file (``scrapy report -o
    dataset.sqlite``, the export's command with its verb changed), or the file ``--sqlite`` names."""
    out = Path(output)
    try:
        with open(out, "rb") as f:
            is_database = f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        is_database = False  # no such file (yet), or one the report cannot read: not a database
    if is_database:
        raise BadInput(f"-o {output} is an SQLite database: give the report another file "
                       "(--sqlite names the database to summarise)")
    if sqlite and out.resolve() == Path(sqlite).resolve():
        raise BadInput(f"-o {output} and --sqlite {sqlite} are one file: give the report another")
