"""Tests that run real services: the embedded broker, Redis, Faust workers."""
