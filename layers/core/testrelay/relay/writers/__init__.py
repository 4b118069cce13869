"""One writer per target kind; each resumes from its checkpoint in the ledger."""
