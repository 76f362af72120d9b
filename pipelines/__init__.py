"""Item pipeline stages, one per module, in data-flow order (see ``ITEM_PIPELINES``):
map -> validate -> dedupe -> clone -> store."""
