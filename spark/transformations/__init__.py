"""Pure DataFrame -> DataFrame transformations shared by the batch and streaming jobs."""
