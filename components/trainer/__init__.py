"""TFX's Trainer, given the examples per class that the ExampleGen already counted."""
