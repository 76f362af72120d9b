import pytest
from jsonschema import Draft202012Validator

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.common import MappingError, stable_id
from ptmscrape.mappers.modelzoo import map_raw, paper_dois, repository
from tests.replicas.modelzoo import detail, fixture_models

VALIDATOR = Draft202012Validator(load_schema())
BASE = "https://modelzoo.co"


def raw(slug, payload, base=BASE):
    return RawModelItem(hub="modelzoo", model_id=slug, url=f"{base}/api/models/{slug}/", payload=payload,
                        context={"base_url": base})


def record(slug):
    model = next(m for m in fixture_models() if m["slug"] == slug)
    return map_raw(raw(slug, detail(model)))


def test_every_fixture_model_maps_to_a_valid_record():
    for model in fixture_models():
        r = map_raw(raw(model["slug"], detail(model)))
        assert [e.message for e in VALIDATOR.iter_errors(r)] == [], model["slug"]


def test_ptmtorrent_keys_from_a_github_model():
    r = record("openpose-caffe")
    assert r["id"] == stable_id("modelzoo", "openpose-caffe")
    assert r["ModelHub"] == {"ModelHubName": "modelzoo", "ModelHubURL": BASE,
                             "MetadataFilePath": "modelzoo/json/metadata/_/openpose-caffe.json",
                             "MetadataObjectID": "17"}
    assert r["ModelName"] == "openpose-caffe" and r["ModelOwner"] == "CMU-Perceptual-Computing-Lab"
    assert r["ModelURL"] == f"{BASE}/model/openpose-caffe"
    assert r["ModelOwnerURL"] == "https://github.com/CMU-Perceptual-Computing-Lab"
    assert r["RepoURL"] == "https://github.com/CMU-Perceptual-Computing-Lab/openpose"
    assert (r["RepoBranch"], r["RepoSubPath"]) == (None, None)
    assert r["ModelPaperDOIs"] == ["10.48550/arXiv.1812.08008", "10.1109/CVPR.2016.511"]
    assert (r["Library"], r["Likes"], r["Tags"]) == ("caffe", 27950, ["computer-vision"])
    assert r["ModelTask"] == "computer-vision"  # the category, as PyTorch Hub's domain tag "vision"
    assert r["DisplayName"] == "OpenPose"  # the hub's title; the slug is the name
    assert r["CloneStatus"] == "pending" and r["LatestGitCommitSHA"] is None


def test_a_title_that_is_the_slug_again_is_no_display_name():
    # The schema's DisplayName is the hub's human-readable name "when it differs from ModelName".
    assert map_raw(raw("openpose", {"title": "openpose"}))["DisplayName"] is None
    assert map_raw(raw("openpose", {"title": " OpenPose "}))["DisplayName"] == "OpenPose"
    assert map_raw(raw("openpose", {"title": "  "}))["DisplayName"] is None


def test_the_task_is_the_first_categorys_slug():
    stylegan = record("stylegan")
    assert (stylegan["ModelTask"], stylegan["Tags"]) == ("generative-models", ["generative-models", "computer-vision"])
    assert record("tts")["ModelTask"] == "audio-speech"
    no_slug = map_raw(raw("x", {"categories": [{"title": "Graph"}, {"slug": "graph", "title": "Graph"}]}))
    assert (no_slug["ModelTask"], no_slug["Tags"]) == ("graph", ["graph"])
    assert map_raw(raw("x", {"categories": []}))["ModelTask"] is None


def test_tree_links_give_the_repository_branch_and_folder():
    r = record("retinanet-tensorflow")
    assert r["RepoURL"] == "https://github.com/acme-research/model-garden"
    assert (r["RepoBranch"], r["RepoSubPath"]) == ("master", "official/retinanet")
    assert record("resnet-tensorflow-2")["RepoURL"] == r["RepoURL"]


@pytest.mark.parametrize("link, expected", [
    (None, (None, None, None)),
    ("", (None, None, None)),
    ("https://github.com/deepmind", (None, None, None)),  # an organisation page: no repository
    ("https://github.com/google/flax.git", ("https://github.com/google/flax", None, None)),
    ("https://github.com/mozilla/TTS/", ("https://github.com/mozilla/TTS", None, None)),
    ("http://www.github.com/a/b/blob/dev/x/y.py", ("https://github.com/a/b", "dev", "x/y.py")),
    ("https://github.com/a/b/tree/main", ("https://github.com/a/b", "main", None)),
    ("https://gitlab.com/group/project", ("https://gitlab.com/group/project", None, None)),
    ("https://project-site.example/chainercv", ("https://project-site.example/chainercv", None, None)),
    ("ftp://files.example/model.tar", (None, None, None)),
])
def test_repository_of_a_link(link, expected):
    assert repository(link) == expected


def test_a_percent_encoded_folder_link_gives_the_folder_as_git_names_it():
    # GitHub writes a folder's spaces and non-ASCII letters percent-encoded in its links; git log
    # knows the folder by its name, so an encoded RepoSubPath matched nothing and the record got
    # the repository's HEAD for the folder's last commit.
    link = "https://github.com/a/b/tree/release%2F2.0/My%20Models/r%C3%A9seau"
    assert repository(link) == ("https://github.com/a/b", "release/2.0", "My Models/réseau")
    r = map_raw(raw("x", {"link": link}))
    assert (r["RepoBranch"], r["RepoSubPath"]) == ("release/2.0", "My Models/réseau")


def test_models_without_a_repository_keep_their_record():
    ray, graph_nets, website = record("ray"), record("graph-nets"), record("chainercv")
    assert ray["RepoURL"] is None and ray["ModelOwner"] == "" and ray["ModelOwnerURL"] == ""
    assert ray["ModelHub"]["MetadataFilePath"] == "modelzoo/json/metadata/_/ray.json"
    assert graph_nets["RepoURL"] is None and graph_nets["ModelOwner"] == "deepmind"
    assert website["RepoURL"] == "https://project-site.example/chainercv" and website["ModelOwner"] == ""


def test_paper_dois_from_arxiv_and_doi_links():
    papers = {
        "a": "https://arxiv.org/abs/1703.06870",
        "a again, as pdf": "https://arxiv.org/pdf/1703.06870v2.pdf",
        "b": "http://export.arxiv.org/abs/1708.02002v2",
        "old-style": "https://arxiv.org/abs/cs/0112017",
        "c": "https://dx.doi.org/10.1109/CVPR.2016.90",
        "d": "https://dl.acm.org/doi/abs/10.1145/3123266.3129395",
        "no doi": "https://www.nature.com/articles/nbt.4235",
        "junk": None,
    }
    assert paper_dois(papers) == ["10.48550/arXiv.1703.06870", "10.48550/arXiv.1708.02002",
                                  "10.48550/arXiv.cs/0112017", "10.1109/CVPR.2016.90",
                                  "10.1145/3123266.3129395"]
    assert paper_dois(None) == paper_dois({}) == paper_dois(["x"]) == []


def test_tolerates_junk_fields_and_refuses_non_objects():
    r = map_raw(raw("odd", {"title": 5, "stars": -3, "framework": ["x"], "categories": "cv",
                            "papers": "x", "link": 7, "id": True}))
    assert [e.message for e in VALIDATOR.iter_errors(r)] == []
    assert (r["Likes"], r["Library"], r["Tags"], r["ModelTask"], r["RepoURL"]) == (None, None, [], None, None)
    assert r["ModelHub"]["MetadataObjectID"] == "odd"  # no usable numeric id: the slug
    with pytest.raises(MappingError, match="not an object"):
        map_raw(raw("x", ["not", "a", "model"]))
    with pytest.raises(MappingError, match="slug"):
        map_raw(raw("", {}))


def test_hostile_slug_stays_inside_the_tree():
    r = map_raw(raw("../../etc", {"link": "https://github.com/../x"}))
    assert ".." not in r["ModelHub"]["MetadataFilePath"].split("/")
    assert r["ModelURL"] == f"{BASE}/model/..%2F..%2Fetc"


@pytest.mark.parametrize("slug", ["stylegan", "ray", "tts"])
def test_a_rendered_page_in_the_documented_markup_gives_the_api_records_tags_and_task(slug):
    from tests.test_modelzoo_spider import by_slug, rendered, rendered_spider

    (item,) = rendered_spider().parse_model_page(rendered(f"model-{slug}.html", f"/model/{slug}"), slug=slug)
    mapped, api = map_raw(item), map_raw(RawModelItem("modelzoo", slug, item.url, detail(by_slug(slug))))
    assert (mapped["Tags"], mapped["ModelTask"], mapped["Library"], mapped["Likes"], mapped["RepoURL"]) == (
        api["Tags"], api["ModelTask"], api["Library"], api["Likes"], api["RepoURL"])
    assert mapped["Tags"]


def test_categories_the_hub_does_not_list_give_no_tag():
    categories = [{"id": None, "slug": "graph", "title": "Graph", "short_title": "Graph"},
                  {"id": None, "slug": None, "title": "Quantum Stuff", "short_title": None}]
    model = next(m for m in fixture_models() if m["slug"] == "ray")
    mapped = map_raw(raw("ray", {**detail(model), "categories": categories}))
    assert mapped["Tags"] == ["graph"] and mapped["ModelTask"] == "graph"
