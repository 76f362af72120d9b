"""Packaging for Scrapyd eggs (``scrapyd-deploy``) and ``pip install -e .``."""

from setuptools import setup

setup(
    name="ptmscrape",
    version="0.1.0",
    packages=["ptmscrape", "ptmscrape.mappers", "spiders", "pipelines"],
    package_data={"ptmscrape": ["schema/*.json"]},
    include_package_data=True,
    entry_points={"scrapy": ["settings = ptmscrape.settings"]},
    python_requires=">=3.11",
)
