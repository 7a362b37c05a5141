"""Photo library mode: every face of a photo collection, clustered into unknown people."""
