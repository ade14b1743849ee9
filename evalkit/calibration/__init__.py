"""Judge calibration: human labels, agreement, corrected pass rates and alignment."""
