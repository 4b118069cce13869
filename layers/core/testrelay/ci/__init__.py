"""One module per CI provider: authenticate the delivery, normalise it, report back."""
