"""What every write-back target shares: case matching, status mapping, batching plans and rate limits."""
