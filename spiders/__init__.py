"""One spider per model hub; each yields ``RawModelItem`` s (see ``ptmscrape.spiders_base``)."""
