"""Weights: loading, key mapping, conversion, safe unpickling, named weights and label lists.

Owns every way a state dict enters tsmnet. It may import shift, archs and video (a zoo
entry's test protocol), never models or commands: models import it.
"""
