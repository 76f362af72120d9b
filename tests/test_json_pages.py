"""A JSON array page decoded element by element (ptmscrape/json_pages.py): the same values and
errors as json.loads, and each element's text as served."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from ptmscrape.json_pages import array_elements

WELL_FORMED = [
    b"[]",
    b" [ ] \n",
    b'[{"id":"a/b","n":1}]',
    b'[{"id": "a/b", "tags": ["x", "y"]},\n  {"id": "c", "nested": {"k": [1, 2.5, null, true]}} ]',
    b'[1,"two",[3],{"4":4},null,false,-0.5e3]',
    '[{"name": "caf\u00e9 \u6a21\u578b", "esc": "\\u00e9\\n\\"q\\""}]'.encode(),
    b'\xef\xbb\xbf[{"bom": 1}]',  # json.loads accepts a UTF-8 BOM on bytes
    '[{"utf16": "\u00e9"}]'.encode("utf-16"),
    b'[{"lone": "\\ud800"}, NaN, Infinity]',
    b'\t[\r\n{"a":1}\t,\r\n{"b":2}\n]\n',
]

# Compact, as the Hub serves it: decoded whole by orjson, every element encoding back to itself.
COMPACT_AS_SERVED = [
    b'[{"id":"a/b","n":1},{"id":"c","tags":[]}]',
    '[{"id":"o/m","name":"caf\u00e9 \u6a21\u578b","n":-3,"f":1.5,"l":[true,null,{}],"s":"a\\"b\\\\\\n"},[]]'.encode(),
    b'[{"id":"x","tags":["a","b"],"big":9223372036854775807}]',
]

# Compact, but orjson would not give these back as served: such a page goes element by element.
NOT_AS_SERVED = [
    b'[{"a":1,"a":2}]', b'[18446744073709551616]', b'[1e5]', b'[-0]', b'[1.50]', b'[{"u":"\\u00e9"}]',
    b'[{"x":"\\ud800"}]', b'[{"x":"\\/"}]', b'[NaN]', b'\xef\xbb\xbf[1]', b'[1] ',
    b"[" * 300 + b"]" * 300,
]

WELL_FORMED += COMPACT_AS_SERVED + NOT_AS_SERVED

MALFORMED = [
    b"", b"   ", b"[", b"[1,", b"[1,]", b"[,1]", b"[1 2]", b'[{"a":1}', b'[{"a":1}]]', b"[1] x",
    b'[{"a":1},{"b":', b"not json", b'[{"a":"\x0a"}]', b"\xff\xfe\xfd", b"[1]\x00",
]


@pytest.mark.parametrize("body", WELL_FORMED)
def test_values_are_json_loads_values_and_each_text_is_its_element_as_served(body):
    elements = array_elements(body)
    expected = json.loads(body)
    assert json.dumps([value for value, _ in elements]) == json.dumps(expected)  # NaN != NaN
    text = body.decode(json.detect_encoding(body))
    for value, served in elements:
        assert served in text  # a slice of the page, not a re-encoding
        assert json.dumps(json.loads(served)) == json.dumps(value)
        assert served == served.strip() and not served.endswith(",")


def test_an_element_keeps_the_hubs_own_spelling():
    body = b'[{"id": "m",  "x" : 1.50, "u": "\\u00e9"}]'
    [(value, served)] = array_elements(body)
    assert served == '{"id": "m",  "x" : 1.50, "u": "\\u00e9"}'
    assert value == {"id": "m", "x": 1.5, "u": "\u00e9"}


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_bodies_are_rejected_as_json_loads_rejects_them(body):
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(ValueError):
        array_elements(body)


@pytest.mark.parametrize("body", [b'{"id": "a"}', b"1", b'"[1]"', b"null"])
def test_json_that_is_not_an_array_is_a_type_error(body):
    json.loads(body)
    with pytest.raises(TypeError):
        array_elements(body)


@pytest.mark.parametrize("body", COMPACT_AS_SERVED)
def test_a_compact_page_is_decoded_whole_without_the_element_scanner(body, monkeypatch):
    import ptmscrape.json_pages as pages

    def no_scanner(*args):
        raise AssertionError("scanned element by element")

    monkeypatch.setattr(pages, "_SCAN", no_scanner)
    elements = array_elements(body)
    assert [value for value, _ in elements] == json.loads(body)
    assert "[" + ",".join(served for _, served in elements) + "]" == body.decode()


@pytest.mark.parametrize("body", NOT_AS_SERVED)
def test_a_compact_page_orjson_would_not_give_back_as_served_is_not_decoded_whole(body):
    from ptmscrape.json_pages import _compact_elements

    assert _compact_elements(body) is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(_JSON, max_size=5), st.booleans())
def test_any_compact_page_gives_json_loads_values_and_the_texts_served(values, ascii_only):
    body = json.dumps(values, separators=(",", ":"), ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    elements = array_elements(body)
    assert json.dumps([value for value, _ in elements]) == json.dumps(json.loads(body))
    assert "[" + ",".join(served for _, served in elements) + "]" == body.decode("utf-8", "surrogatepass")
