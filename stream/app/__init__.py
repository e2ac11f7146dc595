"""The live worker: a Faust app around the engine (Kafka in; table, Redis, metrics out)."""
