"""The TFLite model judged on the test split against the SavedModel (the --tflite push gate)."""
