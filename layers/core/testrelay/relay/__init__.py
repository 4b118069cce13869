"""The relay's steps, one module each; handlers call these and know nothing of the vendors."""
