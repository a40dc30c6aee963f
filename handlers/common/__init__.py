"""Handlers for anything no other router took."""
