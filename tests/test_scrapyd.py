"""Scrapyd: the project's egg, and a real ``scrapyd`` that deploys it with ``scrapyd-deploy``,
runs the Hugging Face spider against the local replica and produces the dataset tree."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import spiders
from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.scrapyd_egg import shadowed_egg
from tests.crawl import ROOT, project_crawler, read_jsonl
from tests.replicas.huggingface import HuggingFaceReplica, fixture_models, synthetic_models

BIN = Path(sys.executable).parent
NETGUARD = Path(__file__).parent / "netguard"
# What a deploy needs from the work tree; the rest (venv, git, data, tests) never goes in an egg.
NOT_DEPLOYED = shutil.ignore_patterns(".git", ".venv", ".splash-venv", "data", "demo-data", "build", "dist",
                                      "*.egg-info", "__pycache__", ".pytest_cache", "tests", "bench", "*.jsonl")


def project_copy(tmp_path: Path) -> Path:
    """The project as ``scrapyd-deploy`` sees it, in a copy: building an egg writes ``build/`` and
    ``*.egg-info`` next to setup.py, and the test adds a deploy target to ``scrapy.cfg``."""
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=NOT_DEPLOYED)
    return copy


def build_egg(tmp_path: Path) -> Path:
    egg = tmp_path / "ptmscrape.egg"
    subprocess.run([BIN / "scrapyd-deploy", "--build-egg", egg], cwd=project_copy(tmp_path), check=True,
                   capture_output=True, text=True)
    return egg


def clean_env(home: Path) -> dict:
    """An environment in which only the egg can provide the project (no work tree on PYTHONPATH, only
    the network guard's folder, which holds nothing but its sitecustomize)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SCRAPY_SETTINGS_MODULE", "SCRAPY_PROJECT")}
    env["PYTHONPATH"] = str(NETGUARD)
    env["HOME"] = str(home)  # no ~/.scrapyd.conf or ~/.scrapy.cfg of the machine
    return env


def test_scrapyd_and_its_jobs_are_held_by_the_network_guard(tmp_path):
    """The clean environment drops PYTHONPATH (the work tree on it would provide the project), not
    the network guard that it also carries (tests/netguard): Scrapyd and its crawls resolve no name
    but localhost either."""
    probe = ("import importlib.util as u, socket\nprint(u.find_spec('ptmscrape'))\n"
             "try:\n    socket.getaddrinfo('huggingface.co', 443)\nexcept OSError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=clean_env(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines()[0] == "None", out.stdout + out.stderr
    assert "tests resolve no name but localhost: 'huggingface.co'" in out.stdout, out.stdout + out.stderr


# -- spiders accept Scrapyd's arguments ---------------------------------------------------------

def test_every_spider_accepts_scrapyds_job_argument():
    for module_info in pkgutil.iter_modules(spiders.__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"spiders.{module_info.name}")
        (cls,) = [c for c in vars(module).values() if isinstance(c, type) and getattr(c, "name", None)
                  == module_info.name and c.__module__ == module.__name__]
        crawler = project_crawler(cls, {cls.base_url_setting: "https://hub.example"})
        spider = cls.from_crawler(crawler, _job="0f3c9a2e7d5b11ef", limit="3")
        assert spider.limit == 3 and spider._job == "0f3c9a2e7d5b11ef"


# -- the egg -------------------------------------------------------------------------------------

def test_egg_holds_every_project_module_and_the_schema(tmp_path):
    names = set(zipfile.ZipFile(build_egg(tmp_path)).namelist())
    project = tmp_path / "project"
    sources = {p.relative_to(project).as_posix() for top in ("ptmscrape", "spiders", "pipelines")
               for p in (project / top).rglob("*.py")}
    assert sources and sources <= names
    assert "ptmscrape/schema/ptm-record.schema.json" in names
    assert not any(n.startswith("tests/") for n in names)
    entry_points = zipfile.ZipFile(tmp_path / "ptmscrape.egg").read("EGG-INFO/entry_points.txt").decode()
    assert "settings = ptmscrape.settings" in entry_points


def test_egg_loads_the_schema_from_inside_the_zip_as_scrapyd_runs_it(tmp_path):
    egg = build_egg(tmp_path)
    code = (
        "import sys, json\n"
        "from scrapyd.runner import activate_egg\n"
        f"activate_egg({str(egg)!r})\n"
        "import ptmscrape, spiders.huggingface, pipelines.validate\n"
        "from ptmscrape.items import load_schema\n"
        "from ptmscrape.mappers import huggingface\n"
        "print(json.dumps([ptmscrape.__file__, spiders.huggingface.__file__, load_schema()['title']]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=clean_env(tmp_path), check=True,
                         capture_output=True, text=True).stdout
    package, spider, title = json.loads(out)
    assert package.startswith(str(egg) + os.sep) and spider.startswith(str(egg) + os.sep)
    assert title == json.loads((ROOT / "ptmscrape/schema/ptm-record.schema.json").read_text())["title"]


def test_shadowed_egg_names_the_copy_imported_instead_of_the_egg_on_sys_path(tmp_path):
    egg = tmp_path / "r1.egg"
    with zipfile.ZipFile(egg, "w") as z:
        z.writestr("ptmscrape/__init__.py", "")
    work_tree = tmp_path / "project" / "ptmscrape" / "__init__.py"
    assert shadowed_egg([str(tmp_path / "project"), str(egg)], str(work_tree)) == (str(work_tree.parent), str(egg))
    assert shadowed_egg([str(egg)], str(egg / "ptmscrape" / "__init__.py")) is None  # imported from the egg
    assert shadowed_egg([str(tmp_path / "project")], str(work_tree)) is None  # no egg: a plain scrapy crawl
    other = tmp_path / "other.egg"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("otherpkg/__init__.py", "")
    assert shadowed_egg([str(other)], str(work_tree)) is None  # an egg, not the project's


# -- a real Scrapyd -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scrapyd:
    """``scrapyd`` on 127.0.0.1 with its own config and directories under ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        root.mkdir(parents=True, exist_ok=True)
        self.dirs = {name: root / name for name in ("eggs", "logs", "items", "dbs")}
        (root / "scrapyd.conf").write_text(
            "[scrapyd]\n"
            f"bind_address = 127.0.0.1\nhttp_port = {self.port}\n"
            + "".join(f"{name}_dir = {path}\n" for name, path in self.dirs.items())
            + "poll_interval = 0.2\nmax_proc = 2\n"
        )
        self.log = root / "scrapyd.out"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Scrapyd:
        # cwd = root: Scrapyd reads ./scrapyd.conf, and its jobs cannot import the work tree.
        self.proc = subprocess.Popen([sys.executable, "-m", "scrapyd"], cwd=self.root, env=clean_env(self.root),
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        for _ in range(300):  # readiness wait, not a timing assertion
            if self.proc.poll() is not None:
                raise AssertionError(f"scrapyd exited: {self.log.read_text()[-3000:]}")
            try:
                if self.get("daemonstatus.json")["status"] == "ok":
                    return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise AssertionError(f"scrapyd did not answer: {self.log.read_text()[-3000:]}")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, endpoint: str, **params) -> dict:
        url = self.url + endpoint + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())

    def post(self, endpoint: str, fields: list[tuple[str, str]]) -> dict:
        data = urllib.parse.urlencode(fields).encode()
        with urllib.request.urlopen(self.url + endpoint, data=data, timeout=30) as response:
            return json.loads(response.read())

    def wait_finished(self, project: str, job: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(j["id"] == job for j in self.get("listjobs.json", project=project)["finished"]):
                return
            time.sleep(0.3)
        raise AssertionError(f"job {job} not finished; scrapyd log: {self.log.read_text()[-3000:]}")


def head(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_scrapyd_deploy_schedule_and_crawl_into_the_dataset_tree(tmp_path):
    cfg_before = (ROOT / "scrapy.cfg").read_text()
    project = project_copy(tmp_path)
    server_root = tmp_path / "scrapyd"
    data = tmp_path / "data"
    # The only ptmscrape Scrapyd's jobs can import is the deployed egg's.
    probe = "import importlib.util as u; print(u.find_spec('ptmscrape'))"
    server_root.mkdir()
    assert subprocess.run([sys.executable, "-c", probe], cwd=server_root, env=clean_env(server_root),
                          capture_output=True, text=True, check=True).stdout.strip() == "None"

    with HuggingFaceReplica(fixture_models() + synthetic_models(8), tmp_path / "hub-git") as hub, \
            Scrapyd(server_root) as scrapyd:
        # A deploy target for this test's Scrapyd, in the copy's scrapy.cfg (the repo's stays as is).
        with open(project / "scrapy.cfg", "a") as cfg:
            cfg.write(f"\n[deploy:pytest]\nurl = {scrapyd.url}\nproject = ptmscrape\n")
        deploy = subprocess.run([BIN / "scrapyd-deploy", "pytest", "--version", "r1"], cwd=project,
                                capture_output=True, text=True, env=clean_env(tmp_path))
        assert deploy.returncode == 0, deploy.stderr + deploy.stdout
        answer = json.loads(deploy.stdout)
        assert answer["status"] == "ok" and answer["project"] == "ptmscrape" and answer["version"] == "r1"
        assert "huggingface" in scrapyd.get("listspiders.json", project="ptmscrape")["spiders"]

        scheduled = scrapyd.post("schedule.json", [
            ("project", "ptmscrape"), ("spider", "huggingface"), ("limit", "10"),
            ("setting", f"PTM_HUGGINGFACE_URL={hub.url}"), ("setting", "PTM_HUGGINGFACE_PAGE_SIZE=4"),
            ("setting", f"PTM_DATA_DIR={data}"), ("setting", "PTM_GIT_ALLOW_PROTOCOL=https:http"),
            ("setting", f"PTM_STATS_FILE={tmp_path / 'stats.json'}"),
        ])
        assert scheduled["status"] == "ok", scheduled
        job = scheduled["jobid"]
        # A typo in an argument: refused before the crawl starts (README "Exit status").
        typo = scrapyd.post("schedule.json", [("project", "ptmscrape"), ("spider", "huggingface"),
                                              ("limt", "5"), ("setting", f"PTM_DATA_DIR={data}")])["jobid"]
        # A week-long crawl's log kept small: LOG_LEVEL=WARNING. Its verdict (exit status 0, an INFO
        # line) was filtered out with the rest, and the log the docs point to for it was empty.
        quiet = scrapyd.post("schedule.json", [
            ("project", "ptmscrape"), ("spider", "huggingface"), ("limit", "2"),
            ("setting", f"PTM_HUGGINGFACE_URL={hub.url}"), ("setting", "PTM_CLONE=0"),
            ("setting", f"PTM_DATA_DIR={tmp_path / 'quiet-data'}"), ("setting", "LOG_LEVEL=WARNING"),
        ])["jobid"]
        scrapyd.wait_finished("ptmscrape", job)
        scrapyd.wait_finished("ptmscrape", typo)
        scrapyd.wait_finished("ptmscrape", quiet)
        assert scrapyd.get("status.json", job=job, project="ptmscrape")["currstate"] == "finished"

    log = (scrapyd.dirs["logs"] / "ptmscrape" / "huggingface" / f"{job}.log").read_text()
    assert "Traceback" not in log and "] ERROR:" not in log, log[-5000:]
    assert "not from the egg" not in log  # its ptmscrape is the egg's (the probe above)
    assert log.rstrip().splitlines()[-1].endswith("Crawl verdict: exit status 0: every listed page was read")
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["finish_reason"] == "finished" and stats["ptm/verdict/exit_status"] == 0
    typo_log = (scrapyd.dirs["logs"] / "ptmscrape" / "huggingface" / f"{typo}.log").read_text()
    assert "unknown spider argument -a limt: huggingface accepts" in typo_log and "Traceback" not in typo_log
    assert typo_log.rstrip().splitlines()[-1].endswith("Crawl verdict: exit status 2: unknown spider argument "
                                                       "-a limt: huggingface accepts author, history, limit, "
                                                       "models, search, sort")
    assert "exitstatus=2" in scrapyd.log.read_text()  # Scrapyd's own log: "Process died: exitstatus=2"
    quiet_log = (scrapyd.dirs["logs"] / "ptmscrape" / "huggingface" / f"{quiet}.log").read_text()
    assert " INFO: " not in quiet_log  # the level asked for holds for every other line
    assert quiet_log.rstrip().splitlines()[-1].endswith(
        "WARNING: Crawl verdict: exit status 0: every listed page was read"), quiet_log[-3000:]

    # Items feed written by Scrapyd (items_dir), and the dataset tree written by the pipelines.
    items = read_jsonl(scrapyd.dirs["items"] / "ptmscrape" / "huggingface" / f"{job}.jl")
    assert len(items) == len({i["id"] for i in items}) == 10  # -a limit=10 reached the spider
    records = read_jsonl(data / "huggingface" / "huggingface.jsonl")
    assert sorted(r["id"] for r in records) == sorted(i["id"] for i in items)
    for item in items:
        model = hub.models[f"{item['ModelOwner']}/{item['ModelName']}"]
        assert item["CloneStatus"] == "cloned"
        assert head(data / item["RepoPath"]) == item["LatestGitCommitSHA"] == model["sha"]
        assert read_payload(DatasetTree(data), item["ModelHub"]["MetadataFilePath"])

    assert (ROOT / "scrapy.cfg").read_text() == cfg_before


def test_scrapyd_started_in_the_project_says_its_jobs_run_the_work_tree_not_the_deployed_egg(tmp_path):
    """``.venv/bin/scrapyd &`` in the project folder (where its ./scrapyd.conf is): a job's first
    sys.path entry is Scrapyd's working directory and the egg is appended after it, so the work
    tree's ptmscrape shadows the deployed one; the job's log says so instead of running other code
    than what was deployed without a word."""
    project = project_copy(tmp_path)
    with HuggingFaceReplica(fixture_models(), repos=False) as hub, Scrapyd(project) as scrapyd:
        with open(project / "scrapy.cfg", "a") as cfg:
            cfg.write(f"\n[deploy:pytest]\nurl = {scrapyd.url}\nproject = ptmscrape\n")
        deploy = subprocess.run([BIN / "scrapyd-deploy", "pytest", "--version", "r1"], cwd=project,
                                capture_output=True, text=True, env=clean_env(tmp_path))
        assert deploy.returncode == 0, deploy.stderr + deploy.stdout
        job = scrapyd.post("schedule.json", [
            ("project", "ptmscrape"), ("spider", "huggingface"), ("limit", "1"),
            ("setting", f"PTM_HUGGINGFACE_URL={hub.url}"), ("setting", "PTM_CLONE=0"),
            ("setting", f"PTM_DATA_DIR={tmp_path / 'data'}"),
        ])["jobid"]
        scrapyd.wait_finished("ptmscrape", job)

    log = (scrapyd.dirs["logs"] / "ptmscrape" / "huggingface" / f"{job}.log").read_text()
    eggs = list((scrapyd.dirs["eggs"] / "ptmscrape").glob("*.egg"))
    assert len(eggs) == 1
    (warning,) = [line for line in log.splitlines() if "not from the egg" in line]
    assert "WARNING" in warning and str(project / "ptmscrape") in warning and str(eggs[0]) in warning, warning
    assert log.rstrip().splitlines()[-1].endswith("Crawl verdict: exit status 0: every listed page was read")
