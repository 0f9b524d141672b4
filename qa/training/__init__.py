"""Training and calibrating the reader (``python -m qa.training.train_reader``, ``python -m qa.training.calibrate_reader``)."""
