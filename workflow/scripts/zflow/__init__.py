"""Shared helpers of the workflow's scripts (one small package, imported by every script)."""
