"""ValidationGate: fails the run when ExampleValidator found anomalies, so nothing trains on bad data."""
