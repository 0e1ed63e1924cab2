"""Files of the reference codes, read into zslkit: trained models (``cvczsl``: kailigo/cvcZSL checkpoints) and
configurations (``frwgan_architecture``: rfelixmg/frwgan-eccv18 architecture JSON). ``imported_run`` writes an
imported model as a run directory that ``zslkit evaluate`` / ``zslkit predict`` accept. Formats carry over from
the references; the code is written here (see docs/from-the-reference-codes.md)."""
