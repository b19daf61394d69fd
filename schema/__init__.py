"""Package data: the curated raw-example schema (schema.pbtxt)."""
