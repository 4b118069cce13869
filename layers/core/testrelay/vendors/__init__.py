"""One client per vendor API, all on the shared HTTP session in `http`."""
