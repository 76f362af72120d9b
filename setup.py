"""Packaging for Scrapyd eggs (``scrapyd-deploy``) and ``pip install -e .``.

The egg holds ``ptmscrape`` (with every subpackage and the JSON Schema, read with
``importlib.resources`` so it loads from inside the zipped egg), ``spiders`` and ``pipelines``;
``tests/test_scrapyd.py`` builds it and checks exactly that.
"""

from setuptools import find_packages, setup

setup(
    name="ptmscrape",
    version="0.1.0",
    packages=find_packages(include=["ptmscrape", "ptmscrape.*", "spiders", "spiders.*",
                                    "pipelines", "pipelines.*"]),
    package_data={"ptmscrape": ["schema/*.json"]},
    include_package_data=True,
    entry_points={"scrapy": ["settings = ptmscrape.settings"]},
    python_requires=">=3.11",
)
