"""Detectors: score a scanned character as human- or machine-written.

Data flows one way: scan -> preprocessed 28x28 frame (forensics.preprocess) -> signals
from the forgers' own models (signals) -> calibrated p_machine (bundle.Combiner) ->
report records (score). calibrate builds the bundle; evaluate measures it on folders.
"""
