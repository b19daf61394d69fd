"""Model code: Transform's preprocessing_fn, the Keras model, the Trainer's run_fn and the exported signatures."""
