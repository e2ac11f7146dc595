"""Where figures go besides /metrics: the Redis lookups."""
