"""Adapters for the AWS services the relay uses; the core talks to AWS only through these."""
