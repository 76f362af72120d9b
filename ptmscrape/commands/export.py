"""``scrapy export``: the dataset tree (``PTM_DATA_DIR``) as an SQLite database or Parquet files.
The work is done in ``ptmscrape/export/`` (no Scrapy there); this only reads options."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

from scrapy.commands import ScrapyCommand

from ptmscrape.checks import BadInput, check_output_dir, check_output_file
from ptmscrape.commands import check_something_to_export, dataset_dir, fail
from ptmscrape.export.sqlite import ExportError, export_sqlite


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "-o dataset.sqlite | --format parquet -o DIR [--sqlite dataset.sqlite]"

    def short_desc(self) -> str:
        return "Export the dataset tree (PTM_DATA_DIR) to SQLite or Parquet"

    def long_desc(self) -> str:
        return ("Export every hub's latest records, every snapshot and the history files of the dataset tree "
                "(PTM_DATA_DIR) into one SQLite database (-o FILE; incremental: only what is new "
                "is read), or the same tables as Parquet files (--format parquet -o DIR, built "
                "through --sqlite FILE, updated first, or a temporary database).")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("-o", "--output", metavar="PATH", required=True,
                            help="SQLite file, or the folder of the Parquet files")
        parser.add_argument("--format", choices=("sqlite", "parquet"), default="sqlite")
        parser.add_argument("--sqlite", metavar="FILE",
                            help="with --format parquet: the SQLite database to update and convert")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None  # set by scrapy.cmdline before run()
        data_dir = dataset_dir("export", args, self.settings)
        try:
            if opts.format == "sqlite":
                if opts.sqlite:
                    raise BadInput("--sqlite goes with --format parquet (without it, -o is the SQLite database)")
                check_output_file(f"-o {opts.output}", opts.output, " (--format parquet for Parquet files)")
            else:
                check_output_dir(f"-o {opts.output}", Path(opts.output))
                if opts.sqlite:
                    check_output_file(f"--sqlite {opts.sqlite}", opts.sqlite)
        except BadInput as exc:
            fail("export", exc)
        check_something_to_export("export", data_dir)
        try:
            if opts.format == "sqlite":
                counts = export_sqlite(data_dir, opts.output)
                print(f"{opts.output}: {counts['files_read']} file(s) read, "
                      f"{counts['files_unchanged']} unchanged, {counts['lines']} lines, "
                      f"{counts['bad_lines'] + counts['skipped']} skipped")
                return
            from ptmscrape.export.parquet import export_parquet  # pyarrow only when asked for

            out = Path(opts.output)
            out.mkdir(parents=True, exist_ok=True)
            with _database(opts.sqlite, out) as db:
                export_sqlite(data_dir, db)
                rows = export_parquet(db, out)
            print(f"{out}: " + ", ".join(f"{t} {n}" for t, n in rows.items()))
        except (ExportError, OSError) as exc:
            print(f"export failed: {exc}", file=sys.stderr)
            self.exitcode = 1


@contextlib.contextmanager
def _database(given: str | None, out: Path):
    """The SQLite database to build from: the one given, or a temporary one in ``out``."""
    if given:
        yield Path(given)
        return
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        yield Path(tmp) / "dataset.sqlite"
