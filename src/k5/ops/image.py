"""Image ops: resize, grid sampling, RoI align, depth/space rearrangement, crops, box suppression."""
