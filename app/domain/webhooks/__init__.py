"""Outbound webhooks (contract §9): endpoints admins subscribe, and the log of every delivery made to them."""
