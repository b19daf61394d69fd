"""Custom TFX components (component / executor split, as TFX's own)."""
