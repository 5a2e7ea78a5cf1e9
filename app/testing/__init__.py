"""Test data for this service and for projects that test against it.

``factories`` (polyfactory factories for every model and request body), ``values`` (the realistic, seedable values
they draw from) and ``seed`` (bulk seeding behind ``litestar seed`` and the dev command's demo data).
"""
