"""Connecting to monitored servers, probing what they offer, and the embedded default server."""
