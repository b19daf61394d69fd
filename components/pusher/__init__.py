"""Pusher for a TF Serving model folder: atomic, increasing integer versions, each model pushed once."""
