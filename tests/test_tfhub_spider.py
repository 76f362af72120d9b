"""TensorFlow Hub: the tree and documentation-file callbacks on our fixture repository, and the
shared base of tree-discovered hubs (ptmscrape/github_tree.py): unsafe and truncated trees."""

import hashlib
import json
import logging
import pickle
import posixpath

import pytest
from hypothesis import given, strategies as st
from scrapy.http import Request
from scrapy.utils.request import request_from_dict

from ptmscrape.github_tree import safe_tree_path
from ptmscrape.items import RawModelItem
from spiders.tfhub import TfhubSpider, parse_doc
from tests.helpers import fixture_response, returns_in_reason, spider_maker, start_requests, text_response
from tests.replicas.tfhub import FIXTURES, MODELS

RAW = "https://raw.githubusercontent.com/tensorflow/tfhub.dev/master"
TREE = "https://api.github.com/repos/tensorflow/tfhub.dev/git/trees/master?recursive=1"
REPO = "https://github.com/tensorflow/tfhub.dev"


make_spider = spider_maker(TfhubSpider, {"PTM_TFHUB_RAW_URL": RAW, "PTM_TFHUB_TREE_URL": TREE,
                                          "PTM_TFHUB_REPO_URL": REPO})


def fixture_tree(extra=(), truncated=False):
    """The git-trees answer for the fixture repository (blobs and their folders)."""
    entries, folders = [], set()
    for path in sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*") if p.is_file()):
        data = (FIXTURES / path).read_bytes()
        entries.append({"path": path, "mode": "100644", "type": "blob", "size": len(data),
                        "sha": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()})
        parts = path.split("/")
        folders.update("/".join(parts[:n]) for n in range(1, len(parts)))
    entries += [{"path": f, "mode": "040000", "type": "tree", "sha": "0" * 40} for f in sorted(folders)]
    return {"sha": "f" * 40, "url": TREE, "tree": entries + list(extra), "truncated": truncated}


def tree_requests(spider, tree=None):
    body = json.dumps(tree if tree is not None else fixture_tree())
    return list(spider.parse_tree(text_response(TREE, body)))


def fetch(spider, request, body=None):
    path = request.cb_kwargs["path"]
    response = (fixture_response(FIXTURES / path, request.url, request) if body is None
                else text_response(request.url, body, request))
    return list(spider.parse_file(response, **request.cb_kwargs))


def stat(spider, key):
    return spider.crawler.stats.get_value(key)


def test_start_is_one_tree_request_and_it_can_be_saved_in_a_jobdir():
    spider = make_spider()
    (start,) = start_requests(spider)
    assert start.url == TREE and start.callback == spider.parse_tree
    assert start.headers[b"Accept"] == b"application/vnd.github+json"
    for request in [start, *tree_requests(spider)]:
        restored = request_from_dict(pickle.loads(pickle.dumps(request.to_dict(spider=spider))), spider=spider)
        assert (restored.url, restored.callback, restored.cb_kwargs) == (request.url, request.callback,
                                                                         request.cb_kwargs)


def test_limit_zero_makes_no_request():
    assert start_requests(make_spider(limit="0")) == []


def test_the_tree_gives_one_request_per_model_file_and_skips_publishers_collections_and_folders():
    spider = make_spider()
    requests = tree_requests(spider)
    assert [r.cb_kwargs["path"] for r in requests] == sorted(MODELS)
    assert all(r.url == f"{RAW}/{r.cb_kwargs['path']}" for r in requests)
    assert all(len(r.cb_kwargs["blob_sha"]) == 40 and r.cb_kwargs["tree_sha"] == "f" * 40 for r in requests)
    assert stat(spider, "ptm/pages/tree_model_files") == len(MODELS)
    assert stat(spider, "ptm/pages/unsafe_tree_paths") == 0


def test_limit_requests_that_many_model_files():
    assert [r.cb_kwargs["path"] for r in tree_requests(make_spider(limit="3"))] == sorted(MODELS)[:3]


def test_each_model_file_gives_one_item_keyed_by_the_handle_its_path_spells():
    spider = make_spider()
    items = [item for r in tree_requests(spider) for item in fetch(spider, r)]
    assert all(isinstance(i, RawModelItem) for i in items)
    assert {i.payload["path"]: i.model_id for i in items} == MODELS
    assert all(i.context["repo_url"] == REPO for i in items)


def test_albert_payload_keeps_metadata_comments_in_order_and_repeated_keys():
    page = parse_doc((FIXTURES / "assets/docs/google/models/albert_base/3.md").read_text(),
                     "assets/docs/google/models/albert_base/3.md")
    assert (page["kind"], page["handle"], page["heading_handle"], page["version"], page["publisher"]) == (
        "Module", "google/albert_base/3", "google/albert_base/3", "3", "google")
    assert page["metadata"]["dataset"] == ["wikipedia", "bookscorpus"]
    assert page["metadata"]["fine-tunable"] == ["true"] and page["metadata"]["format"] == ["hub"]
    assert page["description"].startswith('ALBERT is "A Lite" version of BERT')
    assert "https://arxiv.org/abs/1909.11942" in page["links"]
    assert page["markdown"].startswith("# Module google/albert_base/3\n")


def test_deployments_keep_their_own_path_handle_and_the_heading_they_name():
    lite = "assets/docs/google/models/aiy/vision/classifier/birds_V1/lite/1.md"
    page = parse_doc((FIXTURES / lite).read_text(), lite)
    # The Lite heading repeats the parent's handle: the path keeps the two records apart.
    assert (page["kind"], page["handle"], page["heading_handle"]) == (
        "Lite", "google/aiy/vision/classifier/birds_V1/lite/1", "google/aiy/vision/classifier/birds_V1/1")
    assert page["metadata"]["parent-model"] == ["google/aiy/vision/classifier/birds_V1/1"]
    tfjs = "assets/docs/google/models/imagenet/mobilenet_v2_100_224/classification/4/default/tfjs/1.md"
    assert parse_doc((FIXTURES / tfjs).read_text(), tfjs)["kind"] == "Tfjs"


@pytest.mark.parametrize("comment, metadata", [
    ("<!-- dataset: wikipedia -->", {"dataset": ["wikipedia"]}),
    ("<!--Format:hub-->", {"format": ["hub"]}),
    ("<!--  \tfine-tunable \t:  \t true \t -->", {"fine-tunable": ["true"]}),
    ("<!-- empty: -->", {"empty": []}),
    ("<!-- a: x --> <!-- a: x --> <!-- a: y -->", {"a": ["x", "y"]}),
    ("<!-- no colon -->", {}),
    ("<!-- a: not closed", {}),
])
def test_metadata_comments(comment, metadata):
    assert parse_doc(f"# Module g/m/1\n{comment}\n", "assets/docs/g/models/m/1.md")["metadata"] == metadata


def test_a_hostile_metadata_comment_is_read_in_linear_time():
    """'<!-- a: ' and 20,000 spaces kept the metadata comments' regular expression (a lazy value
    between optional spaces) busy for hours: the crawl's one thread stopped."""
    md = "# Module g/m/1\n<!-- a: " + " " * 20000 + "\n<!-- b: " + " " * 20000 + "v" + " " * 20000 + "-->\n"
    with returns_in_reason():
        page = parse_doc(md, "assets/docs/g/models/m/1.md")
    assert page["metadata"] == {"b": ["v"]}


@pytest.mark.parametrize("markdown, links", [
    ("[a](https://x.example/a) [b]( <https://x.example/b> ) [c](c.md \"title\")",
     ["https://x.example/a", "https://x.example/b", "c.md"]),
    ("[w](https://en.wikipedia.org/wiki/A_(b)) [e]()", ["https://en.wikipedia.org/wiki/A_(b)"]),
])
def test_links(markdown, links):
    assert parse_doc(f"# Module g/m/1\n{markdown}\n", "assets/docs/g/models/m/1.md")["links"] == links


def test_a_hostile_run_of_link_starts_is_read_in_linear_time():
    """A model file of "](" repeated (no closing parenthesis) had the links' regular expression scan
    to the end of the file from every one of them (quadratic): hours for a few megabytes."""
    with returns_in_reason():
        page = parse_doc("# Module g/m/1\n" + "](" * 500000 + "\n[a](b)\n", "assets/docs/g/models/m/1.md")
    assert page["links"] == ["b"]


def test_a_collection_or_publisher_file_under_models_is_not_a_model(caplog):
    spider = make_spider()
    path = "assets/docs/google/models/albert/1.md"
    request = Request(f"{RAW}/{path}", cb_kwargs={"path": path, "tree_sha": None, "blob_sha": None})
    with caplog.at_level(logging.INFO):
        assert fetch(spider, request, "# Collection google/albert/1\nALBERT models.\n") == []
    assert stat(spider, "ptm/pages/not_a_model") == 1 and "Not a model" in caplog.text


def test_a_file_without_heading_or_metadata_still_gives_an_item():
    page = parse_doc("Just text.\n\n```\n# Module evil/x/1\n```\n", "assets/docs/acme/models/thing/7.md")
    assert (page["kind"], page["handle"], page["version"], page["metadata"]) == (None, "acme/thing/7", "7", {})
    assert page["description"] == "Just text."


@pytest.mark.parametrize("path", ["../x", "a/../b", "a/./b", "a//b", "/abs", "a\\b", "a\x00b", ":(top)x",
                                  "a/\nb", "", None, 7, "x" * 1001])
def test_safe_tree_path_refuses_paths_that_could_leave_the_repository(path):
    assert safe_tree_path(path) is None


def test_safe_tree_path_keeps_plain_paths():
    assert safe_tree_path("assets/docs/a b/models/ü/1.md") == "assets/docs/a b/models/ü/1.md"


def test_unsafe_tree_paths_are_never_requested_and_are_counted(caplog):
    spider = make_spider()
    hostile = ["assets/docs/../../../etc/models/x/1.md", "assets/docs/google/models/../../../../x/1.md",
               "/assets/docs/google/models/x/1.md", "assets/docs/google/models/a\x00/1.md",
               "assets/docs/google/models/./x/1.md"]
    extra = [{"path": p, "type": "blob", "sha": "1" * 40, "size": 5} for p in hostile]
    extra += [{"path": {"x": 1}, "type": "blob"}, "junk", {"type": "blob"}]
    with caplog.at_level(logging.WARNING):
        requests = tree_requests(spider, fixture_tree(extra))
    assert [r.cb_kwargs["path"] for r in requests] == sorted(MODELS)
    assert stat(spider, "ptm/pages/unsafe_tree_paths") == len(hostile) + 2
    assert "Unsafe path in the tree" in caplog.text and "\x00" not in caplog.text


def test_a_truncated_tree_is_crawled_logged_and_counted_as_a_failed_page(caplog):
    spider = make_spider()
    with caplog.at_level(logging.ERROR):
        requests = tree_requests(spider, fixture_tree(truncated=True))
    assert len(requests) == len(MODELS)
    assert "Tree listing truncated by GitHub" in caplog.text
    assert stat(spider, "ptm/pages/tree_truncated") == 1
    # Counted as failed, so the crawl does not report the models past the cut as removed.
    assert stat(spider, "ptm/pages/failed") == 1 and stat(spider, "ptm/pages/failed/truncated tree") == 1


@pytest.mark.parametrize("body, kind", [(b"[]", "unexpected JSON"), (b'{"sha": "x"}', "unexpected JSON"),
                                        (b'{"tree": [', "malformed JSON")])
def test_a_malformed_tree_is_reported(body, kind, caplog):
    spider = make_spider()
    with caplog.at_level(logging.ERROR):
        assert list(spider.parse_tree(text_response(TREE, body))) == []
    assert stat(spider, f"ptm/pages/failed/{kind}") == 1
    assert f"Page failed (not retried): {TREE}" in caplog.text


def test_tree_and_blob_shas_are_kept_only_when_they_are_git_object_ids():
    tree = fixture_tree()
    tree["sha"] = "x" * 100_000
    for entry in tree["tree"]:
        entry["sha"] = ["not", "a", "sha"] if entry["path"].endswith("albert_base/1.md") else entry["sha"]
    requests = {r.cb_kwargs["path"]: r.cb_kwargs for r in tree_requests(make_spider(), tree)}
    assert all(kw["tree_sha"] is None for kw in requests.values())
    assert requests["assets/docs/google/models/albert_base/1.md"]["blob_sha"] is None
    assert len(requests["assets/docs/google/models/albert_base/2.md"]["blob_sha"]) == 40


@given(st.text(alphabet=st.sampled_from(list("ab./\\:%\x00\n -")), max_size=30))
def test_an_accepted_tree_path_never_leaves_the_repository(path):
    kept = safe_tree_path(path)
    if kept is not None:
        normal = posixpath.normpath(kept)
        assert normal == kept and ".." not in normal.split("/") and not normal.startswith(("/", ":"))
        assert "\\" not in normal and "\x00" not in normal


def test_model_files_a_publisher_keeps_outside_a_models_folder_are_crawled_too():
    """The repository's README lets a publisher lay out its files as it likes under its folder
    (``models/`` is a suggestion): ``captain-pool/esrgan-tf2/1`` is documented at
    ``assets/docs/captain-pool/esrgan-tf2/1.md``. Such models were never requested, without a word."""
    blob = {"mode": "100644", "type": "blob", "size": 10, "sha": "a" * 40}
    outside = ["assets/docs/acme/sharpen-gan/1.md", "assets/docs/acme/sharpen-gan/lite/1.md",
               "assets/docs/acme/sharpen-gan/2.md"]
    not_models = ["assets/docs/acme/acme.md", "assets/docs/acme/collections/gans/1.md", "assets/docs/acme/notes.md",
                  "assets/docs/acme/README.md", "assets/docs/1.md", "assets/docs/acme/1.md"]
    spider = make_spider()
    requests = tree_requests(spider, fixture_tree(extra=[dict(blob, path=p) for p in outside + not_models]))
    assert sorted(r.cb_kwargs["path"] for r in requests) == sorted([*MODELS, *outside])
    (request,) = [r for r in requests if r.cb_kwargs["path"] == outside[0]]
    (item,) = fetch(spider, request, "# Module acme/sharpen-gan/1\nSharpens.\n\n<!-- format: saved_model_2 -->\n")
    assert item.model_id == "acme/sharpen-gan/1"
    assert (item.payload["publisher"], item.payload["version"]) == ("acme", "1")
