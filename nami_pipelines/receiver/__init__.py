"""The Nami webhook receiver (`nami-pipelines receive`): Nami's bodies in, rows committed, then
acknowledged. It knows the event store and nothing of any destination."""
