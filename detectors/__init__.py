"""Detectors: score a scanned character as human- or machine-written.

Data flows one way: scan -> preprocessed 28x28 frame (forensics.preprocess) -> signals from
the forgers' own models and the detector's CNNs (signals) -> calibrated p_machine
(bundle.Combiner) -> record (score, forensics.record). engine scores many files on every
core, ray_engine on a Ray cluster; calibrate builds the bundle; evaluate measures it on folders;
train_reader trains the digit reader.
"""
