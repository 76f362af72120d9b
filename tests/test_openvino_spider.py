"""OpenVINO Open Model Zoo: the tree and model.yml callbacks on our fixture repository, and the
safe YAML loader."""

import json
import logging

import pytest
import yaml
from scrapy.http import Request

from ptmscrape.items import RawModelItem
from spiders.openvino import OpenvinoSpider, load_yaml
from tests.helpers import fixture_response, spider_maker, start_requests, text_response
from tests.replicas.openvino import FIXTURES, MODELS

RAW = "https://raw.githubusercontent.com/openvinotoolkit/open_model_zoo/master"
TREE = "https://api.github.com/repos/openvinotoolkit/open_model_zoo/git/trees/master?recursive=1"
REPO = "https://github.com/openvinotoolkit/open_model_zoo"


make_spider = spider_maker(OpenvinoSpider, {"PTM_OPENVINO_RAW_URL": RAW, "PTM_OPENVINO_TREE_URL": TREE,
                                             "PTM_OPENVINO_REPO_URL": REPO})


def fixture_tree(extra=()):
    paths = sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*") if p.is_file())
    entries = [{"path": p, "mode": "100644", "type": "blob", "sha": "a" * 40, "size": 1} for p in paths]
    return {"sha": "b" * 40, "tree": entries + list(extra), "truncated": False}


def tree_requests(spider, tree=None):
    return list(spider.parse_tree(text_response(TREE, json.dumps(tree or fixture_tree()))))


def fetch(spider, request, body=None):
    path = request.cb_kwargs["path"]
    response = (fixture_response(FIXTURES / path, request.url, request) if body is None
                else text_response(request.url, body, request))
    return list(spider.parse_file(response, **request.cb_kwargs))


def one_request(spider, path):
    return Request(f"{RAW}/{path}", cb_kwargs={"path": path, "tree_sha": None, "blob_sha": None})


def stat(spider, key):
    return spider.crawler.stats.get_value(key)


def test_start_is_the_tree():
    spider = make_spider()
    (start,) = start_requests(spider)
    assert (start.url, start.callback) == (TREE, spider.parse_tree)


def test_one_request_per_model_yml_including_composite_parts_and_nothing_else():
    spider = make_spider()
    extra = [{"path": "demos/foo/model.yml", "type": "blob"}, {"path": "models/other/x/model.yml", "type": "blob"},
             {"path": "models/public/a/b/c/model.yml", "type": "blob"},
             {"path": "models/public/../../x/model.yml", "type": "blob"}]
    requests = tree_requests(spider, fixture_tree(extra))
    assert [r.cb_kwargs["path"] for r in requests] == sorted(f"{d}/model.yml" for d in MODELS)
    assert stat(spider, "ptm/pages/unsafe_tree_paths") == 1


def test_each_model_yml_gives_one_item_with_the_parsed_yaml():
    spider = make_spider()
    items = {i.model_id: i for r in tree_requests(spider) for i in fetch(spider, r)}
    assert sorted(items) == sorted(MODELS.values())
    assert all(isinstance(i, RawModelItem) and i.context["repo_url"] == REPO for i in items.values())
    resnet = items["public/resnet-50-pytorch"].payload
    assert (resnet["group"], resnet["name"], resnet["model_dir"]) == ("public", "resnet-50-pytorch",
                                                                     "models/public/resnet-50-pytorch")
    model = resnet["model"]
    assert (model["task_type"], model["framework"], model["quantizable"]) == ("classification", "pytorch", True)
    assert model["files"][0]["size"] == 102502400 and model["description"].startswith("ResNet 50 is")
    assert resnet["raw_url"] == f"{RAW}/models/public/resnet-50-pytorch/model.yml"
    drive = items["public/googlenet-v1-tf"].payload["model"]["files"][1]["source"]
    assert drive == {"$type": "google_drive", "id": "1Bq1vWqzTmcA1OqTH9aLBTq1WfpCqkmmr"}
    part = items["intel/formula-recognition-medium-scan-0001/formula-recognition-medium-scan-0001-im2latex-decoder"]
    assert part.payload["name"] == "formula-recognition-medium-scan-0001-im2latex-decoder"


@pytest.mark.parametrize("body, why", [
    ("description: [unclosed\n", "malformed YAML"),
    ("- just\n- a list\n", "a list, not a mapping"),
    ("a: &x [1, 2]\nb: *x\n", "aliases are not accepted"),
    ("", "a NoneType, not a mapping"),
])
def test_a_bad_model_yml_is_reported_by_url_and_reason(body, why, caplog):
    spider = make_spider()
    path = "models/public/broken/model.yml"
    with caplog.at_level(logging.ERROR):
        assert fetch(spider, one_request(spider, path), body) == []
    assert f"Page failed (not retried): {RAW}/{path} (malformed YAML" in caplog.text and why in caplog.text
    assert stat(spider, "ptm/pages/failed/malformed YAML") == 1


def test_an_alias_bomb_is_refused_before_it_expands():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [*{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}]\n"
        for n in range(20))
    spider = make_spider()
    assert fetch(spider, one_request(spider, "models/public/bomb/model.yml"), bomb) == []


def test_the_yaml_loader_keeps_only_json_types():
    data = load_yaml("when: 2021-02-03\nblob: !!binary aGk=\nn: .nan\nset: !!set {a, b}\n1: one\nyes_: yes\n")
    assert data == {"when": "2021-02-03", "blob": "aGk=", "n": "nan", "set": None, "1": "one", "yes_": True}
    json.dumps(data)
    # The safe loader refuses the tag (an unsafe one would run os.system and give {"x": 0}); the
    # match was "...|not", which any exception whose message says "not" passed.
    with pytest.raises(yaml.constructor.ConstructorError, match="could not determine a constructor for the tag"):
        load_yaml("x: !!python/object/apply:os.system ['true']\n")
