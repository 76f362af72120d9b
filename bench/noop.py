"""A pipeline that does nothing, to measure what Scrapy itself costs per item (``bench.floor``)."""


class NoopPipeline:
    async def process_item(self, item):
        return item
